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
