"""The proof tools of bench/scale.py and the crash tests: the process supervisor, the planted raw
shards and the chain accounting (which must see every way a chain can lose or repeat a sample)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bench import rawgen
from bench.chaincheck import check_chain
from bench.proctree import _stat_fields, descendants, kill_tree
from dedup.config import DedupConfig
from dedup.exact import normalize_url
from filters import reasons
from filters.chain import filter_captions
from filters.config import ImageRulesConfig, TextRulesConfig
from filters.image_rules import check_image_size
from shards.format import RAW_INDEX_SCHEMA, AtomicTarWriter, iter_tar_samples

ROOT = Path(__file__).resolve().parents[2]
N = 3000


def _supervise(tmp_path: Path, script: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.proctree", "run", "--report", str(tmp_path / "r.json"),
                             "--interval", "0.1", "--linger", "2", *extra, "--", sys.executable, "-c", script],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _live(pids: list[int]) -> list[int]:
    return [p for p in pids if _stat_fields(p) is not None and _stat_fields(p)[0] != "Z"]


def _children(pid: int) -> list[int]:
    return [p for p in _live(descendants(pid)) if int(_stat_fields(p)[1]) == pid]


def test_supervisor_keeps_orphans_in_its_tree_and_kills_them_by_pid(tmp_path):
    # The command starts a grandchild, whose parent exits at once: an orphan, as a killed raylet leaves.
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import subprocess, sys; "
              "subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(300)\"])'])\n"
              "time.sleep(300)\n")
    sup = _supervise(tmp_path, script)
    deadline = time.monotonic() + 30
    # Until the orphan's parent is gone: the command and the orphan are then both the supervisor's.
    while len(_children(sup.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = _live(descendants(sup.pid))  # the intermediate parent may linger as a zombie
    assert sorted(tree) == sorted(_children(sup.pid)) and len(tree) == 2, tree
    killed = kill_tree(sup.pid)
    assert set(tree) <= set(killed)
    assert sup.wait(timeout=30) == 137  # the command died of SIGKILL
    assert not _live(tree)


def test_supervisor_counts_cpu_of_children_the_kernel_reaped(tmp_path):
    # A parent that ignores SIGCHLD (as Ray's raylet does): its child's time reaches no one's cutime.
    script = ("import signal, subprocess, sys, time\n"
              "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time\\nt = time.process_time()\\n"
              "while time.process_time() - t < 1.0: pass'])\n"
              "p.wait()  # returns when the child ends; the kernel reaps it, its time goes nowhere\n")
    sup = _supervise(tmp_path, script)
    assert sup.wait(timeout=60) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rc"] == 0 and report["left_behind"] == 0
    assert report["cpu_s"] >= 0.8, report
    assert report["peak_driver_rss"] > 1_000_000 and report["peak_tree_pss"] > 1_000_000


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    rawgen.write_raw(out, N, seed=5, rows_per_shard=1000)
    return out


def test_planted_non_chinese_captions_are_rejected_for_their_language():
    # Only that reason: a caption of web words alone ('download photo photo') would be boilerplate.
    rng = np.random.default_rng(1)
    captions = [rawgen.english_caption(rng) for _ in range(20_000)]
    samples, _ = filter_captions(captions, TextRulesConfig())
    wrong = [(c, s.reason) for c, s in zip(captions, samples) if s.reason != reasons.NO_CHINESE]
    assert not wrong, wrong[:5]


def test_raw_shards_hold_what_was_planted(raw):
    summary, planted = rawgen.load_planted(raw)
    role, group, rank = planted["role"], planted["group"], planted["rank"]
    index = pa.concat_tables([pq.read_table(raw / f"{s:05d}.parquet") for s in range(3)])
    assert index.schema.equals(RAW_INDEX_SCHEMA) and index.num_rows == N
    rows = index.to_pylist()
    assert [r["key"] for r in rows] == [rawgen.key_of(i) for i in range(N)]
    assert summary["rows_by_role"]["failed"] == int((role == rawgen.FAILED).sum()) > 0
    rules = ImageRulesConfig()
    for i, r in enumerate(rows):
        if role[i] == rawgen.FAILED:
            assert r["status"] == "failed" and r["error"] and r["phash"] is None
            continue
        verdict = check_image_size(r["original_width"], r["original_height"], rules)
        assert verdict == {rawgen.TOO_SMALL: "too_small", rawgen.BAD_ASPECT: "aspect_ratio"}.get(int(role[i])), r
        if role[i] == rawgen.NOT_CHINESE:
            assert not any("\u4e00" <= c <= "\u9fff" for c in r["caption"])
    for g in np.unique(group[group >= 0]):
        members = [rows[i] for i in np.flatnonzero(group == g)]
        kind = int(role[group == g][0])
        assert 2 <= len(members) <= rawgen.MAX_GROUP
        if kind == rawgen.DUP_URL:
            assert len({normalize_url(m["url"], DedupConfig().url_drop_params) for m in members}) == 1 < len({m["url"] for m in members})
        elif kind in (rawgen.DUP_SHA, rawgen.DUP_PAIR):
            assert len({m["sha256"] for m in members}) == 1 and len({m["phash"] for m in members}) == 1
            assert (len({m["caption"] for m in members}) == 1) == (kind == rawgen.DUP_PAIR)
        else:
            base = members[int(np.flatnonzero(rank[group == g] == 0)[0])]["phash"]
            assert all(bin(m["phash"] ^ base).count("1") <= rawgen.RADIUS for m in members)
            assert len({m["sha256"] for m in members}) == len(members)
    # Every success is one tar sample with a real JPEG; failures have none.
    samples = dict(s for t in sorted(raw.glob("*.tar")) for s in iter_tar_samples(t))
    assert set(samples) == {r["key"] for r in rows if r["status"] == "success"}
    some = next(iter(samples.values()))
    assert Image.open(io.BytesIO(some["jpg"])).size == (rawgen.PAYLOAD_SIDE,) * 2
    assert json.loads(some["json"])["key"] in samples


def _perfect_chain(raw: Path, out: Path, planted) -> None:
    """Outputs a correct chain would write (legacy single files), from the planted truth."""
    role, group, rank = planted["role"], planted["group"], planted["rank"]
    keys = np.array([rawgen.key_of(i) for i in range(role.size)])
    rejected = np.isin(role, list(rawgen.FILTER_REASON))
    kept = (role != rawgen.FAILED) & ~rejected
    (out / "filter").mkdir(parents=True)
    pq.write_table(pa.table({"key": keys[kept]}), out / "filter" / "kept.parquet")
    pq.write_table(pa.table({"key": keys[rejected], "reason": [rawgen.FILTER_REASON[r] for r in role[rejected]]}),
                   out / "filter" / "rejected.parquet")
    survivor = np.arange(role.size)
    for g in np.unique(group[group >= 0]):
        members = np.flatnonzero(group == g)
        survivor[members] = members[rank[members] == 0][0]
    keep = kept & (survivor == np.arange(role.size))
    reason = np.where(keep, "unique", [rawgen.DEDUP_REASON.get(int(r), "unique") for r in role])
    (out / "dedup").mkdir()
    pq.write_table(pa.table({"key": keys[kept], "keep": keep[kept], "reason": reason[kept],
                             "survivor_key": keys[survivor][kept]}), out / "dedup" / "decisions.parquet")
    final = keys[keep]
    for i, chunk in enumerate(np.array_split(final, 2)):
        split = out / "shards" / "train"
        split.mkdir(parents=True, exist_ok=True)
        with AtomicTarWriter(split / f"{i:06d}.tar") as tar:
            for k in chunk:
                tar.write_sample(str(k), {"jpg": b"\xff\xd8", "txt": b"t", "json": b"{}"})
        pq.write_table(pa.table({"key": chunk}), split / f"{i:06d}.parquet")


def _rewrite(path: Path, fn) -> None:
    pq.write_table(fn(pq.read_table(path)), path)


@pytest.mark.parametrize("damage, message", [
    (None, None),
    (lambda o: _rewrite(o / "filter" / "kept.parquet", lambda t: t.slice(1)), "in neither kept nor rejected"),
    (lambda o: _rewrite(o / "filter" / "kept.parquet", lambda t: pa.concat_tables([t, t.slice(0, 1)])),
     "more than once"),
    (lambda o: _rewrite(o / "filter" / "rejected.parquet", lambda t: t.set_column(
        1, "reason", pa.array(["too_short"] * t.num_rows))), "not rejected as"),
    (lambda o: _rewrite(o / "dedup" / "decisions.parquet", lambda t: t.set_column(
        1, "keep", pa.array([True] * t.num_rows))), "do not keep exactly one"),
    (lambda o: _rewrite(o / "shards" / "train" / "000001.parquet", lambda t: t.slice(1)), "missing from the final"),
    (lambda o: (o / "shards" / "train" / "000001.parquet").unlink(), "missing from the final"),
])
def test_chain_accounting_finds_every_loss_and_repeat(raw, tmp_path, damage, message):
    _, planted = rawgen.load_planted(raw)
    _perfect_chain(raw, tmp_path, planted)
    if damage is not None:
        damage(tmp_path)
    result = check_chain(tmp_path / "filter", tmp_path / "dedup", tmp_path / "shards", planted)
    if message is None:
        assert result["problems"] == []
        assert result["shards"]["samples"] == result["dedup"]["kept"] > 0
    else:
        assert any(message in p for p in result["problems"]), result["problems"]
