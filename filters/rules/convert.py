"""convert: traditional to simplified Chinese with OpenCC (recorded as a transformation)."""

from __future__ import annotations

import opencc

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample


class Convert(TextRule):
    name = "convert"
    always = True

    def __init__(self, cfg: TextRulesConfig):
        self.converter = opencc.OpenCC(cfg.opencc_config) if cfg.opencc_config else None

    def convert(self, text: str) -> str:
        if self.converter is None or text.isascii():
            return text
        return self.converter.convert(text)

    def __call__(self, s: Sample) -> None:
        out = self.convert(s.text)
        if out != s.text:
            s.unconverted = s.text
            s.marks.append(reasons.CONVERTED)
            s.text = out
