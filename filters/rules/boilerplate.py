"""boilerplate: drop captions that are only web boilerplate; cut boilerplate from the edges of others.

Boilerplate comes in families, not as a fixed list: generic image words, quality words, view and
'more' actions, attributions and takedown notes, page chrome and file names combine freely
('高清大图', '图片详情', '更多图片', '图片来自网络，侵删', 'IMG_2041.JPG'). A caption is boilerplate
when its skeleton splits entirely into words of those families (a word-break over the vocabulary,
digits allowed as words), or is one of the listed site phrases. Page chrome comes as sentences,
too: calls to scan, follow or download and notices of copyright and reprint terms
(filters/data/boilerplate_chrome.txt) make a caption boilerplate when they open it, and are cut
with what follows when they come after punctuation.
"""

from __future__ import annotations

import re

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import HAN_RE, skeleton
from filters.wordlists import load_lines

# Where a caption splits into segments: punctuation, symbols and spaces between words.
_SEGMENT_RE = re.compile(r"([\s|｜_·•»>…,，。!！?？:：;；、/\\\-–—~～()（）\[\]【】「」『』《》\"'“”‘’]+)")
_EDGE_CHARS = " .,;:!?…~-–—|_·•、，。；：！？（）()[]【】「」《》\"'“”‘’/\\～"
_SPACES = frozenset(" \t\u3000")
# A file extension ending a caption ('黄山日出.jpg'): cut, so a file name's stem is judged alone.
_FILE_EXT_RE = re.compile(r"\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|svg)$", re.I)
_DIGITS = frozenset("0123456789")
# Characters after which a chrome sentence starts a new segment (it is cut, not left inside).
_BOUNDARY = frozenset(" \t\u3000|｜_·•»>…,，。!！?？:：;；、/\\-–—~～()（）[]【】「」『』《》\"'“”‘’")
# A 'more ...' teaser before a call ('更多猛料！欢迎扫描…', '了解更多，请下载客户端'), on the skeleton.
_TEASER_RE = re.compile(r"^(?:了解|查看|获取|阅读|看)?更多\w{0,4}?(?:请|欢迎|敬请|记得|可以)?$")


