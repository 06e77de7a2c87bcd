"""Forms built from model configs (one input per ``ParamSpec``), and the one-line error message helper.

A new model appears in the sidebar with its form without touching this file: booleans become
checkboxes, ``choices`` a selectbox, numbers with a bounded linear range a slider, other numbers
(log-scaled, or unbounded) a number input. Every input is keyed ``<model>.<param>`` and bound to the
URL (see ``ui.state``), so a shared link carries hyperparameters that differ from their defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from reco_core.models import get_spec
from reco_core.models.base import ParamSpec
from ui import state

# Sliders are used for small bounded integer ranges only; a wide range is easier to type than to drag.
_SLIDER_MAX_STEPS = 200
BOUND: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}


def _label(ps: ParamSpec) -> str:
    return ps.display


def _number_format(ps: ParamSpec) -> str | None:
    if ps.type is int:
        return None
    step = ps.step or 0.0
    if ps.log or (0 < step < 0.001):
        return "%.5g"
    return "%.4g" if step == 0 else None


def param_input(container: Any, owner: str, ps: ParamSpec, on_change: Callable[[], None] | None = None) -> Any:
    """Draw the input of one parameter of ``owner`` (a model, or a fusion method) in ``container`` and return
    its value (typed); keyed ``<owner>.<param>``. ``on_change``: a callback (none inside a form)."""
    key = state.param_key(owner, ps.name)
    help_text = ps.help or None
    bound: dict[str, Any] = dict(BOUND) if on_change is None else {**BOUND, "on_change": on_change}
    if ps.type is bool:
        return container.checkbox(_label(ps), value=bool(ps.default), key=key, help=help_text, **bound)
    if ps.choices is not None:
        options = list(ps.choices)
        index = options.index(ps.default) if ps.default in options else 0
        return container.selectbox(_label(ps), options, index=index, key=key, help=help_text, **bound)
    if ps.type is int:
        low = None if ps.low is None else int(ps.low)
        high = None if ps.high is None else int(ps.high)
        step = max(1, int(ps.step or 1))
        default = int(ps.default)
        if low is not None and high is not None and (high - low) / step <= _SLIDER_MAX_STEPS and not ps.log:
            return container.slider(_label(ps), low, high, default, step, key=key, help=help_text, **bound)
        return container.number_input(
            _label(ps), min_value=low, max_value=high, value=default, step=step, key=key, help=help_text, **bound
        )
    low_f = None if ps.low is None else float(ps.low)
    high_f = None if ps.high is None else float(ps.high)
    step_f = float(ps.step) if ps.step else None
    default_f = float(ps.default)
    return container.number_input(
        _label(ps),
        min_value=low_f,
        max_value=high_f,
        value=default_f,
        step=step_f,
        format=_number_format(ps),
        key=key,
        help=help_text,
        **bound,
    )


def member_form(container: Any, model: str) -> dict[str, Any]:
    """An expander holding a form with every hyperparameter of ``model``; returns name -> current value.

    A form, because changing a hyperparameter refits the member: the new values apply on "Apply"
    rather than on every keystroke.
    """
    spec = get_spec(model)
    params = state.member_params(model)
    values: dict[str, Any] = {}
    with container.expander(f"{spec.label} settings", expanded=False):
        if spec.description:
            st.caption(spec.description)
        if not params:
            st.caption("This model has no settings.")
            return values
        with st.form(key=f"form:{model}", border=False):
            for ps in params:
                values[ps.name] = param_input(st, model, ps)
            st.form_submit_button("Apply", help="Refit this member with these settings")
    return values


def lazy_expander(label: str, key: str) -> Any | None:
    """An expander whose contents are drawn only while it is open: the container when open, else None.

    Opening it reruns the script (or the fragment it is in). A closed expander's contents would otherwise be
    computed, sent and mounted at every rerun, a key press's included. Keep ``label`` constant: Streamlit keys
    an expander's open state by its label as well as ``key``.
    """
    box = st.expander(label, key=key, on_change="rerun")
    return box if box.open else None


def show_error(error: BaseException | str, container: Any = None) -> None:
    """A one-line ``st.error`` for a RecoError (escaped: the message may quote a person's file or input)."""
    from ui.upload import plain

    (container if container is not None else st).error(plain(str(error)))


def movement_table(container: Any, moved: pd.DataFrame, width: Any = "stretch") -> None:
    """How far a re-ranked list moved (``reco_core.rerank.movement``: one row per list it is compared with), with
    the share of slots changed as a bar and RBO to three decimals; the Fusion Lab and the User Explorer draw it."""
    container.dataframe(
        moved.reset_index(),
        hide_index=True,
        width=width,
        column_config={
            "from": st.column_config.TextColumn("moved from"),
            "slots changed": st.column_config.ProgressColumn(
                "slots changed", format="percent", min_value=0.0, max_value=1.0
            ),
            "RBO": st.column_config.NumberColumn("RBO", format="%.3f"),
        },
    )
