"""Exact relations, survivor policy and K captions per cluster, on hand-made metadata."""

from __future__ import annotations

import pandas as pd

from dedup.config import DedupConfig
from dedup.decisions import decide
from dedup.exact import normalize_url


def frame(rows):
    df = pd.DataFrame(rows, columns=["key", "url", "caption", "sha256", "phash", "original_width", "original_height"])
    df["phash"] = pd.array(df["phash"], dtype="UInt64")
    return df


def test_normalize_url():
    drop = DedupConfig().url_drop_params
    a = normalize_url("HTTP://Img.Example.COM:80/a/b.jpg?x=1&utm_source=z&b=2#frag", drop)
    assert a == normalize_url("https://img.example.com/a/b.jpg?b=2&x=1", drop)
    assert normalize_url("https://img.example.com/A/b.jpg", drop) != normalize_url("https://img.example.com/a/b.jpg", drop)
    assert normalize_url("http://h.test:8080/x", drop) == "https://h.test:8080/x"
    assert normalize_url("not a url", drop) is None and normalize_url(None, drop) is None
    assert normalize_url("http://[::1", drop) is None


def test_exact_relations_reasons_and_survivor_policy():
    far = 0xF0F0F0F0F0F0F0F0
    rows = [
        # k0..k3: one picture: k2 is the largest -> survivor; k1 same bytes+caption as k2 -> exact_pair;
        # k0 same bytes, other caption -> exact_sha256; k3 a near copy (3 bits) -> near_phash.
        ("k0", "http://a.test/0.jpg", "猫", "s1", 0x1234, 100, 100),
        ("k1", "http://a.test/1.jpg", "一只猫", "s1", 0x1234, 100, 100),
        ("k2", "http://a.test/2.jpg", "一只猫", "s1", 0x1234, 400, 300),
        ("k3", "http://a.test/3.jpg", "窗台上的猫", "s3", 0x1234 ^ 0b10101, 100, 100),
        # k4/k5: same URL spelled differently, different hashes (the page re-served another size).
        ("k4", "http://b.test/x.jpg?utm_source=q", "狗", "s4", far, 50, 50),
        ("k5", "https://B.test/x.jpg", "一条狗在草地上", "s5", ~far & 0xFFFFFFFFFFFFFFFF, 50, 50),
        # k6: unrelated; k7: equal size and caption length to nothing -> unique.
        ("k6", "http://c.test/6.jpg", "风景", "s6", 0x0FF00FF00FF00FF0, 10, 10),
        ("k7", "http://c.test/7.jpg", "山", "s7", None, 10, 10),
    ]
    decisions, stats = decide(frame(rows), DedupConfig(radius=4))
    d = decisions.set_index("key")
    assert d.loc["k2", "reason"] == "survivor" and d.loc["k2", "keep"]
    assert d.loc["k1", "reason"] == "exact_pair" and d.loc["k1", "survivor_key"] == "k2"
    assert d.loc["k0", "reason"] == "exact_sha256"
    assert d.loc["k3", "reason"] == "near_phash" and d.loc["k3", "phash_distance"] == 3
    # Equal pixels: the longer caption (k5) survives the URL duplicate.
    assert d.loc["k5", "reason"] == "survivor" and d.loc["k4", "reason"] == "exact_url"
    assert d.loc["k4", "survivor_key"] == "k5"
    assert d.loc["k6", "reason"] == "unique" and d.loc["k7", "reason"] == "unique"
    assert d.loc["k7", "phash_distance"] == -1
    assert stats["by_reason"] == {"unique": 2, "survivor": 2, "exact_url": 1, "exact_sha256": 1,
                                  "exact_pair": 1, "near_phash": 1}
    assert stats["kept"] == 4 and stats["examined"] == 8
    assert stats["largest_identical_phash_groups"] == {"0000000000001234": 3}
    # Deterministic: shuffled input, same decisions.
    again, _ = decide(frame(rows[::-1]), DedupConfig(radius=4))
    pd.testing.assert_frame_equal(again, decisions)


