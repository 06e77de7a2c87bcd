"""The shared sidebar: every page calls ``render()`` first and gets one typed ``LabConfig``.

Sections: data and protocol (a form: changing them refits everything, so they apply on a button),
members by kind, one weight slider per member, fusion method / normaliser / k, and a settings form per
member built from its config. Every widget is keyed, bound to the URL and kept across pages (see
``ui.state``), so a link copied from the address bar reproduces the view on any page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

from reco_core import config as engine_config
from reco_core.errors import RecoError
from reco_core.fusion import METHODS, NORMALISERS
from reco_core.models import MODELS, get_spec
from ui import state
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import BOUND, lazy_expander, member_form, param_input

LOGO = Path(__file__).resolve().parent.parent / "assets" / "logo.svg"

# The page list drawn at the top of the sidebar. Streamlit's own navigation names the home page after
# its file ("app"), so it is switched off in .streamlit/config.toml and drawn here with real names.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("app.py", "Overview", ":material/home:"),
    ("pages/1_Fusion_Lab.py", "Fusion Lab", ":material/tune:"),
    ("pages/2_User_Explorer.py", "User Explorer", ":material/person_search:"),
    ("pages/3_Trade_offs.py", "Trade-offs", ":material/scatter_plot:"),
    ("pages/4_Compare.py", "Compare", ":material/compare:"),
    ("pages/5_Learn.py", "Learn", ":material/school:"),
    ("pages/6_Your_data.py", "Your data", ":material/upload_file:"),
)


# A change of a weight, the normaliser, k or a method parameter reruns only two fragments: the page's live part
# (``ui.page.live``: the tiles, charts and lists that depend on it) and the sidebar's own live bits (the shares,
# the link to this view), not the page and sidebar.
LIVE = "live"
SIDEBAR_LIVE = "sidebar-live"
LIVE_BITS = "live-bits"  # the containers of the sidebar's live bits: "live-bits-shares", "live-bits-link"
LINK_OPEN = "sidebar:link_open"  # the open state of "Link to this view"


def live_rerun() -> None:
    """Callback of the live widgets: rerun only the live fragments; a page without a live part reruns whole."""
    try:
        st.rerun([LIVE, SIDEBAR_LIVE])
    except StreamlitAPIException:
        return  # no live fragment on this page: the default full rerun follows


def all_keys() -> list[str]:
    """Every widget key the sidebar may draw (fixed ones, members by kind, each model's weight and params)."""
    keys = list(state.default_values())
    keys.extend(state.method_param_keys())
    for name in MODELS:
        keys.append(state.weight_key(name))
        keys.extend(state.param_key(name, ps.name) for ps in state.member_params(name))
    return keys


def render() -> LabConfig | None:
    """Draw the sidebar and return the configuration it describes (None when it cannot describe one).

    Returns None when no member is chosen or a value is invalid; the reason is shown in the sidebar.
    All-zero weights still return a config (``cfg.all_zero``): pages say so, once, and keep their other parts.

    The sidebar's widgets are bound to the address as the entry page's (``app.py``), not the current page's:
    Streamlit drops a page's bound parameters from the address on a switch to another page, so a shared link
    would lose its settings at the first page link; the entry page's parameters are kept on every page.
    """
    ctx = get_script_run_ctx()
    if ctx is None:
        return _render()
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        return _render()


def _render() -> LabConfig | None:
    get_spec("pop")  # fill the model registry before reading it
    state.apply_queued()
    uploaded = state.get_uploaded()
    state.keep_across_pages(all_keys(), st.query_params)
    if LOGO.exists():
        st.logo(str(LOGO), size="large")
    sb = st.sidebar
    for path, label, icon in PAGES:
        sb.page_link(path, label=label, icon=icon)
    sb.divider()
    notice = state.pop_notice()
    if notice:
        sb.success(notice)

    values: dict[str, Any] = {}
    values.update(_data_section(sb, uploaded))
    values.update(_members_section(sb))
    chosen = [m for kind in state.MEMBER_KEYS.values() for m in values.get(kind, [])]
    if chosen:
        values.update(_weights_section(sb, chosen))
        with sb:
            _live_bits("shares")
    values.update(_fusion_section(sb))
    values.update(_rerank_section(sb))
    if chosen:
        sb.markdown("**Member settings**")
        for model in chosen:
            for name, value in member_form(sb, model).items():
                values[state.param_key(model, name)] = value

    state.set_last_config(None)
    state.set_sidebar_problem(None)
    try:
        state.set_last_protocol(state.protocol_from_values(values, uploaded))
    except RecoError as exc:
        state.set_last_protocol(None)
        state.set_sidebar_problem(str(exc))
        sb.error(plain(str(exc)))
        return None
    if not chosen:
        sb.info("Choose at least one member model to fuse.")
        return None
    try:
        cfg = state.config_from_values(values, uploaded)
    except RecoError as exc:
        state.set_sidebar_problem(str(exc))
        sb.error(plain(str(exc)))
        return None
    with sb:
        _live_bits("link")
    state.set_last_config(cfg)
    return cfg


def current_config() -> LabConfig | None:
    """The configuration the sidebar's widgets hold now, read from session state (for a fragment-only rerun,
    where the sidebar is not drawn); None when they do not describe one."""
    ss = st.session_state
    values = {key: ss[key] for key in all_keys() if key in ss}
    try:
        return state.config_from_values(values, state.get_uploaded())
    except RecoError:
        return None


@st.fragment(key=SIDEBAR_LIVE)
def _live_bits(part: str) -> None:
    """What the sidebar shows of the live widgets' values, at two places ("shares": under the weights, "link": the
    link to this view at the bottom); one fragment with two call sites, so a weight move redraws both and nothing
    else of the sidebar."""
    cfg = current_config()
    if cfg is None:
        return
    with st.container(key=f"{LIVE_BITS}-{part}"):
        if part == "shares":
            if sum(cfg.weights) > 0:
                st.caption(
                    "Shares: " + ", ".join(f"{m.label} {s:.0%}" for m, s in zip(cfg.members, cfg.shares, strict=True))
                )
        elif part == "link":
            _share_link(cfg)


def _share_link(cfg: LabConfig) -> None:
    """A link that reproduces this configuration on this page (the address bar holds the same after any change)."""
    base = str(st.context.url or "").split("?", 1)[0]  # empty without a browser (AppTest): no link then
    if not base:
        return
    # Drawn only while open: st.code (with its copy button) would otherwise make every first view load Streamlit's
    # 1.5 MB code highlighter, and every key press build and send the link again.
    box = lazy_expander("Link to this view", LINK_OPEN)
    if box is None:
        return
    query = urlencode(state.to_query_params(cfg), doseq=True)
    with box:
        st.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)


