"""Builds the name tagger's resources offline: well-known people, and name-like words that are not.

    .venv/bin/python -m filters.names_resource --thuocl DIR [--hanlp DIR] [--cnc DIR] [--out filters/data]

--thuocl: the THUOCL lexicons (THU Open Chinese Lexicon, MIT licence, github.com/thunlp/THUOCL):
THUOCL_lishimingren.txt (historical and public figures) for `known_names.txt`; the place, food,
animal and car lexicons for `not_names.txt`.
--hanlp: HanLP 1.x's `data/dictionary` folder (Apache-2.0, github.com/hankcs/HanLP, branch 1.x):
custom/人名词典.txt (50,000 people named in news text: Chinese names tagged nr, transliterated
ones nrf) adds modern people (吴尊, 易建联, 特朗普); person/nrf.txt (transliterated given names and
surnames: 保罗, 罗斯, 凯西) goes to `context_names.txt`, masked only beside a person word, since
such parts are also ordinary syllables; its place, organisation and general dictionaries
(custom/全国地名大全.txt, 机构名词典.txt, 现代汉语补充词库.txt, CoreNatureDictionary.txt) keep
places, companies and words out.
--cnc: the Chinese-Names-Corpus (Apache-2.0, github.com/wainshine/Chinese-Names-Corpus):
Chinese_Names_Corpus/Ancient_Names_Corpus（25W）.txt, historical people in traditional script
(屈原, 司马迁), converted with OpenCC t2s; only three- and four-character names are taken, two
characters being too often a word.
--brands: a folder holding funNLP's car_dict.txt (car makes and models, github.com/fighting41love/
funNLP, no licence file: used only to leave entries out) and the Company-Names-Corpus'
Company-Shorter-Form（28W）.txt (short company names by NameMoe, Apache-2.0, the author of the
Chinese-Names-Corpus, as copied in funNLP): a transliterated name or a two-character name that is
also a car or a company ('荣威', '申通', '特斯拉') is not taken as a well-known person.
Every list is filtered against jieba's bundled dictionary (MIT licence) so that a person list's
noise (common words, era names, titles, places) stays out:

- known names: 2-4 Han characters; not a place, dish, animal, car, idiom or other lexicon word;
  and, for two-character entries, not a frequent jieba word with a tag other than a name or
  proper noun ('田间', '尚书', '嘉靖' out; '鲁迅', '普京' in); two characters without a surname
  only where jieba knows them as a proper noun.
- not names: places, dishes, animals and cars that start like a Chinese name (a surname from
  surnames.txt), so the tagger never masks them ('张家界', '宫保鸡丁', '金毛', '马自达').

- added people (HanLP, ancient names): a surname first, the given part made of given-name
  characters (given_name_chars.txt) for two-character names; no word of any of the dictionaries
  above under another tag; not ending like a place (山, 城, 岛) or an epithet (爷, 姐, 母:
  '范爷', '张大爷' are nicknames, not names).

The output files are committed; rerun this after updating the lexicons or the surname table.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from filters.wordlists import bundled, load_lines

_HAN_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")
# jieba tags under which a two-character entry may still be a person: names, and proper nouns
# jieba files elsewhere ('普京' ns, '海瑞' nz).
_PROPER_TAGS = ("nr", "ns", "nz", "nt")
# A two-character entry that jieba knows this often under another tag is an ordinary word.
COMMON_FREQ = 100
# jieba tags of time and number words: an entry so tagged is never taken for a person, however rare.
_TIME_TAGS = frozenset({"t", "tg", "m", "mq"})


def _time_word(w: str, tags: dict) -> bool:
    """A time or number word that opens with one ('五月天' is also 'a May day'); jieba's tag on
    the whole word alone is not trusted (it tags '周恩来' t)."""
    return tags.get(w, "") in _TIME_TAGS and tags.get(w[:2], "") in _TIME_TAGS
NOT_NAME_LEXICONS = ("diming", "food", "animal", "car")
OTHER_LEXICONS = ("chengyu", "IT", "caijing", "medical", "law", "poem")


def read_lexicon(path: Path) -> dict[str, int]:
    """word -> document frequency of a THUOCL file (word TAB count, any line ending)."""
    out: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.strip().split("\t")
        if parts and parts[0]:
            word = parts[0].strip()
            try:
                out[word] = max(out.get(word, 0), int(parts[1])) if len(parts) > 1 else 1
            except ValueError:
                out[word] = 1
    return out


def surnames() -> tuple[frozenset[str], frozenset[str]]:
    words = [w for line in load_lines("", "surnames.txt") for w in line.split()]
    return frozenset(w for w in words if len(w) == 1), frozenset(w for w in words if len(w) > 1)


def starts_with_surname(word: str, single: frozenset[str], compound: frozenset[str]) -> bool:
    return word[:1] in single or any(word.startswith(c) for c in compound)


def build(thuocl: Path, hanlp: Path | None = None, cnc: Path | None = None,
          brands: Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """(known names, not names, context names) from the lexicons found under the given folders."""
    from filters.jieba_runtime import dictionary, get_jieba
    get_jieba()
    freq, tags = dictionary()
    single, compound = surnames()
    other: set[str] = set()
    for name in NOT_NAME_LEXICONS + OTHER_LEXICONS:
        p = thuocl / f"THUOCL_{name}.txt"
        if p.is_file():
            other.update(read_lexicon(p))
    people = read_lexicon(thuocl / "THUOCL_lishimingren.txt")
    known = []
    for w in people:
        if not (2 <= len(w) <= 4 and _HAN_ONLY.match(w)) or w in other:
            continue
        tag = tags.get(w, "")
        if len(w) == 2 and tag and not tag.startswith(_PROPER_TAGS) and freq.get(w, 0) >= COMMON_FREQ:
            continue
        if _time_word(w, tags):
            continue
        # Two characters without a surname are a name only where jieba knows them as a proper
        # noun ('普京'); otherwise they are too often a fragment of other words ('光初', '子建').
        if len(w) == 2 and not starts_with_surname(w, single, compound) and not tag.startswith(_PROPER_TAGS):
            continue
        known.append(w)
    known_set = set(known)
    not_names = set()
    for name in NOT_NAME_LEXICONS:
        p = thuocl / f"THUOCL_{name}.txt"
        if not p.is_file():
            continue
        for w in read_lexicon(p):
            if (2 <= len(w) <= 5 and _HAN_ONLY.match(w) and w not in known_set
                    and starts_with_surname(w, single, compound)):
                not_names.add(w)
    filt = _AddedFilter(freq, tags, single, compound, other | not_names)
    if brands is not None:
        filt.cars.update(_lines(brands / "car_dict.txt"))
        filt.companies.update(_lines(brands / "Company-Shorter-Form（28W）.txt"))
    added: set[str] = set()
    context: set[str] = set()
    if hanlp is not None:
        filt.words.update(_hanlp_words(hanlp))
        filt.proper.update(_hanlp_proper(hanlp))
        filt.starts_thing.update(_hanlp_thing_heads(hanlp))
        for w, tag, n in _hanlp_people(hanlp):
            if tag == "nr" and filt.chinese(w, n):
                added.add(w)
            elif tag == "nrf" and filt.foreign(w, n):
                added.add(w)
            elif tag == "nrf" and filt.foreign_part(w):
                context.add(w)
        for w in _lines(hanlp / "person" / "nrf.txt"):
            if filt.foreign_part(w):
                context.add(w)
    if cnc is not None:
        for w in _ancient(cnc):
            if len(w) >= 3 and filt.chinese(w, _MIN_COUNT):
                added.add(w)
    # Car makes and models are never masked, whatever their first character ('阿斯顿马丁').
    not_names |= {w for w in filt.cars if 2 <= len(w) <= 6 and _HAN_ONLY.match(w) and w not in known_set}
    known_set |= added - not_names
    context -= known_set | not_names
    return sorted(known_set), sorted(not_names), sorted(context)


# A two-character Chinese name from a news list counts only if the list met it this often: rarer
# ones are as often a segmentation slip of the list's tagger ('齐聚', '保研').
_MIN_COUNT = 3
# A two-character name whose given character is rare in names counts if the list met it this often
# ('吴尊', '唐僧').
_FAMOUS_COUNT = 10
# A transliterated name is a well-known person only if the news list met it this often.
_MIN_FOREIGN_COUNT = 3
# Last characters of nicknames and epithets ('范爷', '张大爷', '贾母', '詹皇'), and of places on top
# of the tagger's place endings ('黄柏塬', '罗牛山'): such entries of a person list are left out.
_EPITHET_ENDINGS = frozenset("爷皇哥姐嫂叔婶伯婆妈爸娘母父总董少帅仙神佛")
_MORE_PLACE_ENDINGS = frozenset("塬坪坝沟峪庄屯堡寨乡营店厂场站所院局社族风报")
# A news list's tagger sometimes takes a name and the particle after it ('王子和' of '王子和梅根').
_PARTICLE_ENDINGS = frozenset("和与的是在了也都就及或")


class _AddedFilter:
    """Which entries of an added person list are taken (see the module's docstring)."""

    def __init__(self, freq, tags, single, compound, other):
        from filters.names import _PLACE_ENDINGS
        from filters.wordlists import load_lines as _load
        self.freq, self.tags, self.single, self.compound = freq, tags, single, compound
        self.vetoed = set(other)            # THUOCL's places, dishes, animals, cars, idioms...
        self.words: set[str] = set()        # any word of HanLP's dictionaries
        self.proper: set[str] = set()      # words a dictionary tags as a person (nr*)
        self.starts_thing: set[str] = set()  # heads of companies, products and places
        self.cars: set[str] = set()          # car makes and models ('荣威', '帕萨特')
        self.companies: set[str] = set()     # short company names ('申通', '特斯拉')
        self.given = {c for line in _load("", "given_name_chars.txt") for w in line.split() for c in w}
        self.endings = _PLACE_ENDINGS | _EPITHET_ENDINGS | _MORE_PLACE_ENDINGS | _PARTICLE_ENDINGS

    def _ordinary(self, w: str) -> bool:
        tag = self.tags.get(w, "")
        if _time_word(w, self.tags):
            return True
        return w in self.vetoed or (w in self.words and w not in self.proper) or (
            bool(self.freq.get(w)) and not tag.startswith("nr") and (len(w) == 2 or self.freq[w] >= 20))

    def chinese(self, w: str, count: int) -> bool:
        if not (2 <= len(w) <= 4 and _HAN_ONLY.match(w)) or w[-1] in self.endings or self._ordinary(w):
            return False
        if not starts_with_surname(w, self.single, self.compound):
            return False
        if w in self.cars:
            return False
        if len(w) == 2:
            return w not in self.companies and (count >= _FAMOUS_COUNT or count >= _MIN_COUNT and w[1] in self.given)
        # Four characters after a one-character surname are a Chinese name only in a minority's
        # naming; in a news list they are mostly a name glued to a word ('熊猫宝宝').
        return len(w) < 4 or not w.startswith(tuple(self.single)) or any(w.startswith(c) for c in self.compound)

    def foreign(self, w: str, count: int) -> bool:
        """A transliterated full name of three or more characters ('特朗普', '德罗赞') that the
        news list met often enough, that no dictionary knows as another word and that starts no
        company, product or place of the dictionaries ('欧莱雅集团', '萨克斯管'); two-character
        ones and rarer ones go with the name parts."""
        return (3 <= len(w) <= 6 and bool(_HAN_ONLY.match(w)) and count >= _MIN_FOREIGN_COUNT
                and w[-1] not in self.endings and not self._ordinary(w) and w not in self.starts_thing
                and w not in self.cars and w not in self.companies and not self._starts_vetoed(w))

    def _starts_vetoed(self, w: str) -> bool:
        """Whether a place, dish, animal or other lexicon word begins `w` ('熊猫' of '熊猫宝宝')."""
        return any(w[:k] in self.vetoed for k in range(2, len(w)))

    def foreign_part(self, w: str) -> bool:
        """A transliterated name part: masked only beside a person word, so a company or product
        sharing it ('特斯拉', '福克斯') is rarely hit; cars and other dictionary words stay out."""
        return (2 <= len(w) <= 6 and bool(_HAN_ONLY.match(w)) and w[-1] not in self.endings
                and not self._ordinary(w) and w not in self.cars and not self._starts_vetoed(w)
                and w not in self.starts_thing)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line.split()[0] for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def _hanlp_people(hanlp: Path) -> list[tuple[str, str, int]]:
    """(word, tag, count) of HanLP's person dictionary (word, tag, count per line)."""
    out = []
    path = hanlp / "custom" / "人名词典.txt"
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            n = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
            out.append((parts[0], parts[1], n))
    return out


_HANLP_WORD_FILES = ("custom/全国地名大全.txt", "custom/机构名词典.txt", "custom/现代汉语补充词库.txt",
                     "custom/CustomDictionary.txt", "CoreNatureDictionary.txt")


def _hanlp_entries(hanlp: Path):
    for rel in _HANLP_WORD_FILES:
        p = hanlp / rel
        if not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8-sig").splitlines():
            parts = line.split()
            if parts:
                yield parts[0], parts[1:]


def _hanlp_words(hanlp: Path) -> set[str]:
    """Every word of HanLP's place, organisation and general dictionaries."""
    return {w for w, _rest in _hanlp_entries(hanlp)}


def _hanlp_proper(hanlp: Path) -> set[str]:
    """Words whose first tag in those dictionaries is a person tag (nr, nrf, nrj)."""
    return {w for w, rest in _hanlp_entries(hanlp) if rest and rest[0].startswith("nr")}


def _hanlp_thing_heads(hanlp: Path) -> set[str]:
    """Every prefix (3-6 characters) of a word that HanLP's dictionaries tag as an organisation,
    another proper noun, a place or a common noun: '欧莱雅' of '欧莱雅集团', '萨克斯' of '萨克斯管'."""
    out: set[str] = set()
    for w, rest in _hanlp_entries(hanlp):
        if rest and rest[0][:2] in ("nt", "nz", "ns", "n") and not rest[0].startswith("nr"):
            for k in range(3, min(len(w), 7)):
                out.add(w[:k])
    return out


def _ancient(cnc: Path) -> list[str]:
    """Historical names of the Chinese-Names-Corpus, in simplified script."""
    import opencc
    path = cnc / "Chinese_Names_Corpus" / "Ancient_Names_Corpus（25W）.txt"
    if not path.is_file():
        return []
    t2s = opencc.OpenCC("t2s")
    return [t2s.convert(w) for w in _lines(path) if _HAN_ONLY.match(w)]


_HEADER_KNOWN = """# Well-known people (historical, political, scientific, literary, sports and entertainment
# figures, fictional characters), masked wherever they stand as a word. Built by
# `python -m filters.names_resource` from THUOCL_lishimingren.txt of THUOCL (THU Open Chinese
# Lexicon, Tsinghua University NLP lab, MIT licence, github.com/thunlp/THUOCL), HanLP 1.x's person
# dictionary (custom/人名词典.txt, Apache-2.0, github.com/hankcs/HanLP) and the Chinese-Names-Corpus'
# ancient names (Apache-2.0, github.com/wainshine/Chinese-Names-Corpus), filtered against jieba's
# dictionary (MIT licence) and HanLP's place, organisation and word dictionaries: see that module.
# Do not edit by hand; add names with filter.text.known_names_extra or your own file.
"""
_HEADER_CONTEXT = """# Transliterated given names and surnames (保罗, 罗斯, 凯西, 詹姆斯): masked only where a person word
# stands beside them (a title or role before, a person verb after, a '·' joining two parts, or a
# name joined by 和/与/、), since such syllables also make ordinary words and places. Built by
# `python -m filters.names_resource` from HanLP 1.x's person/nrf.txt (Apache-2.0,
# github.com/hankcs/HanLP), filtered like known_names.txt. Do not edit by hand.
"""
_HEADER_NOT = """# Words that start like a Chinese name but are places, dishes, animals or cars ('张家界',
# '宫保鸡丁', '金毛', '马自达'): a name span they cover is never masked. Built by
# `python -m filters.names_resource` from THUOCL_diming/food/animal/car.txt of THUOCL (THU Open
# Chinese Lexicon, MIT licence, github.com/thunlp/THUOCL). Do not edit by hand; hand-picked
# non-names go to name_whitelist.txt.
"""


def _write(path: Path, header: str, words: list[str], per_line: int = 20) -> None:
    lines = [" ".join(words[i:i + per_line]) for i in range(0, len(words), per_line)]
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thuocl", required=True, type=Path, help="directory of THUOCL_*.txt files")
    ap.add_argument("--hanlp", type=Path, help="HanLP 1.x data/dictionary directory (optional)")
    ap.add_argument("--cnc", type=Path, help="Chinese-Names-Corpus checkout (optional)")
    ap.add_argument("--brands", type=Path, help="folder with car_dict.txt and Company-Shorter-Form（28W）.txt"
                    " (optional): car makes and company names kept out of the people")
    ap.add_argument("--out", type=Path, default=bundled("x").parent, help="where the lists go")
    args = ap.parse_args(argv)
    known, not_names, context = build(args.thuocl, args.hanlp, args.cnc, args.brands)
    _write(args.out / "known_names.txt", _HEADER_KNOWN, known)
    _write(args.out / "not_names.txt", _HEADER_NOT, not_names)
    _write(args.out / "context_names.txt", _HEADER_CONTEXT, context)
    print(f"known names: {len(known)}, not names: {len(not_names)}, context names: {len(context)}"
          f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
