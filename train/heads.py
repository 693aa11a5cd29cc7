"""Similarity heads: global (CLIP), token-wise (FILIP) and Wukong's reduced-token interaction.

Features are L2-normalised before scoring. Token-wise scores are computed in blocks of texts so
that the (images x texts x image tokens x text tokens) similarity never exists at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("global", "tokenwise", "reduced")


class TokenReducer(nn.Module):
    """Wukong's reduced-token layer (TokenLearner style), applied after the image projection.

    LayerNorm, grouped 1x1 convolution then 1x1 convolution to K attention maps, softmax over
    positions, and the attention-weighted sum of a grouped 1x1 convolution's feature map:
    (B, P, D) image tokens -> (B, K, D) reduced tokens.
    """

    def __init__(self, dim: int, num_tokens: int, groups: int):
        super().__init__()
        if dim % groups:
            raise ValueError(f"reduced-token groups {groups} must divide the embedding size {dim}")
        self.norm = nn.LayerNorm(dim)
        self.attn_grouped = nn.Conv1d(dim, dim, kernel_size=1, groups=groups, bias=False)
        self.attn_maps = nn.Conv1d(dim, num_tokens, kernel_size=1, bias=False)
        self.features = nn.Conv1d(dim, dim, kernel_size=1, groups=groups, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(tokens).transpose(1, 2)                      # (B, D, P)
        attn = self.attn_maps(self.attn_grouped(x)).softmax(dim=-1)  # (B, K, P), softmax over positions
        feats = self.features(x)                                   # (B, D, P)
        return torch.einsum("bkp,bdp->bkd", attn, feats)


def global_similarity(image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """(Ni, D) x (Nt, D) normalised features -> (Ni, Nt) cosine similarities."""
    return image @ text.t()


def tokenwise_similarity(image_tokens: torch.Tensor, text_tokens: torch.Tensor, text_mask: torch.Tensor,
                         chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """FILIP late interaction between (Ni, P, D) image tokens and (Nt, Q, D) text tokens.

    Returns (i2t, t2i), both (Ni, Nt): i2t averages over image tokens the best match among the
    text's valid tokens; t2i averages over the text's valid tokens the best image-token match.
    `text_mask` (Nt, Q) is True for real tokens; padding never contributes.
    """
    i2t_blocks, t2i_blocks = [], []
    for start in range(0, text_tokens.shape[0], max(1, chunk)):
        txt = text_tokens[start:start + chunk]
        mask = text_mask[start:start + chunk]
        sim = torch.einsum("ipd,jqd->ijpq", image_tokens, txt)    # (Ni, nt, P, Q)
        neg = torch.finfo(sim.dtype).min
        i2t = sim.masked_fill(~mask[None, :, None, :], neg).amax(dim=3).mean(dim=2)
        best = sim.amax(dim=2)                                     # (Ni, nt, Q)
        m = mask[None].to(best.dtype)
        t2i = (best * m).sum(dim=2) / m.sum(dim=2).clamp_min(1.0)
        i2t_blocks.append(i2t)
        t2i_blocks.append(t2i)
    return torch.cat(i2t_blocks, dim=1), torch.cat(t2i_blocks, dim=1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
