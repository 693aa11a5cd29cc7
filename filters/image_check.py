"""Image rules re-checked on existing rows (raw shard indexes) from their original size.

The check itself is `filters.image_rules` (shared with ingest); this maps its codes to the filter
stage's reason codes and applies it to a table's original_width/original_height columns.
"""

from __future__ import annotations

import pyarrow as pa

from filters import image_rules, reasons
from filters.config import ImageRulesConfig

WIDTH_COLS = ("original_width", "original_height")

_CODES = {
    image_rules.TOO_SMALL: reasons.IMAGE_TOO_SMALL,
    image_rules.BAD_ASPECT_RATIO: reasons.IMAGE_BAD_ASPECT,
    image_rules.TOO_MANY_PIXELS: reasons.IMAGE_TOO_MANY_PIXELS,
    image_rules.INVALID_SIZE: reasons.IMAGE_UNDECODABLE,
}


def image_reason(width, height, cfg: ImageRulesConfig) -> tuple[str | None, str | None]:
    """(reason code, detail) for one image size; a missing size means the image did not decode."""
    if width is None or height is None:
        return reasons.IMAGE_UNDECODABLE, "no decoded size"
    code = image_rules.check_image_size(int(width), int(height), cfg)
    if code is None:
        return None, None
    return _CODES.get(code, "image_" + code), f"{int(width)}x{int(height)}"


def has_image_size(table: pa.Table) -> bool:
    return all(c in table.column_names for c in WIDTH_COLS)


def image_reasons(table: pa.Table, cfg: ImageRulesConfig) -> list[tuple[str | None, str | None]]:
    widths = table[WIDTH_COLS[0]].to_pylist()
    heights = table[WIDTH_COLS[1]].to_pylist()
    return [image_reason(w, h, cfg) for w, h in zip(widths, heights)]
