"""The record a text rule reads and changes: one caption on its way through the chain."""

from __future__ import annotations

from filters.text_utils import skeleton


class Sample:
    """`text` is the caption as cleaned so far; `reason` is set by the first rule that drops it."""

    __slots__ = ("original", "text", "reason", "detail", "marks", "key", "han", "kana", "hangul",
                 "latin_words", "masked", "withheld", "unconverted", "_skeleton")

    def __init__(self, original: str | None, reason: str | None = None, detail: str | None = None):
        self.original = original
        self.text = original if isinstance(original, str) else ""
        self.reason = reason
        self.detail = detail
        self.marks: list[str] = []   # transformation codes applied (counted by the chain)
        self.key: int | None = None  # frequency key (hash of the caption's skeleton)
        self.han = self.kana = self.hangul = self.latin_words = -1  # script counts, -1 = not counted
        # (hidden text, token) for each mask the privacy rule applied, to redact `original` too.
        self.masked: list[tuple[str, str]] = []
        # True when privacy could not be applied: the job then writes no caption text at all.
        self.withheld = False
        # The text before OpenCC conversion: language ID reads it (t2s turns 新幹線 into 新干线).
        self.unconverted: str | None = None
        self._skeleton: tuple[str, str] | None = None  # (text, its skeleton), shared by rules

    def skeleton(self) -> str:
        """The skeleton of the current text, computed once while the text stays the same."""
        memo = self._skeleton
        if memo is None or memo[0] is not self.text:
            memo = self._skeleton = (self.text, skeleton(self.text))
        return memo[1]

    def drop(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
