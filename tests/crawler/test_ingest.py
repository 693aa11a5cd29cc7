"""Ingest end to end: one partition to one shard, whole runs on a real local Ray, resume after a crash.

The exactly-once property is checked on the files themselves: every input row is in exactly one
parquet index row, every good URL in exactly one tar sample, every bad one listed with its error.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from crawler.config import DownloadConfig
from crawler.ingest import ingest_partition
from crawler.sources import make_key, plan_partitions, scan_file
from pipelines.config import WukongConfig
from shards.format import iter_tar_samples
from shards.sources import member_offsets
from tests.crawler import corpus
from tests.crawler.servers import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]


def _dl(**kw) -> DownloadConfig:
    base = dict(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=4, retries=1,
                backoff_base=0.05, backoff_max=0.2, max_bytes=2_000_000, concurrency=32, progress_interval=0.2)
    base.update(kw)
    return DownloadConfig(**base)


@pytest.fixture(scope="module")
def server():
    with LoopbackServer() as srv:
        good = corpus.populate(srv)
        srv.good = good
        yield srv


def _load(out: Path) -> tuple[pa.Table, dict[str, dict[str, bytes]], list[str]]:
    tables = [pq.read_table(p) for p in sorted(out.glob("[0-9]*.parquet"))]
    index = pa.concat_tables(tables) if tables else None
    samples: dict[str, dict[str, bytes]] = {}
    tar_keys: list[str] = []
    for tar in sorted(out.glob("[0-9]*.tar")):
        for key, members in iter_tar_samples(tar):
            tar_keys.append(key)
            samples[key] = members
    return index, samples, tar_keys


def _check_exactly_once(out: Path, expected: dict[str, str | None], good_bodies: dict[str, bytes],
                        image_size: int = 224) -> None:
    index, samples, tar_keys = _load(out)
    rows = index.to_pylist()
    urls = Counter(r["url"] for r in rows)
    assert set(urls) == set(expected) and max(urls.values()) == 1, "every input row exactly once"
    assert len(tar_keys) == len(set(tar_keys)), "no sample twice"
    success_keys = {r["key"] for r in rows if r["status"] == "success"}
    assert set(tar_keys) == success_keys
    # The index records where each sample's image and metadata are in its tar (none on failure).
    located = {}
    for tar in sorted(out.glob("[0-9]*.tar")):
        located.update(member_offsets(str(tar))[0])
    for r in rows:
        recorded = (r["jpg_offset"], r["jpg_size"], r["json_offset"], r["json_size"])
        if r["status"] == "success":
            assert recorded == (*located[r["key"]]["jpg"], *located[r["key"]]["json"])
        else:
            assert recorded == (None,) * 4
    for r in rows:
        want = expected[r["url"]]
        if want is None:
            assert r["status"] == "success", r
            name = r["url"].split("/img/")[1].split("?")[0]
            assert r["sha256"] == corpus.sha256_of(good_bodies[name])
            members = samples[r["key"]]
            meta = json.loads(members["json"])
            assert meta["url"] == r["url"] and meta["phash"] == f"{r['phash']:016x}"
            assert members["txt"].decode("utf-8") == r["caption"]
            im = Image.open(io.BytesIO(members["jpg"]))
            assert im.size == (image_size, image_size) and im.mode == "RGB"
            assert (r["width"], r["height"]) == (image_size, image_size)
        else:
            assert r["status"] == "failed" and r["error"] == want, r
            assert r["error_message"]


def test_one_partition_to_one_shard(tmp_path, server):
    expected = corpus.write_wukong_csv(tmp_path / "wukong_100m_0.csv", server, rows=130, bad_every=5)
    cfg = _dl(rows_per_shard=1000)
    part, = plan_partitions([scan_file(tmp_path / "wukong_100m_0.csv", cfg)], cfg.rows_per_shard)
    reports = []
    stats = ingest_partition(part, tmp_path / "out", cfg, progress=reports.append)
    assert sum(r.rows for r in reports) == 130 and sum(r.successes for r in reports) == 104
    assert sum(r.bytes for r in reports) == stats["bytes_downloaded"] > 0
    assert sum((r.errors for r in reports), Counter()) == Counter(stats["by_error"])
    _check_exactly_once(tmp_path / "out", expected, server.good)
    index = pq.read_table(tmp_path / "out" / "00000.parquet").to_pylist()
    assert [r["key"] for r in index] == [make_key(0, i) for i in range(130)]
    assert [r["source_row"] for r in index] == list(range(130))
    # Every failure class has its own code, and the stats count them.
    want = Counter(code for code in expected.values() if code)
    assert stats["by_error"] == dict(want) and len(want) == len(corpus.BAD_KINDS)
    assert stats["by_status"] == {"success": 104, "failed": 26}
    assert json.loads((tmp_path / "out" / "00000_stats.json").read_text()) == stats
    # The EXIF-rotated source (good2: stored 90 degrees turned) is reported in display orientation.
    rotated = next(r for r in index if "/img/good2.jpg" in r["url"])
    w, h = Image.open(io.BytesIO(server.good["good2.jpg"])).size
    assert (rotated["original_width"], rotated["original_height"]) == (h, w)


def test_hostile_rows_keep_what_they_have_in_the_index(tmp_path, server):
    """An ICO image is a sample; a CSV row without its caption field is indexed with its URL and raw
    line, never fetched; both among good rows that are unaffected."""
    from tests.crawler import images
    server.add("icon.ico", images.encode(images.photo(300, 300, seed=3), "ICO", sizes=[(256, 256)]),
               "image/x-icon")
    good, icon, bare = (server.url("/img/good0.jpg?h=0"), server.url("/img/icon.ico?h=1"),
                        server.url("/img/good1.jpg?h=2"))
    (tmp_path / "h.csv").write_text(f"url,caption\n{good},好\n{icon},图标\n{bare}\n", encoding="utf-8")
    cfg = _dl()
    part, = plan_partitions([scan_file(tmp_path / "h.csv", cfg)], cfg.rows_per_shard)
    before = len(server.requests)
    stats = ingest_partition(part, tmp_path / "out", cfg)
    rows = {r["url"]: r for r in pq.read_table(tmp_path / "out" / "00000.parquet").to_pylist()}
    assert stats["by_status"] == {"success": 2, "failed": 1}
    assert rows[icon]["status"] == "success" and rows[icon]["format"] == "ICO"
    assert rows[bare]["status"] == "failed" and rows[bare]["error"] == "malformed_row"
    assert bare in rows[bare]["error_message"] and rows[bare]["source_row"] == 2
    assert not any("h=2" in path for path in server.requests[before:]), "a malformed row is not fetched"


def test_failing_progress_reports_cost_no_sample(tmp_path, server):
    expected = corpus.write_wukong_csv(tmp_path / "w.csv", server, rows=40, bad_every=4, tag="&p=1")
    cfg = _dl(progress_interval=0.0, inline_decode_max_bytes=0)  # every body through the thread pool
    part, = plan_partitions([scan_file(tmp_path / "w.csv", cfg)], cfg.rows_per_shard)

    def broken(delta) -> None:
        raise ValueError("metrics backend down")

    stats = ingest_partition(part, tmp_path / "out", cfg, progress=broken)
    assert stats["by_status"] == {"success": 30, "failed": 10}
    _check_exactly_once(tmp_path / "out", expected, server.good)


def test_idle_cores_signal_moves_decoding_to_the_thread_pool(tmp_path, server, monkeypatch):
    """Small bodies decode on the event loop's thread, unless the run signals idle cores (its last
    wave): then on the pool's threads. The output is the same either way."""
    import threading

    from crawler import ingest
    threads: list[tuple[str, int]] = []
    real = ingest._process_body

    def recording(processor, body):
        threads.append((threading.current_thread().name, len(body)))
        return real(processor, body)

    monkeypatch.setattr(ingest, "_process_body", recording)
    expected = corpus.write_wukong_csv(tmp_path / "w.csv", server, rows=60, bad_every=6, tag="&idle=1")
    asked = []
    for idle, out in ((False, tmp_path / "inline"), (True, tmp_path / "pool")):
        threads.clear()
        cfg = _dl(progress_interval=60.0)  # the signal is asked once, at the first body
        part, = plan_partitions([scan_file(tmp_path / "w.csv", cfg)], cfg.rows_per_shard)
        stats = ingest_partition(part, out, cfg, idle_cores=lambda idle=idle: asked.append(idle) or idle)
        _check_exactly_once(out, expected, server.good)
        assert threads and stats["by_status"]["success"] == 50
        on_pool = [size for name, size in threads if name.startswith("decode")]
        assert len(on_pool) == stats["threaded_decodes"]
        if idle:
            assert len(on_pool) == len(threads)
        else:  # only the bodies too large for the event loop's thread
            large = [size for _, size in threads if size > cfg.inline_decode_max_bytes]
            assert sorted(on_pool) == sorted(large) and len(large) < len(threads) // 4
    assert asked == [False, True]
    # Switched off in the config, the signal is not even asked.
    cfg = _dl(use_idle_cores=False)
    part, = plan_partitions([scan_file(tmp_path / "w.csv", cfg)], cfg.rows_per_shard)
    stats = ingest_partition(part, tmp_path / "off", cfg, idle_cores=lambda: asked.append("off") or True)
    assert "off" not in asked and stats["threaded_decodes"] == len(large)


