"""Your data: upload interactions (and optionally items), map the columns, validate, then use the whole app on them.

Parsing and validation live in ``ui.upload`` (no pickle, no eval; every cell read as text, then typed and
counted by ``reco_core.datasets.load_files``). Problems are one-line messages, never tracebacks. The chosen
dataset is kept in this browser session only (``ui.state.set_uploaded``); the sidebar's protocol
(positives threshold, k-core, split) applies to it like to MovieLens.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from reco_core.data import Dataset
from reco_core.errors import RecoError
from ui import page, state, upload
from ui.upload import ColumnMapping, ParsedTable, plain
from ui.widgets import show_error

PAGE = "your_data"
K_INTERACTIONS = "upload:interactions"
K_ITEMS = "upload:items"
NONE = "(none)"
ROLE_HELP = {
    "user": "The id of the person (any text or number).",
    "item": "The id of the thing interacted with.",
    "rating": "Optional: a number per interaction. Without it every interaction counts 1.",
    "timestamp": "Optional: Unix seconds or ISO 8601 dates; needed for the temporal and leave-last splits.",
    "title": "Optional: shown in lists and embedded by the text model.",
    "genres": "Optional: used by the genre model and the genre-diversity metric.",
    "year": "Optional: release year (else taken from a trailing '(1995)' in the title).",
    "text": "Optional: a description the text model embeds instead of 'title. Genres: ...'.",
}

cfg, _ = page.start("Your data")
limit_mb = st.get_option("server.maxUploadSize")
st.markdown(
    "Upload an **interactions** file (one row per user-item interaction: CSV, TSV or Parquet) and, optionally, "
    "an **items** file with titles and genres. Map the columns, check the load report, then press "
    "**Use this dataset**: every page then works on your data, with the sidebar's protocol. "
    f"Limits: {limit_mb} MB per file and {upload.MAX_ROWS:,} rows. Files stay in this browser session."
)

in_use = state.get_uploaded()
if in_use is not None:
    d = in_use.dataset
    st.success(
        f"In use: {plain(in_use.name)} — {d.interactions.n_users:,} users, {d.interactions.n_items:,} items, "
        f"{d.interactions.nnz:,} interactions. Pick 'Your data' in the sidebar's dataset list to switch back to it."
    )
    if st.button("Stop using it", key="upload:clear", help="Forget the upload and go back to MovieLens-100K"):
        state.clear_uploaded()
        st.rerun()

c1, c2 = st.columns(2)
inter_file = c1.file_uploader("Interactions file", type=list(upload.UPLOAD_TYPES), key=K_INTERACTIONS)
items_file = c2.file_uploader("Items file (optional)", type=list(upload.UPLOAD_TYPES), key=K_ITEMS)

if inter_file is None:
    st.info(
        "No file yet. For example a CSV with a header row:\n\n"
        "```\nuser,item,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n```\n"
        "Columns called user/userId, item/movieId, rating and timestamp are recognised; others can be mapped."
    )
    st.stop()


def read(data: bytes, filename: str, what: str, header: bool | None) -> tuple[ParsedTable, str]:
    """Read uploaded bytes once per content and header choice (kept for this session), or stop the page."""
    mode = {None: "auto", True: "header", False: "no header"}[header]
    digest = upload.digest(data, filename) if header is None else upload.digest(data, filename, mode)
    cached = state.recall(PAGE, f"parsed:{what}:{mode}")
    if cached is not None and cached[0] == digest:
        return cached[1], digest
    try:
        table = upload.read_table(data, filename, header=header)
    except RecoError as exc:
        show_error(exc)
        st.stop()
    state.remember(PAGE, f"parsed:{what}:{mode}", (digest, table))
    return table, digest


def parse(file: Any, what: str) -> tuple[ParsedTable, str]:
    """The uploaded file as a table. When its first row looks like data (or was read as data because it is all
    numbers), say why and offer "My file has no header row", which reads every line as a data row."""
    data = file.getvalue()
    table, digest = read(data, file.name, what, None)
    if table.format != "csv" or (table.has_header and not table.header_doubt):
        return table, digest
    if table.header_doubt:
        st.warning(
            plain(
                f"The first row of {file.name} was read as the column names, but {table.header_doubt}. "
                "If the file has no header row, tick 'My file has no header row' below: that row is then "
                "read as data, so no row is lost."
            )
        )
    no_header = st.checkbox(
        "My file has no header row",
        value=not table.has_header,
        key=f"upload:no_header:{what}:{digest}",
        help="Ticked: every line is a data row and the columns are named column_1, column_2, ... "
        "Unticked: the first line holds the column names.",
    )
    if no_header == (not table.has_header):
        return table, digest
    return read(data, file.name, what, not no_header)


def show_table(table: ParsedTable) -> None:
    st.caption(plain(table.describe()))
    for note in table.notes:
        st.warning(plain(note))
    # st.dataframe draws cells as text (never HTML), so a hostile cell is shown, not run.
    st.dataframe(table.frame.head(5), hide_index=True, width="stretch")


def mapping_widgets(table: ParsedTable, roles: tuple[str, ...], required: set[str], digest: str) -> ColumnMapping:
    """One selectbox per role, pre-filled with the recognised column; keyed by the file's content."""
    guess = upload.guess_mapping(table.columns, roles)
    cols = st.columns(len(roles))
    chosen: dict[str, str | None] = {}
    for col, role in zip(cols, roles, strict=True):
        options = table.columns if role in required else [NONE, *table.columns]
        g = guess.get(role)
        index = options.index(g) if g in options else (None if role in required else 0)
        value = col.selectbox(
            role.capitalize() + (" *" if role in required else ""),
            options,
            index=index,
            placeholder="choose a column",
            key=f"upload:map:{digest}:{role}",
            help=ROLE_HELP.get(role),
        )
        chosen[role] = None if value in (None, NONE) else value
    return ColumnMapping(chosen)


