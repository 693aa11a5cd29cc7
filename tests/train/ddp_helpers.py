"""Process entry points for the distributed tests (spawned children import them by name)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def gather_loss_worker(rank: int, world: int, port: int, feats: dict, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from train.loss import ContrastiveLoss
    n = feats["image"].shape[0] // world
    img = feats["image"][rank * n:(rank + 1) * n].clone().requires_grad_(True)
    txt = feats["text"][rank * n:(rank + 1) * n].clone().requires_grad_(True)
    loss = ContrastiveLoss("global", 64)({"image": img, "text": txt}, torch.tensor(10.0))
    loss.backward()
    queue.put((rank, float(loss.detach()), img.grad.numpy().copy()))  # plain bytes: the child may exit first
    dist.destroy_process_group()
