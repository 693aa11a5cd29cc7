"""One partition through the filter stage (Ray-free): table in, annotated table and counts out.

The annotated table keeps every input column; the caption column holds the cleaned, masked text,
`caption_original` the input (redacted where names or numbers were masked), `reason` and
`reason_detail` the verdict (null: kept) and `_freq_key` the frequency key for the global count.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from filters import reasons
from filters.chain import TextChain
from filters.config import FilterConfig
from filters.image_check import has_image_size, image_reasons

ORIGINAL_COL = "caption_original"
# Characters of the caption as given, before any cleaning or masking (caption_original is redacted).
ORIGINAL_CHARS_COL = "caption_original_chars"
REASON_COL = "reason"
DETAIL_COL = "reason_detail"
KEY_COL = "_freq_key"
# Columns the job uses and never writes out, and those only rejected rows carry.
INTERNAL_COLS = (KEY_COL,)
REJECT_ONLY_COLS = (REASON_COL, DETAIL_COL)
RULE_SETS = ("all", "text", "image")
# Rules that only clean and mask: what `rules="image"` still applies to captions.
CLEANING_RULES = ("normalize", "convert", "privacy")


def text_rules_for(cfg: FilterConfig, rules: str) -> list[str]:
    if rules not in RULE_SETS:
        raise ValueError(f"rules must be one of {', '.join(RULE_SETS)}, got {rules!r}")
    if rules == "image":
        return [r for r in cfg.text.rules if r in CLEANING_RULES]
    return list(cfg.text.rules)


def annotate(table: pa.Table, chain: TextChain, cfg: FilterConfig, rules: str,
             malformed: list[tuple[int | None, str]] = ()) -> tuple[pa.Table, Counter]:
    """Run the rules over `table`; malformed input rows are appended as rejected rows."""
    caption_col = cfg.caption_col
    n = table.num_rows
    pre: list[tuple[str | None, str | None]] = [(None, None)] * n
    if rules in ("all", "image") and has_image_size(table):
        pre = image_reasons(table, cfg.image)
    before = Counter(chain.counts)
    samples = [chain.process(c, r, d) for c, (r, d) in zip(table[caption_col].to_pylist(), pre)]
    counts = Counter(chain.counts)
    counts.subtract(before)
    out = table
    idx = out.column_names.index(caption_col)
    out = out.set_column(idx, caption_col, pa.array([chain.output_caption(s) for s in samples], pa.string()))
    extra = {
        ORIGINAL_COL: pa.array([chain.output_original(s) for s in samples], pa.string()),
        ORIGINAL_CHARS_COL: pa.array([len(s.original) if isinstance(s.original, str) else None
                                      for s in samples], pa.int32()),
        REASON_COL: pa.array([s.reason for s in samples], pa.string()),
        DETAIL_COL: pa.array([s.detail for s in samples], pa.string()),
        KEY_COL: pa.array([s.key for s in samples], pa.uint64()),
    }
    for name, col in extra.items():
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, col)
        else:
            out = out.append_column(name, col)
    if malformed:
        bad = {c: pa.nulls(len(malformed), out.schema.field(c).type) for c in out.column_names}
        bad[REASON_COL] = pa.array([reasons.MALFORMED_ROW] * len(malformed), pa.string())
        bad[DETAIL_COL] = pa.array([f"row {num}: {msg}" if num is not None else msg
                                    for num, msg in malformed], pa.string())
        out = pa.concat_tables([out, pa.table(bad, schema=out.schema)])
        counts[reasons.MALFORMED_ROW] += len(malformed)
    counts = Counter({k: v for k, v in counts.items() if v})
    return out, counts
