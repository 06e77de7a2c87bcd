"""The real browser: headless Chromium drives every page of a running `streamlit run app.py`.

It checks what only a browser shows: each page renders without an exception element, moving a weight slider
with the keyboard changes a fused metric's displayed value, uploading a broken file shows the loader's
message, and every page leaves a screenshot in test-artifacts/screenshots/. Timeouts are generous (the first
page fits the members: up to 90 s on a busy 2-core machine) but bounded, so the whole module stays under
about four minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"  # gitignored; the README's copies live in docs/screenshots

FIRST_LOAD_MS = 150_000  # the first page builds the lab (dataset, split, three members, embeddings)
PAGE_MS = 60_000
CHANGE_MS = 30_000
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
SKELETON = '[data-testid="stSkeleton"]'


def page_paths() -> dict[str, str]:
    """Page file -> URL path, as Streamlit derives it ("pages/1_Fusion_Lab.py" -> "Fusion_Lab")."""
    out = {"app.py": ""}
    for p in sorted((ROOT / "pages").glob("*.py")):
        out[f"pages/{p.name}"] = re.sub(r"^\d+_", "", p.stem)
    return out


@pytest.fixture(scope="module")
def page(streamlit_server: str, browser) -> Iterator[object]:
    """One browser tab for the module; the first navigation waits for the lab to be built."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_MS)
    goto(tab, streamlit_server, "Fusion_Lab", FIRST_LOAD_MS)  # warm the server's caches once
    try:
        yield tab
    finally:
        context.close()


def wait_ready(tab, timeout_ms: int = PAGE_MS) -> None:
    """The script finished its run (Streamlit sets data-test-script-state on the app root) and the browser
    drew its elements: placeholders (stSkeleton) linger a moment after the run ends, and a screenshot or
    a count taken then shows grey bars instead of the page."""
    tab.wait_for_selector(READY, timeout=timeout_ms)
    tab.wait_for_function(f"() => !document.querySelector('{SKELETON}')", timeout=timeout_ms)


def goto(tab, base: str, path: str, timeout_ms: int = PAGE_MS) -> None:
    tab.goto(f"{base}/{path}", wait_until="domcontentloaded", timeout=timeout_ms)
    wait_ready(tab, timeout_ms)


def assert_no_exception(tab, where: str) -> None:
    n = tab.locator(EXCEPTION).count()
    assert n == 0, f"{where} shows {n} exception(s): {tab.locator(EXCEPTION).first.inner_text()[:500]}"


