"""normalize: NFKC, HTML entities and tags, zero-width/control characters, URLs, whitespace.

NFKC folds full-width letters, digits and compatibility forms ('ＡＢＣ１２３' -> 'ABC123'), but it
would also fold Chinese full-width punctuation to ASCII ('露营，天气' -> '露营,天气'), which changes
how the text reads and what a tokenizer sees: that punctuation is kept as written. ASCII
punctuation between two Chinese characters becomes its full-width form ('露营,天气' -> '露营，天气'),
so one caption has one form whatever the page's input method did.
"""

from __future__ import annotations

import html
import re
import unicodedata

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import HAN_CLASS

_SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
# Tags start with an ASCII letter (or '/'), so '<人名>' style tokens and '1 < 2' survive.
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
# Control and format characters (zero-width spaces/joiners, BOM, bidi marks, soft hyphen,
# variation selectors); tabs and newlines become spaces.
_INVISIBLE_RE = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u034f"
                           "\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
                           "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb]")
_SPACE_RE = re.compile(r"\s+")
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
# Scheme URLs and www. hosts, then bare domains with a path or a common TLD; never the domain of
# an e-mail address (the privacy rule masks those).
_URL_RE = re.compile(
    rf"(?:(?:https?|ftp)://|www\.){_URL_CHARS}+"
    rf"|(?<![@\w.-])(?:[A-Za-z0-9-]+\.)+(?:com|cn|net|org|info|io|cc|tv|me|top|xyz|edu|gov|hk|tw)"
    rf"(?:/{_URL_CHARS}*)?(?![\w@.-])",
    re.I)


# Chinese full-width punctuation that NFKC would fold to ASCII (the rest of '，。！？：；、“”‘’（）《》【】…'
# has no compatibility form). It goes through NFKC as private-use characters, which NFKC keeps.
_CHINESE_PUNCT = "，！？：；（）…～"
_PROTECT = {ord(c): 0xE000 + i for i, c in enumerate(_CHINESE_PUNCT)}
_RESTORE = {0xE000 + i: c for i, c in enumerate(_CHINESE_PUNCT)}
_PROTECTED_RE = re.compile(f"[{_CHINESE_PUNCT}\ue000-\ue00f]")
# ASCII punctuation between two Han characters, and parentheses around Han text after one.
_FULL_WIDTH = str.maketrans(",!?:;", "，！？：；")
_BETWEEN_HAN_RE = re.compile(f"(?<=[{HAN_CLASS}]) ?([,!?:;]) ?(?=[{HAN_CLASS}])")
_HAN_PARENS_RE = re.compile(f"(?<=[{HAN_CLASS}])\\(([^()]*[{HAN_CLASS}][^()]*)\\)")
_ASCII_PUNCT_RE = re.compile(r"[,!?:;(]")


def nfkc(text: str) -> str:
    """NFKC, with Chinese full-width punctuation kept as it is."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    if _PROTECTED_RE.search(text) is None:
        return unicodedata.normalize("NFKC", text)
    return unicodedata.normalize("NFKC", text.translate(_PROTECT)).translate(_RESTORE)


def chinese_punctuation(text: str) -> str:
    """ASCII , ! ? : ; between Han characters, and ( ) around Han text after one, as full-width."""
    if text.isascii() or _ASCII_PUNCT_RE.search(text) is None:
        return text
    text = _BETWEEN_HAN_RE.sub(lambda m: m.group(1).translate(_FULL_WIDTH), text)
    return _HAN_PARENS_RE.sub(r"（\1）", text)


def strip_html(text: str) -> str:
    if "<" in text:
        text = _COMMENT_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        # Twice: pages often double-escape ('&amp;lt;b&amp;gt;').
        text = html.unescape(html.unescape(text))
        if "<" in text:
            text = _TAG_RE.sub(" ", text)
    return text


class Normalize(TextRule):
    name = "normalize"
    always = True

    def __init__(self, cfg: TextRulesConfig):
        self.strip_urls = cfg.strip_urls

    def clean(self, text: str) -> tuple[str, bool]:
        """The cleaned text and whether a URL was removed."""
        text = strip_html(text)
        text = nfkc(text)
        text = _INVISIBLE_RE.sub("", text)
        had_url = False
        if self.strip_urls and ("." in text or ":" in text):
            text, n = _URL_RE.subn(" ", text)
            had_url = n > 0
        return chinese_punctuation(_SPACE_RE.sub(" ", text).strip()), had_url

    def __call__(self, s: Sample) -> None:
        text, had_url = self.clean(s.text)
        if had_url:
            s.marks.append(reasons.URL_REMOVED)
        if text != s.text:
            s.marks.append(reasons.NORMALIZED)
            s.text = text
        if not text and s.reason is None:
            s.drop(reasons.NO_CAPTION, "empty after normalisation")
