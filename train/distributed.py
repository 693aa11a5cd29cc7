"""Process-group context: who this trainer process is (world, rank, device) and DDP wrapping.

The training loop only asks `DistContext.current()` who it is; the same loop runs single-process
(no process group: world 1) or as one of N Ray Train workers (`train/ray_launcher.py`), which Ray
starts with `torch.distributed` already initialised. The trainer gathers features with gradients
(local loss) and wraps the model in DDP only when the world is larger than one. This module
imports nothing else of `train/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    world: int
    rank: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls, use_gpu: bool = False) -> "DistContext":
        world, rank = 1, 0
        if dist.is_available() and dist.is_initialized():
            world, rank = dist.get_world_size(), dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if use_gpu and torch.cuda.is_available():
            try:
                import ray.train.torch as rtt
                device = rtt.get_device()
            except Exception:  # not under Ray Train: this process's own GPU
                device = torch.device("cuda", local % torch.cuda.device_count())
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        return cls(world=world, rank=rank, local_rank=local, device=device)

    def all_max(self, value: float) -> float:
        """The largest value over all ranks (so every rank takes the same decision)."""
        if self.world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def broadcast_object(self, obj):
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def wrap_ddp(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    if ctx.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    # On CPU, device_ids must be None (DDP rejects a CPU device id); frozen towers are unused params.
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=False)
