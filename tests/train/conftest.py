"""Small shards in the final format, written once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Busy shared cores: spinning OpenMP waits make CPU training ~10x slower (see docs/train.md).
# Effective when torch is first imported after this point, as in `pytest tests/train`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).parent))

import synth  # noqa: E402


@pytest.fixture(scope="session")
def small_shards(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train_shards")
    synth.write_shards(root / "train", 240, 80, seed=11)
    synth.write_shards(root / "val", 48, 48, seed=12, key_prefix="v")
    return {"root": root, "train": str(root / "train"), "val": str(root / "val")}


@pytest.fixture(scope="session")
def tiny_train_cfg() -> dict:
    """A model small enough for seconds per run on 2 busy cores."""
    return dict(batch_size=8, workers=0, log_every=1, warmup_steps=1, checkpoint_every=1000, shuffle_buffer=16,
                tokenizer_max_captions=500)
