"""What the filter writes of the caption as given: redacted original, its unmasked length."""

from __future__ import annotations

import pyarrow as pa

from filters.chain import TextChain
from filters.config import FilterConfig
from filters.partition import ORIGINAL_CHARS_COL, ORIGINAL_COL, annotate


def test_original_is_written_as_given_except_masks_and_its_length_unmasked():
    cfg = FilterConfig()
    captions = ["露营，天气很好！（摄于黄山）", "記者王曉明攝於ＡＢＣ公園", None]
    table = pa.table({"caption": captions})
    out, _ = annotate(table, TextChain(cfg.text), cfg, "all")
    rows = out.to_pylist()
    # Full-width punctuation and traditional forms stay as given; the name alone is redacted.
    assert rows[0][ORIGINAL_COL] == captions[0] and rows[0]["caption"] == captions[0]
    assert rows[1][ORIGINAL_COL] == "記者<人名>攝於ＡＢＣ公園"
    assert "王" not in rows[1]["caption"]
    assert [r[ORIGINAL_CHARS_COL] for r in rows] == [len(captions[0]), len(captions[1]), None]
