"""Ray wiring of the trainer and the evaluation (`wukong pretrain`, `wukong eval`).

One trainer process (`train.num_workers: 1`, the default) runs in this process, without Ray, as on
a laptop. More processes, or GPUs, run through Ray Train's TorchTrainer on the Ray cluster that
`init_ray` starts or attaches to (gloo on CPU, NCCL on GPU); every process then needs the shards
and the output directory at the same path (shared storage on a multi-node cluster).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pipelines.config import WukongConfig
from pipelines.ray_runtime import init_ray
from shards.atomic import write_json_atomic


def _device():
    import torch
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


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
                  resume=resume, eval_cfg=dataclasses.asdict(cfg.eval))
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
