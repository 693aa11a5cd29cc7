"""Wukong's image rules on an image's original size, shared by ingest and the filters stage.

A rule check returns the reason code of the first rule an image breaks, or None when it passes.
Checking needs only the size, so ingest applies it to the header before spending CPU on decoding.
"""

from __future__ import annotations

from filters.config import ImageRulesConfig

# Reason codes (also the `error` column of raw shards).
TOO_SMALL = "too_small"
BAD_ASPECT_RATIO = "aspect_ratio"
TOO_MANY_PIXELS = "too_many_pixels"
INVALID_SIZE = "invalid_size"

REASONS = (INVALID_SIZE, TOO_SMALL, BAD_ASPECT_RATIO, TOO_MANY_PIXELS)


def check_image_size(width: int, height: int, cfg: ImageRulesConfig) -> str | None:
    """The reason code of the first broken rule, or None if (width, height) passes."""
    if width <= 0 or height <= 0:
        return INVALID_SIZE
    if min(width, height) <= cfg.min_side:
        return TOO_SMALL
    # Compared without division so 3:1 exactly is kept whatever the float rounding.
    if max(width, height) > cfg.max_aspect_ratio * min(width, height):
        return BAD_ASPECT_RATIO
    if cfg.max_pixels and width * height > cfg.max_pixels:
        return TOO_MANY_PIXELS
    return None


def passes(width: int, height: int, cfg: ImageRulesConfig) -> bool:
    return check_image_size(width, height, cfg) is None
