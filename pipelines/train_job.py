"""Ray wiring of the trainer and the evaluation (`wukong pretrain`, `wukong eval`).

One trainer process (`train.num_workers: 1`, the default) runs in this process, without Ray, as on
a laptop. More processes, or GPUs, run through Ray Train's TorchTrainer on the Ray cluster that
`init_ray` starts or attaches to (gloo on CPU, NCCL on GPU); every process then needs the shards
and the output directory at the same path (shared storage on a multi-node cluster).

Progress goes to the Ray metrics endpoint through the trainer's `on_log` hook (rank 0):
counter `wukong_train_steps`, gauges `wukong_train_samples_per_s` and `wukong_train_loss`.
Like every stage's metrics they reach Ray only from a process where Ray runs: always in Ray Train
workers; in the single-process run when the caller started Ray (as `wukong demo` does), else
they are dropped and the log, TensorBoard and the summary remain.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pipelines import metrics
from pipelines.config import WukongConfig
from pipelines.ray_runtime import init_ray
from shards.atomic import write_json_atomic


def _device():
    import torch
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def report_train_progress(step: int, progress: dict) -> None:
    """The trainer's `on_log` hook: steps, samples/s and loss as Ray metrics of stage "train".

    Module-level, so Ray Train can pickle it (by reference) into its workers."""
    metrics.count("train", "steps", progress.get("steps_since_last_log", 0), "optimizer steps taken")
    metrics.gauge("train", "samples_per_s", progress["samples_per_s"], "samples/s of this run so far (rank 0)")
    metrics.gauge("train", "loss", progress["loss"], "contrastive loss of the last logged step")


def run_pretrain(train_shards: str, output: str | Path, cfg: WukongConfig, val_shards: str | None = None,
                 resume: str | None = None) -> dict:
    """Train; writes OUTPUT/checkpoints/latest.pt and OUTPUT/stats.json; returns the summary."""
    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Absolute paths: Ray Train workers do not start in this directory.
    spec = "::".join(str(Path(p).resolve()) if "{" not in p else os.path.abspath(p)
                     for p in train_shards.split("::") if p.strip())
    val = None
    if val_shards:
        val = "::".join(str(Path(p).resolve()) if "{" not in p else os.path.abspath(p)
                        for p in val_shards.split("::") if p.strip())
    kwargs = dict(train_cfg=dataclasses.asdict(cfg.train), train_shards=spec, output=str(out), val_shards=val,
                  resume=resume, eval_cfg=dataclasses.asdict(cfg.eval), on_log=report_train_progress)
    t = cfg.train
    if t.num_workers <= 1 and not t.use_gpu:
        from train.loop import run_training
        summary = run_training(**kwargs)
    else:
        from train.ray_launcher import run_with_ray_train
        init_ray(cfg.ray)
        summary = run_with_ray_train(kwargs, num_workers=max(1, t.num_workers), use_gpu=t.use_gpu,
                                     cpus_per_worker=t.cpus_per_worker, storage_path=str(out / "ray_train"),
                                     name="pretrain")
    write_json_atomic(out / "stats.json", summary)
    return summary


def _load(checkpoint: str | Path):
    from train.checkpoint import load_checkpoint, restore_model
    model, tok = restore_model(load_checkpoint(checkpoint))
    device = _device()
    return model.to(device).eval(), tok, device


def run_eval_zeroshot(checkpoint: str | Path, images: str | Path, classnames: str | Path, cfg: WukongConfig,
                      output: str | Path | None = None) -> dict:
    from train.evaluate import zero_shot
    model, tok, device = _load(checkpoint)
    result = zero_shot(model, tok, images, classnames, cfg.eval, device)
    result["checkpoint"] = str(checkpoint)
    if output:
        write_json_atomic(Path(output) / "stats.json", result)
    return result


def run_eval_retrieval(checkpoint: str | Path, shards: str, cfg: WukongConfig,
                       output: str | Path | None = None) -> dict:
    from train.evaluate import retrieval
    model, tok, device = _load(checkpoint)
    result = retrieval(model, tok, shards, cfg.eval, device)
    result["checkpoint"] = str(checkpoint)
    if output:
        write_json_atomic(Path(output) / "stats.json", result)
    return result
