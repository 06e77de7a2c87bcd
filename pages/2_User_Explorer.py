"""User Explorer: one person's history, their fused list and why, each member's own list, what a weight
move changed, raw vs normalised scores, and what-if profiles (edited, or new from movies or words).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from reco_core import analysis
from reco_core.errors import RecoError, UnknownIdError
from reco_core.explain import ListDiff, diff_lists
from ui import charts, lab, page, state
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import BOUND, movement_table, show_error

PAGE = "explorer"
USER_KEY = "user"  # bound to the URL: ?user=42 opens this user
MEMBER_LIST_WIDTH = 380  # px per member's own list: rank, a title column and "hit" in full, side by side
TITLE_WIDTH = 250
HIT_WIDTH = 50
# Movie pickers: no "Select all" (Enter on a search would add every match) and plain substring search, so
# typing "Toy" offers the titles that contain it.
PICKER: dict = {"select_all": False, "filter_mode": "contains"}

cfg, current = page.start(
    "User Explorer",
    "One person at a time: what they rated, what the fusion recommends and why, and what-if profiles.",
    get_lab=lab.get_lab,
)

users = current.split.train.users
n_items = current.split.train.n_items
# Every title once per full run (vectorised); the pickers and lists index it instead of titling item by item.
titles = np.asarray(analysis.item_titles(current.catalog, np.arange(n_items)), dtype=object)
counts = lab.activity(current)
eval_users = current.session.users


# ------------------------------------------------------------------ picking a user
def pick(which: str) -> None:
    """Button callbacks run before the script, so they may set the bound user-id input."""
    if which == "random":
        draws = int(state.recall(PAGE, "draws", 0)) + 1
        state.remember(PAGE, "draws", draws)
        rng = np.random.default_rng(cfg.protocol.seed + draws)  # reproducible sequence per session
        u = int(rng.choice(eval_users))
    elif which == "most":
        u = int(np.argmax(counts))
    else:
        active = np.flatnonzero(counts > 0)
        u = int(active[np.argmin(counts[active])])
    st.session_state[USER_KEY] = str(users.ids[u])


state.keep_across_pages([USER_KEY], st.query_params)
# A new dataset has other ids: start from its first evaluated user rather than an unknown id.
data_changed = state.recall(PAGE, "dataset") not in (None, cfg.protocol.dataset)
state.remember(PAGE, "dataset", cfg.protocol.dataset)
if data_changed or (not st.session_state.get(USER_KEY) and USER_KEY not in st.query_params):
    st.session_state[USER_KEY] = str(users.ids[int(eval_users[0])])


def titled(items: np.ndarray) -> pd.DataFrame:
    frame = lab.item_frame(current, items)
    return frame[["title", "genres", "item"]]


# ------------------------------------------------------------------ history
def history_part(user_index: int, user_id: str, view: analysis.UserView | None) -> None:
    history, ratings = lab.history(current, user_index)
    held = view.held_out if view is not None else np.zeros(0, dtype=np.int64)
    row = st.container(horizontal=True, gap="small")
    row.metric("Training interactions", f"{len(history):,}", width=200)
    row.metric(f"Held out ({current.part})", f"{len(held):,}", width=200)
    row.metric("Activity rank", f"{int((counts > counts[user_index]).sum()) + 1:,} of {len(counts):,}", width=200)
    with st.expander(f"History of user {plain(user_id)} ({len(history)} items)", expanded=False):
        hist = titled(history)
        hist.insert(1, "rating", ratings)
        st.dataframe(hist.sort_values(["rating", "title"], ascending=[False, True]), hide_index=True, width="stretch")


# ------------------------------------------------------------------ tabs (only the open one is computed)
def slot_labels(table: pd.DataFrame) -> list[str]:
    # Plotly reads a few HTML tags in labels; escaped so a title shows as its characters.
    return [
        charts.plotly_text(f"{r}. {t[:40]}{' ✓' if h else ''}")
        for r, t, h in zip(table["rank"], table["title"], table["held out"], strict=True)
    ]


def show_list(cfg: LabConfig, v: analysis.UserView, heading: str, with_changes: bool) -> None:
    table = analysis.slot_table(v, current.members, current.catalog)
    if table.empty:
        st.info("No item could be ranked for this profile.")
        return
    names = list(v.fusion.member_names)
    # A new profile has no held-out items: a "hit" column would be all unticked and read as a failure.
    has_truth = len(v.held_out) > 0
    st.markdown(f"**{heading}**" + (" (hit = a held-out item)" if has_truth else ""))
    cols = ["rank", "title", *(["held out"] if has_truth else []), "brought in by"]
    if table["because you liked"].astype(bool).any():  # empty for a profile made only of a description
        cols.append("because you liked")
    cols.append("genres")
    shares = {
        f"{n} share": st.column_config.ProgressColumn(f"{n}", format="percent", min_value=0, max_value=1) for n in names
    }
    st.dataframe(
        table[cols + list(shares)],
        hide_index=True,
        width="stretch",
        column_config={"held out": st.column_config.CheckboxColumn("hit"), **shares},
    )
    contrib = v.fusion.contributions[0][: len(table)]
    title = "Each member's part of each slot" + (" (✓ = hit)" if has_truth else "")
    charts.show(
        charts.contribution_bars(slot_labels(table), contrib, names, title),
        alt="Stacked horizontal bars: for each recommended slot, each member's contribution to its fused score.",
        caption="Score fusion: weight × normalised score; rank fusion: each list's points; interleaving: who "
        "placed the slot.",
    )
    st.markdown("**Each member's own list**")
    row = st.container(horizontal=True, gap="medium")  # side by side as the width allows, wrapping below
    for name in names:
        col = row.container(width=MEMBER_LIST_WIDTH)
        items = v.member_list(name, cfg.k)
        items = items[items >= 0]
        frame = pd.DataFrame(
            {"title": analysis.item_titles(current.catalog, items), "hit": np.isin(items, v.held_out)},
            index=pd.RangeIndex(1, len(items) + 1, name="rank"),
        )
        if not has_truth:
            frame = frame.drop(columns="hit")
        col.markdown(f"*{plain(name)}*")
        col.dataframe(
            frame,
            width="stretch",
            column_config={
                "title": st.column_config.TextColumn("title", width=TITLE_WIDTH),
                "hit": st.column_config.CheckboxColumn("hit", width=HIT_WIDTH),
            },
        )
    rr = show_reranked(cfg, v, has_truth)
    if with_changes:
        show_changes(cfg, v, rr)


def show_reranked(cfg: LabConfig, v: analysis.UserView, has_truth: bool) -> lab.RerankedList | None:
    """With a re-ranker on: the list after it, where each item stood in the fused list, and how far it moved."""
    if cfg.rerank is None:
        return None
    try:
        rr = lab.reranked_list(current, cfg, v)
    except RecoError as exc:
        show_error(exc)
        return None
    assert rr is not None
    keep = rr.items >= 0
    items = rr.items[keep]
    st.markdown(f"**After re-ranking** ({plain(cfg.rerank.describe(rr.depth))})")
    frame = pd.DataFrame(
        {
            "title": analysis.item_titles(current.catalog, items),
            "fused rank": rr.fused_rank[keep],
            "hit": np.isin(items, v.held_out),
        },
        index=pd.RangeIndex(1, len(items) + 1, name="rank"),
    )
    if not has_truth:
        frame = frame.drop(columns="hit")
    left = right = st.container()  # stacked: side by side, 800 px hid the fused rank, the hit and the RBO columns
    left.dataframe(
        frame,
        width="stretch",
        column_config={"hit": st.column_config.CheckboxColumn("hit", width=HIT_WIDTH)},
    )
    movement_table(right, rr.moved)
    right.caption(
        "Fused rank: the item's place in the fused list the re-ranker chose from. RBO: rank-biased overlap with"
        " that list (1 = the same list, 0 = nothing in common)."
    )
    return rr


def show_changes(cfg: LabConfig, v: analysis.UserView, reranked: lab.RerankedList | None = None) -> None:
    """What the last weight, method or re-ranker move changed in the list shown last (the re-ranked one when a
    re-ranker is on); kept in session state."""
    sig = lab.signature(cfg)
    last = state.recall(PAGE, "last")
    shown = v.items if reranked is None else reranked.items
    items = [int(x) for x in shown if x >= 0]
    if last is None or last["user"] != v.user_index or last["k"] != cfg.k:
        last = {"user": v.user_index, "k": cfg.k, "sig": sig, "items": items, "diff": None}
    elif last["sig"] != sig:
        last = {"user": v.user_index, "k": cfg.k, "sig": sig, "items": items, "diff": lab_diff(last["items"], items)}
    state.remember(PAGE, "last", last)
    st.markdown("**What the last weight move changed**" + (" (in the re-ranked list)" if reranked is not None else ""))
    diff = last["diff"]
    if diff is None:
        st.caption("Move a weight (or change the method) in the sidebar to see which items enter, leave or move.")
        return
    if diff.unchanged:
        st.caption("The last change left this list exactly as it was.")
        return
    lines = [f"entered: {item_name(i)}" for i in diff.entered]
    lines += [f"left: {item_name(i)}" for i in diff.left]
    lines += [f"moved {old} → {new}: {item_name(i)}" for i, old, new in diff.moved]
    st.dataframe(pd.DataFrame({"change": lines}), hide_index=True, width="stretch")


def lab_diff(before: list[int], after: list[int]) -> ListDiff:
    return diff_lists(np.asarray(before), np.asarray(after))


def scores_tab(cfg: LabConfig, v: analysis.UserView) -> None:
    raw = {n: np.where(np.isfinite(r), r, np.nan) for n, r in v.scores.items()}
    norm = analysis.normalised_rows(v, cfg.normaliser)
    a, b = st.columns(2)
    with a:
        charts.show(
            charts.score_curves(raw, "Raw scores, best first", "raw score"),
            alt="Line chart of each member's raw scores for this user, sorted from best to worst.",
            caption="Raw scores live on different scales: a sum of similarities, a dot product, a cosine...",
        )
    with b:
        charts.show(
            charts.score_curves(
                norm, f"After the {state.normaliser_label(cfg.normaliser).lower()} normaliser", "normalised score"
            ),
            alt="Line chart of each member's normalised scores for this user, sorted from best to worst.",
            caption="What the weighted sum adds up. A member whose curve stays high for many items pushes "
            "more of its items into the fused list.",
        )
    items = v.items[v.items >= 0]
    frame = pd.DataFrame({"title": analysis.item_titles(current.catalog, items)})
    for n in raw:
        frame[f"{n} raw"] = raw[n][items]
        frame[f"{n} normalised"] = norm[n][items]
    st.markdown("**The fused list's items, member by member**")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.4f") for c in frame.columns[1:]},
    )


def item_options() -> list[int]:
    return list(range(n_items))


def item_name(i: int) -> str:
    return str(titles[i])


def edit_tab(cfg: LabConfig, user_index: int | None, view: analysis.UserView | None) -> None:
    if user_index is None:
        st.info("Pick a known user to edit their profile, or start a new user in the next tab.")
        return
    history, history_ratings = lab.history(current, user_index)
    st.caption(
        "Change what this user liked and see every member's list and the fusion respond "
        "(each member scores the edited profile as a new user)."
    )
    a, b = st.columns(2)
    removed = a.multiselect(
        "Remove liked movies", history.tolist(), format_func=item_name, key=f"{PAGE}:remove", **PICKER
    )
    others = np.setdiff1d(np.arange(n_items), history).tolist()
    added = b.multiselect("Add liked movies", others, format_func=item_name, key=f"{PAGE}:add", **PICKER)
    if not removed and not added:
        st.caption("Nothing changed yet: remove or add a movie above.")
        return
    keep = np.setdiff1d(history, np.asarray(removed, dtype=np.int64))
    items = np.concatenate([keep, np.asarray(added, dtype=np.int64)])
    st.markdown(
        f"**The edit:** {len(history)} → {len(items)} liked movies"
        + (f"; added {', '.join(plain(item_name(i)) for i in added)}" if added else "")
        + (f"; removed {', '.join(plain(item_name(i)) for i in removed)}" if removed else "")
        + "."
    )
    rating_of = dict(zip(history.tolist(), history_ratings.tolist(), strict=True))
    top = float(history_ratings.max()) if history_ratings.size else 1.0
    ratings = np.array([rating_of.get(int(i), top) for i in items])  # an added movie counts as a top rating
    try:
        held = view.held_out if view is not None else None
        edited = lab.profile_view(current, cfg, items.tolist(), ratings.tolist(), held_out=held)
        # The original profile scored the same way (as a new user), so the diff shows only what the edit did.
        original = lab.profile_view(current, cfg, history.tolist(), history_ratings.tolist(), held_out=held)
    except RecoError as exc:
        show_error(exc)
        return
    profile_diff(original, edited)
    show_list(cfg, edited, "Fused list for the edited profile", with_changes=False)


def profile_diff(original: analysis.UserView, edited: analysis.UserView) -> None:
    """What the edit changed in the fused list, against the original profile's list."""
    before = [int(x) for x in original.items if x >= 0]
    after = [int(x) for x in edited.items if x >= 0]
    diff = lab_diff(before, after)
    st.markdown("**What the edit changed in the fused list** (against the original profile's list)")
    if diff.unchanged:
        st.caption("The fused list is exactly the same as for the original profile.")
        return
    rows = [("entered", item_name(i), "", "") for i in diff.entered]
    rows += [("left", item_name(i), "", "") for i in diff.left]
    rows += [("moved", item_name(i), str(old), str(new)) for i, old, new in diff.moved]
    st.dataframe(
        pd.DataFrame(rows, columns=["change", "title", "rank before", "rank now"]), hide_index=True, width="stretch"
    )