def shot(tab, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def metric_value(tab, label: str) -> str:
    tile = tab.locator('[data-testid="stMetric"]').filter(
        has=tab.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    )
    return tile.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def wait_tile_change(tab, label: str, before: str) -> None:
    tab.wait_for_function(
        """([label, before]) => {
            const tiles = Array.from(document.querySelectorAll('[data-testid="stMetric"]'));
            const tile = tiles.find(t => t.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === label);
            const value = tile?.querySelector('[data-testid="stMetricValue"]')?.innerText.trim();
            return value !== undefined && value !== before;
        }""",
        arg=[label, before],
        timeout=CHANGE_MS,
    )
    wait_ready(tab)


def test_every_page_renders_without_exception(page, streamlit_server: str) -> None:
    for file, path in page_paths().items():
        goto(page, streamlit_server, path)
        name = Path(file).stem
        assert_no_exception(page, file)
        shot(page, name if path else "0_Overview")


def test_weight_slider_changes_a_fused_metric(page, streamlit_server: str) -> None:
    goto(page, streamlit_server, "Fusion_Lab")
    before = metric_value(page, "NDCG@10")
    slider = page.get_by_role("slider", name="Weight of itemknn")
    slider.focus()
    for _ in range(8):  # 0.40 -> 0.00 in steps of 0.05: the fusion moves towards ALS and text
        slider.press("ArrowLeft")
    wait_tile_change(page, "NDCG@10", before)
    assert_no_exception(page, "Fusion Lab after a weight change")
    after = metric_value(page, "NDCG@10")
    assert after != before
    assert re.search(r"[?&]w\.itemknn=0(\.0*)?(&|$)", page.url), page.url  # the weight is mirrored in the URL
    shot(page, "1_Fusion_Lab_after_weight_change")


def test_quick_presses_end_on_the_last_weights_numbers(page, streamlit_server: str) -> None:
    """Key presses faster than a rerun: the live part gives way to the queued run (ui.page.give_way), and the
    tiles end on the numbers of the last weight, the same as a link with that weight shows."""
    goto(page, streamlit_server, "Fusion_Lab")
    slider = page.get_by_role("slider", name="Weight of itemknn")
    slider.focus()
    at_040 = metric_value(page, "NDCG@10")
    for _ in range(3):  # 0.40 -> 0.25, about 50 ms apart
        slider.press("ArrowLeft")
        page.wait_for_timeout(50)
    wait_tile_change(page, "NDCG@10", at_040)
    page.wait_for_timeout(500)  # a stale run would redraw within this
    wait_ready(page)
    quick = metric_value(page, "NDCG@10")
    assert re.search(r"[?&]w\.itemknn=0\.25(&|$)", page.url), page.url
    assert_no_exception(page, "Fusion Lab after quick presses")
    goto(page, streamlit_server, "Fusion_Lab?w.itemknn=0.25")  # the same weight from a link, in one full run
    assert metric_value(page, "NDCG@10") == quick


def test_learn_worked_example_renders(page, streamlit_server: str) -> None:
    goto(page, streamlit_server, "Learn")
    page.get_by_role("tab", name="Worked examples").click()
    page.get_by_text("Reciprocal rank fusion, step by step").wait_for(state="visible")
    page.locator('[data-testid="stMetric"]', has_text="NDCG = DCG / IDCG").first.wait_for(state="visible")
    assert page.locator(".katex").count() >= 2  # the formulas rendered as LaTeX, not as source text
    assert_no_exception(page, "Learn, worked examples")
    shot(page, "5_Learn_worked_examples")


def test_compare_saves_the_current_configuration(page, streamlit_server: str) -> None:
    goto(page, streamlit_server, "Compare")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved configurations (1)").wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(page)
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    assert_no_exception(page, "Compare after saving")
    shot(page, "4_Compare_saved")


def test_broken_upload_shows_the_message(page, streamlit_server: str) -> None:
    goto(page, streamlit_server, "Your_data")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        files=[{"name": "broken.csv", "mimeType": "text/csv", "buffer": b"user,item\n1,2\n3,4,5\n"}]
    )
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="broken.csv")
    alert.first.wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(page)
    text = alert.first.inner_text()
    assert "line 3" in text and "3 fields" in text
    assert_no_exception(page, "Your data after a broken upload")
    shot(page, "6_Your_data_broken_upload")

    # A good file replaces it: the mapping is pre-filled and the load report accounts for every row.
    rows = "\n".join(f"{u},{(u * 7 + j) % 60},{1 + (u + j) % 5}" for u in range(30) for j in range(6))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        files=[{"name": "ratings.csv", "mimeType": "text/csv", "buffer": f"userId,movieId,rating\n{rows}\n".encode()}]
    )
    page.locator('[data-testid="stMetric"]', has_text="Rows read").first.wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(page)
    assert metric_value(page, "Rows read") == "180"
    assert_no_exception(page, "Your data after a good upload")
    shot(page, "6_Your_data_report")


# ------------------------------------------------------------------------------------------ issue 14
# What only a browser shows: text clipped at a laptop width, the address bar across a page switch, Compare's
# second save, and Enter in the movie picker. Each opens its own browser context (a new session) on the module's
# server, whose lab the `page` fixture has built.

# Every element inside a metric tile whose text is cut (wider than its box): label, value or delta.
CLIPPED_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMetric"]')).flatMap(tile =>
  Array.from(tile.querySelectorAll('*'))
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 && e.innerText.trim())
    .map(e => tile.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() + ': ' + e.innerText.trim()))"""
BUTTONS_CLIPPED_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] button'))
  .filter(b => b.clientWidth > 0 && (b.scrollWidth > b.clientWidth + 1
    || Array.from(b.querySelectorAll('*')).some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)))
  .map(b => b.innerText.trim())"""


@pytest.fixture
def session(browser, page, request):
    """A new browser session (context) at the window width the test asks for (``request.param``, default 1440)."""
    width = getattr(request, "param", 1440)
    context = browser.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_MS)
    try:
        yield tab
    finally:
        context.close()


def sidebar_link(tab, label: str):
    return tab.locator('[data-testid="stSidebar"] a', has_text=label).first


@pytest.mark.parametrize("session", [800, 1400], indirect=True, ids=["800px", "1400px"])
def test_no_tile_text_is_clipped(session, streamlit_server: str) -> None:
    width = session.viewport_size["width"]
    goto(session, streamlit_server, "Fusion_Lab")
    assert session.locator('[data-testid="stMetric"]').count() >= 10
    assert session.evaluate(CLIPPED_JS) == []
    shot(session, f"1_Fusion_Lab_{width}px")
    goto(session, streamlit_server, "")
    assert session.evaluate(CLIPPED_JS) == []
    goto(session, streamlit_server, "User_Explorer")
    assert session.evaluate(BUTTONS_CLIPPED_JS) == []
    shot(session, f"2_User_Explorer_{width}px")


