"""Your data page (issue 13, items 1 and 2): a row wider than the header is an error naming the row, never a
quiet column shift; a file without a header is noticed, "My file has no header row" is offered with the
reason, and ticking it keeps every row in the load report. No lab is needed, so no warm_lab."""

from __future__ import annotations

from apptest_helpers import assert_clean, messages, metric, open_page

YOUR_DATA = "pages/6_Your_data.py"


def test_wide_rows_are_refused_and_a_headerless_file_keeps_its_first_row() -> None:
    at = open_page(YOUR_DATA)

    # 1. Every row one field wider than the header: it used to load as "4 rows read; 4 kept", users as items.
    wide = b"user,item,rating,timestamp\n1,10,4,100,7\n2,20,3,200,8\n3,30,5,300,9\n4,40,2,400,9\n"
    at.file_uploader(key="upload:interactions").set_value(("wide.csv", wide, "text/csv"))
    at.run()
    assert_clean(at)
    assert at.error, "a row wider than the header must give st.error"
    assert "wide.csv: row 1 (line 2) has 5 fields but the header has 4" in messages(at)
    assert not [m for m in at.metric if m.label == "Rows read"], "nothing may load from a shifted file"

    # 2. No header, text ids: the first record used to become the header and be lost without a note.
    rows = ["u0,i0,4,1000000"] + [f"u{1 + i // 5},i{1 + i},{1 + i % 5},{1_000_001 + i}" for i in range(29)]
    at.file_uploader(key="upload:interactions").set_value(
        ("ratings.csv", ("\n".join(rows) + "\n").encode(), "text/csv")
    )
    at.run()
    assert_clean(at)
    text = messages(at)
    assert "the first row of ratings.csv was read as the column names, but" in text
    assert "no header row" in text
    boxes = [c for c in at.checkbox if (c.key or "").startswith("upload:no_header:interactions:")]
    assert len(boxes) == 1 and boxes[0].label == "My file has no header row" and boxes[0].value is False

    boxes[0].check().run()
    assert_clean(at)
    assert not at.error
    chosen = {s.label.rstrip(" *"): s.value for s in at.selectbox if (s.key or "").startswith("upload:map:")}
    assert chosen == {"User": "column_1", "Item": "column_2", "Rating": "column_3", "Timestamp": "column_4"}
    assert metric(at, "Rows read") == "30" and metric(at, "Kept") == "30"
    # u0 and i0 live only in the first row: they are counted, so that row was kept.
    assert metric(at, "Users × items") == "7 × 30"
    assert "ratings.csv has no header row (as chosen" in messages(at)
