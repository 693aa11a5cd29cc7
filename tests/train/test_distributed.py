"""Two trainer processes through Ray Train's TorchTrainer (gloo on CPU): gathered local loss, DDP,
one checkpoint, the same steps on both ranks, progress on the Ray metrics endpoint from rank 0,
and a loss equal to the single-process one."""

from __future__ import annotations

import dataclasses
import math
import re
import time
import urllib.request

import pytest
import torch

from pipelines.config import load_config
from pipelines.train_job import run_pretrain
from train.checkpoint import load_checkpoint


_SERIES = re.compile(r'^(ray_wukong_train_\w+)\{([^}]*)\} (\S+)$')


def _train_series() -> dict[tuple[str, str], float]:
    """(metric, WorkerId) -> value of the wukong_train_* series of this run on the node's endpoint."""
    import ray
    node = ray._private.worker.global_worker.node
    url = f"http://{node.node_ip_address}:{node.metrics_export_port}/metrics"
    job = ray.get_runtime_context().get_job_id()
    driver = ray.get_runtime_context().get_worker_id()  # this process: single-process runs of other tests
    found = {}
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        m = _SERIES.match(line)
        if m and f'run_id="{job}"' in m.group(2):
            worker = re.search(r'WorkerId="([^"]*)"', m.group(2)).group(1)
            if worker != driver:
                found[(m.group(1), worker)] = float(m.group(3))
    return found


@pytest.mark.slow
def test_two_workers_on_ray_train(ray_local, small_shards, tmp_path, tiny_train_cfg):
    before = _train_series()  # other tests of the session may have reported train metrics too
    overrides = [f"train.{k}={v}" for k, v in tiny_train_cfg.items()] + [
        "train.num_workers=2", "train.steps=3", "train.cpus_per_worker=1", "train.workers=1"]
    cfg = load_config(overrides=overrides)
    summary = run_pretrain(small_shards["train"], tmp_path / "ddp", cfg)
    assert summary["world"] == 2 and summary["steps"] == 3
    # 2 ranks x 8 samples per step; an epoch of 240 samples is 15 global batches.
    assert summary["samples_seen"] == 48 and summary["steps_per_epoch"] == 15
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert state["position"]["step"] == 3 and all(torch.isfinite(v).all() for v in state["state_dict"].values())
    # The on_log hook ran inside the rank-0 worker only: one new series of each metric, 3 steps in all.
    deadline, new = time.time() + 60, {}
    while time.time() < deadline:  # workers export their metrics every few seconds
        new = {k: v for k, v in _train_series().items() if k not in before}
        if any(name == "ray_wukong_train_steps_total" and v >= 3 for (name, _), v in new.items()):
            break
        time.sleep(2)
    steps = {w: v for (name, w), v in new.items() if name == "ray_wukong_train_steps_total"}
    assert list(steps.values()) == [3.0], new
    (worker,) = steps
    assert math.isfinite(new[("ray_wukong_train_loss", worker)]) and new[("ray_wukong_train_loss", worker)] > 0
    assert new[("ray_wukong_train_samples_per_s", worker)] > 0


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
