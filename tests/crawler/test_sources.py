"""URL-list readers on real files: every format, partitioned reading, stable keys, malformed rows."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.config import DownloadConfig
from crawler.sources import (MALFORMED_ROW, MISSING_URL, RAW_TEXT_MAX_CHARS, SourceError, make_key, plan_partitions,
                             read_partition, scan_file)

CAPTIONS = ["一只猫坐在窗台上", "逗号, 和 \"引号\"", "多行\n说明", "", "高清壁纸 风景 4k", "tab\there"]


def _rows(n: int) -> list[tuple[str, str]]:
    return [(f"http://img.example/{i}.jpg?q={i}", CAPTIONS[i % len(CAPTIONS)] + f" #{i}") for i in range(n)]


def _read_all(paths, cfg) -> list:
    scans = [scan_file(p, cfg) for p in paths]
    parts = plan_partitions(scans, cfg.rows_per_shard)
    out = []
    for part in parts:
        rows = list(read_partition(part, cfg))
        assert len(rows) == part.num_rows
        out += [(part.file_index, r) for r in rows]
    return out, parts


def _write_csv(path, rows, delimiter=",", header=("url", "caption"), bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def test_wukong_csv_partitions_cover_every_row_once(tmp_path):
    rows = _rows(53)
    _write_csv(tmp_path / "wukong_100m_0.csv", rows, bom=True)
    cfg = DownloadConfig(rows_per_shard=7)
    got, parts = _read_all([tmp_path / "wukong_100m_0.csv"], cfg)
    assert [p.num_rows for p in parts] == [7] * 7 + [4]
    assert [p.shard for p in parts] == list(range(8))
    assert [(r.url, r.caption) for _, r in got] == rows
    assert [r.row for _, r in got] == list(range(53))
    assert all(r.error is None for _, r in got)


def test_formats_read_the_same_rows(tmp_path):
    rows = _rows(25)
    _write_csv(tmp_path / "a.tsv", rows, delimiter="\t")
    with open(tmp_path / "b.jsonl", "w", encoding="utf-8") as fh:
        for u, c in rows:
            fh.write(json.dumps({"url": u, "caption": c}, ensure_ascii=False) + "\n")
    table = pa.table({"url": [u for u, _ in rows], "caption": [c for _, c in rows]})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=4)
    with gzip.open(tmp_path / "d.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        w.writerows(rows)
    (tmp_path / "e.json").write_text(json.dumps([{"url": u, "caption": c} for u, c in rows], ensure_ascii=False))
    cfg = DownloadConfig(rows_per_shard=6)
    for name in ["a.tsv", "b.jsonl", "c.parquet", "d.csv.gz", "e.json"]:
        got, parts = _read_all([tmp_path / name], cfg)
        assert [(r.url, r.caption) for _, r in got] == rows, name
        assert [r.row for _, r in got] == list(range(25)), name
        assert len(parts) == 5


def test_txt_lists_and_configurable_columns(tmp_path):
    (tmp_path / "urls.txt").write_text("http://a.example/1.jpg\n\nhttp://a.example/2.jpg\n")
    got, _ = _read_all([tmp_path / "urls.txt"], DownloadConfig(caption_col=""))
    assert [(r.row, r.url, r.caption) for _, r in got] == [(0, "http://a.example/1.jpg", None),
                                                           (1, "http://a.example/2.jpg", None)]
    # img2dataset-style parquet with other column names and extra columns kept.
    pq.write_table(pa.table({"URL": ["http://a.example/x.jpg", None], "TEXT": ["x", "y"],
                             "similarity": [0.3, 0.4]}), tmp_path / "laion.parquet")
    cfg = DownloadConfig(url_col="URL", caption_col="TEXT", save_additional_columns=["similarity"])
    got, _ = _read_all([tmp_path / "laion.parquet"], cfg)
    first, second = (r for _, r in got)
    assert (first.url, first.caption, first.extra) == ("http://a.example/x.jpg", "x", {"similarity": 0.3})
    assert second.error == MISSING_URL and second.extra == {"similarity": 0.4}


def test_malformed_rows_are_counted_not_fatal(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text('url,caption\nhttp://a.example/0.jpg,ok\nhttp://a.example/1.jpg,too,many\n,empty url\n'
                 'http://a.example/3.jpg,fine\n', encoding="utf-8")
    got, _ = _read_all([p], DownloadConfig(rows_per_shard=2))
    assert [(r.row, r.error) for _, r in got] == [(0, None), (1, MALFORMED_ROW), (2, MISSING_URL), (3, None)]
    j = tmp_path / "bad.jsonl"
    j.write_text('{"url": "http://a.example/0.jpg", "caption": "a"}\n{not json\n[1, 2]\n'
                 '{"url": "http://a.example/3.jpg"}\n', encoding="utf-8")
    got, _ = _read_all([j], DownloadConfig(rows_per_shard=3))
    assert [(r.row, r.error) for _, r in got] == [(0, None), (1, MALFORMED_ROW), (2, MALFORMED_ROW), (3, None)]
    assert got[3][1].caption is None
    assert "raw: '{not json'" in got[1][1].message and "raw: '[1, 2]'" in got[2][1].message


def test_malformed_rows_keep_the_fields_they_have_and_their_raw_text(tmp_path):
    """A row without its caption field, one with a field too many, one the csv module cannot parse:
    each keeps the URL (and caption) it holds and quotes its raw line, so the user can find it."""
    p = tmp_path / "hostile.csv"
    p.write_text('url,caption,source\n'
                 'http://a.example/0.jpg,good,s0\n'
                 'http://a.example/1.jpg\n'
                 'http://a.example/2.jpg,逗号,未加引号,s2\n'
                 'http://a.example/3.jpg,"unterminated\n', encoding="utf-8")
    cfg = DownloadConfig(rows_per_shard=2, save_additional_columns=["source"])
    got = [r for _, r in _read_all([p], cfg)[0]]
    assert [(r.row, r.error) for r in got] == [(0, None), (1, MALFORMED_ROW), (2, MALFORMED_ROW), (3, MALFORMED_ROW)]
    assert (got[1].url, got[1].caption, got[1].extra) == ("http://a.example/1.jpg", None, {"source": None})
    assert "1 fields, header has 3" in got[1].message and "raw: 'http://a.example/1.jpg'" in got[1].message
    assert (got[2].url, got[2].caption, got[2].extra) == ("http://a.example/2.jpg", "逗号", {"source": "未加引号"})
    assert "raw: 'http://a.example/2.jpg,逗号,未加引号,s2'" in got[2].message
    # An unterminated quote swallows the rest of the file into one field: still one row, URL kept.
    assert got[3].url == "http://a.example/3.jpg" and "unterminated" in got[3].message
    # Quoting is bounded: a huge malformed line does not become a huge message.
    big = tmp_path / "big.jsonl"
    big.write_text('{"url": "http://a.example/0.jpg", "caption": "ok"}\n'
                   '{"url": "http://a.example/1.jpg", "caption": "' + "长" * 50_000 + '"\n', encoding="utf-8")
    (_, row) = [r for _, r in _read_all([big], DownloadConfig())[0]]
    assert row.error == MALFORMED_ROW and len(row.message) < RAW_TEXT_MAX_CHARS + 400


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"url,caption\nhttp://a.example/0.jpg,caf\xe9\nhttp://a.example/1.jpg,ok\n")
    got, _ = _read_all([p], DownloadConfig())
    assert [r.caption for _, r in got] == ["caf\ufffd", "ok"]


def test_unusable_inputs_raise_one_line_errors(tmp_path):
    cfg = DownloadConfig()
    with pytest.raises(SourceError, match="not found"):
        scan_file(tmp_path / "missing.csv", cfg)
    _write_csv(tmp_path / "nourl.csv", [("a", "b")], header=("link", "caption"))
    with pytest.raises(SourceError, match="no url column 'url'"):
        scan_file(tmp_path / "nourl.csv", cfg)
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(SourceError, match="format"):
        scan_file(tmp_path / "x.xlsx", cfg)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(SourceError, match="parquet"):
        scan_file(tmp_path / "broken.parquet", cfg)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="empty"):
        scan_file(tmp_path / "empty.csv", cfg)


def test_keys_are_stable_and_unique_across_files(tmp_path):
    _write_csv(tmp_path / "f0.csv", _rows(12))
    _write_csv(tmp_path / "f1.csv", _rows(5))
    cfg = DownloadConfig(rows_per_shard=5)
    got, parts = _read_all([tmp_path / "f0.csv", tmp_path / "f1.csv"], cfg)
    keys = [make_key(fi, r.row) for fi, r in got]
    assert len(set(keys)) == 17
    assert keys[0] == "000000000000" and keys[12] == "001000000000" and keys[11] == "000000000011"
    assert [(p.file_index, p.start_row) for p in parts] == [(0, 0), (0, 5), (0, 10), (1, 0)]
    again, _ = _read_all([tmp_path / "f0.csv", tmp_path / "f1.csv"], cfg)
    assert [make_key(fi, r.row) for fi, r in again] == keys
