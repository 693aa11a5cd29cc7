"""A Ray worker node SIGKILLed mid-stage on a two-node cluster: the stage finishes, exactly once.

The cluster (`bench/raycluster.py`) is a head node with one CPU and, per test, a fresh worker node
with two, both on 127.0.0.2, each `ray start --block` under a subreaper. The stage attaches to it
(`RAY_ADDRESS`) as a user's `wukong` command would. Once the worker node runs one of the stage's
tasks, every process of that node is SIGKILLed by PID (its raylet, object store and workers: the
node is gone, with the objects it held). The same command must then finish on its own, without a
rerun, and every good sample must be in its output exactly once.
"""

from __future__ import annotations

import pytest

from bench.chaincheck import check_dedup, check_filter, check_shards
from bench.raycluster import LocalCluster
from tests.crawler import corpus
from tests.crawler.servers import LoopbackServer
from tests.pipelines.rawcheck import CRAWL_ARGS, check_crawl_delivers, check_raw_exactly_once, csv_urls, success_urls
from tests.pipelines.stagerun import StageRun, any_file, kept_arg, stage_env

pytestmark = pytest.mark.slow
FINAL_SAMPLES_PER_SHARD = 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("cluster"), head_cpus=1, object_store_mb=128) as c:
        yield c


@pytest.fixture
def worker(cluster):
    node = cluster.add_worker(cpus=2)
    yield node
    if node.alive():
        node.kill()


def _lose_worker_mid_stage(stage: str, args: list[str], cluster, worker, tmp_path, done_marker,
                           progress=lambda: True) -> StageRun:
    """Start the stage on the cluster, SIGKILL the worker node once `progress` holds and the node
    runs a task of the stage, wait for the stage to end; it must succeed."""
    run = StageRun(stage, args, tmp_path, env=stage_env(cluster.address), name=f"{stage}-node-loss")
    run.wait_until(lambda: progress() and bool(worker.running_tasks()), "a task on the worker node")
    assert not done_marker.exists(), f"{stage} finished before the node was lost"
    assert worker.kill(), "the worker node's processes were killed"
    rc = run.wait(timeout=600)
    assert rc == 0, f"{stage} did not survive the loss of a worker node (rc {rc}):\n{run.tail()}"
    return run


def test_filter_survives_node_loss(planted_raw, cluster, worker, tmp_path):
    raw, planted = planted_raw
    out = tmp_path / "filter"
    # After a first part file: finished partitions' results may sit on the node that dies.
    _lose_worker_mid_stage("filter", [str(raw), "--output", str(out)], cluster, worker, tmp_path, out / "stats.json",
                           any_file(out, "*.parquet"))
    check = check_filter(out, planted)
    assert not check["problems"], check["problems"]


def test_dedup_survives_node_loss(planted_raw, reference_chain, cluster, worker, tmp_path):
    raw, planted = planted_raw
    ref_filter, ref_dedup = reference_chain
    out = tmp_path / "dedup"
    _lose_worker_mid_stage("dedup", [str(raw), "--output", str(out), "--kept", kept_arg(ref_filter)],
                           cluster, worker, tmp_path, out / "stats.json")
    kept = check_filter(ref_filter, planted)["_kept"]
    check = check_dedup(out, planted, kept)
    assert not check["problems"], check["problems"]
    assert (check["_keep"] == check_dedup(ref_dedup, planted, kept)["_keep"]).all()


def test_shards_survive_node_loss(planted_raw, reference_chain, cluster, worker, tmp_path):
    raw, planted = planted_raw
    ref_filter, ref_dedup = reference_chain
    out = tmp_path / "shards"
    _lose_worker_mid_stage("shards", [str(raw), "--output", str(out), "--filter", str(ref_filter), "--dedup",
                                      str(ref_dedup), "--samples-per-shard", str(FINAL_SAMPLES_PER_SHARD)],
                           cluster, worker, tmp_path, out / "stats.json", any_file(out / "train", "*.tar"))
    keep = check_dedup(ref_dedup, planted, check_filter(ref_filter, planted)["_kept"])["_keep"]
    check = check_shards(out, planted["role"].size, keep, tars_to_read=1000)
    assert not check["problems"], check["problems"]


def test_download_survives_node_loss(cluster, worker, tmp_path):
    with LoopbackServer() as server:
        good = corpus.populate(server)
        urls = tmp_path / "urls.csv"
        expected = corpus.write_wukong_csv(urls, server, rows=1000, tag="&node=1")
        out = tmp_path / "raw"
        args = [str(urls), "--output", str(out), "--allow-private", "--no-progress",
                "--set", "download.rows_per_shard=50", "--set", "download.concurrency=8",
                "--set", "download.total_timeout=4", "--set", "download.read_timeout=2",
                "--set", "download.retries=1", "--set", "download.backoff_base=0.05"]
        _lose_worker_mid_stage("download", args, cluster, worker, tmp_path, out / "stats.json")
    assert good
    index = check_raw_exactly_once(out)
    assert sorted(index["url"].to_pylist()) == sorted(csv_urls(urls)), "every input row exactly once"
    errors = dict(zip(index["url"].to_pylist(), index["error"].to_pylist()))
    assert {u for u, e in expected.items() if e is None} == success_urls(index)
    assert all(errors[u] == e for u, e in expected.items() if e is not None)


def test_crawl_survives_node_loss(reference_crawl, cluster, worker, tmp_path):
    out = tmp_path / "crawl"
    _lose_worker_mid_stage("crawl", ["--output", str(out), *CRAWL_ARGS], cluster, worker, tmp_path,
                           out / "stats.json")
    check_crawl_delivers(out, reference_crawl)
