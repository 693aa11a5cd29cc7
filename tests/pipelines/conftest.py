"""Makes the repository root importable (`tests.*` helpers, `bench.*` tools) under importlib mode,
and shares the planted raw shards of the crash and node-loss tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Planted raw shards for the crash and node-loss tests of filter, dedup and shards: big enough
# that a stage is still running when its first part file appears, small enough for seconds of work.
CHAIN_SAMPLES = 30_000
CHAIN_ROWS_PER_SHARD = 2_500


@pytest.fixture(scope="session")
def planted_raw(tmp_path_factory):
    """(raw shard directory, planted roles) from bench/rawgen.py."""
    from bench.rawgen import load_planted, write_raw

    raw = tmp_path_factory.mktemp("chain") / "raw"
    write_raw(raw, CHAIN_SAMPLES, seed=3, rows_per_shard=CHAIN_ROWS_PER_SHARD)
    return raw, load_planted(raw)[1]


@pytest.fixture(scope="session")
def reference_chain(planted_raw, ray_local, tmp_path_factory):
    """Filter and dedup outputs of uninterrupted runs (the public CLI, in this process's Ray)."""
    from pipelines.cli import main
    from tests.pipelines.stagerun import kept_arg

    raw, _ = planted_raw
    base = tmp_path_factory.mktemp("reference")
    assert main(["filter", str(raw), "--output", str(base / "filter")]) == 0
    assert main(["dedup", str(raw), "--output", str(base / "dedup"), "--kept", kept_arg(base / "filter")]) == 0
    return base / "filter", base / "dedup"



@pytest.fixture(scope="session")
def reference_crawl(ray_local, tmp_path_factory):
    """Output of an uninterrupted `wukong crawl` of the crash tests' demo web (this process's Ray):
    what a crawl that was killed or lost a node must still deliver."""
    from pipelines.cli import main
    from tests.pipelines.rawcheck import CRAWL_ARGS

    out = tmp_path_factory.mktemp("reference-crawl") / "crawl"
    assert main(["crawl", "--output", str(out), *CRAWL_ARGS]) == 0
    return out
