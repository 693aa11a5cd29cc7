"""Text of HTML elements as a reader sees it: pure functions shared by extraction and body detection.

Captions are kept as found: entities decoded, invisible characters dropped, whitespace collapsed,
line breaks between CJK characters joined; full-width punctuation and every other character kept.
"""

from __future__ import annotations

import html as html_lib
import re

# Elements whose text is never read.
NON_TEXT_TAGS = {"script", "style", "noscript", "template", "svg", "select", "option", "button", "textarea"}
_CJK = r"\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
# A line break between two CJK characters is not a space (CSS Text 3 segment-break rule).
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f\v]*\n\s*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Kana and Hangul syllables: each carries meaning like a Han character does, for counting purposes.
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")
_WORD = re.compile(r"[A-Za-z0-9]+")


def normalize_caption(text: str | None, max_chars: int = 0) -> str:
    """Entities decoded, invisible characters dropped, whitespace collapsed, CJK line breaks joined."""
    if not text:
        return ""
    # Pages often escape twice (`&amp;nbsp;`); the parser decoded once.
    if "&" in text:
        text = html_lib.unescape(text)
    text = _INVISIBLE.sub("", text)
    text = _CJK_BREAK.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if max_chars and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


def element_text(el) -> str:
    """textContent of an element without script/style, as a browser concatenates inline nodes."""
    parts: list[str] = []

    def walk(node) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag.lower() in NON_TEXT_TAGS:
            return
        if node.text and tag:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)
    walk(el)
    return "".join(parts)


def block_text(el) -> str:
    """An element's text, normalised."""
    return normalize_caption(element_text(el))


def text_len(text: str) -> int:
    """Characters that carry content: everything but whitespace."""
    return len(text) - text.count(" ")


def han_count(text: str) -> int:
    return len(_HAN.findall(text))


def word_count(text: str) -> int:
    """Han, kana and Hangul characters plus Latin words: the amount of meaning in a short text."""
    return han_count(text) + len(_KANA_HANGUL.findall(text)) + len(_WORD.findall(text))
