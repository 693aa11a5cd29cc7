"""Person-name tagger for Chinese captions: jieba's `nr` tags checked against more evidence.

jieba's tags alone are wrong both ways on short captions (熊猫, 华为, 张家界 tagged nr; 钟南山
missed), so a span is a name when it is a surname from the table followed by 1-2 given-name
characters, is not a listed place/brand/thing, and either jieba tags it nr (or found it as an
unknown word) or a title/role word stands beside it. Tagging (~140-330 us) runs only on captions
the cheap gate `may_hold_name` lets through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from filters.config import TextRulesConfig
from filters.jieba_runtime import dictionary, get_jieba, posseg_tokenizer
from filters.text_utils import HAN_CLASS, HAN_RE
from filters.wordlists import load_lines

# Longest given name, in characters (Chinese given names have one or two).
_MAX_GIVEN = 2
# Dictionary words considered when checking whether a surname sits inside a longer word.
_MAX_WORD = 4
# Last characters of places and landmarks: a dictionary word ending so is a name only beside a
# title ('钟南山院士'), never on its tag alone ('白云山', '阳明山').
_PLACE_ENDINGS = frozenset("山湖江河岛桥寺塔城镇村县市区路街港湾园馆宫庙洲州阁楼")
_SKIP_TOKENS = frozenset({"/", ":", "：", " ", "　", "·", "|", "-", "丨"})


@dataclass
class NameTables:
    single: frozenset[str]
    compound: frozenset[str]
    given: frozenset[str]
    whitelist: frozenset[str]
    after: frozenset[str]
    before: frozenset[str]

    @classmethod
    def load(cls, cfg: TextRulesConfig) -> "NameTables":
        surnames = [w for line in load_lines(cfg.surnames_file, "surnames.txt") for w in line.split()]
        given = {c for line in load_lines(cfg.given_name_chars_file, "given_name_chars.txt")
                 for w in line.split() for c in w}
        whitelist = {w for line in load_lines(cfg.name_whitelist_file, "name_whitelist.txt")
                     for w in line.split()}
        after, before = set(), set()
        for line in load_lines(cfg.name_context_file, "name_context.txt"):
            side, *words = line.split()
            (after if side == "after" else before).update(words)
        return cls(single=frozenset(s for s in surnames if len(s) == 1),
                   compound=frozenset(s for s in surnames if len(s) > 1),
                   given=frozenset(given), whitelist=frozenset(whitelist),
                   after=frozenset(after), before=frozenset(before))


class NameTagger:
    def __init__(self, cfg: TextRulesConfig, jieba_cache_dir: str = ""):
        self.t = NameTables.load(cfg)
        self.jieba_cache_dir = jieba_cache_dir
        compound = "|".join(sorted(self.t.compound, key=len, reverse=True))
        single = "".join(sorted(self.t.single))
        self.surname_re = re.compile(f"(?:{compound})|[{single}]" if compound else f"[{single}]")
        # Context opens the gate only with a surname beside it: '记者 王…', '…王小明先生'.
        sur = f"(?:{compound}|[{single}])" if compound else f"[{single}]"
        alt = lambda words: "|".join(map(re.escape, sorted(words, key=len, reverse=True)))  # noqa: E731
        parts = []
        if self.t.before:
            parts.append(f"(?:{alt(self.t.before)})[\\s:：/·|丨-]*{sur}")
        if self.t.after:
            parts.append(f"{sur}[{HAN_CLASS}]{{1,{_MAX_GIVEN}}}(?:{alt(self.t.after)})")
        self.context_re = re.compile("|".join(parts)) if parts else None
        self._freq: dict | None = None
        self._tags: dict | None = None
        self.tagged = 0  # captions that went through the tagger

    def _dict(self) -> tuple[dict, dict]:
        if self._freq is None:
            get_jieba(self.jieba_cache_dir)
            self._freq, self._tags = dictionary()
        return self._freq, self._tags

    # --- the gate -------------------------------------------------------------------------------

    def _inside_word(self, text: str, i: int) -> bool:
        """Whether a dictionary word starting before position i runs through it ('森林' at 林)."""
        freq, _ = self._dict()
        for a in range(max(0, i - _MAX_WORD + 1), i):
            for b in range(i + 1, min(len(text), a + _MAX_WORD) + 1):
                if freq.get(text[a:b]):
                    return True
        return False

    def _common_word_at(self, text: str, i: int, j: int) -> bool:
        """Whether the longest dictionary word starting at i (longer than the surname) is a
        common word rather than a name: not tagged nr, or listed in the whitelist."""
        freq, tags = self._dict()
        for b in range(min(len(text), i + _MAX_WORD), j, -1):
            w = text[i:b]
            if freq.get(w):
                return w in self.t.whitelist or not tags.get(w, "").startswith("nr")
        return False

    def may_hold_name(self, text: str) -> bool:
        """Cheap test: can this caption hold a person name at all?"""
        if self.context_re is not None and self.context_re.search(text):
            return True
        given = self.t.given
        for m in self.surname_re.finditer(text):
            i, j = m.span()
            if j >= len(text) or text[j] not in given:
                continue
            if self._inside_word(text, i) or self._common_word_at(text, i, j):
                continue
            return True
        return False

    # --- tagging ----------------------------------------------------------------------------------

    def _surname_len(self, w: str) -> int:
        if len(w) >= 3 and w[:2] in self.t.compound:
            return 2
        if w[:1] in self.t.single:
            return 1
        if w[:2] in self.t.compound:
            return 2
        return 0

    def _shape_ok(self, w: str) -> bool:
        """Surname + 1..2 Han given-name characters, not a listed non-name."""
        n = self._surname_len(w)
        given = w[n:]
        return (n > 0 and 1 <= len(given) <= _MAX_GIVEN and w not in self.t.whitelist
                and all(HAN_RE.match(c) for c in given))

    def _given_ok(self, w: str) -> bool:
        return all(c in self.t.given for c in w[self._surname_len(w):])

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the person names in `text`."""
        if not self.may_hold_name(text):
            return []
        self.tagged += 1
        get_jieba(self.jieba_cache_dir)
        freq, tags = self._dict()
        words = [(p.word, p.flag) for p in posseg_tokenizer().cut(text)]
        starts, pos = [], 0
        for w, _ in words:
            starts.append(pos)
            pos += len(w)
        found: list[tuple[int, int]] = []

        def neighbour(k: int, step: int) -> str:
            k += step
            while 0 <= k < len(words) and words[k][0] in _SKIP_TOKENS:
                k += step
            return words[k][0] if 0 <= k < len(words) else ""

        k = 0
        while k < len(words):
            w, flag = words[k]
            span_words = 1
            # A surname split from its given name ('欧阳' + '娜娜', '王' + '小明').
            if (w in self.t.compound or w in self.t.single) and k + 1 < len(words):
                nxt, nflag = words[k + 1]
                joined = w + nxt
                if self._shape_ok(joined) and (nflag.startswith("nr") or not freq.get(nxt)
                                               or neighbour(k + 1, 1) in self.t.after
                                               or neighbour(k, -1) in self.t.before):
                    w, flag, span_words = joined, "nr", 2
            if self._shape_ok(w):
                titled = neighbour(k + span_words - 1, 1) in self.t.after or neighbour(k, -1) in self.t.before
                known = freq.get(w)
                tagged = flag.startswith("nr") and (not known or (tags.get(w, "").startswith("nr")
                                                                  and w[-1] not in _PLACE_ENDINGS))
                if titled and (self._given_ok(w) or flag.startswith("nr") or not known):
                    found.append((starts[k], starts[k] + len(w)))
                elif tagged and self._given_ok(w):
                    found.append((starts[k], starts[k] + len(w)))
            k += span_words
        return found