st.subheader("1. Interactions")
inter, inter_digest = parse(inter_file, "interactions")
show_table(inter)
st.markdown("**Which column is which?** (`*` = required)")
inter_map = mapping_widgets(inter, upload.INTERACTION_ROLES, set(upload.REQUIRED_ROLES), inter_digest)

items: ParsedTable | None = None
item_map: ColumnMapping | None = None
genre_sep = "|"
items_digest = ""
if items_file is not None:
    st.subheader("2. Items")
    items, items_digest = parse(items_file, "items")
    show_table(items)
    item_map = mapping_widgets(items, upload.ITEM_ROLES, {"item"}, items_digest)
    if item_map["genres"]:
        guess_sep = upload.guess_genre_separator(items.frame[item_map["genres"]])
        seps = list(upload.GENRE_SEPARATORS)
        genre_sep = st.selectbox(
            "Genres are separated by",
            seps,
            index=seps.index(guess_sep),
            format_func=upload.GENRE_SEPARATORS.get,
            key=f"upload:genre_sep:{items_digest}",
        )

st.subheader(f"{3 if items is not None else 2}. Check")
try:
    inter_map.validate(inter.columns, inter.name)
    if items is not None and item_map is not None:
        item_map.validate(items.columns, items.name, required=("item",))
except RecoError as exc:
    st.warning(plain(str(exc)))
    st.stop()

check_key = upload.digest(
    inter_digest, items_digest, repr(sorted(inter_map.roles.items())), repr(item_map and item_map.roles), genre_sep
)
done = state.recall(PAGE, "checked")
if done is not None and done[0] == check_key:
    outcome: Dataset | str = done[1]
else:
    with st.spinner("Validating…"):
        try:
            outcome = upload.build_dataset(inter, inter_map, items, item_map, genre_separator=genre_sep)
        except RecoError as exc:
            outcome = str(exc)
    # One entry per session: the last file and mapping checked (bounded like every cache).
    state.remember(PAGE, "checked", (check_key, outcome))

if isinstance(outcome, str):
    st.error(plain(outcome))
    st.stop()

dataset = outcome
report = dataset.report
m = dataset.interactions
cols = st.columns(5)
cols[0].metric("Rows read", f"{report.rows_read:,}")
cols[1].metric("Kept", f"{report.rows_kept:,}")
cols[2].metric(
    "Merged duplicates", f"{report.duplicates_merged:,}", help="Repeated (user, item) rows; the last one kept."
)
cols[3].metric("Dropped", f"{report.rows_dropped:,}")
cols[4].metric("Users × items", f"{m.n_users:,} × {m.n_items:,}", help=f"density {m.nnz / (m.n_users * m.n_items):.3%}")
st.dataframe(upload.report_table(report), hide_index=True, width="content")
for note in report.notes:
    st.warning(plain(note))
if report.rows_dropped:
    st.warning(
        plain(
            f"{report.rows_dropped:,} rows were dropped: " + "; ".join(f"{n:,} {r}" for r, n in report.dropped.items())
        )
    )
if m.n_users < 2 or m.n_items < 2:
    st.error("The data needs at least two users and two items to split and evaluate: upload more interactions.")
    st.stop()
if dataset.catalog.genre_names:
    st.caption(f"{len(dataset.catalog.genre_names)} genres: {plain(', '.join(dataset.catalog.genre_names[:30]))}")
preview = pd.DataFrame(
    {
        "item": m.items.ids[:5],
        "title": dataset.catalog.title[:5],
        "genres": ["|".join(g) for g in dataset.catalog.genres[:5]],
    }
)
st.dataframe(preview, hide_index=True, width="stretch")

already = in_use is not None and in_use.content_hash == check_key
if st.button(
    "Use this dataset" if not already else "In use",
    type="primary",
    disabled=already,
    key="upload:use",
    help="Every page then works on this dataset (select MovieLens in the sidebar to go back).",
):
    state.set_uploaded(dataset, check_key, name=inter.name)
    state.set_notice(f"Now using {inter.name}: the members are fitted on it when a page needs them.")
    st.rerun()
if already:
    st.page_link("pages/1_Fusion_Lab.py", label="Go to the Fusion Lab", icon="➡️")
