"""Character classes and the caption 'skeleton' shared by several rules."""

from __future__ import annotations

import hashlib
import re

# CJK unified ideographs (+ extension A, compatibility ideographs, extensions B..F).
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
HAN_RE = re.compile(f"[{HAN_CLASS}]")
# Hiragana and katakana, without the middle dot and the long-vowel mark that Chinese text borrows,
# and without the iteration marks ゝゞヽヾ that kaomoji borrow ('ヽ(●´∀`●)ﾉ').
_KANA_CLASS = "\u3041-\u3096\u309f\u30a1-\u30fa\u30ff\u31f0-\u31ff\uff66-\uff9d"
KANA_RE = re.compile(f"[{_KANA_CLASS}]")
_HANGUL_CLASS = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
HANGUL_RE = re.compile(f"[{_HANGUL_CLASS}]")
# Kana and hangul in words: runs of two or more kana/hangul/Han characters holding one. A kana or
# jamo standing alone among symbols is part of a kaomoji ('(＾▽＾)ノ', '(´ㅂ`)'), not Japanese.
KANA_WORD_RE = re.compile(f"[{HAN_CLASS}{_KANA_CLASS}]*[{_KANA_CLASS}][{HAN_CLASS}{_KANA_CLASS}]*")
HANGUL_WORD_RE = re.compile(f"[{HAN_CLASS}{_HANGUL_CLASS}]*[{_HANGUL_CLASS}][{HAN_CLASS}{_HANGUL_CLASS}]*")
LATIN_WORD_RE = re.compile("[A-Za-z]+")
# Everything that is not a letter or digit of any script (spaces, punctuation, symbols, emoji).
_NON_WORD_RE = re.compile(r"[\W_]+")


def skeleton(text: str) -> str:
    """Letters and digits only, lower-cased: '赌 博.网站' and '赌博网站' have the same skeleton."""
    return _NON_WORD_RE.sub("", text).lower()


def skeleton_key(skel: str) -> int:
    """64-bit key of a skeleton, equal in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(skel.encode("utf-8"), digest_size=8).digest(), "little")