def new_user_tab(cfg: LabConfig) -> None:
    st.caption(
        "A person the models have never seen: pick a few movies, describe what you like, or both. "
        "The text member reads the description (all-MiniLM-L6-v2, offline); the others read the movies."
    )
    picked = st.multiselect(
        "Movies you like", item_options(), format_func=item_name, key=f"{PAGE}:new_items", max_selections=50, **PICKER
    )
    text = st.text_input(
        "Or describe what you like",
        key=f"{PAGE}:new_text",
        max_chars=300,
        placeholder="e.g. funny animated films for children",
    )
    has_text_member = any(hasattr(m, "score_text") for m in current.members.values())
    if text and not has_text_member:
        st.caption("No member reads text (add the 'text' item model in the sidebar): the description is ignored.")
    if not picked and not (text and has_text_member):
        st.caption("Pick a movie or write a description to see recommendations.")
        return
    try:
        fresh = lab.profile_view(current, cfg, picked, text=text if has_text_member else None)
    except RecoError as exc:
        show_error(exc)
        return
    show_list(cfg, fresh, "Fused list for the new user", with_changes=False)


TABS = ("Recommendations", "Scores: raw vs normalised", "Edit this profile", "A new user")


def live_part(cfg: LabConfig) -> None:
    """The user, their lists and the what-if tabs: all move with the weights, method, normaliser and k."""
    buttons = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    user_id = buttons.text_input("User id", key=USER_KEY, help="An id from the dataset, e.g. 1", width=220, **BOUND)
    buttons.button("Random user", on_click=pick, args=("random",))
    buttons.button("Most active", on_click=pick, args=("most",))
    buttons.button("Least active", on_click=pick, args=("least",))

    user_index: int | None = None
    try:
        user_index = int(users.index_of([user_id.strip()], what="user")[0])
    except UnknownIdError as exc:
        show_error(exc)

    view = None
    if user_index is not None:
        if not cfg.all_zero:
            try:
                view = lab.user_view(current, cfg, user_index)
            except RecoError as exc:  # the history and the what-if tabs still work
                show_error(exc)
        history_part(user_index, user_id, view)
    if cfg.all_zero:
        st.warning(f"{page.ALL_ZERO} The user's history is above; the lists need a positive weight.")
        return

    tabs = st.tabs(list(TABS), key=f"{PAGE}:view", on_change="rerun", bind="query-params")
    if tabs[0].open:
        with tabs[0]:
            if view is not None:
                show_list(cfg, view, f"Fused top-{cfg.k} for user {plain(user_id)}", with_changes=True)
            else:
                st.info("Pick a known user to see their list.")
    if tabs[1].open:
        with tabs[1]:
            if view is not None:
                scores_tab(cfg, view)
            else:
                st.info("Pick a known user to see their scores.")
    if tabs[2].open:
        with tabs[2]:
            edit_tab(cfg, user_index, view)
    if tabs[3].open:
        with tabs[3]:
            new_user_tab(cfg)


page.live(cfg, live_part)
