"""The query list of discovery: frequent words, as Wukong seeded its image search.

By default the words come from jieba's bundled dictionary (word, frequency, part-of-speech tag),
highest frequency first, without single characters, stop words and excluded tags (function words,
numerals, person names). A user's word list (one word a line, optionally followed by a frequency)
can replace the dictionary; without frequencies its order is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

BUNDLED_STOPWORDS = Path(__file__).with_name("query_stopwords.txt")
# Queries are words, not phrases: anything with whitespace or control characters is not one.
_BAD_QUERY = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class WordEntry:
    word: str
    freq: int | None = None
    tag: str | None = None


def read_word_lines(lines: Iterable[str]) -> Iterator[WordEntry]:
    """`word [freq] [tag]` per line (jieba's dict.txt format); blank and `#` lines are skipped."""
    for line in lines:
        parts = line.strip().split()
        if not parts or parts[0].startswith("#"):
            continue
        freq = None
        tag = None
        if len(parts) > 1:
            try:
                freq = int(float(parts[1]))
            except ValueError:
                tag = parts[1]
        if len(parts) > 2 and tag is None:
            tag = parts[2]
        yield WordEntry(parts[0], freq, tag)


def jieba_dictionary() -> Iterator[WordEntry]:
    import jieba

    with jieba.get_dict_file() as fh:
        yield from read_word_lines(line.decode("utf-8") for line in fh)


def load_stopwords(extra_file: str | Path | None = None) -> set[str]:
    files = [BUNDLED_STOPWORDS] + ([Path(extra_file)] if extra_file else [])
    words: set[str] = set()
    for f in files:
        words.update(e.word for e in read_word_lines(Path(f).read_text(encoding="utf-8").splitlines()))
    return words


def select_queries(entries: Iterable[WordEntry], *, count: int, min_chars: int,
                   exclude_pos: Iterable[str] = (), stopwords: Iterable[str] = ()) -> tuple[list[str], dict]:
    """The `count` most frequent acceptable words (stable order for ties and frequency-less lists).

    Returns (queries, counts of entries dropped per reason).
    """
    excluded = set(exclude_pos)
    stop = set(stopwords)
    dropped = {"too_short": 0, "stopword": 0, "excluded_pos": 0, "duplicate": 0, "malformed": 0}
    seen: set[str] = set()
    kept: list[tuple[int, int, str]] = []
    for i, e in enumerate(entries):
        word = e.word.strip()
        if not word or _BAD_QUERY.search(word):
            dropped["malformed"] += 1
        elif len(word) < min_chars:
            dropped["too_short"] += 1
        elif word in stop:
            dropped["stopword"] += 1
        elif e.tag is not None and e.tag in excluded:
            dropped["excluded_pos"] += 1
        elif word in seen:
            dropped["duplicate"] += 1
        else:
            seen.add(word)
            # Words without a frequency keep their list order, after every word that has one.
            kept.append((-(e.freq if e.freq is not None else -1), i, word))
    kept.sort()
    return [w for _, _, w in kept[:max(0, count)]], dropped


def build_query_list(*, count: int, min_chars: int, exclude_pos: Iterable[str] = (),
                     words_file: str | Path | None = None,
                     stopwords_file: str | Path | None = None) -> tuple[list[str], dict]:
    if words_file:
        entries: Iterable[WordEntry] = read_word_lines(
            Path(words_file).read_text(encoding="utf-8-sig").splitlines())
    else:
        entries = jieba_dictionary()
    return select_queries(entries, count=count, min_chars=min_chars, exclude_pos=exclude_pos,
                          stopwords=load_stopwords(stopwords_file))


def read_queries(path: str | Path) -> list[str]:
    """A query file as written by `write_queries` (or by hand): one query a line, deduplicated."""
    seen: set[str] = set()
    out = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        q = line.strip()
        if q and not q.startswith("#") and q not in seen:
            seen.add(q)
            out.append(q)
    return out


def write_queries(path: str | Path, queries: Iterable[str]) -> None:
    from shards.atomic import write_bytes_atomic

    write_bytes_atomic(path, "".join(f"{q}\n" for q in queries).encode("utf-8"))
