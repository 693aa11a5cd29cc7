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


def test_person_list_places_phrases_and_long_names(tmp_path):
    """A person list's places are left out: jieba knows them with an administrative suffix
    ('张掖市') or files them as places with an old county ending ('庐陵' ns), unless jieba tags
    them as persons ('胡志明' nr though '胡志明市'). Past four characters an entry is taken where no
    common word stands inside ('贝卢斯科尼', never the drama '恶作剧之吻'); a shorter one without a
    surname not where it opens with a common word ('风味绝佳')."""
    _jieba_dict(tmp_path / "dict.txt", ENTRIES + [
        ("张掖", 165, "ns"), ("张掖市", 40, "ns"), ("庐陵", 27, "ns"), ("胡志明", 50, "nr"),
        ("胡志明市", 60, "ns"), ("恶作剧", 300, "n"), ("风味", 800, "n")])
    people = tmp_path / "people.txt"
    people.write_text("张掖\t4132\n庐陵\t149\n胡志明\t3140\n普京\t49718\n贝卢斯科尼\t5159\n"
                      "恶作剧之吻\t71\n风味绝佳\t40\n", encoding="utf-8")
    known, _not, _ctx = build(tmp_path / "dict.txt", [people])
    assert {"胡志明", "普京", "贝卢斯科尼"} <= set(known)
    for out in ("张掖", "庐陵", "恶作剧之吻", "风味绝佳"):
        assert out not in known, out


def test_foreign_name_list_feeds_the_context_list_only(tmp_path):
    """A list of transliterated names (HanLP's nrf.txt) adds context names, never known names;
    its places, brands and frequent ordinary words stay out ('伦敦' ns, '迪士尼' nz, '马达' n)."""
    _jieba_dict(tmp_path / "dict.txt", ENTRIES + [("伦敦", 900, "ns"), ("迪士尼", 195, "nz"),
                                                  ("马达", 400, "n"), ("特朗普", 14, "nr")])
    foreign = tmp_path / "nrf.txt"
    foreign.write_text("梅根\n特朗普\n伦敦\n迪士尼\n马达\n塔斯马尼亚岛\n", encoding="utf-8")
    known, _not, context = build(tmp_path / "dict.txt", foreign=[foreign])
    assert {"梅根", "特朗普"} <= set(context)
    assert not {"梅根", "伦敦"} & set(known)
    for out in ("伦敦", "迪士尼", "马达", "塔斯马尼亚岛"):
        assert out not in context, out


def test_name_dictionary_nr_entries_join_the_known_names(tmp_path):
    """HanLP's 人名词典 (name tag count): nr entries that read as names join the known names; forms
    of address, '某', names glued to the next word, words jieba files under another tag, rare odd
    given characters and transliterated (nrf) entries stay out."""
    _jieba_dict(tmp_path / "dict.txt", ENTRIES + [("华侨城", 300, "ns"), ("屈原", 841, "n")])
    names = tmp_path / "renming.txt"
    names.write_text("\n".join([
        "张馨予 nr 183", "吴莫愁 nr 63", "吕布 nr 16", "吴京 nr 40", "吴京笑 nr 2", "刘先生 nr 50",
        "孙某某 nr 9", "华侨城 nr 12", "屈原 nr 30", "特朗普 nrf 7", "伊贝拉 nrf 2 nr 1", "吕奋 nr 2",
    ]), encoding="utf-8")
    known, _not, _ctx = build(tmp_path / "dict.txt", name_dicts=[names])
    for name in ("张馨予", "吴莫愁", "吕布", "吴京"):
        assert name in known, name
    for out in ("吴京笑", "刘先生", "孙某某", "华侨城", "屈原", "特朗普", "伊贝拉", "吕奋"):
        assert out not in known, out
