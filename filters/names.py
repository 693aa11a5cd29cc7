"""Person-name tagger for Chinese captions: surname tables and dictionary evidence over jieba words.

jieba's part-of-speech tagger is both slow (its HMM costs milliseconds on unknown words) and wrong
both ways on short captions (熊猫, 华为, 张家界 tagged nr; 钟南山 missed), and its words cut names
apart ('李强' + '娜', '张秀' + '英军', '周' + '艳丽'). So names are found on jieba's plain words
(`lcut`, tens of microseconds) with more evidence: a span is a name when it is a surname from the
table followed by given-name characters, is not a listed place/brand/thing, and either a title or
role word stands beside it, or the dictionary knows it as a person name, or jieba met it as an
unknown word. The span always runs to the end of the name ('作者<人名>', never '作者<人名>娜'):
a partly masked name still leaks. Tagging runs only on captions the cheap gate lets through.

Well-known people (袁隆平, 鲁迅, 周恩来, 普京) come from a names resource built offline
(filters/names_resource.py): one Aho-Corasick pass finds them wherever they stand as a word (no
common word runs across their edges: '望子成龙' holds no 成龙). Every span, known or found, is
dropped where a listed place, dish, animal or brand starts there ('张家界', '宫保鸡丁', '乐高') or a
company, shop or place word follows it ('华坚鞋业', '李宁体育').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from filters.config import TextRulesConfig
from filters.jieba_runtime import dictionary, get_jieba
from filters.text_utils import HAN_CLASS, HAN_RE
from filters.wordlists import load_lines

# Dictionary words considered when checking whether a surname sits inside a longer word.
_MAX_WORD = 4
# Last characters of places, landmarks, households and trees: a dictionary word ending so is a name
# only beside a title ('钟南山院士'), never on its tag alone ('白云山', '阳明山', '郑家', '杨树').
_PLACE_ENDINGS = frozenset("山湖江河岛桥寺塔城镇村县市区路街港湾园馆宫庙洲州阁楼岭家树亭台殿堂")
# Tokens allowed between a name and its title word ('摄影：赵丽颖', '图/陈晓东').
_SKIP_TOKENS = frozenset({"/", ":", "：", " ", "　", "·", "|", "-", "丨"})
_SEPARATORS = "[\\s:：/·|丨-]"
_SEPARATOR_CHARS = frozenset(" \t\n\u3000:：/·|丨-")
# A transliterated name part runs on through name-final syllables up to this length in all.
_MAX_TRANSLITERATED = 6
# A character that ends this share of the listed parts is a name-final syllable (尔, 斯, 特: about
# 100 of 6,300 parts); shares, not counts, so that a longer list does not admit common characters.
_SYLLABLE_SHARE = 1 / 64
# A character seen this often in the listed parts (a share of them) is a name syllable after a '·'.
_NAME_CHAR_SHARE = 1 / 320
# The longest dictionary proper noun looked for around a transliterated part, and its tags
# (place, organisation, other proper noun: brands, works).
_MAX_PROPER = 8
_PROPER_TAGS = ("ns", "nt", "nz")
# A middle dot between two Han characters joins the parts of a transliterated full name.
_NAME_DOT_RE = re.compile(f"(?<=[{HAN_CLASS}])[·•・](?=[{HAN_CLASS}])")
# A caption opening with 2-4 Han characters and a colon ('齐国华：…'): a speaker, if a name.
_SPEAKER_RE = re.compile(f"^\\s*([{HAN_CLASS}]{{2,4}})\\s*[:：]")
# jieba tags of function words: a given-name character standing alone with one of these tags
# ('和', '才', '一') is taken for part of a name only beside a title; a surname character tagged as a
# preposition or conjunction ('于', '向') does not start a name without one.
_PARTICLE_TAGS = frozenset({"p", "c", "u", "uj", "ul", "uz", "ug", "uv", "ud"})
_FUNCTION_TAGS = _PARTICLE_TAGS | {"r"}
# jieba tags of a word that may be the given part after a surname standing alone before a person
# verb ('陈' + '一发' + '晒出'): numerals, nouns and names, never an adverb, verb or adjective
# ('曾' + '多次' + '表示').
_GIVEN_WORD_TAGS = frozenset({"m", "n", "ng", "nr", "nrfg", "nrt", "nz", "x", ""})
# A word the dictionary also knows with one of these suffixes is a people, country or town
# ('伊拉克人', '斯拉夫语', '西雅图市'), never a person.
PLACE_SUFFIXES = ("人", "语", "族", "市", "县", "省")
# Question words between a name and its verb ('库里为什么说'); jieba tags them r, with pronouns.
_QUESTION_WORDS = frozenset({"为什么", "为何", "怎么", "如何", "凭什么"})
# Names listed with 、 and closed by a plural pronoun or a head count ('如萍、梦萍她们'): each item
# 2-3 Han characters.
_PLURAL_PERSON = ("她们", "他们", "等人", "二人", "两人", "三人", "姐妹", "兄弟")


@dataclass
class NameTables:
    single: frozenset[str]
    compound: frozenset[str]
    given: frozenset[str]
    whitelist: frozenset[str]
    after: frozenset[str]
    before: frozenset[str]
    ordered_single: tuple[str, ...] = ()
    known: frozenset[str] = frozenset()
    not_names: frozenset[str] = frozenset()
    not_after: frozenset[str] = frozenset()
    context: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    titles: frozenset[str] = frozenset()
    joins: frozenset[str] = frozenset()
    alone: frozenset[str] = frozenset()  # given names masked only standing alone ('杰克', not '杰克琼斯')

    @classmethod
    def load(cls, cfg: TextRulesConfig) -> "NameTables":
        surnames = [w for line in load_lines(cfg.surnames_file, "surnames.txt") for w in line.split()]
        given = {c for line in load_lines(cfg.given_name_chars_file, "given_name_chars.txt")
                 for w in line.split() for c in w}
        whitelist = {w for line in load_lines(cfg.name_whitelist_file, "name_whitelist.txt")
                     for w in line.split()}
        sides: dict[str, set[str]] = {"after": set(), "before": set(), "not_after": set(),
                                      "verb": set(), "join": set(), "title": set()}
        for line in load_lines(cfg.name_context_file, "name_context.txt"):
            side, *words = line.split()
            sides.setdefault(side, set()).update(words)
        known = {w for line in load_lines(cfg.known_names_file, "known_names.txt") for w in line.split()}
        known.update(cfg.known_names_extra)
        not_names = {w for line in load_lines(cfg.not_names_file, "not_names.txt") for w in line.split()}
        context = {w for line in load_lines(cfg.context_names_file, "context_names.txt") for w in line.split()}
        # CC-CEDICT's persons, kept in their own file under their own licence (CC BY-SA 4.0).
        alone: set[str] = set()
        for line in load_lines(cfg.cedict_persons_file, "cedict_persons.txt") if cfg.use_cedict_persons else ():
            side, *words = line.split()
            {"known": known, "given": alone, "context": context}[side].update(words)
        alone -= known | whitelist | not_names
        return cls(single=frozenset(s for s in surnames if len(s) == 1),
                   ordered_single=tuple(s for s in surnames if len(s) == 1),
                   compound=frozenset(s for s in surnames if len(s) > 1),
                   given=frozenset(given), whitelist=frozenset(whitelist),
                   after=frozenset(sides["after"]), before=frozenset(sides["before"]),
                   known=frozenset(known - whitelist - not_names), not_names=frozenset(not_names),
                   not_after=frozenset(sides["not_after"]),
                   context=frozenset(context - whitelist - not_names - known - alone),
                   verbs=frozenset(sides["verb"]), joins=frozenset(sides["join"]),
                   titles=frozenset(sides["title"]), alone=frozenset(alone))


def _alternation(words) -> str:
    return "|".join(map(re.escape, sorted(words, key=len, reverse=True)))


class NameTagger:
    def __init__(self, cfg: TextRulesConfig, jieba_cache_dir: str = ""):
        self.t = NameTables.load(cfg)
        self.jieba_cache_dir = jieba_cache_dir
        self.max_given = cfg.name_max_given_chars
        self.max_given_titled = max(cfg.name_max_given_chars_titled, self.max_given)
        self.common_freq = cfg.name_common_word_freq
        compound, single = _alternation(self.t.compound), re.escape("".join(sorted(self.t.single)))
        sur = f"(?:{compound}|[{single}])" if compound else f"[{single}]"
        # The gate scans surnames before a Han character with a plain character class (compound
        # surnames by their first character), and title words with one Aho-Corasick pass.
        heads = "".join(sorted(self.t.single | {c[0] for c in self.t.compound}))
        self.head_re = re.compile(f"[{re.escape(heads)}](?=[{HAN_CLASS}])")
        self.titles = ahocorasick.Automaton()
        for w in self.t.before | self.t.after:
            self.titles.add_word(w, (w in self.t.before, w in self.t.after))
        if len(self.titles):
            self.titles.make_automaton()
        before = f"(?:{_alternation(self.t.before)}){_SEPARATORS}*" if self.t.before else ""
        # Where a surname follows a title word, a word boundary is certain ('摄影师|刘军').
        self.title_cut_re = re.compile(f"{before}(?={sur})") if before else None
        # A title word right after a name's end (separators allowed), and what follows it.
        self.after_re = (re.compile(f"{_SEPARATORS}*(?P<word>{_alternation(self.t.after)})"
                                    f"(?P<next>[{HAN_CLASS}])?") if self.t.after else None)
        self.after_lens = sorted({len(w) for w in self.t.after}, reverse=True)
        self.compound_re = re.compile(compound) if compound else None
        # A title with a colon, then names separated by spaces or 、 ('主演：杨幂 赵又廷 张智尧').
        self.list_re = (re.compile(f"(?:{_alternation(self.t.before)})[:：]\\s*"
                                   f"((?:[{HAN_CLASS}]{{2,4}}(?:[ 　、，,/]+|$))+)") if self.t.before else None)
        self.item_re = re.compile(f"[{HAN_CLASS}]{{2,4}}")
        self.common_surnames = frozenset(self.t.ordered_single[:cfg.name_common_surnames])
        self.whitelist_max = max(map(len, self.t.whitelist), default=0)
        self.compound_lens = sorted({len(c) for c in self.t.compound}, reverse=True)
        self.compound_heads = frozenset(c[:2] for c in self.t.compound)
        # One pass finds both well-known people and the transliterated parts that need a person
        # word beside them: a pass costs about the same for any number of words.
        # Values are ints (2 * length + 1 for a part), stored natively: 190,000 words load fast.
        self.known = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for w in self.t.context:
            self.known.add_word(w, 2 * len(w) + 1)
        for w in self.t.known | self.t.alone:
            self.known.add_word(w, 2 * len(w))
        if len(self.known):
            self.known.make_automaton()
        self.has_context = bool(self.t.context)
        # Characters that end transliterated names (尔, 斯, 特, 恩...): the last characters of
        # the listed parts, seen at least this often there.
        ends: dict[str, int] = {}
        for w in self.t.context:
            ends[w[-1]] = ends.get(w[-1], 0) + 1
        least = max(1, int(len(self.t.context) * _SYLLABLE_SHARE))
        self.syllables = frozenset(c for c, k in ends.items() if k >= least and c not in "和与的是在")
        # Characters of the listed parts, any position (沃, 克, 里...).
        seen: dict[str, int] = {}
        for w in self.t.context:
            for c in w:
                seen[c] = seen.get(c, 0) + 1
        least = max(1, int(len(self.t.context) * _NAME_CHAR_SHARE))
        self.name_chars = frozenset(c for c, k in seen.items() if k >= least and c not in "和与的是在")
        self.person_words = tuple(sorted(self.t.before | self.t.after | self.t.titles, key=len, reverse=True))
        self.verb_lens = sorted({len(w) for w in self.t.verbs}, reverse=True)
        # Person verbs of two characters or more, the only ones `_before_person_verb` takes.
        long_verbs = [w for w in self.t.verbs if len(w) > 1]
        self.verb_re = re.compile(_alternation(long_verbs)) if long_verbs else None
        self.plural_re = re.compile(f"((?:[{HAN_CLASS}]{{2,3}}、)+[{HAN_CLASS}]{{2,3}})(?:{_alternation(_PLURAL_PERSON)})")
        self.join_lens = sorted({len(w) for w in self.t.joins}, reverse=True)
        self.listed = self.t.not_names | self.t.whitelist
        self.listed_max = max(map(len, self.listed), default=0)
        self.not_after_lens = sorted({len(w) for w in self.t.not_after}, reverse=True)
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
        freq = self._freq
        for a in range(max(0, i - _MAX_WORD + 1), i):
            for b in range(i + 1, min(len(text), a + _MAX_WORD) + 1):
                if freq.get(text[a:b]):
                    return True
        return False

    def _longest_word_at(self, text: str, i: int, j: int) -> str:
        """The longest dictionary word starting at i and longer than the surname i..j ('' if none)."""
        freq = self._freq
        for b in range(min(len(text), i + _MAX_WORD), j, -1):
            if freq.get(text[i:b]):
                return text[i:b]
        return ""

    def _title_after(self, text: str, j: int) -> bool:
        """Whether a title word follows 1..max_given_titled Han characters from position j."""
        after, end = self.t.after, min(len(text), j + self.max_given_titled)
        for p in range(j + 1, end + 1):
            if not HAN_RE.match(text[p - 1]):
                return False
            while p < len(text) and text[p] in _SEPARATOR_CHARS:
                p += 1
            for n in self.after_lens:
                if text[p:p + n] in after:
                    return True
        return False

    def _surname_at(self, text: str, i: int) -> int:
        """End of the surname starting at position i (compound first), or -1."""
        if text[i:i + 2] in self.compound_heads:
            for n in self.compound_lens:
                if i + n <= len(text) and text[i:i + n] in self.t.compound:
                    return i + n
        return i + 1 if text[i] in self.t.single else -1

    def may_hold_name(self, text: str) -> bool:
        """Cheap test: can this caption hold a person name at all? Says yes to every caption where
        a title word stands beside a surname, or a surname starts a name the dictionary knows or
        is followed by a given-name character outside a common word; no to most others."""
        self._dict()
        after_title = False
        if len(self.titles):
            for end, (is_before, is_after) in self.titles.iter(text):
                after_title |= is_after
                if is_before:
                    p = end + 1
                    while p < len(text) and text[p] in _SEPARATOR_CHARS:
                        p += 1
                    if p < len(text) and self._surname_at(text, p) > 0:
                        return True
        given = self.t.given
        for m in self.head_re.finditer(text):
            i = m.start()
            j = self._surname_at(text, i)
            if j < 0 or j >= len(text):
                continue
            word = self._longest_word_at(text, i, j)
            if word:
                if self._is_name_word(word):
                    return True
            elif text[j] in given and not self._inside_word(text, i):
                return True
            elif self._is_name_word(self._longest_word_at(text, j, j)):
                return True  # a surname standing alone, then a given name the dictionary knows ('孔' '蒂')
            if after_title and self._title_after(text, j):
                return True
        return False

    # --- tagging ----------------------------------------------------------------------------------

    def _surname_len(self, w: str) -> int:
        """Length of the surname `w` starts with (compound first: '欧阳娜' is 欧阳 + 娜)."""
        if w[:2] in self.compound_heads:
            for n in self.compound_lens:
                if len(w) >= n and w[:n] in self.t.compound:
                    return n
        return 1 if w[:1] in self.t.single else 0

    def _given_only(self, w: str) -> bool:
        return all(c in self.t.given for c in w)

    def _is_name_word(self, w: str) -> bool:
        """The dictionary knows `w` as a person name (and it is not a listed non-name or a place)."""
        return (self._tags.get(w, "").startswith("nr") and w not in self.t.whitelist
                and w[-1] not in _PLACE_ENDINGS)

    def _is_common_word(self, w: str) -> bool:
        """A frequent ordinary word or a listed non-name: never a name, even beside a title."""
        if w in self.t.whitelist:
            return True
        f = self._freq.get(w)
        return bool(f) and f >= self.common_freq and not self._tags.get(w, "").startswith("nr")

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the person names in `text`: well-known people from the names
        resource, and names the tagger finds where the gate opens; none a listed non-name."""
        found = list(self.known.iter(text)) if len(self.known) and len(text) > 1 else []
        spans = self.known_spans(text, found) + self._listed_after_title(text) + self._speaker(text)
        if "、" in text:
            spans += self._listed_with_plural(text)
        if self.verb_re is not None:
            spans += self._before_person_verb(text)
        if self.may_hold_name(text):
            self.tagged += 1
            spans += [(a, b) for a, b in self.tag(text) if not self._unlikely(text, a, b)]
        out = self._select(text, spans) if spans else []
        if self.has_context and found:
            extra = self.context_spans(text, out, found)
            if extra:
                out = self._select(text, out + extra)
        if out and _NAME_DOT_RE.search(text):
            out = self._dotted(text, out)
        if out:
            out = self._whole_runs(text, out)
        return self._repeats(text, out) if out else out

    def _whole_runs(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A name masked while transliteration syllables run on after it ('古力' of '古力娜扎',
        '图坦' of '图坦卡蒙') is the head of a longer name the lists lack: masking the head alone
        would leave the rest showing. The mask takes the run, two characters or more of name
        syllables in which no ordinary word starts ('张伟拉着', '刘德华登台' stay as they are)."""
        freq, tags = self._dict()
        out = []
        for k, (a, b) in enumerate(spans):
            limit = spans[k + 1][0] if k + 1 < len(spans) else len(text)
            j = b
            while j < limit and j - b < _MAX_TRANSLITERATED and text[j] in self.name_chars:
                j += 1
            if j - b >= 2 and not any(
                    freq.get(text[i:e]) and not tags.get(text[i:e], "").startswith("nr")
                    for i in range(b - 1, j) for e in range(max(i + 2, b + 1), min(len(text), i + _MAX_WORD) + 1)):
                b = j
            out.append((a, b))
        return out

    def _dotted(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The other part of a transliterated full name joined to a masked one by a middle dot
        ('保罗·沃克', '穆罕默德·阿里'): a Han run of name syllables on the dot's other side, so no
        part of the name is left showing."""
        out = list(spans)
        for m in _NAME_DOT_RE.finditer(text):
            left, right = m.start(), m.end()
            for a, b in spans:
                if b == left:  # masked part before the dot: take the run after it
                    j = right
                    while j < len(text) and j - right < _MAX_TRANSLITERATED and text[j] in self.name_chars:
                        j += 1
                    run = (right, j)
                elif a == right:  # masked part after the dot: take the run before it
                    i = left
                    while i > 0 and left - i < _MAX_TRANSLITERATED and text[i - 1] in self.name_chars:
                        i -= 1
                    run = (i, left)
                else:
                    continue
                if run[1] - run[0] >= 2 and all(run[1] <= x or run[0] >= y for x, y in out):
                    out.append(run)
        return sorted(out)

    def _select(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Non-overlapping spans, longest first, none vetoed."""
        out: list[tuple[int, int]] = []
        for a, b in sorted(set(spans), key=lambda ab: (ab[0] - ab[1], ab[0])):
            if all(b <= x or a >= y for x, y in out) and not self.vetoed(text, a, b):
                out.append((a, b))
        return sorted(out)

    @staticmethod
    def _repeats(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A name masked once is masked wherever else it stands in the caption ('哈里王子和<人名>
        真心相爱，哪怕梅根离过婚'): the same string names the same person."""
        if not spans:
            return spans
        out = list(spans)
        for name in {text[a:b] for a, b in spans}:
            start = text.find(name)
            while start >= 0:
                end = start + len(name)
                if all(end <= x or start >= y for x, y in out):
                    out.append((start, end))
                start = text.find(name, end)
        return sorted(out)

    def context_spans(self, text: str, found: list[tuple[int, int]], hits_ac=None) -> list[tuple[int, int]]:
        """Transliterated name parts (保罗, 罗斯, 凯西) where a person word stands beside them: a
        title or role before or after ('总统特朗普', '教练凯西'), a person verb after ('孔蒂说'), a
        '·' or another name part joined to them ('韦德安东尼', '保罗·沃克'), or a name found
        elsewhere joined by 和/与/、 ('姚明和易建联')."""
        if hits_ac is None:
            hits_ac = list(self.known.iter(text)) if len(self.known) and len(text) > 1 else []
        # Given names masked standing alone are name parts too beside a person word ('凯瑟琳王妃').
        raw = [(end, v >> 1) for end, v in hits_ac
               if v & 1 or self.t.alone and text[end + 1 - (v >> 1):end + 1] in self.t.alone
               and self._stands_alone(text, end + 1 - (v >> 1), end + 1)]
        if not raw:
            return []
        freq, _tags = self._dict()
        hits = []
        for end, n in raw:
            a, b = end + 1 - n, end + 1
            # A longer transliteration the list lacks runs on ('麦凯' + '恩', '杜兰' + '特'): the span
            # takes its syllables, so no part of the name is left showing.
            while b < len(text) and b - a < _MAX_TRANSLITERATED and text[b] in self.syllables:
                b += 1
            w = text[a:b]
            if freq.get(w) and not _tags.get(w, "").startswith("nr") \
                    or len(w) > 2 and any(freq.get(w + x) for x in PLACE_SUFFIXES):
                continue  # a place or word the run reached ('伊拉' + '克', '斯图加' + '特')
            # A person verb of two characters or more right after the part fixes its end: a word
            # across that edge ('登出' of '哈登' + '出任') is no evidence against it.
            seams = {b} if self._long_verb_at(text, b) else frozenset()
            if not self._crossed(text, a, b, seams) and not self._inside_proper_noun(text, a, b):
                hits.append((a, b))
        if not hits:
            return []
        hits = self._select(text, hits)
        chosen = set(found)
        changed = True
        while changed:
            changed = False
            names = sorted(chosen | set(hits))
            for a, b in hits:
                if (a, b) in chosen:
                    continue
                if self._person_beside(text, a, b) or self._joined(text, a, b, names, chosen):
                    chosen.add((a, b))
                    changed = True
        return [ab for ab in chosen if ab not in set(found)]

    def _inside_proper_noun(self, text: str, a: int, b: int) -> bool:
        """Whether a longer place, organisation or brand of the dictionary covers text[a:b]
        ('阿斯顿' and '马丁' of '阿斯顿马丁', '华盛顿' of '华盛顿州')."""
        freq, tags = self._dict()
        for i in range(max(0, a - _MAX_PROPER + 1), a + 1):
            for j in range(max(b, i + 1), min(len(text), i + _MAX_PROPER) + 1):
                if (i, j) != (a, b) and freq.get(text[i:j]) and tags.get(text[i:j], "")[:2] in _PROPER_TAGS:
                    return True
        return False

    def _person_beside(self, text: str, a: int, b: int) -> bool:
        p = a
        while p > 0 and text[p - 1] in _SEPARATOR_CHARS:
            p -= 1
        if text[:p].endswith(self.person_words):
            return True
        q = b
        while q < len(text) and text[q] in _SEPARATOR_CHARS:
            q += 1
        if text.startswith(self.person_words, q):
            return True
        return self._verb_at(text, q)

    def _long_verb_at(self, text: str, q: int) -> bool:
        return any(text[q:q + n] in self.t.verbs for n in self.verb_lens if n > 1)

    def _verb_at(self, text: str, q: int) -> bool:
        """Whether a person verb starts at q, or after one adverb or question word there
        ('库里为什么说', '孔蒂也表示')."""
        if any(text[q:q + n] in self.t.verbs for n in self.verb_lens):
            return True
        _freq, tags = self._dict()
        for n in (3, 2, 1):
            w = text[q:q + n]
            if len(w) == n and (tags.get(w, "") == "d" or w in _QUESTION_WORDS):
                return any(text[q + n:q + n + k] in self.t.verbs for k in self.verb_lens)
        return False

    def _joined(self, text: str, a: int, b: int, names: list[tuple[int, int]],
                chosen: set[tuple[int, int]]) -> bool:
        """Whether a '·', nothing, or a conjunction joins text[a:b] to a name: a chosen one, or,
        for a '·' or nothing between them, any other name part ('韦德' '安东尼')."""
        for x, y in names:
            if (x, y) == (a, b):
                continue
            gap = text[y:a] if y <= a else text[b:x] if b <= x else None
            if gap is None:
                continue
            if gap in ("", "·", "•", "-", "・") and (x, y) != (a, b):
                return True
            if (x, y) in chosen and (gap in self.t.joins or y <= a and self._titled_join(gap)):
                return True
        return False

    def _titled_join(self, gap: str) -> bool:
        """A title after the first name, then a conjunction ('哈里' 王子和 '梅根')."""
        for w in self.person_words:
            if gap.startswith(w) and gap[len(w):] in self.t.joins:
                return True
        return False

    def known_spans(self, text: str, found=None) -> list[tuple[int, int]]:
        """Well-known people standing as words: the longest matches that no common word crosses.
        `found`: the automaton's hits on `text`, if the caller has them."""
        if found is None:
            found = list(self.known.iter(text)) if len(self.known) and len(text) > 1 else []
        hits = sorted(((end + 1 - n, end + 1) for end, v in found if not v & 1 for n in (v >> 1,)),
                      key=lambda ab: (ab[0] - ab[1], ab[0]))
        if not hits:
            return []
        # Where two known names abut ('韦德' '安东尼'), a word across the seam ('德安') is no
        # evidence against either: only the outer edges are checked.
        seams = {a for a, _b in hits} & {b for _a, b in hits}
        out: list[tuple[int, int]] = []
        for a, b in hits:
            if self.t.alone and text[a:b] in self.t.alone and not self._stands_alone(text, a, b):
                continue
            b = self._name_word_from(text, a, b)
            if all(b <= x or a >= y for x, y in out) and not self._crossed(text, a, b, seams):
                out.append((a, b))
        return out

    def _stands_alone(self, text: str, a: int, b: int) -> bool:
        """Whether a given name ('杰克', '玛丽') stands alone: no listed name part before or after it
        and no run of name syllables glued on ('杰克琼斯', '杰克丹尼', '玛丽黛佳' are brands), the
        word after it a dictionary word ('杰克' + '真爱'), a free character or no Han text."""
        freq, tags = self._dict()
        for i in range(max(0, a - _MAX_WORD), a):
            w = text[i:a]
            if w in self.t.known or w in self.t.context or w in self.t.alone:
                return False
        if b >= len(text) or not HAN_RE.match(text[b]):
            return True
        if text[b] in self.name_chars and b + 1 < len(text) and text[b + 1] in self.name_chars:
            return False  # a longer name or a brand runs on ('杰克' + '琼斯')
        for j in range(min(len(text), b + _MAX_WORD), b, -1):
            w = text[b:j]
            if w in self.t.known or w in self.t.context or w in self.t.alone:
                return False
            if freq.get(w):
                tag = tags.get(w, "")
                # A name character, a bound morpheme or an unclassified character glued on ('黛' nr
                # of '玛丽黛佳'); on longer words jieba's nr tags are too loose to count ('真爱' nr).
                return len(w) > 1 or not (tag.startswith("nr") or tag.endswith("g") or tag in ("", "x"))
        return False

    def _name_word_from(self, text: str, a: int, b: int) -> int:
        """End of the longest dictionary name word starting at a and reaching past b through
        given-name characters ('林黛' -> '林黛玉'; never '鲁迅' -> '鲁迅故居'), or b."""
        freq, tags = self._dict()
        for j in range(min(len(text), a + _MAX_WORD), b, -1):
            w = text[a:j]
            if (freq.get(w) and tags.get(w, "").startswith("nr") and w not in self.listed
                    and self._given_only(text[b:j])):
                return j
        return b

    def _crossed(self, text: str, a: int, b: int, seams=frozenset()) -> bool:
        """Whether an ordinary word runs across an edge of text[a:b] (other than the `seams`): a
        frequent two-character word or any longer dictionary word that is no known name ('李白菜',
        '望子成龙', '车水马龙')."""
        freq, _tags = self._dict()
        for edge in (a, b):
            if edge in seams:
                continue
            for i in range(max(0, edge - _MAX_WORD + 1), edge):
                if i == a:
                    continue  # a word the name starts ('鲁迅故居') is about the name
                for j in range(edge + 1, min(len(text), i + _MAX_WORD) + 1):
                    w = text[i:j]
                    if self._is_common_word(w) or (len(w) > 2 and freq.get(w) and w not in self.t.known):
                        return True
                    # A two-character name is crossed by any ordinary word ('枫叶' of '枫叶红了').
                    if b - a == 2 and freq.get(w) and not _tags.get(w, "").startswith("nr"):
                        return True
        return False

    def _speaker(self, text: str) -> list[tuple[int, int]]:
        """A name that opens a caption and is followed by a colon: the speaker or author of what
        follows ('齐国华：此生有梦是徽州'): a surname, then one or two given-name characters, no
        common word."""
        m = _SPEAKER_RE.match(text)
        if not m:
            return []
        name = m.group(1)
        n = self._surname_at(name, 0)
        if n <= 0 or not 1 <= len(name) - n <= self.max_given or not self._given_only(name[n:]):
            return []
        self._dict()
        if self._is_common_word(name) or self._freq.get(name) and not self._tags.get(name, "").startswith("nr"):
            return []
        return [(m.start(1), m.end(1))]

    def _listed_with_plural(self, text: str) -> list[tuple[int, int]]:
        """Names listed with 、 and closed by a plural pronoun or a head count ('如萍、梦萍她们',
        '张小明、李华等人'): every item that is no dictionary word other than a name. The first
        item has no left edge: three characters where a surname starts them, else two."""
        out = []
        freq, tags = self._dict()
        for m in self.plural_re.finditer(text):
            items, pos = m.group(1).split("、"), m.start(1)
            if len(items[0]) == 3 and self._surname_at(items[0], 0) < 0:
                items[0], pos = items[0][1:], pos + 1
            found = []
            for item in items:
                if freq.get(item) and not tags.get(item, "").startswith("nr") or self._is_common_word(item):
                    found = []
                    break  # a list of things ('老师、家长他们'): no name in it
                found.append((pos, pos + len(item)))
                pos += len(item) + 1
            out += found
        return out

    def _before_person_verb(self, text: str) -> list[tuple[int, int]]:
        """A name right before a person verb of two characters or more ('晒出', '回应'): a
        surname standing alone (no dictionary word starts with it here), then a word of a given
        name's kind ('陈' + '一发' + '晒出'; never '曾' + '多次' + '表示', an adverb), the three
        characters no dictionary word and no ordinary word running across their start. (A word
        the dictionary tags as a person is no evidence here: jieba tags cities and fairs so,
        '都灵' + '发文', '文博会' + '签约'.)"""
        out = []
        freq, tags = self._dict()
        for m in self.verb_re.finditer(text):
            p = m.start()
            named = self._name_word_before(text, p)
            if named >= 0:
                out.append((named, p))
                continue
            a = p - 3
            if a < 0:
                continue
            w, head, given = text[a:p], text[a:a + 2], text[a + 1:p]
            if (text[a] in self.t.single and HAN_RE.match(given[-1]) and not freq.get(w)
                    and not freq.get(head) and freq.get(given)
                    and tags.get(given, "") in _GIVEN_WORD_TAGS
                    and tags.get(text[a], "") not in _FUNCTION_TAGS | {"d"}
                    and not self._crossed(text, a, a)):
                out.append((a, p))
        return out

    def _name_word_before(self, text: str, p: int) -> int:
        """Start of a word of three or four characters that the dictionary knows as a person
        and that ends right before a person verb at p ('范甘迪' + '表示': a transliterated name
        that opens with a surname character, so neither list holds it), or -1. No people or town
        ('西雅图' with '西雅图市'), not tagged nrt (places among them). It ends on a
        transliteration syllable (jieba tags '文博会', '段时间' and '黄金周' nr too), holds no
        frequent ordinary word, is no listed non-name, and no ordinary word runs across its start."""
        freq, tags = self._dict()
        for n in (4, 3):
            a = p - n
            w = text[a:p]
            # nrt is jieba's transliteration tag, places included ('乌兰巴托', '斯图加特'); the
            # transliterated names it holds are the context list's.
            tag = tags.get(w, "")
            if a < 0 or not tag.startswith("nr") or tag == "nrt" or not freq.get(w) \
                    or any(freq.get(w + x) for x in PLACE_SUFFIXES):
                continue
            if w[-1] not in self.name_chars or w in self.listed or self._crossed(text, a, p, {p}) \
                    or any(self._is_common_word(w[i:i + 2]) for i in range(n - 1)):
                continue
            return a
        return -1

    def _listed_after_title(self, text: str) -> list[tuple[int, int]]:
        """Names listed after a title and a colon: each item that starts with a surname and is
        no common word."""
        if self.list_re is None or ("：" not in text and ":" not in text):
            return []
        self._dict()
        out = []
        for m in self.list_re.finditer(text):
            for item in self.item_re.finditer(m.group(1)):
                a, b = m.start(1) + item.start(), m.start(1) + item.end()
                if self._surname_at(text, a) > 0 and not self._is_common_word(item.group()):
                    out.append((a, b))
        return out

    def _unlikely(self, text: str, a: int, b: int) -> bool:
        """A found span without a title beside it that reads as a place ('万春亭', a pavilion), as
        a surname before a common word ('韩美军'), or as two characters a frequent word runs across
        ('韩美' of '驻韩美军')."""
        if self._titled(text, a, b):
            return False
        if text[b - 1] in _PLACE_ENDINGS:
            return True
        n = self._surname_at(text, a)
        if n > 0 and b - n > 1 and self._is_common_word(text[n:b]):
            return True  # '韩' + '美军'
        return b - a == 2 and self._crossed_by_common(text, a, b)

    def _titled(self, text: str, a: int, b: int) -> bool:
        """Whether a title or role word stands right before or after the span."""
        p = a
        while p > 0 and text[p - 1] in _SEPARATOR_CHARS:
            p -= 1
        if any(text[max(0, p - n):p] in self.t.before for n in range(1, 5)):
            return True
        return self.after_re is not None and self.after_re.match(text, b) is not None

    def _crossed_by_common(self, text: str, a: int, b: int) -> bool:
        for edge in (a, b):
            for i in range(max(0, edge - _MAX_WORD + 1), edge):
                for j in range(edge + 1, min(len(text), i + _MAX_WORD) + 1):
                    if self._is_common_word(text[i:j]):
                        return True
        return False

    def vetoed(self, text: str, a: int, b: int) -> bool:
        """Whether the span is a listed non-name, or starts one ('宫保' of '宫保鸡丁'), or is
        followed by a company, shop or place word ('华坚' of '华坚鞋业')."""
        listed = self.listed
        # A title or credit right after the span ('钟南山院士', '（黄洋摄）') makes it a person,
        # whatever the built list of name-like things files the same characters under; the
        # hand-kept whitelist still holds.
        if self._closed(text, b, False):
            listed = self.t.whitelist
        for j in range(b, min(len(text), a + self.listed_max) + 1):
            if text[a:j] in listed:
                return True
        # ... or lies inside one that starts before it ('马丁' of '阿斯顿马丁').
        for i in range(max(0, a - self.listed_max + 1), a):
            for j in range(b, min(len(text), i + self.listed_max) + 1):
                if text[i:j] in listed:
                    return True
        p = b
        while p < len(text) and text[p] in _SEPARATOR_CHARS and text[p] != "-":
            p += 1
        if p > b:
            return False  # '主演：杨幂 赵又廷': a space ends the name before any company word
        not_after = self.t.not_after
        return any(text[p:p + n] in not_after for n in self.not_after_lens)

    def tag(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the person names in `text`, without the gate."""
        self._dict()
        # Title words fix word boundaries jieba may miss ('摄影' + '师刘军', a rare dictionary word).
        cuts = {m.end() for m in self.title_cut_re.finditer(text)} if self.title_cut_re else set()
        # Dictionary words only (no HMM): jieba's HMM glues unknown names to their neighbours
        # ('王洋摄'); single characters standing alone are what unknown names are made of here.
        words = self._split_at(get_jieba(self.jieba_cache_dir).lcut(text, HMM=False), cuts)
        if self.t.compound:
            words = self._join_compounds(text, words, cuts)
        starts, pos = [], 0
        for w in words:
            starts.append(pos)
            pos += len(w)
        starts.append(pos)
        found: list[tuple[int, int]] = []
        k = 0
        while k < len(words):
            n = self._surname_len(words[k])
            span = self._name_at(text, words, starts, k, n, starts[k] in cuts) if n else 0
            if span and n == 1 and len(words[k]) == 1 and words[k] not in self.common_surnames \
                    and k + 1 < len(words) and words[k + 1] in self.common_surnames:
                # A rare surname before a common one that starts a longer name of its own is the
                # end of the word before ('币安' + '赵长鹏', not '安赵长' + '鹏').
                later = self._name_at(text, words, starts, k + 1, 1, starts[k + 1] in cuts)
                if later and k + 1 + later > k + span:
                    k += 1
                    span = later
            if span and self._overlaps_listed(text, starts[k], starts[k + span]):
                span = 0
            if span:
                found.append((starts[k], starts[k + span]))
                k += span
            else:
                k += 1
        return found

    def _overlaps_listed(self, text: str, a: int, b: int) -> bool:
        """Whether a listed non-name overlaps text[a:b], however jieba cut it ('宫保鸡' + '丁')."""
        longest, listed = self.whitelist_max, self.t.whitelist
        for i in range(max(0, a - longest + 1), b):
            for j in range(max(i + 2, a + 1), min(len(text), i + longest) + 1):
                if text[i:j] in listed:
                    return True
        return False

    def _join_compounds(self, text: str, words: list[str], cuts: set[int]) -> list[str]:
        """Rejoin compound surnames jieba cut apart ('公' + '冶' + '涵' -> '公冶' + '涵'); a common
        word is cut for it only beside a title ('摄影师' + '上' + '官军' -> '上官' + '军')."""
        out, pos, k = [], 0, 0
        while k < len(words):
            w = words[k]
            m = None
            if len(w) < self.compound_lens[0] and text[pos:pos + 2] in self.compound_heads:
                m = self.compound_re.match(text, pos)
            if m and len(w) < len(m.group()):
                end, r = pos + len(m.group()), k
                while r < len(words) and pos + len("".join(words[k:r + 1])) < end:
                    r += 1
                joined = "".join(words[k:r + 1])
                tail = joined[len(m.group()):]
                if r < len(words) and (not tail or not self._is_common_word(words[r]) or pos in cuts
                                       or self._title_after(text, pos + len(m.group()))):
                    out.append(m.group())
                    if tail:
                        out.append(tail)
                    pos += len(joined)
                    k = r + 1
                    continue
            out.append(w)
            pos += len(w)
            k += 1
        return out

    def _split_at(self, words: list[str], cuts: set[int]) -> list[str]:
        """Split words (other than common ones) that run across a cut."""
        if not cuts:
            return words
        out, pos = [], 0
        for w in words:
            inner = [c - pos for c in sorted(cuts) if pos < c < pos + len(w)]
            if inner and not self._is_common_word(w):
                out.extend(w[a:b] for a, b in zip([0] + inner, inner + [len(w)]))
            else:
                out.append(w)
            pos += len(w)
        return out

    def _closed(self, text: str, end: int, titled_before: bool) -> bool:
        """Whether a name ending at character `end` is closed by a title word after it ('…先生',
        '（…摄）'), or follows a title word and reaches the edge of the Han text ('作者…')."""
        if self.after_re is not None:
            m = self.after_re.match(text, end)
            # One-character title words start too many words: '摄' only where the Han text ends
            # ('摄影' is no credit).
            if m and (len(m.group("word")) > 1 or m.group("next") is None):
                return True
        return titled_before and (end >= len(text) or not HAN_RE.match(text[end]))

    def _name_at(self, text: str, words: list[str], starts: list[int], k: int, n: int,
                 titled_before: bool) -> int:
        """How many words, from word k (which starts with an n-character surname), make up a
        name; 0 if none does."""
        first = words[k]
        if not titled_before:
            b = self._neighbour(words, k, -1)
            titled_before = b >= 0 and words[b] in self.t.before
        # jieba's dictionary tags many common words nr ('胡同', '麦田', '黄金周'): a name it knows
        # still needs a given part of given-name characters, unless a title stands before it
        # ('导演张艺谋') or its surname is compound ('欧阳修', '上官婉儿').
        known = len(first) > n and self._is_name_word(first) and (
            titled_before or n > 1 or self._given_only(first[n:]))
        if len(first) > n and not known and (not self._given_only(first[n:]) or self._is_common_word(first)):
            return 0
        # Every way to end the name on a word boundary: the given part (after the surname) holds
        # 1..max_given_titled characters, and given-name characters only past the first word.
        ends, given, m = [], len(first) - n, k
        while True:
            if 1 <= given <= self.max_given_titled:
                ends.append((m, given))
            m += 1
            if m >= len(words) or words[m] in self.t.whitelist:
                break
            # A given name the dictionary knows after a surname alone ('爱新觉罗' + '溥仪'); between
            # a title and a credit, any single Han character ('记者 谭兴孚 摄').
            if not (self._given_only(words[m]) or m == k + 1 and given == 0
                    and self._is_name_word(words[m])
                    or titled_before and len(words[m]) == 1 and HAN_RE.match(words[m])
                    and words[m] not in self.t.after and self._closed(text, starts[m + 1], False)):
                break
            # A full given name does not run on into a common word ('王小明' + '明天').
            if given >= self.max_given and len(words[m]) > 1 and self._is_common_word(words[m]):
                break
            given += len(words[m])
            if given > self.max_given_titled:
                break
        # A title closes the name: take the longest span it closes ('（司马伟秀英摄）').
        for m, given in reversed(ends):
            if self._closed(text, starts[m + 1], titled_before) \
                    and not self._is_common_word("".join(words[k:m + 1])):
                return m - k + 1
        ends = [(m, g) for m, g in ends if g <= self.max_given]
        if not ends:
            return 0
        # The shortest end with evidence: a surname and one character may say nothing ('关' '菊')
        # where the surname and two characters standing alone do ('关' '菊' '英').
        chosen = ends[0] if titled_before or known else next(
            ((m, g) for m, g in ends if self._evidence(words, k, m)), None)
        if chosen is None:
            return 0
        m, given = chosen
        # The given name may go on in single characters standing alone: after a name the
        # dictionary knows, only characters that are no words of their own ('李强' + '娜', never
        # '李娜' + '新歌'); after a surname and one character, any given-name character that is not
        # a function word ('王' '俊' '凯', never '张' '伟' '和').
        while m + 1 < len(words) and given < self.max_given and self._loose_given(words[m + 1], known):
            m, given = m + 1, given + 1
        return m - k + 1

    @staticmethod
    def _neighbour(words: list[str], k: int, step: int) -> int:
        """Index of the next word from k in direction `step`, skipping separators (-1 or len: none)."""
        k += step
        while 0 <= k < len(words) and words[k] in _SKIP_TOKENS:
            k += step
        return k

    def _loose_given(self, w: str, after_known: bool) -> bool:
        if len(w) != 1 or w not in self.t.given:
            return False
        tag = self._tags.get(w, "")
        if after_known:
            # Only a character that is no word of its own: a bound morpheme (tags ending in g),
            # an unclassified character (x) or a name part.
            return not tag or tag.endswith("g") or tag == "x" or tag.startswith("nr")
        return tag not in _FUNCTION_TAGS

    def _evidence(self, words: list[str], k: int, m: int) -> bool:
        """Without a title, for a span the dictionary does not know as a name: a surname standing
        alone (not as a preposition or conjunction: '于', '向') followed by a name the dictionary
        knows ('欧阳' + '娜娜'), or by given-name characters that are neither a common word nor a
        function word ('杨' + '紫')."""
        if m == k:
            return False
        first, rest = words[k], "".join(words[k + 1:m + 1])
        if self._is_name_word(first + rest) or self._is_name_word(rest):
            return True
        if self._tags.get(first, "") in _PARTICLE_TAGS or len(rest) > 1 and self._is_common_word(rest):
            return False
        # A rare surname before one character, with nothing else to go on, is more often the start
        # of a word the dictionary lacks (谷歌, 蓝星) than a name.
        if len(first) == 1 and len(rest) == 1 and first not in self.common_surnames:
            return False
        # Characters standing alone must none be a function word ('甄' '衡' + '和' is a name and a
        # conjunction); a rare dictionary word may follow ('滕' + '海海').
        return all(len(w) > 1 or self._tags.get(w, "") not in _FUNCTION_TAGS for w in words[k + 1:m + 1])