class Boilerplate(TextRule):
    name = "boilerplate"
    reasons = (reasons.BOILERPLATE,)

    def __init__(self, cfg: TextRulesConfig, normalize_phrase=None):
        norm = normalize_phrase or (lambda p: p)
        phrases = load_lines(cfg.boilerplate_file, "boilerplate.txt") + list(cfg.boilerplate_extra)
        forms = {norm(p) for p in phrases}
        self.skeletons = {skeleton(p) for p in forms} - {""}
        words = [w for line in load_lines(cfg.boilerplate_words_file, "boilerplate_words.txt")
                 for w in line.split()]
        self.vocab = frozenset({skeleton(norm(w)) for w in words} | self.skeletons) - {""}
        self.max_word = max(map(len, self.vocab), default=0)
        self.first_chars = frozenset(w[0] for w in self.vocab) | _DIGITS
        self.credits = frozenset(skeleton(norm(w)) for w in cfg.boilerplate_credit_labels)
        self.min_affix = cfg.boilerplate_affix_min_chars
        chrome = load_lines(cfg.boilerplate_chrome_file, "boilerplate_chrome.txt")
        self.chrome_re = re.compile("|".join(f"(?:{p})" for p in chrome)) if chrome else None
        self.chrome_min_core = cfg.boilerplate_chrome_min_core
        # Longest first, so '点击查看源网页' is cut before '查看源网页'.
        self.affixes = tuple(sorted((p for p in forms if len(skeleton(p)) >= self.min_affix),
                                    key=len, reverse=True))

    def only_boilerplate(self, skel: str) -> bool:
        """Whether the skeleton splits entirely into boilerplate words and digit runs."""
        n = len(skel)
        if not n or skel[0] not in self.first_chars:
            return False
        vocab, longest = self.vocab, self.max_word
        reach = [False] * (n + 1)
        reach[0] = True
        furthest = 0
        for i in range(n):
            if not reach[i]:
                if i > furthest:
                    return False
                continue
            if skel[i] in _DIGITS:
                j = i + 1
                while j < n and skel[j] in _DIGITS:
                    j += 1
                reach[j] = True
                furthest = max(furthest, j)
            for j in range(i + 1, min(n, i + longest) + 1):
                if skel[i:j] in vocab:
                    reach[j] = True
                    furthest = max(furthest, j)
        return reach[n] and not skel.isdigit()

    def _cut_affixes(self, text: str) -> str:
        """Listed phrases glued to a caption's start or end ('手工编织的毛衣展开全文')."""
        changed = True
        while changed and text:
            changed = False
            m = _FILE_EXT_RE.search(text)
            if m:
                text, changed = text[: m.start()].rstrip(_EDGE_CHARS), True
            if self.affixes and text.endswith(self.affixes):
                p = next(a for a in self.affixes if text.endswith(a))
                text, changed = text[: -len(p)].rstrip(_EDGE_CHARS), True
            if self.affixes and text.startswith(self.affixes):
                p = next(a for a in self.affixes if text.startswith(a))
                text, changed = text[len(p):].lstrip(_EDGE_CHARS), True
        return text

    def _cuttable(self, seg: str, seps: tuple[str, ...], followed: bool) -> bool:
        """Whether a segment between separators `seps` is boilerplate to cut."""
        skel = skeleton(seg)
        if not skel or not self.only_boilerplate(skel):
            return False
        if followed and skel in self.credits:
            return False  # '图/陈晓东': the credit's label stays with its credit
        punctuated = any(sep and not all(c in _SPACES for c in sep) for sep in seps)
        return punctuated or len(skel) >= self.min_affix

    def _cut_segments(self, text: str) -> str:
        """Boilerplate segments at the caption's edges ('高清大图：黄山云海日出' -> '黄山云海日出')."""
        parts = _SEGMENT_RE.split(text)
        if len(parts) < 3:
            return text
        segs, seps = parts[0::2], parts[1::2]
        lo, hi = 0, len(segs)
        while lo < hi - 1 and self._cuttable(segs[lo], (seps[lo],), True):
            lo += 1
        while hi - 1 > lo and self._cuttable(segs[hi - 1], (seps[hi - 2],), False):
            hi -= 1
        if lo == 0 and hi == len(segs):
            return text
        out = [segs[lo]]
        for k in range(lo + 1, hi):
            out.append(seps[k - 1])
            out.append(segs[k])
        return "".join(out).strip(_EDGE_CHARS)

    def _chrome(self, text: str) -> str | None:
        """None where the caption is page chrome as a whole; else the caption less a chrome
        sentence after punctuation (and what follows it), or the caption unchanged."""
        if self.chrome_re is None:
            return text
        for m in self.chrome_re.finditer(text):
            head = text[:m.start()].strip(_EDGE_CHARS)
            head_skel = skeleton(head)
            if (len(head_skel) < self.chrome_min_core or self.only_boilerplate(head_skel)
                    or _TEASER_RE.match(head_skel)):
                return None
            if m.start() == 0 or text[m.start() - 1] in _BOUNDARY:
                return head
        return text

    def __call__(self, s: Sample) -> None:
        text = s.text
        skel = s.skeleton()
        if skel in self.skeletons or self.only_boilerplate(skel):
            s.drop(reasons.BOILERPLATE, text)
            return
        unchromed = self._chrome(text)
        if unchromed is None:
            s.drop(reasons.BOILERPLATE, text)
            return
        stripped = unchromed.strip(_EDGE_CHARS)
        core = self._cut_segments(self._cut_affixes(stripped))
        if core == text.strip(_EDGE_CHARS):
            return
        core_skel = skeleton(core)
        # What is left without a Chinese word is no caption either ('联系我们 a@b.cn').
        if not core_skel or self.only_boilerplate(core_skel) or (
                not HAN_RE.search(core) and HAN_RE.search(text)):
            s.drop(reasons.BOILERPLATE, text)
            return
        s.marks.append(reasons.BOILERPLATE_CUT)
        s.text = core
