"""How every page starts: ``start`` sets the page up, draws the shared sidebar and the heading, and, for a page
that needs one, gets the lab or says why there is none and stops the page.

``app.py`` and every file in ``pages/`` call ``start`` first. It calls ``ui.sidebar.render`` itself, so a deep
link to any page works on a fresh server (DESIGN.md section 9). A page that needs the lab passes the builder
it needs (``lab.get_lab`` for the test part, ``lab.validation_lab`` for the validation part); a page that can
draw something without a lab (Overview, Compare, Learn, Your data) passes none and handles ``cfg is None``
in its own way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, overload

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from reco_core.errors import RecoError
from reco_core.live import LiveResult
from ui import lab, sidebar, state
from ui.lab import Lab
from ui.state import LabConfig
from ui.widgets import show_error

APP_NAME = "Reco Fusion Lab"
PAGE_ICON = "🔀"
NO_MEMBERS = "Choose at least one member in the sidebar."
ALL_ZERO = "All weights are zero: give at least one member a positive weight in the sidebar."
LIVE_BOX = "live-part"  # the live fragment's container key
# Streamlit dims an element it has not redrawn yet in the current run ("stale": opacity 0.33, after 0.5 s, or at
# once for an element remounted while stale). In the live parts a rerun only changes numbers, in a fraction of
# a second, and the dimming read as the page going away at every key press (issue 14): they stay as they are,
# and a slow live rerun shows its spinner instead (``live``). Full reruns elsewhere keep Streamlit's cue.
NO_DIMMING_CSS = (
    "<style>"
    f".st-key-{LIVE_BOX} [data-stale=true], [class*=st-key-{sidebar.LIVE_BITS}] [data-stale=true]"
    " {opacity: 1 !important; transition: none !important;}"
    "</style>"
)


@overload
def start(
    title: str | None,
    caption: str = "",
    *,
    heading: str | None = None,
    get_lab: None = None,
    no_config: str = NO_MEMBERS,
    on_stop: Callable[[], None] | None = None,
) -> tuple[LabConfig | None, None]: ...


@overload
def start(
    title: str | None,
    caption: str = "",
    *,
    heading: str | None = None,
    get_lab: Callable[[LabConfig], Lab],
    no_config: str = NO_MEMBERS,
    on_stop: Callable[[], None] | None = None,
) -> tuple[LabConfig, Lab]: ...


def start(
    title: str | None,
    caption: str = "",
    *,
    heading: str | None = None,
    get_lab: Callable[[LabConfig], Lab] | None = None,
    no_config: str = NO_MEMBERS,
    on_stop: Callable[[], None] | None = None,
) -> tuple[LabConfig | None, Lab | None]:
    """Set the page up and return the sidebar's configuration and, when ``get_lab`` is given, the lab.

    ``title``: the page's name, in the browser tab as "<title> · Reco Fusion Lab" and as the heading (None: the
    home page, whose tab reads "Reco Fusion Lab" and which draws its own logo instead of a heading).
    ``heading``: a heading other than the title. ``caption``: a line under the heading, drawn before the lab
    is built (its progress shows below it).

    Without ``get_lab``: returns ``(cfg, None)``, ``cfg`` None when the sidebar cannot describe a
    configuration (it says why). With ``get_lab``: returns ``(cfg, lab)``; when there is no configuration it
    shows ``no_config`` (st.info), when the lab cannot be built (a RecoError: the data cannot be loaded, no
    member fitted...) the error in one line, and in both cases calls ``on_stop`` (what the page still draws
    then, e.g. a configuration uploader) and stops the page.
    """
    st.set_page_config(
        page_title=APP_NAME if title is None else f"{title} · {APP_NAME}", page_icon=PAGE_ICON, layout="wide"
    )
    st.html(NO_DIMMING_CSS)
    cfg = sidebar.render()
    if title is not None:
        st.title(heading or title)
    if caption:
        st.caption(caption)
    if get_lab is None:
        return cfg, None
    if cfg is None:
        no_configuration(no_config)
        _stop(on_stop)
    try:
        current = get_lab(cfg)
    except RecoError as exc:
        show_error(exc)
        _stop(on_stop)
    return cfg, current


def no_configuration(no_members: str = NO_MEMBERS) -> None:
    """Why there is no configuration, on the page: a sidebar value it refused (one error line, as the sidebar says
    it too), else ``no_members`` (no member chosen)."""
    problem = state.sidebar_problem()
    if problem is not None:
        show_error(f"The sidebar's settings do not make a configuration: {problem}")
    else:
        st.info(no_members)


def live(cfg: LabConfig, draw: Callable[[LabConfig], None]) -> None:
    """Draw ``draw(cfg)`` as the page's live fragment: a weight, normaliser, k or method-parameter change (and a
    method change that leaves the sidebar as it is) reruns only this part, not the whole page and sidebar.

    ``cfg`` is the configuration of the full run (from ``start``); on a fragment-only rerun the fragment reads the
    sidebar's widgets from session state (``sidebar.current_config``), and the sidebar's own live bits (page
    links, shares, link to this view) rerun beside it. Widgets drawn inside ``draw`` (tabs, a metric picker)
    rerun this part only as well. What does not depend on these settings (the lab, the dataset's figures, an
    uploader) belongs outside, where a fragment rerun leaves it untouched.
    """

    @st.fragment(key=sidebar.LIVE)
    def live_part() -> None:
        now = sidebar.current_config() if _fragment_rerun() else cfg
        if now is None:  # the widgets no longer describe a configuration: the full run says why
            st.rerun()
            return
        give_way()
        state.set_last_config(now)
        # Streamlit shows a spinner only once a block has run 0.5 s (spinner.DELAY_SECS): a live rerun of a few
        # tens of ms never shows one, a slow one (a first normaliser, a large catalogue) says it is working.
        with st.container(key=LIVE_BOX), st.spinner("Updating the numbers…"):
            draw(now)

    live_part()


def fused(current: Lab, cfg: LabConfig, then: str = "") -> LiveResult | None:
    """The current fused result, or None with one message on the page saying why: all weights at zero is a
    warning (a state the person chose, not a failure: ``ALL_ZERO`` and ``then``, what the page shows instead),
    any other problem one error line."""
    if cfg.all_zero:
        st.warning(f"{ALL_ZERO} {then}".strip())
        return None
    try:
        return lab.current_result(current, cfg)
    except RecoError as exc:
        show_error(exc)
        return None


def _fragment_rerun() -> bool:
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def newer_rerun_pending() -> bool:
    """Whether this fragment-only run is already stale: a later widget change (another key press on a weight)
    has queued a rerun of fragments while it runs.

    Streamlit does not interrupt a fragment run for such a rerun (only a full-app or an explicitly
    fragment-scoped rerun preempts), so three quick key presses ran the live part three times in a row, each to
    the end. The request queue is read through Streamlit's script-requests object (no public API exposes it);
    if that ever changes shape this answers False and the page behaves as before.
    """
    ctx = get_script_run_ctx()
    if ctx is None or not ctx.fragment_ids_this_run:
        return False
    requests = getattr(ctx, "script_requests", None)
    try:
        pending = requests._state.name == "RERUN"  # type: ignore[union-attr]
        data = requests._rerun_data  # type: ignore[union-attr]
        # A timer's rerun (a fragment with run_every, such as the learned-fusion progress poller) is not a newer
        # choice of the person's: giving way to it would restart the live part at every tick.
        return bool(pending and data.fragment_id_queue and not data.is_auto_rerun)
    except AttributeError:
        return False


def give_way() -> None:
    """End this live run now when a newer one is queued (``newer_rerun_pending``), so the queued run, with the
    latest values, starts at once. The elements drawn so far stay on the page until it replaces them: a
    fragment-scoped ``st.rerun`` folds into the queued request (its widget states win) and preempts this run,
    which Streamlit treats like any interrupted run. Call it between the expensive steps of the live part."""
    if newer_rerun_pending():
        st.rerun(scope="fragment")


def _stop(on_stop: Callable[[], None] | None) -> NoReturn:
    if on_stop is not None:
        on_stop()
    st.stop()