def test_smallest_key_breaks_ties_and_k_captions():
    rows = [(f"k{i}", f"http://a.test/{i}.jpg", cap, f"s{i}", 0xABCDEF ^ (1 << i), 64, 64)
            for i, cap in enumerate(["ab", "cd", "ab", "ef", "gh"])]
    d1, _ = decide(frame(rows), DedupConfig(radius=4))
    assert d1["keep"].tolist() == [True, False, False, False, False]
    d3, s3 = decide(frame(rows), DedupConfig(radius=4, captions_per_cluster=3))
    # Ranked k0, k1, k2, k3, k4 (all equal): distinct captions ab, cd, then ef (k2 repeats "ab").
    assert d3["keep"].tolist() == [True, True, False, True, False]
    assert set(d3.loc[d3["keep"], "reason"]) == {"survivor"}
    assert d3.loc[~d3["keep"], "survivor_key"].tolist() == ["k0", "k0"]
    assert s3["clusters_with_duplicates"] == 1


def test_exact_relations_can_be_switched_off():
    rows = [("k0", "http://a.test/x.jpg", "a", "s", 1, 1, 1),
            ("k1", "http://a.test/x.jpg", "b", "s", 1 << 40 | 0xFFFF, 1, 1)]
    d, _ = decide(frame(rows), DedupConfig(exact_url=False, exact_sha256=False))
    assert d["keep"].all()
    d, _ = decide(frame(rows), DedupConfig())
    assert d["keep"].tolist() == [True, False]


def test_normalize_urls_column_equals_row_by_row():
    """The vectorised plain-URL path gives exactly `normalize_url`'s result, on tricky inputs and on
    random combinations of schemes, hosts, ports, paths, queries and fragments."""
    import random

    from dedup.exact import normalize_urls

    drop = DedupConfig().url_drop_params
    fixed = ["http://Img.EX.com:080/a/b.jpg#x", "HTTPS://h.test/", "http://h.test", "http://h.test.",
             "http://./x", "http://h.test:99999/x", "http://h.test:/x", "http://h.test:443/x",
             "https://h.test:80/x", "https://h.test:443", "ftp://h.test/x", "http://user@h.test/x",
             "http://[::1]/x", "http://h.test/a b", " http://h.test/x ", "http://h.test/x\t", "http://h.test/图.jpg",
             "http://h.test/%E5%9B%BE.jpg", "http://h.test/x?b=2&a=1&utm_source=q", "http://h.test/x?", "http://h.test#",
             "http://h.test/x#frag?y=1", "http:/h.test/x", "http//h.test", "", None, "not a url", "http://h_t.test/x",
             "http://h.test:0/x", "http://h.test:00080/x", "http://h.test/x/../y", "HTTP://H.TEST:8080"]
    rng = random.Random(5)
    pieces = {"scheme": ["http", "https", "HTTP", "Https", "ftp", "hTtP"],
              "host": ["h.test", "IMG.Example.COM", "a-b.c.d.", "x", "", "h.test..", "1.2.3.4"],
              "port": ["", ":", ":80", ":443", ":8080", ":0", ":65535", ":65536", ":08080", ":x"],
              "path": ["", "/", "/a/b.jpg", "/A/B", "/a;b=c", "/~u/$x", "/a'b", "/a\"b", "/a%20b", "/a b", "/é"],
              "query": ["", "?", "?a=1", "?utm_source=x&b=2", "?a"],
              "frag": ["", "#", "#f", "#f?x=1", "#a b"]}
    rand = ["{scheme}://{host}{port}{path}{query}{frag}".format(**{k: rng.choice(v) for k, v in pieces.items()})
            for _ in range(3000)]
    urls = fixed + rand
    assert normalize_urls(urls, drop).to_pylist() == [normalize_url(u, drop) for u in urls]