def _data_section(sb: Any, uploaded: state.UploadedData | None) -> dict[str, Any]:
    ss = st.session_state
    options = list(state.DATASETS) + ([state.DATASET_UPLOAD] if uploaded is not None else [])
    if ss.get(state.K_DATASET) not in (None, *options):
        ss[state.K_DATASET] = state.DEFAULT_DATASET  # e.g. a link to "Your data" in a session without the upload
    d = state.default_values()
    out: dict[str, Any] = {}
    with sb.form("form:data", border=True):
        st.markdown("**Data and protocol**")
        out[state.K_DATASET] = st.selectbox(
            "Dataset",
            options,
            index=options.index(d[state.K_DATASET]),
            format_func=state.dataset_label,
            key=state.K_DATASET,
            help="MovieLens ships with the app; 'Your data' appears after an upload on the Your data page.",
            **BOUND,
        )
        with st.expander("Protocol", expanded=False):
            out[state.K_POSITIVES] = st.selectbox(
                "Positive when the rating is at least",
                list(state.POSITIVES),
                index=state.POSITIVES.index(d[state.K_POSITIVES]),
                key=state.K_POSITIVES,
                help="'any': every rating counts as a positive interaction (the default protocol).",
                **BOUND,
            )
            out[state.K_SPLIT] = st.selectbox(
                "Split",
                list(state.SPLITS),
                index=state.SPLITS.index(d[state.K_SPLIT]),
                key=state.K_SPLIT,
                help="random: per-user random hold-out; temporal: a global time cut; leave-last: each user's "
                "last n interactions.",
                **BOUND,
            )
            out[state.K_TEST_FRAC] = st.slider(
                "Test fraction (random, temporal)",
                0.05,
                0.5,
                float(d[state.K_TEST_FRAC]),
                0.05,
                key=state.K_TEST_FRAC,
                **BOUND,
            )
            out[state.K_N_LAST] = st.number_input(
                "Held-out items per user (leave-last)", 1, 20, int(d[state.K_N_LAST]), 1, key=state.K_N_LAST, **BOUND
            )
            out[state.K_KCORE] = st.number_input(
                "k-core (0 = keep everyone)",
                0,
                50,
                int(d[state.K_KCORE]),
                1,
                key=state.K_KCORE,
                help="Repeatedly drop users and items with fewer than this many interactions (counted in the report).",
                **BOUND,
            )
            out[state.K_SEED] = st.number_input(
                "Seed", 0, 2**31 - 1, int(d[state.K_SEED]), 1, key=state.K_SEED, help="Split and models.", **BOUND
            )
        st.form_submit_button("Apply", help="Reload, resplit and refit with these settings")
    return out