def test_driver_signals_idle_cores_through_the_output_dir(tmp_path):
    from pipelines.download_job import _idle_cores_signalled, _signal_idle_cores
    assert not _idle_cores_signalled(tmp_path)
    _signal_idle_cores(tmp_path, True)
    assert _idle_cores_signalled(tmp_path)
    _signal_idle_cores(tmp_path, True)
    _signal_idle_cores(tmp_path, False)
    assert not _idle_cores_signalled(tmp_path)
    _signal_idle_cores(tmp_path, False)


def test_run_download_on_ray_and_resume(tmp_path, server, ray_local, capsys):
    from pipelines.download_job import run_download
    expected = corpus.write_wukong_csv(tmp_path / "wukong_100m_0.csv", server, rows=1000)
    cfg = WukongConfig()
    cfg.download = _dl(rows_per_shard=250, processes=2)
    out = tmp_path / "raw"
    stats = run_download([str(tmp_path / "wukong_100m_0.csv")], out, cfg, progress=True)
    bar = capsys.readouterr().err
    assert "1000/1000" in bar and "samples/s" in bar and "success 90.0%" in bar
    assert not (out / "_progress").exists()
    assert stats["rows"] == 1000 and stats["shards_done"] == 4 and stats["failed_shards"] == []
    assert stats["by_status"] == {"success": 900, "failed": 100}
    assert json.loads((out / "stats.json").read_text())["by_error"] == stats["by_error"]
    _check_exactly_once(out, expected, server.good)

    # A crash left shard 2 without its index and a temporary behind: the rerun redoes exactly that shard.
    (out / "00002.parquet").unlink()
    (out / ".00002.tar.abc.tmp").write_bytes(b"partial")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("0000[013].*")}
    again = run_download([str(tmp_path / "wukong_100m_0.csv")], out, cfg, progress=False)
    assert again["shards_written"] == 1 and again["shards_skipped"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("0000[013].*")} == before
    assert not list(out.glob(".*.tmp"))
    _check_exactly_once(out, expected, server.good)
    assert again["by_status"] == stats["by_status"]

    # Other inputs into the same directory are refused, not mixed in.
    from pipelines.download_job import DownloadError
    corpus.write_wukong_csv(tmp_path / "other.csv", server, rows=10)
    with pytest.raises(DownloadError, match="another run"):
        run_download([str(tmp_path / "other.csv")], out, cfg, progress=False)


