"""The names resource builder: jieba's noisy person tags and a person list's ordinary words stay
out; name-like places and things go to the never-masked list; transliterated parts to the context
list."""

from __future__ import annotations

from filters.names_resource import build, main


def _jieba_dict(path, entries):
    path.write_text("\n".join(f"{w} {f} {t}" for w, f, t in entries) + "\n", encoding="utf-8")


ENTRIES = [
    # people jieba met often, and nr slips: too rare, a common word after a surname, a place
    # ending, a non-given character after a surname, a time word
    ("鲁迅", 1507, "nr"), ("袁隆平", 44, "nr"), ("郭靖留", 2, "nr"), ("段时间", 154, "nr"),
    ("时间", 5000, "n"), ("白云山", 300, "nr"), ("麦田", 133, "nr"), ("周五月", 30, "t"),
    ("五月", 900, "t"), ("周五", 800, "t"),
    # transliterated parts (nrt), and one that is a place by its ending
    ("保罗", 311, "nrt"), ("凯西", 11, "nrt"), ("塔斯马尼亚岛", 33, "nrt"),
    # name-like things, one named after a person, one too rare to trust
    ("金毛", 17, "n"), ("张家湾", 40, "ns"), ("鲁迅公园", 30, "ns"), ("黄洋", 3, "ns"),
    # ordinary words and proper nouns a person list may hold
    ("田间", 392, "n"), ("普京", 171, "ns"), ("光初", 3, "v"), ("曹操", 2410, "nr"),
]


def test_jieba_entries_are_sorted_into_the_three_lists(tmp_path):
    _jieba_dict(tmp_path / "dict.txt", ENTRIES)
    known, not_names, context = build(tmp_path / "dict.txt")
    assert "鲁迅" in known and "袁隆平" in known
    # jieba's two-character nr entries need a given-name character: it tags '高潮', '元帅' nr too.
    for slip in ("郭靖留", "段时间", "白云山", "麦田", "周五月", "曹操"):
        assert slip not in known, slip
    assert {"保罗", "凯西"} <= set(context) and "塔斯马尼亚岛" not in context
    assert {"金毛", "张家湾"} <= set(not_names)
    # Named after a person (its name would be vetoed inside it), or too rare to trust.
    assert "鲁迅公园" not in not_names and "黄洋" not in not_names


def test_person_list_entries_are_checked_against_the_dictionary(tmp_path):
    _jieba_dict(tmp_path / "dict.txt", ENTRIES)
    people = tmp_path / "people.txt"
    people.write_text("\ufeff田间\t25541\n普京\t49718\n光初\t900\n吴尊\t800\n伯克希尔·哈撒韦\t700\n"
                      "诸葛亮\t600\n麦田\t500\n曹操\t400\n特朗普\t10\n", encoding="utf-8")
    known, _not, _ctx = build(tmp_path / "dict.txt", [people], people_top=8)
    # A common word (田间 n), a surname-less fragment jieba knows as no proper noun, a non-Han
    # entry and a nr slip with a non-given character are out (a person jieba met very often is
    # in: '曹操'); past the top 8 nothing is read.
    assert {"普京", "吴尊", "诸葛亮", "曹操"} <= set(known)
    for out in ("田间", "光初", "伯克希尔·哈撒韦", "麦田", "特朗普"):
        assert out not in known, out
    assert main(["--jieba-dict", str(tmp_path / "dict.txt"), "--people", str(people),
                 "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "known_names.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "鲁迅" in " ".join(lines) and "特朗普" in " ".join(lines)
