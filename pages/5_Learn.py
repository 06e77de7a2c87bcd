"""Learn: every model, fusion method, normaliser and metric explained, with worked examples on a real user.

The explanations come from the registries (a new model or metric appears here without touching this
page); the worked examples are computed live from the current lab by ``ui.learn_examples`` (pure
functions, tested on their own), so their final numbers are the ones the Fusion Lab shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from reco_core import analysis
from reco_core.config import FusionSpec
from reco_core.errors import RecoError
from reco_core.fusion import METHODS, NORMALISERS
from reco_core.metrics import METRICS
from reco_core.models import MODELS, get_spec
from reco_core.ranking import top_k
from ui import lab, page, state
from ui import learn_examples as le
from ui.upload import plain
from ui.widgets import show_error

PAGE = "learn"
KIND_WORDS = {
    "user": "Collaborative models learn from who interacted with what.",
    "item": "Content models read the items themselves (genres, titles).",
    "hybrid": "Hybrid models fuse features inside one model (feature-level fusion).",
}

cfg, _ = page.start("Learn")
get_spec("pop")  # fill the model registry
st.markdown(
    "What each model, fusion method and metric does, with its formula, and two worked examples computed "
    "on a real user of the current lab: reciprocal rank fusion step by step, and NDCG for one list. The last "
    "tab shows how much two metric conventions that libraries disagree on move the numbers."
)

# ------------------------------------------------------------------------------------------ shared lab
current = None
result = None
problem = None
if cfg is None:
    sidebar_problem = state.sidebar_problem()
    problem = (
        f"The sidebar's settings do not make a configuration: {sidebar_problem}"
        if sidebar_problem is not None
        else "Choose at least one member in the sidebar to see the worked examples."
    )
else:
    try:
        current = lab.get_lab(cfg)
        result = lab.current_result(current, cfg)
    except RecoError as exc:
        problem = str(exc)


tab_models, tab_fusion, tab_metrics, tab_examples, tab_conv = st.tabs(
    ["Models", "Fusion", "Metrics", "Worked examples", "Conventions"]
)


# ------------------------------------------------------------------------------------------ models
def param_table(params: list) -> pd.DataFrame:
    """A model's hyperparameters: name, default, allowed values, meaning."""
    rows = []
    for ps in params:
        if ps.choices is not None:
            allowed = ", ".join(map(str, ps.choices))
        elif ps.low is not None and ps.high is not None:
            allowed = f"{ps.low:g} to {ps.high:g}" + (" (log scale)" if ps.log else "")
        else:
            allowed = ""
        rows.append({"parameter": ps.name, "default": str(ps.default), "allowed": allowed, "meaning": ps.help})
    return pd.DataFrame(rows)


with tab_models:
    chosen = {m.model for m in cfg.members} if cfg else set()
    st.markdown(
        "Every model turns a user into one score per item; the fusion combines those scores (or the ranked "
        "lists made from them). Hyperparameters are the ones the sidebar's *Member settings* show."
    )
    for kind, words in KIND_WORDS.items():
        specs = [(name, spec) for name, spec in MODELS.items() if spec.kind == kind]
        if not specs:
            continue
        st.markdown(f"**{words}**")
        for name, spec in specs:
            mark = " · in the current fusion" if name in chosen else ""
            with st.expander(f"{spec.label} ({name}){mark}"):
                st.write(plain(spec.description or "No description."))
                st.dataframe(param_table(spec.config_cls.params()), hide_index=True, width="stretch")

