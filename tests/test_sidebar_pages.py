"""The sidebar's page list names every page of pages/ and the home page, each once."""

from pathlib import Path

from ui.sidebar import PAGES

ROOT = Path(__file__).resolve().parent.parent


def test_every_page_file_has_exactly_one_link():
    linked = [path for path, _, _ in PAGES]
    on_disk = ["app.py", *sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))]
    assert sorted(linked) == sorted(on_disk)
    assert len({label for _, label, _ in PAGES}) == len(PAGES)
