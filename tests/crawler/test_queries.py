"""The query list (crawler/queries.py, `wukong queries`): jieba's real dictionary and word lists."""

from __future__ import annotations

import jieba
import pytest

from crawler.config import CrawlConfig
from crawler.queries import WordEntry, build_query_list, read_queries, read_word_lines, select_queries
from pipelines.cli import main


def test_select_orders_by_frequency_and_drops_by_reason():
    entries = [WordEntry("猫咪", 10, "n"), WordEntry("我们", 999, "r"), WordEntry("狗", 500, "n"),
               WordEntry("天空", 50, "n"), WordEntry("猫咪", 70, "n"), WordEntry("因为", 800, "c"),
               WordEntry("有 空格", 900, "n"), WordEntry("风景", None, None), WordEntry("张伟", 300, "nr")]
    queries, dropped = select_queries(entries, count=10, min_chars=2, exclude_pos=["r", "c", "nr"],
                                      stopwords={"天空"})
    assert queries == ["猫咪", "风景"]
    assert dropped == {"too_short": 1, "stopword": 1, "excluded_pos": 3, "duplicate": 1, "malformed": 1}


def test_frequency_less_words_keep_their_order_after_ranked_ones():
    entries = list(read_word_lines(["# comment", "晚霞", "海浪 5", "", "沙滩", "星空 7 n"]))
    queries, _ = select_queries(entries, count=3, min_chars=2)
    assert queries == ["星空", "海浪", "晚霞"]


def test_jieba_dictionary_default():
    cfg = CrawlConfig()
    queries, dropped = build_query_list(count=300, min_chars=cfg.query_min_chars, exclude_pos=cfg.query_exclude_pos)
    assert len(queries) == 300 and len(set(queries)) == 300
    assert all(len(q) >= 2 for q in queries)
    assert "中国" in queries and "我们" not in queries and "一个" not in queries
    freq = {}
    with jieba.get_dict_file() as fh:
        for line in fh:
            w, f, *_ = line.decode("utf-8").split()
            freq.setdefault(w, int(f))
    ranks = [freq[q] for q in queries]
    assert ranks == sorted(ranks, reverse=True)
    # The 300th query is at least as frequent as any acceptable word left out.
    assert dropped["excluded_pos"] > 0 and dropped["too_short"] > 0


def test_cli_writes_a_query_file(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("\ufeff雪山 30\n湖泊 90\n湖泊 10\n我们 1000\n", encoding="utf-8")
    out = tmp_path / "q" / "queries.txt"
    assert main(["queries", "--words", str(words), "--output", str(out), "--count", "5"]) == 0
    assert read_queries(out) == ["湖泊", "雪山"]
    assert main(["queries", "--output", str(tmp_path / "jieba.txt"), "--count", "20"]) == 0
    assert len(read_queries(tmp_path / "jieba.txt")) == 20


@pytest.mark.parametrize("args", [["--words", "/nonexistent/words.txt"], ["--count", "0"]])
def test_cli_unusable_input_is_a_one_line_error(tmp_path, capsys, args):
    assert main(["queries", "--output", str(tmp_path / "q.txt"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wukong queries: error:")
