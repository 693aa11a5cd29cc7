"""frequency: drop captions seen more than `max_occurrences` times in the whole input.

The count is global, so it takes two passes: this rule gives every row its key (a 64-bit hash of
the caption's skeleton); the job counts keys over all partitions with Ray and hands the set of
too-frequent keys back to this rule.
"""

from __future__ import annotations

from collections.abc import Collection

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import skeleton_key


class Frequency(TextRule):
    name = "frequency"
    reasons = (reasons.TOO_FREQUENT,)
    # Keys are given to dropped rows too: a caption's frequency counts every occurrence.
    always = True

    def __init__(self, cfg: TextRulesConfig, frequent: Collection[int] | None = None):
        self.max_occurrences = cfg.max_occurrences
        self.frequent = frequent

    def __call__(self, s: Sample) -> None:
        skel = s.skeleton()
        s.key = skeleton_key(skel) if skel else None
        if (s.reason is None and self.frequent is not None and s.key is not None
                and s.key in self.frequent):
            s.drop(reasons.TOO_FREQUENT, f"> {self.max_occurrences}")
