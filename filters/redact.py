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
_GAP = r"[\s\u00ad\u200b-\u200f\u2060-\u206f\ufeff]*"


class Redactor:
    def __init__(self, normalize, convert, cfg: TextRulesConfig):
        self.normalize = normalize
        self.convert = convert
        self.cfg = cfg
        self._char_cache: dict[str, str] = {}

    def _char(self, c: str) -> str:
        out = self._char_cache.get(c)
        if out is None:
            out = self.convert.convert(unicodedata.normalize("NFKC", c))
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
        pieces = [self._char(c) for c in original]
        norm = "".join(pieces)
        owner = [i for i, p in enumerate(pieces) for _ in p]  # normalised index -> original index
        spans: list[tuple[int, int, str]] = []
        for hidden, token in sorted(set(masked), key=lambda m: -len(m[0])):
            chars = [c for c in hidden if not c.isspace()]
            if not chars:
                continue
            pattern = re.compile(_GAP.join(map(re.escape, chars)))
            for m in pattern.finditer(norm):
                a, b = owner[m.start()], owner[m.end() - 1] + 1
                if all(b <= x or a >= y for x, y, _ in spans):
                    spans.append((a, b, token))
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
