"""Redaction of the original caption with the masks the privacy rule applied to the cleaned one.

The cleaned caption went through NFKC and t2s, so a name masked there may be written in the
original in full-width or traditional form ('王曉明'). Each original character is normalised on its
own to find the hidden strings in the original; the result is checked by cleaning it again, and
if anything hidden would still show, the cleaned (masked) caption is written instead.
"""

from __future__ import annotations

import re
import unicodedata

from filters.config import TextRulesConfig
from filters.rules.privacy import EMAIL_RE, ID_RE, PHONE_RE

# Characters the cleaner drops or collapses, allowed between the characters of a hidden string.
_GAP_RE = re.compile(r"[\s\u00ad\u200b-\u200f\u2060-\u206f\ufeff]")


def _is_gap(c: str) -> bool:
    return c.isspace() or _GAP_RE.match(c) is not None


class Redactor:
    def __init__(self, normalize, convert, cfg: TextRulesConfig):
        self.normalize = normalize
        self.convert = convert
        self.cfg = cfg
        self._char_cache: dict[str, str] = {}

    def _char(self, c: str) -> str:
        """`c` normalised on its own, less the gap characters."""
        out = self._char_cache.get(c)
        if out is None:
            out = "".join(n for n in self.convert.convert(unicodedata.normalize("NFKC", c)) if not _is_gap(n))
            self._char_cache[c] = out
        return out

    def _leaks(self, text: str, hidden: list[str]) -> bool:
        cleaned = self.convert.convert(self.normalize.clean(text)[0])
        compact = re.sub(r"\s+", "", cleaned)
        for h in hidden:
            if h in cleaned or re.sub(r"\s+", "", h) in compact:
                return True
        checks = [(self.cfg.mask_emails, EMAIL_RE), (self.cfg.mask_id_numbers, ID_RE),
                  (self.cfg.mask_phones, PHONE_RE)]
        return any(on and p.search(cleaned) for on, p in checks)

    def redact(self, original: str, masked: list[tuple[str, str]], fallback: str) -> str:
        # The normalised original without the gap characters, and for each of its characters the
        # original one it came from: a hidden string is then a plain substring (no regex to compile
        # per name, which cost more than the whole rule chain).
        compact: list[str] = []
        owner: list[int] = []  # compact index -> original index
        for i, c in enumerate(original):
            for n in self._char(c):
                compact.append(n)
                owner.append(i)
        norm = "".join(compact)
        spans: list[tuple[int, int, str]] = []
        for hidden, token in sorted(set(masked), key=lambda m: -len(m[0])):
            needle = "".join(c for c in hidden if not _is_gap(c))
            if not needle:
                continue
            start = norm.find(needle)
            while start >= 0:
                end = start + len(needle)
                a, b = owner[start], owner[end - 1] + 1
                if all(b <= x or a >= y for x, y, _ in spans):
                    spans.append((a, b, token))
                start = norm.find(needle, end)
        out, last = [], 0
        for a, b, token in sorted(spans):
            out.append(original[last:a])
            out.append(token)
            last = b
        out.append(original[last:])
        redacted = "".join(out)
        if self._leaks(redacted, [h for h, _ in masked]):
            return fallback
        return redacted