def _members_section(sb: Any) -> dict[str, Any]:
    d = state.default_values()
    out: dict[str, Any] = {}
    sb.markdown("**Members**")
    for kind, key in state.MEMBER_KEYS.items():
        names = state.models_of_kind(kind)
        if not names:
            continue
        out[key] = sb.multiselect(
            state.KIND_LABELS[kind],
            names,
            default=[m for m in d[key] if m in names],
            # Plain registry names as options: a bound multiselect writes its options' text into the URL.
            key=key,
            help="  \n".join(f"**{n}**: {MODELS[n].label}. {MODELS[n].description}" for n in names) or None,
            **BOUND,
        )
    return out


def _weights_section(sb: Any, chosen: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sb.markdown("**Weights**")
    for model in chosen:
        out[state.weight_key(model)] = sb.slider(
            f"Weight of {model}",
            0.0,
            1.0,
            state.default_weight(model),
            state.WEIGHT_STEP,
            key=state.weight_key(model),
            help="Weights are divided by their sum before fusing; only their proportions matter.",
            on_change=live_rerun,
            **BOUND,
        )
    return out


def _fusion_section(sb: Any) -> dict[str, Any]:
    d = state.default_values()
    out: dict[str, Any] = {}
    sb.markdown("**Fusion**")
    methods = list(METHODS)
    out[state.K_METHOD] = sb.selectbox(
        "Method",
        methods,
        index=methods.index(d[state.K_METHOD]),
        format_func=state.method_label,
        key=state.K_METHOD,
        **BOUND,
    )
    # A method change reruns the whole page: the sidebar shows the method's description, whether it uses a
    # normaliser and its own parameters.
    method = METHODS[out[state.K_METHOD]]
    sb.caption(
        method.description.rstrip(".") + ". A learned meta-ranker (LightGBM, trained on validation) is on the"
        " Fusion Lab's Learned fusion tab."
    )
    norms = list(NORMALISERS)
    out[state.K_NORMALISER] = sb.selectbox(
        "Normaliser",
        norms,
        index=norms.index(d[state.K_NORMALISER]),
        format_func=state.normaliser_label,
        key=state.K_NORMALISER,
        disabled=not method.uses_normaliser,
        help="Per user, over the items the member can score. Rank-only methods (RRF, Borda, interleaving) ignore it.",
        on_change=live_rerun,
        **BOUND,
    )
    # The method's own parameters, as its registry record declares them (rrf: rrf_k); a parameter of
    # another method keeps its value in the session and the URL but is not drawn.
    for ps in method.params:
        out[state.param_key(method.name, ps.name)] = param_input(sb, method.name, ps, on_change=live_rerun)
    out[state.K_K] = sb.slider(
        "List length k",
        1,
        state.MAX_K,
        int(d[state.K_K]),
        1,
        key=state.K_K,
        help="Top-k lists are evaluated at k.",
        on_change=live_rerun,
        **BOUND,
    )
    return out


def _rerank_section(sb: Any) -> dict[str, Any]:
    """The re-ranker after fusion (reco_core.rerank): which one (a change reruns the page: its options appear),
    then its lambda, MMR's similarity and the depth it reaches into the fused list (live, like the weights)."""
    from reco_core.rerank import RERANKERS

    d = state.default_values()
    out: dict[str, Any] = {}
    sb.markdown("**Re-rank after fusion**")
    names = list(state.reranker_names())
    out[state.K_RERANK] = sb.selectbox(
        "Re-ranker",
        names,
        index=names.index(d[state.K_RERANK]),
        format_func=state.reranker_label,
        key=state.K_RERANK,
        help="Re-order each user's fused list for a goal beside relevance. "
        + " ".join(f"**{r.label}**: {r.help}." for r in RERANKERS.values()),
        **BOUND,
    )
    if out[state.K_RERANK] == state.RERANK_NONE:
        return out
    out[state.K_RERANK_LAMBDA] = sb.slider(
        "Re-rank lambda",
        0.0,
        1.0,
        float(d[state.K_RERANK_LAMBDA]),
        0.05,
        key=state.K_RERANK_LAMBDA,
        help="Weight of the re-ranker's goal against relevance: 0 keeps the fused list, 1 ignores relevance.",
        on_change=live_rerun,
        **BOUND,
    )
    if out[state.K_RERANK] == "mmr":
        sims = list(engine_config.RERANK_SIMILARITIES)
        out[state.K_RERANK_SIM] = sb.selectbox(
            "MMR similarity",
            sims,
            index=sims.index(d[state.K_RERANK_SIM]),
            key=state.K_RERANK_SIM,
            help="genre: Jaccard of the items' genres; text: cosine of their text embeddings.",
            on_change=live_rerun,
            **BOUND,
        )
    out[state.K_RERANK_DEPTH] = sb.slider(
        "Fused candidates re-ranked",
        1,
        state.MAX_K,
        int(d[state.K_RERANK_DEPTH]),
        1,
        key=state.K_RERANK_DEPTH,
        help="How deep into each user's fused list the re-ranker may reach (at least k).",
        on_change=live_rerun,
        **BOUND,
    )
    return out
