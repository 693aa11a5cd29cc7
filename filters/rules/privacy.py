"""privacy: mask person names, phone numbers, e-mail addresses and ID-card numbers (never a drop).

Each mask is counted; what was hidden is remembered on the sample so the job can redact the
original caption too (names in their original form are never written out).
"""

from __future__ import annotations

import re

from filters import reasons
from filters.config import TextRulesConfig
from filters.names import NameTagger
from filters.rules.base import TextRule
from filters.sample import Sample

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Resident ID: 6-digit region, birth date 18xx-20xx, 3-digit sequence, check digit or X;
# the old 15-digit form has a 2-digit year.
_DATE8 = r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_DATE6 = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
ID_RE = re.compile(rf"(?<![0-9A-Za-z])[1-9]\d{{5}}(?:{_DATE8}\d{{3}}[0-9Xx]|{_DATE6}\d{{3}})(?![0-9A-Za-z])")
# Mobile numbers (optionally +86), 3-4-4 groups with optional spaces/dashes; landlines with a
# 0-prefixed area code; 400/800 service numbers.
PHONE_RE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"
    r"|(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})[\s-]?[2-9]\d{6,7}(?:-\d{1,4})?(?!\d)"
    r"|(?<!\d)[48]00[\s-]?\d{3}[\s-]?\d{4}(?!\d)")
_DIGIT_OR_AT_RE = re.compile(r"[0-9@]")


class Privacy(TextRule):
    name = "privacy"
    always = True

    def __init__(self, cfg: TextRulesConfig, jieba_cache_dir: str = ""):
        self.cfg = cfg
        self.names = NameTagger(cfg, jieba_cache_dir) if cfg.mask_names else None
        self._patterns = [(p, tok, mark) for on, p, tok, mark in (
            (cfg.mask_emails, EMAIL_RE, cfg.email_token, reasons.MASKED_EMAIL),
            (cfg.mask_id_numbers, ID_RE, cfg.id_number_token, reasons.MASKED_ID_NUMBER),
            (cfg.mask_phones, PHONE_RE, cfg.phone_token, reasons.MASKED_PHONE)) if on]

    def _mask_names(self, s: Sample) -> None:
        text = s.text
        spans = self.names.spans(text)
        if not spans:
            return
        out, last = [], 0
        for a, b in sorted(spans):
            if a < last:
                continue
            out.append(text[last:a])
            out.append(self.cfg.name_token)
            s.masked.append((text[a:b], self.cfg.name_token))
            s.marks.append(reasons.MASKED_NAME)
            last = b
        out.append(text[last:])
        s.text = "".join(out)

    def __call__(self, s: Sample) -> None:
        if self.names is not None:
            self._mask_names(s)
        text = s.text
        if _DIGIT_OR_AT_RE.search(text):
            for pattern, token, mark in self._patterns:
                hits = [m.group(0) for m in pattern.finditer(text)]
                if hits:
                    s.masked.extend((h, token) for h in hits)
                    s.marks.extend([mark] * len(hits))
                    text = pattern.sub(token, text)
            s.text = text
