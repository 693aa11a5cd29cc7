"""boilerplate: drop captions that are only web boilerplate; cut boilerplate segments from others."""

from __future__ import annotations

import re

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import HAN_RE, skeleton
from filters.wordlists import load_lines

# Separators between a caption and page furniture ('风景 | 查看源网页', '美食_摄影部落').
_SEGMENT_RE = re.compile(r"(\s*[|｜_·•»>…]+\s*|\s+[-–—~]+\s+|\s*[-–—]{2,}\s*|\s*--\s*)")
_EDGE_CHARS = " .,;:!?…~-–—|_·•、，。；：！？（）()[]【】「」《》\"'"


class Boilerplate(TextRule):
    name = "boilerplate"
    reasons = (reasons.BOILERPLATE,)

    def __init__(self, cfg: TextRulesConfig, normalize_phrase=None):
        phrases = load_lines(cfg.boilerplate_file, "boilerplate.txt") + list(cfg.boilerplate_extra)
        norm = normalize_phrase or (lambda p: p)
        forms = {norm(p) for p in phrases}
        self.skeletons = {skeleton(p) for p in forms} - {""}
        # Longest first, so '点击查看源网页' is cut before '查看源网页'.
        self.affixes = tuple(sorted((p for p in forms
                                     if len(skeleton(p)) >= cfg.boilerplate_affix_min_chars),
                                    key=len, reverse=True))

    def _cut_affixes(self, text: str) -> str:
        if not self.affixes:
            return text
        changed = True
        while changed and text:
            changed = False
            if text.endswith(self.affixes):
                p = next(a for a in self.affixes if text.endswith(a))
                text, changed = text[: -len(p)].rstrip(_EDGE_CHARS), True
            if text.startswith(self.affixes):
                p = next(a for a in self.affixes if text.startswith(a))
                text, changed = text[len(p):].lstrip(_EDGE_CHARS), True
        return text

    def _cut_segments(self, text: str) -> str:
        parts = _SEGMENT_RE.split(text)
        if len(parts) == 1:
            return text
        segments, seps = parts[0::2], parts[1::2]
        keep = [skeleton(seg) not in self.skeletons for seg in segments]
        if all(keep):
            return text
        out = []
        for i, seg in enumerate(segments):
            if keep[i]:
                if out and i > 0:
                    out.append(seps[i - 1])
                out.append(seg)
        return "".join(out).strip(_EDGE_CHARS)

    def __call__(self, s: Sample) -> None:
        text = s.text
        if s.skeleton() in self.skeletons:
            s.drop(reasons.BOILERPLATE, text)
            return
        core = self._cut_segments(self._cut_affixes(text.strip(_EDGE_CHARS)))
        if core == text.strip(_EDGE_CHARS):
            return
        if not HAN_RE.search(core) and not skeleton(core):
            s.drop(reasons.BOILERPLATE, text)
            return
        s.marks.append(reasons.BOILERPLATE_CUT)
        s.text = core