def _wukong(*args: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "pipelines", "download", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def test_cli_refuses_unusable_input_with_one_line(tmp_path):
    missing = _wukong(str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o"))
    assert missing.returncode == 2 and "input file not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    (tmp_path / "links.csv").write_text("link,caption\nhttp://a.example/x.jpg,x\n")
    no_url = _wukong(str(tmp_path / "links.csv"), "--output", str(tmp_path / "o"))
    assert no_url.returncode == 2 and "no url column 'url'" in no_url.stderr
    (tmp_path / "ok.csv").write_text("url,caption\nhttp://a.example/x.jpg,x\n")
    (tmp_path / "afile").write_text("")
    unwritable = _wukong(str(tmp_path / "ok.csv"), "--output", str(tmp_path / "afile" / "sub"))
    assert unwritable.returncode == 2 and "not writable" in unwritable.stderr
    bad_set = _wukong(str(tmp_path / "ok.csv"), "--output", str(tmp_path / "o"), "--set", "download.resize_mode=x")
    assert bad_set.returncode == 2 and "resize_mode" in bad_set.stderr


@pytest.fixture
def short_tmp():
    """Ray's socket paths must stay under 107 bytes: its temp dir needs a short name."""
    path = Path(tempfile.mkdtemp(prefix="wk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _crash(pid: int) -> None:
    """SIGKILL a driver and every process under it (the Ray it started, whose workers sit in process
    groups of their own): found through the process tree, frozen first so none spawns meanwhile."""
    from pipelines import processes
    tree = processes.with_descendants([processes.record(pid, "driver")])
    for rec in tree:
        if (proc := processes.live(rec)) is not None:
            proc.send_signal(signal.SIGSTOP)
    tree = processes.with_descendants(tree)
    for rec in tree:
        if (proc := processes.live(rec)) is not None:
            proc.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(processes.live(r) for r in tree) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_cli_killed_midway_then_rerun_is_exactly_once(tmp_path, server, short_tmp):
    expected = corpus.write_wukong_csv(tmp_path / "wukong_100m_0.csv", server, rows=1000, tag="&k=1")
    out = tmp_path / "raw"
    args = [str(tmp_path / "wukong_100m_0.csv"), "--output", str(out), "--allow-private", "--processes", "2",
            "--no-progress", "--set", f"ray.temp_dir={short_tmp}", "--set", "ray.include_dashboard=false",
            "--set", "ray.num_cpus=2", "--set", "download.rows_per_shard=100", "--set", "download.concurrency=8",
            "--set", "download.total_timeout=4", "--set", "download.read_timeout=2", "--set", "download.retries=1",
            "--set", "download.backoff_base=0.05", "--set", "download.max_bytes=2000000"]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "download", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "killed.log", "w"), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("*.parquet"))) < 2 and proc.poll() is None:
            time.sleep(0.05)
    finally:
        _crash(proc.pid)  # the driver and the Ray it started, mid-run
        proc.wait()
    # Nothing may complete after the crash: the count is stable.
    done_at_kill = len(list(out.glob("[0-9]*.parquet")))
    time.sleep(2)
    assert len(list(out.glob("[0-9]*.parquet"))) == done_at_kill
    done_at_kill = len(list(out.glob("[0-9]*.parquet")))
    assert 2 <= done_at_kill < 10, (done_at_kill, (tmp_path / "killed.log").read_text()[-2000:])
    assert not (out / "stats.json").exists()
    rerun = _wukong(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["shards_done"] == 10 and summary["rows"] == 1000
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards_skipped"] == done_at_kill and stats["shards_written"] == 10 - done_at_kill
    _check_exactly_once(out, expected, server.good)
