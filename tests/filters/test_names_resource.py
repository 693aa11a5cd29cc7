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
    known, not_names = build(tmp_path)
    # Common words (田间 n, 尚书 n), a place, a non-Han entry and a surname-less fragment are out.
    assert known == sorted(["鲁迅", "袁隆平", "普京", "诸葛亮"])
    # Only entries that start like a name are kept as non-names (北京 does not).
    assert not_names == sorted(["张家界", "王府井", "宫保鸡丁", "白菜"])
    assert main(["--thuocl", str(tmp_path), "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "known_names.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "鲁迅" in " ".join(lines)
