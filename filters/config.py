"""Typed, documented defaults of the filter stage (Wukong's text and image rules)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImageRulesConfig:
    """Wukong: both sides larger than 200 px, aspect ratio within 1/3..3."""

    # Both sides must be strictly larger than this (200x200 is dropped, 201x201 kept).
    min_side: int = 200
    # Longer side / shorter side must be at most this (3:1 kept, 3.01:1 dropped).
    max_aspect_ratio: float = 3.0
    # Optional cap on width*height of the original (0: no cap).
    max_pixels: int = 0


@dataclass
class TextRulesConfig:
    pass


@dataclass
class FilterConfig:
    text: TextRulesConfig = field(default_factory=TextRulesConfig)
    image: ImageRulesConfig = field(default_factory=ImageRulesConfig)
