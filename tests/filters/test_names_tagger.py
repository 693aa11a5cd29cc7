"""Name tagger rules added with the larger names resource: each case a rule, each rule with a look-
alike it must leave alone."""

from __future__ import annotations

import pytest

from filters.chain import filter_captions
from filters.config import TextRulesConfig


def texts(captions):
    samples, _chain = filter_captions(captions, TextRulesConfig())
    return [s.text for s in samples]


@pytest.mark.parametrize("caption,expected", [
    # two well-known names side by side: the word across their seam ('德安', a county) is no evidence
    ("NBA老将排名，韦德安东尼未入前十", "NBA老将排名，<人名><人名>未入前十"),
    # a surname and two characters standing alone make a name where a surname and one say nothing
    ("关菊英50岁和同性富婆相恋结婚", "<人名>50岁和同性富婆相恋结婚"),
    # a rare surname before a common one that starts a longer name ends the word before it
    ("从相爱到相杀 币安赵长鹏回应红杉诉讼一案", "从相爱到相杀 币安<人名>回应红杉诉讼一案"),
    # between a title and a credit, any single character belongs to the name
    ("本报记者 谭兴孚 摄", "本报记者 <人名> 摄"),
    # a name joined after a title and a conjunction, and wherever it repeats
    ("哈里王子和梅根真心相爱，哪怕梅根离过婚", "<人名>王子和<人名>真心相爱，哪怕<人名>离过婚"),
    # a transliterated part before a person predicate
    ("罗斯下赛季还能出现在NBA赛场上吗", "<人名>下赛季还能出现在NBA赛场上吗"),
    # a long transliterated name from the person list stands alone
    ("贝卢斯科尼的新闻发布会", "<人名>的新闻发布会"),
])
def test_names_found(caption, expected):
    assert texts([caption]) == [expected]


@pytest.mark.parametrize("caption", [
    "这款阿斯顿马丁颜值爆棚",           # two name syllable runs that make a brand
    "迪士尼乐园的烟花表演",             # a brand in the list of transliterated names
    "伦敦市长官邸的夜景",               # a place in that list, before a title word
    "张掖七彩丹霞地貌",                 # a place in the person list
    "记者站摄影作品展",                 # a title, then no name before the credit
    "她和那些朋友下赛季再见",           # a person predicate after no name part
])
def test_lookalikes_stay(caption):
    assert texts([caption]) == [caption]


def test_a_conjunction_never_ends_a_name():
    """A rare surname and a character, then 和: the span may not take the conjunction to make up
    its two given characters ('班' '舟' '和' was once masked whole: '<人名>荆州市等待')."""
    out = texts(["班舟和荆州市等待", "伍千和太阳参加", "宫洁珊和香港的朋友聚会"])
    assert not out[0].startswith("<人名>荆州") and not out[1].startswith("<人名>太阳")
    assert out[2] == "<人名>和香港的朋友聚会"
