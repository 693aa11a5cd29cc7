"""Symmetric InfoNCE for every head, with the features of all processes gathered (local loss).

Each process scores its own images against every process's texts (and its texts against every
image), so the contrastive batch is the global batch while the logits stay (local x global).
The gather carries gradients (`torch.distributed.nn.all_gather`), as open_clip's
`--gather-with-grad --local-loss`; DDP then averages the per-process losses' gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from train.heads import global_similarity, tokenwise_similarity


def world_and_rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x.contiguous()), dim=0)


class ContrastiveLoss(nn.Module):
    def __init__(self, head: str, tokenwise_chunk: int):
        super().__init__()
        self.head = head
        self.chunk = tokenwise_chunk

    def logits(self, feats: dict, logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image->text logits, text->image logits, labels), both logits (local, global)."""
        world, rank = world_and_rank()
        if self.head == "global":
            img, txt = feats["image"], feats["text"]
            if world > 1:
                all_img, all_txt = gather_with_grad(img), gather_with_grad(txt)
                li = global_similarity(img, all_txt)
                lt = global_similarity(txt, all_img)
            else:
                li = global_similarity(img, txt)
                lt = li.t()
        else:
            img, txt, mask = feats["image_tokens"], feats["text_tokens"], feats["text_mask"]
            if world > 1:
                all_txt, all_mask = gather_with_grad(txt), gather_with_grad(mask.to(txt.dtype)).bool()
                all_img = gather_with_grad(img)
                li, _ = tokenwise_similarity(img, all_txt, all_mask, self.chunk)
                _, t2i = tokenwise_similarity(all_img, txt, mask, self.chunk)
                lt = t2i.t()
            else:
                li, t2i = tokenwise_similarity(img, txt, mask, self.chunk)
                lt = t2i.t()
        n = li.shape[0]
        labels = torch.arange(n, device=li.device) + rank * n
        return logit_scale * li, logit_scale * lt, labels

    def forward(self, feats: dict, logit_scale: torch.Tensor) -> torch.Tensor:
        li, lt, labels = self.logits(feats, logit_scale)
        # fp32 softmax even under bf16 autocast: the logits span ~100x.
        return (F.cross_entropy(li.float(), labels) + F.cross_entropy(lt.float(), labels)) / 2
