"""length: minimum and maximum in characters and in Chinese words (jieba)."""

from __future__ import annotations

from filters import reasons
from filters.config import TextRulesConfig
from filters.jieba_runtime import get_jieba
from filters.rules.base import TextRule
from filters.rules.language import count_scripts
from filters.sample import Sample
from filters.text_utils import HAN_RE


class Length(TextRule):
    name = "length"
    reasons = (reasons.TOO_SHORT, reasons.TOO_LONG)

    def __init__(self, cfg: TextRulesConfig, jieba_cache_dir: str = ""):
        self.cfg = cfg
        self.jieba_cache_dir = jieba_cache_dir
        self.segmented = 0  # captions the character bounds could not decide

    def chinese_words(self, text: str, hmm: bool = True) -> int:
        """Words holding a Han character, as jieba cuts them (with its HMM for unknown words, or
        with dictionary words only)."""
        jieba = get_jieba(self.jieba_cache_dir)
        return sum(1 for w in jieba.lcut(text, HMM=hmm) if HAN_RE.search(w))

    def __call__(self, s: Sample) -> None:
        cfg = self.cfg
        text = s.text
        n_chars = len(text) - text.count(" ")
        if n_chars < cfg.min_chars:
            s.drop(reasons.TOO_SHORT, f"{n_chars} chars")
            return
        if n_chars > cfg.max_chars:
            s.drop(reasons.TOO_LONG, f"{n_chars} chars")
            return
        if s.han < 0:
            count_scripts(s)
        # Every Chinese word holds at least one Han character and every Han character lies in
        # one word, so 1 <= words <= Han characters: segment only when the bounds cannot decide.
        if s.han < cfg.min_words:
            s.drop(reasons.TOO_SHORT, f"{s.han} Han chars")
            return
        if s.han <= cfg.max_words and cfg.min_words <= 1:
            return
        self.segmented += 1
        # jieba's HMM only joins runs of single characters its dictionary route leaves, so the
        # dictionary-only count bounds the HMM count from above and costs less (no Viterbi).
        if cfg.min_words <= 1 and self.chinese_words(text, hmm=False) <= cfg.max_words:
            return
        words = self.chinese_words(text)
        if words < cfg.min_words:
            s.drop(reasons.TOO_SHORT, f"{words} words")
        elif words > cfg.max_words:
            s.drop(reasons.TOO_LONG, f"{words} words")