def test_a_shared_link_keeps_its_settings_across_page_switches(session, streamlit_server: str) -> None:
    goto(session, streamlit_server, "Fusion_Lab?w.text=0.5&k=5")
    assert metric_value(session, "NDCG@5")
    for label, path in (("Compare", "/Compare?"), ("Fusion Lab", "/Fusion_Lab?"), ("Overview", "/?")):
        sidebar_link(session, label).click()
        # Streamlit switches pages in the same document (no "load" event): wait for the address, then the run.
        session.wait_for_function("(p) => window.location.href.includes(p)", arg=path)
        wait_ready(session)
        assert re.search(r"[?&]w\.text=0\.5(&|$)", session.url) and re.search(r"[?&]k=5(&|$)", session.url), session.url
    assert float(session.get_by_role("slider", name="Weight of text").input_value()) == 0.5


def test_compare_saves_a_second_configuration(session, streamlit_server: str) -> None:
    goto(session, streamlit_server, "Compare")
    name = session.get_by_label("Name", exact=True)
    name.fill("first")
    session.get_by_role("button", name="Save", exact=True).click()
    session.get_by_text("Saved configurations (1)").wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(session)
    assert name.input_value() == ""  # a fresh name is suggested (the placeholder), not the one just taken
    slider = session.get_by_role("slider", name="Weight of text")
    slider.focus()
    slider.press("ArrowRight")
    wait_ready(session)
    session.get_by_role("button", name="Save", exact=True).click()
    session.get_by_text("Saved configurations (2)").wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(session)
    assert session.get_by_text("already saved").count() == 0
    assert_no_exception(session, "Compare after a second save")


def test_enter_in_the_movie_picker_adds_one_movie(session, streamlit_server: str) -> None:
    goto(session, streamlit_server, "User_Explorer?explorer:view=Edit+this+profile")
    picker = session.locator('[data-testid="stMultiSelect"]', has_text="Add liked movies")
    picker.locator("input").click()
    # Many titles contain "Star" (the walk typed "Toy", whose matches are all in this user's history already).
    picker.locator("input").press_sequentially("Star")
    session.get_by_role("option").first.wait_for(state="visible")
    picker.locator("input").press("Enter")
    session.get_by_text("The edit:").wait_for(state="visible", timeout=CHANGE_MS)
    wait_ready(session)
    text = session.locator('[data-testid="stMarkdown"]', has_text="The edit:").first.inner_text()
    before, after = map(int, re.search(r"(\d+) → (\d+) liked movies", text).groups())
    assert after == before + 1, text  # one movie, not every match
    assert session.get_by_text("What the edit changed in the fused list").count() == 1
    assert_no_exception(session, "User Explorer after an edit")


# The Overview's dataset figures are Vega-Lite charts (ui.vega_charts): each draws its marks, and hovering
# the long-tail curve answers with that rank's numbers.
CHART = '[data-testid="stVegaLiteChart"]'


def test_overview_charts_draw_and_answer_a_hover(session, streamlit_server: str) -> None:
    problems: list[str] = []
    session.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    session.on("pageerror", lambda e: problems.append(str(e)))
    goto(session, streamlit_server, "")
    charts = session.locator(CHART)
    assert charts.count() == 4
    for i in range(4):
        charts.nth(i).locator("canvas, svg").first.wait_for(state="attached", timeout=CHANGE_MS)
    tail = charts.nth(1)
    tail.scroll_into_view_if_needed()
    box = tail.bounding_box()
    session.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.5)
    session.mouse.move(box["x"] + box["width"] * 0.32, box["y"] + box["height"] * 0.55, steps=5)
    tooltip = session.locator("#vg-tooltip-element.visible")
    tooltip.wait_for(state="visible", timeout=CHANGE_MS)
    text = tooltip.inner_text()
    assert "items ranked" in text and "share held up to this rank" in text and "%" in text, text
    assert not [p for p in problems if "vega" in p.lower() or "error" in p.lower()], problems
    shot(session, "0_Overview_hover")


def test_the_link_to_this_view_carries_the_current_weights(session, streamlit_server: str) -> None:
    goto(session, streamlit_server, "Fusion_Lab?w.text=0.5")
    code = session.locator('[data-testid="stSidebar"] [data-testid="stCode"]')
    assert code.count() == 0  # drawn only once opened
    session.locator('[data-testid="stSidebar"] [data-testid="stExpander"]', has_text="Link to this view").click()
    code.first.wait_for(state="visible", timeout=CHANGE_MS)
    link = code.first.inner_text().strip()
    assert link.startswith(f"{streamlit_server}/Fusion_Lab?") and re.search(r"[?&]w\.text=0\.5(&|$)", link), link
    slider = session.get_by_role("slider", name="Weight of text")
    slider.focus()
    slider.press("ArrowRight")  # 0.50 -> 0.55: the open link follows the live part
    session.wait_for_function(
        "(sel) => /[?&]w\\.text=0\\.55(&|$)/.test(document.querySelector(sel)?.innerText ?? '')",
        arg='[data-testid="stSidebar"] [data-testid="stCode"]',
        timeout=CHANGE_MS,
    )
