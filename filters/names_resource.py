"""Builds the name tagger's resources offline: well-known people, and name-like words that are not.

    .venv/bin/python -m filters.names_resource --thuocl DIR [--out filters/data]

DIR holds the THUOCL lexicons (THU Open Chinese Lexicon, MIT licence, github.com/thunlp/THUOCL):
THUOCL_lishimingren.txt (historical and public figures) for `known_names.txt`; the place, food,
animal and car lexicons for `not_names.txt`. Both are filtered against jieba's bundled dictionary
(MIT licence) so that a person list's noise (common words, era names, titles, places) stays out:

- known names: 2-4 Han characters; not a place, dish, animal, car, idiom or other lexicon word;
  and, for two-character entries, not a frequent jieba word with a tag other than a name or
  proper noun ('田间', '尚书', '嘉靖' out; '鲁迅', '普京' in); two characters without a surname
  only where jieba knows them as a proper noun.
- not names: places, dishes, animals and cars that start like a Chinese name (a surname from
  surnames.txt), so the tagger never masks them ('张家界', '宫保鸡丁', '金毛', '马自达').

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


def build(thuocl: Path) -> tuple[list[str], list[str]]:
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
    return sorted(known), sorted(not_names)


_HEADER_KNOWN = """# Well-known people (historical, political, scientific, literary, sports and entertainment
# figures), masked wherever they stand as a word. Built by `python -m filters.names_resource` from
# THUOCL_lishimingren.txt of THUOCL (THU Open Chinese Lexicon, Tsinghua University NLP lab, MIT
# licence, github.com/thunlp/THUOCL), filtered against jieba's dictionary (MIT licence): see that
# module. Do not edit by hand; add names with filter.text.known_names_extra or your own file.
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
    ap.add_argument("--out", type=Path, default=bundled("x").parent, help="where the lists go")
    args = ap.parse_args(argv)
    known, not_names = build(args.thuocl)
    _write(args.out / "known_names.txt", _HEADER_KNOWN, known)
    _write(args.out / "not_names.txt", _HEADER_NOT, not_names)
    print(f"known names: {len(known)}, not names: {len(not_names)} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
