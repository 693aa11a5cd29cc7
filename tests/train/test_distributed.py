"""Two trainer processes through Ray Train's TorchTrainer (gloo on CPU): gathered local loss, DDP,
one checkpoint, the same steps on both ranks, and a loss equal to the single-process one."""

from __future__ import annotations

import dataclasses
import pytest
import torch

from pipelines.config import load_config
from pipelines.train_job import run_pretrain
from train.checkpoint import load_checkpoint


@pytest.mark.slow
def test_two_workers_on_ray_train(ray_local, small_shards, tmp_path, tiny_train_cfg):
    overrides = [f"train.{k}={v}" for k, v in tiny_train_cfg.items()] + [
        "train.num_workers=2", "train.steps=3", "train.cpus_per_worker=1", "train.workers=1"]
    cfg = load_config(overrides=overrides)
    summary = run_pretrain(small_shards["train"], tmp_path / "ddp", cfg)
    assert summary["world"] == 2 and summary["steps"] == 3
    # 2 ranks x 8 samples per step; an epoch of 240 samples is 15 global batches.
    assert summary["samples_seen"] == 48 and summary["steps_per_epoch"] == 15
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert state["position"]["step"] == 3 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_local_loss_with_gathered_features_equals_the_full_batch_loss():
    """Mean of the ranks' local losses == the loss of the whole batch; gradients match too."""
    import socket

    import torch.multiprocessing as mp
    from ddp_helpers import gather_loss_worker
    from train.loss import ContrastiveLoss
    torch.manual_seed(0)
    feats = {k: torch.nn.functional.normalize(torch.randn(8, 16), dim=-1) for k in ("image", "text")}
    img = feats["image"].clone().requires_grad_(True)
    full = ContrastiveLoss("global", 64)({"image": img, "text": feats["text"]}, torch.tensor(10.0))
    full.backward()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=gather_loss_worker, args=(r, 2, port, feats, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    mean_loss = sum(r[1] for r in results) / 2
    assert mean_loss == pytest.approx(float(full.detach()), rel=1e-5)
    # DDP averages gradients over ranks: (sum over ranks of d loss_r) / 2 == d full loss.
    grads = torch.cat([torch.from_numpy(r[2]) for r in results]) / 2
    assert torch.allclose(grads, img.grad, atol=1e-6)
    assert dataclasses.is_dataclass(load_config().train)
