"""The Ray Train launcher: `run_training` on N TorchTrainer workers (gloo on CPU, NCCL on GPU).

Kept apart from `train/distributed.py` (the process-group context the loop asks who it is) because
this module needs the loop and the loop needs that context: imports flow one way,
launcher -> loop -> distributed.
"""

from __future__ import annotations

import json
from pathlib import Path

from train.loop import run_training

SUMMARY_FILE = "stats.json"


def _ray_train_worker(config: dict) -> None:
    """Runs inside every Ray Train worker: the ordinary loop, then the summary to the driver."""
    import ray.train

    from shards.atomic import write_json_atomic
    summary = run_training(**config)
    if ray.train.get_context().get_world_rank() == 0:
        # The output directory is shared by all ranks anyway (checkpoints): the driver reads it there.
        write_json_atomic(Path(config["output"]) / SUMMARY_FILE, summary)
    ray.train.report({"steps": summary["steps"]})


def run_with_ray_train(kwargs: dict, *, num_workers: int, use_gpu: bool, cpus_per_worker: int,
                       storage_path: str, name: str) -> dict:
    """Launch `run_training(**kwargs)` on `num_workers` Ray Train workers; returns rank 0's summary.

    `kwargs` travels to the workers pickled: a hook in it (`on_log`) must be a module-level function.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(
        _ray_train_worker,
        train_loop_config=kwargs,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(storage_path=storage_path, name=name),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    return json.loads((Path(kwargs["output"]) / SUMMARY_FILE).read_text(encoding="utf-8"))
