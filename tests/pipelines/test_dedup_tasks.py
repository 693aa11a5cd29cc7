"""How the dedup job spreads the permuted tables over Ray tasks."""

from __future__ import annotations

import math

import pytest

from dedup.tables import make_tables
from pipelines.dedup_job import table_tasks


@pytest.mark.parametrize("cpus", [1, 2, 7, 64])
def test_table_tasks_cover_every_table_once(cpus):
    tasks = table_tasks(7, 4, cpus)
    flat = sorted(i for task in tasks for i in task)
    assert flat == list(range(math.comb(7, 4)))
    tables = make_tables(7, 4)
    for task in tasks:  # one ordering per task: its tables share their first key block
        assert len({tables[i].key_blocks[0] for i in task}) == 1
    assert len(tasks) >= min(cpus, 5)


def test_earlier_overlaps_names_the_earlier_raw_indexes_sharing_keys():
    from pipelines.dedup_job import earlier_overlaps

    stats = [{"partition": p, "path": f"r{p}", "key_min": lo, "key_max": hi}
             for p, (lo, hi) in enumerate([("000", "099"), ("100", "199"), ("050", "120"), ("200", "299"),
                                           ("300", "300"), ("300", "399")])]
    assert earlier_overlaps(stats) == {2: ["r0", "r1"], 5: ["r4"]}
    assert earlier_overlaps(stats[:2]) == {}


def test_earlier_overlaps_equals_every_pair_compared():
    """Against the quadratic definition on random ranges (many overlapping, many nested); and
    100k disjoint ranges (raw shards of a 1B-row run) give nothing, in one pass over them."""
    import random

    from pipelines.dedup_job import earlier_overlaps

    rng = random.Random(7)
    for _ in range(20):
        bounds = [sorted(f"{rng.randrange(1000):04d}" for _ in range(2)) for _ in range(rng.randrange(1, 60))]
        stats = [{"partition": p, "path": f"r{p}", "key_min": lo, "key_max": hi} for p, (lo, hi) in enumerate(bounds)]
        want: dict[int, list[str]] = {}
        for p, (lo, hi) in enumerate(bounds):
            earlier = [f"r{q}" for q, (lo2, hi2) in enumerate(bounds[:p]) if not (hi2 < lo or lo2 > hi)]
            if earlier:
                want[p] = earlier
        assert earlier_overlaps(stats) == want
    disjoint = [{"partition": p, "path": f"r{p}", "key_min": f"{p:06d}000000", "key_max": f"{p:06d}009999"}
                for p in range(100_000)]
    assert earlier_overlaps(disjoint) == {}


def test_resolve_kept_accepts_filter_dir_kept_dir_and_legacy_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.dedup_job import resolve_kept
    from shards.parts import IncompleteOutput, write_manifest, write_part

    t = pa.table({"key": ["000000000001", "000000000002"], "caption": ["a", "b"]})
    write_manifest(tmp_path / "f" / "kept", [write_part(tmp_path / "f" / "kept", 0, t)])
    pq.write_table(t, tmp_path / "kept.parquet")
    for arg in (tmp_path / "f", tmp_path / "f" / "kept", tmp_path / "kept.parquet"):
        assert resolve_kept(arg).rows == 2
    assert resolve_kept(tmp_path).meta == {"legacy": True}  # a directory holding kept.parquet
    (tmp_path / "g" / "kept").mkdir(parents=True)
    with pytest.raises(IncompleteOutput):
        resolve_kept(tmp_path / "g")
    with pytest.raises(FileNotFoundError):
        resolve_kept(tmp_path / "missing")