# ------------------------------------------------------------------------------------------ fusion
with tab_fusion:
    st.markdown(
        "**Score-level** methods combine each member's scores over the whole catalogue after a per-user "
        "normaliser; **result-level** methods see only each member's top-N list. Weights are divided by "
        "their sum first, so only their proportions matter."
    )
    current_method = cfg.method if cfg else None
    for name, method in METHODS.items():
        here = " · current" if name == current_method else ""
        st.markdown(f"##### {plain(method.label)} ({name}, {method.level} level){here}")
        if name in le.METHOD_FORMULAS:
            st.latex(le.METHOD_FORMULAS[name])
        st.caption(plain(method.description))
    st.divider()
    st.markdown("**Normalisers** make members' scores comparable before a score-level method adds them.")
    for name, fn in NORMALISERS.items():
        here = " · current" if cfg and name == cfg.normaliser and cfg.uses_normaliser else ""
        st.markdown(f"##### {name}{here}")
        if name in le.NORMALISER_FORMULAS:
            st.latex(le.NORMALISER_FORMULAS[name])
        doc = (fn.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            st.caption(plain(" ".join(doc.split())))

# ------------------------------------------------------------------------------------------ metrics
with tab_metrics:
    st.markdown(
        "For a user u, *T* is the set of held-out (test) items and *L* the top-k list with training items "
        "excluded; rel_i is 1 when the i-th item of L is in T. Accuracy metrics compare L with T; "
        "beyond-accuracy metrics describe the lists themselves. Global metrics are one number over all lists."
    )
    current_values = result.evaluation.values() if result is not None else {}
    for name, spec in METRICS.items():
        better = "higher is better" if spec.higher_is_better else "lower is better"
        st.markdown(f"##### {plain(spec.label)} ({name}) — {spec.kind}, per {spec.scope}, {better}")
        st.latex(spec.formula)
        line = spec.description
        key = f"{name}@{cfg.k}" if cfg else None
        if key and key in current_values:
            line += f" Current fusion: {current_values[key]:.4f} at k = {cfg.k}."
        st.caption(plain(line))


def user_picker(lab_: lab.Lab) -> int:
    """Pick an evaluated user (external id); returns the user index. Default: a typical user."""
    session = lab_.session
    users = session.users
    ids = lab_.split.train.users.ids_of(users)
    n_test = np.diff(session.target.matrix.indptr)[users]
    n_train = np.diff(lab_.split.train.matrix.indptr)[users]
    default = le.pick_example_user(n_test, n_train, seed=lab_.protocol.seed)
    key = f"learn:user:{lab.dataset_key(lab_.protocol)}"
    pos = st.selectbox(
        "User",
        range(len(users)),
        index=int(default),
        format_func=lambda i: f"{ids[i]} ({n_train[i]} training, {n_test[i]} held-out items)",
        key=key,
        help="Any evaluated user; the default is a typical one (a median history and a few held-out items).",
    )
    return int(users[int(pos)])


with tab_examples:
    if problem or current is None or result is None:
        st.info(plain(problem or "The lab is not ready."))
    else:
        user = user_picker(current)
        titles = np.asarray(analysis.item_titles(current.catalog, np.arange(current.split.train.n_items)), dtype=object)
        session = current.session
        train_items = current.split.train.items_of(user)
        test_items = session.target.items_of(user)

        st.subheader("Reciprocal rank fusion, step by step")
        members = list(current.members)
        weights = dict(zip(members, current.weights_for(cfg), strict=True))
        # RRF's constant as the sidebar sets it when RRF is the method, else RRF's declared default.
        rrf = cfg.fusion if cfg.method == "rrf" else FusionSpec("rrf")
        rrf_k = float(rrf.param("rrf_k"))
        if cfg.method != "rrf":
            st.caption(
                f"The sidebar's method is {plain(METHODS[cfg.method].label)}; this example shows what RRF "
                f"makes of the same members and weights (k_rrf = {rrf_k:g})."
            )
        st.latex(le.METHOD_FORMULAS["rrf"])
        total = sum(weights.values())
        steps = [
            f"1. Each member ranks the items this user has not rated in training ({len(train_items)} are excluded)"
            f" and keeps its top {session.top_n}.",
            f"2. An item at rank r in a member's list earns 1/({rrf_k:g} + r); an item outside the list earns 0.",
            "3. Each member's points are multiplied by its share of the weights: "
            + (", ".join(f"{plain(m)} {w / total:.0%}" for m, w in weights.items()) if total > 0 else "all zero")
            + ".",
            "4. The fused score is the sum over members; the final order sorts it, ties to the lower item index.",
        ]
        st.markdown("\n".join(steps))
        try:
            ex = le.rrf_example(
                session.user_scores(user),
                weights,
                train_items,
                rrf_k=rrf_k,
                depth=session.top_n,
                show=cfg.k,
                per_member=3,
                item_labels=titles,
            )
            table = ex.table.drop(columns=["item_idx"])
            for m in ex.members:  # "—": not in that member's list (an empty cell would read as a missing value)
                table[f"rank · {m}"] = table[f"rank · {m}"].map(lambda r: "—" if pd.isna(r) else str(int(r)))
            fmt = {
                c: st.column_config.NumberColumn(format="%.5f")
                for c in table.columns
                if not c.startswith("rank") and ("·" in c or "score" in c)
            }
            st.dataframe(table, hide_index=True, width="stretch", column_config=fmt)
            st.caption(
                f"Rows: the RRF top {cfg.k} and each member's own top 3. An empty rank means the item is not in that "
                f"member's top {session.top_n}."
            )
            st.markdown(
                "**Final order:** "
                + " → ".join(f"{i + 1}. {plain(titles[j])}" for i, j in enumerate(ex.fused_top[: cfg.k]))
            )
        except RecoError as exc:
            show_error(exc)

        st.subheader(f"NDCG@{cfg.k} of this user's fused list")
        st.caption(
            f"The list the sidebar's method ({plain(METHODS[cfg.method].label)}) makes, as on the Fusion Lab; "
            "not the RRF example above."
        )
        row = int(np.flatnonzero(result.ranking.user_idx == user)[0])
        fused_list = result.ranking.item_idx[row]
        try:
            nd = le.ndcg_example(fused_list, test_items, cfg.k, item_labels=titles)
            st.latex(METRICS["ndcg"].formula)
            st.dataframe(
                nd.table,
                hide_index=True,
                width="stretch",
                column_config={c: st.column_config.NumberColumn(format="%.4f") for c in nd.table.columns[3:]},
            )
            c1, c2, c3 = st.columns(3)
            c1.metric("DCG", f"{nd.dcg:.4f}", help="Sum of the gains column.")
            c2.metric(
                "IDCG",
                f"{nd.idcg:.4f}",
                help=f"The same sum for a perfect list: min(|T|, k) = {nd.ideal_hits} hits at the top.",
            )
            c3.metric("NDCG = DCG / IDCG", f"{nd.ndcg:.4f}")
            engine = float(result.evaluation.per_user[f"ndcg@{cfg.k}"][row])
            st.caption(
                f"This user has {nd.n_relevant} held-out items and {int(nd.table['rel_i'].sum())} of them are in "
                f"the list. The Fusion Lab's per-user value for this user is {engine:.4f}; its NDCG tile is the "
                "mean of this number over all evaluated users."
            )
        except RecoError as exc:
            show_error(exc)

        if cfg.uses_normaliser:
            norm_label = state.normaliser_label(cfg.normaliser)
            st.subheader(f"What the normaliser ({norm_label}) does to this user's scores")
            raw = session.user_scores(user)
            normed = session.user_normalised_scores(user, cfg.normaliser)
            rows = []
            for m in members:
                finite = np.isfinite(raw[m])
                if not finite.any():
                    continue
                top = top_k(raw[m][None, :], min(3, len(raw[m]))).item_idx[0]
                for i in top[top >= 0]:
                    rows.append({"member": m, "item": titles[i], "raw score": raw[m][i], "normalised": normed[m][i]})
                rows.append(
                    {
                        "member": m,
                        "item": "spread over the catalogue (max − min)",
                        "raw score": float(np.nanmax(np.where(finite, raw[m], np.nan)))
                        - float(np.nanmin(np.where(finite, raw[m], np.nan))),
                        "normalised": float(np.nanmax(normed[m])) - float(np.nanmin(normed[m])),
                    }
                )
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            st.caption(
                "Each member's top 3 items for this user, raw and normalised, and the spread of each over the "
                "catalogue: members whose raw scores spread wider would dominate an unnormalised sum."
            )

# ------------------------------------------------------------------------------------------ conventions
with tab_conv:
    st.markdown(
        "Libraries agree on what the metrics are for, not always on their exact definition. Two choices that "
        "move the numbers:\n\n"
        "- **Precision@k over k or over min(k, |T|).** We divide by k (a user with 3 held-out items can reach "
        "at most 0.3 at k = 10). Some toolkits divide by min(k, |T|), so such a user can reach 1.\n"
        "- **Novelty from training popularity or from the recommendations.** We use how often an item appears in "
        "training; others use how often it is recommended, which rewards a list for being unusual among lists "
        "rather than obscure in the data.\n"
        "- **Which K neighbours item-kNN keeps.** We keep, for each candidate item, its K most similar items, "
        "so every candidate is scored from a full neighbourhood. implicit's `CosineRecommender` keeps, for each "
        "item a user liked, its K most similar items counting the item itself, so a liked item passes its score "
        "to only K - 1 others. Same cosines, other lists: the item-kNN setting `prune` offers both."
    )
    if problem or current is None or result is None:
        st.info(plain(problem or "The lab is not ready."))
    else:
        k = cfg.k
        session = current.session
        c1, c2 = st.columns(2)
        prec_alt = c1.toggle("Precision over min(k, |T|)", key="learn:prec_alt")
        nov_alt = c2.toggle("Novelty from the recommendations' popularity", key="learn:nov_alt")
        try:
            p = le.precision_conventions(result.ranking, session.target, k)
            nv = le.novelty_conventions(result.ranking, current.ctx.item_popularity, k)
            p0, p1 = (float(p[c].mean()) for c in le.PRECISION_CONVENTIONS)
            n0, n1 = (float(nv[c].mean()) for c in le.NOVELTY_CONVENTIONS)
            t1, t2 = st.columns(2)
            t1.metric(
                f"Precision@{k} ({le.PRECISION_CONVENTIONS[int(prec_alt)]})",
                f"{p1 if prec_alt else p0:.4f}",
                delta=f"{p1 - p0:+.4f} vs over k" if prec_alt else None,
                delta_color="off",
            )
            t2.metric(
                f"Novelty@{k} ({le.NOVELTY_CONVENTIONS[int(nov_alt)]})",
                f"{n1 if nov_alt else n0:.3f} bits",
                delta=f"{n1 - n0:+.3f} vs training popularity" if nov_alt else None,
                delta_color="off",
            )
            rankings = analysis.rankings_at(session, result, k)
            table = le.conventions_table(rankings, session.target, current.ctx.item_popularity, k)
            st.dataframe(
                table,
                width="stretch",
                column_config={
                    c: st.column_config.NumberColumn(format="%.2f%%" if "%" in c else "%.4f") for c in table.columns
                },
            )
            st.caption(
                "Each row: the current fusion and each member at k = "
                f"{k}, under both conventions; 'change %' is relative to ours. A change that differs between rows "
                "can reorder models: check which convention a paper or library used before comparing numbers."
            )
        except RecoError as exc:
            show_error(exc)
        if st.toggle("Compare item-kNN's two pruning rules on this split", key="learn:prune"):
            try:
                with st.spinner("Fitting item-kNN under both rules…"):
                    pruned = le.pruning_table(lab.itemknn_by_pruning(current), current.split, current.ctx, k)
                st.dataframe(
                    pruned,
                    width="stretch",
                    column_config={c: st.column_config.NumberColumn(format="%.4f") for c in pruned.columns},
                )
                st.caption(
                    "Item-kNN with this lab's item-kNN settings (or the defaults), fitted under each rule on the "
                    "same training data and ranked for the same test users. On MovieLens-100K with K = 100 the "
                    "per-liked-item rule scores NDCG@10 0.350 against 0.393: the convention alone moves it by 0.04 "
                    "(docs/models.md)."
                )
            except RecoError as exc:
                show_error(exc)
