"""The names resource builder: a person list's noise stays out, name-like places and dishes go to
the never-masked list."""

from __future__ import annotations

from filters.names_resource import build, main


def _lexicon(path, words):
    path.write_text("\ufeff" + "\r".join(f"{w}\t{i + 1}" for i, w in enumerate(words)), encoding="utf-8")


def test_build_filters_the_person_list_and_collects_name_like_non_names(tmp_path):
    _lexicon(tmp_path / "THUOCL_lishimingren.txt",
             ["鲁迅", "袁隆平", "普京", "田间", "尚书", "光初", "张家界", "伯克希尔·哈撒韦", "诸葛亮"])
    _lexicon(tmp_path / "THUOCL_diming.txt", ["张家界", "王府井", "北京"])
    _lexicon(tmp_path / "THUOCL_food.txt", ["宫保鸡丁", "白菜"])
    known, not_names, context = build(tmp_path)
    # Common words (田间 n, 尚书 n), a place, a non-Han entry and a surname-less fragment are out.
    assert known == sorted(["鲁迅", "袁隆平", "普京", "诸葛亮"])
    # Only entries that start like a name are kept as non-names (北京 does not).
    assert not_names == sorted(["张家界", "王府井", "宫保鸡丁", "白菜"])
    assert context == []
    assert main(["--thuocl", str(tmp_path), "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "known_names.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "鲁迅" in " ".join(lines)


def _hanlp(root, people, nrf, words):
    (root / "custom").mkdir(parents=True)
    (root / "person").mkdir()
    (root / "custom" / "人名词典.txt").write_text("\n".join(" ".join(map(str, p)) for p in people), encoding="utf-8")
    (root / "person" / "nrf.txt").write_text("\n".join(nrf), encoding="utf-8")
    (root / "CoreNatureDictionary.txt").write_text("\n".join(f"{w}\t{t}\t1" for w, t in words), encoding="utf-8")


def test_added_people_lists_keep_words_places_brands_and_epithets_out(tmp_path):
    """HanLP's people (news names) and transliterated parts: famous two-character names, full
    foreign names and ancient names come in; nicknames, places, cars, companies, a name glued to
    a particle and dictionary words stay out; name parts go to the context list."""
    thuocl = tmp_path / "thuocl"
    thuocl.mkdir()
    _lexicon(thuocl / "THUOCL_lishimingren.txt", ["鲁迅"])
    _lexicon(thuocl / "THUOCL_animal.txt", ["熊猫"])
    hanlp = tmp_path / "hanlp"
    _hanlp(hanlp, [("吴尊", "nr", 39), ("张大爷", "nr", 20), ("王子和", "nr", 5), ("黄柏塬", "nr", 4),
                   ("申通", "nr", 32), ("特朗普", "nrf", 7), ("欧莱雅", "nrf", 39), ("荣威", "nr", 12),
                   ("熊猫宝宝", "nrf", 9), ("刘雨", "nr", 1)],
           ["保罗", "凯西", "伦敦"], [("欧莱雅集团", "ntc"), ("伦敦", "nsf")])
    brands = tmp_path / "brands"
    brands.mkdir()
    (brands / "car_dict.txt").write_text("荣威\n帕萨特\n", encoding="utf-8")
    (brands / "Company-Shorter-Form（28W）.txt").write_text("申通\n", encoding="utf-8")
    cnc = tmp_path / "cnc" / "Chinese_Names_Corpus"
    cnc.mkdir(parents=True)
    (cnc / "Ancient_Names_Corpus（25W）.txt").write_text("\ufeffBy@x\r\n司馬遷\r\n屈原\r\n", encoding="utf-8")
    known, not_names, context = build(thuocl, hanlp, tmp_path / "cnc", brands)
    assert set(known) == {"鲁迅", "吴尊", "特朗普", "司马迁"}
    assert {"荣威", "帕萨特"} <= set(not_names)
    assert set(context) == {"保罗", "凯西"}
