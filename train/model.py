"""The contrastive model: open_clip towers, a Chinese text tower pooled at `[SEP]`, and a head.

`ModelArch` is everything needed to rebuild a model (saved in each checkpoint). The towers are a
stock `open_clip.CLIP`, so a global-head checkpoint without the conv stem loads in open_clip with
`open_clip.CLIP(**ckpt["open_clip_cfg"]).load_state_dict(ckpt["state_dict"])`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import open_clip
import torch
from open_clip.transformer import text_global_pool
from torch import nn

from train.heads import HEADS, TokenReducer, normalize

# Tower sizes. tiny: a fraction of a second per step on a CPU, with a conv stem of two convolutions
# per stage (measured on the shapes check: shape 52% at 400 steps, against 32% with one convolution
# per stage and a 4-layer text tower); vit-b-32 / vit-l-14: the Wukong paper's models (text: 12
# layers, width 512/8 heads for B, 768/12 heads for L).
PRESETS: dict[str, dict] = {
    "tiny": dict(
        vision=dict(image_size=64, patch_size=16, width=128, layers=4, head_width=32),
        text=dict(width=128, heads=4, layers=2),
        embed_dim=128, token_embed_dim=128, reduced_tokens=8, conv_stem=True, stem_convs_per_stage=2),
    "vit-b-32": dict(
        vision=dict(image_size=224, patch_size=32, width=768, layers=12, head_width=64),
        text=dict(width=512, heads=8, layers=12),
        embed_dim=512, token_embed_dim=256, reduced_tokens=12, conv_stem=False),
    "vit-l-14": dict(
        vision=dict(image_size=224, patch_size=14, width=1024, layers=24, head_width=64),
        text=dict(width=768, heads=12, layers=12),
        embed_dim=768, token_embed_dim=256, reduced_tokens=24, conv_stem=False),
}


class ModelError(ValueError):
    """A model configuration that cannot be built or a checkpoint that does not fit it."""


@dataclass
class ModelArch:
    preset: str
    head: str
    embed_dim: int
    vision_cfg: dict
    text_cfg: dict
    conv_stem: bool
    reduced_tokens: int
    reduced_groups: int
    init_logit_scale: float
    max_logit_scale: float
    tokenwise_chunk: int
    stem_convs_per_stage: int = 1
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelArch":
        return cls(**d)

    def open_clip_cfg(self) -> dict:
        """Keyword arguments of `open_clip.CLIP` for the towers (no token outputs)."""
        return dict(embed_dim=self.embed_dim, vision_cfg=dict(self.vision_cfg),
                    text_cfg=dict(self.text_cfg))


def resolve_arch(cfg, *, vocab_size: int, pad_id: int, sep_id: int, vision_override: dict | None = None,
                 embed_dim_override: int | None = None, conv_stem_override: bool | None = None) -> ModelArch:
    """TrainConfig + tokenizer specials -> a complete architecture."""
    if cfg.model not in PRESETS:
        raise ModelError(f"unknown model preset {cfg.model!r} (known: {', '.join(PRESETS)})")
    if cfg.head not in HEADS:
        raise ModelError(f"unknown head {cfg.head!r} (known: {', '.join(HEADS)})")
    p = PRESETS[cfg.model]
    token_head = cfg.head != "global"
    embed_dim = cfg.embed_dim or (p["token_embed_dim"] if token_head else p["embed_dim"])
    if embed_dim_override:
        embed_dim = embed_dim_override
    vision = dict(vision_override or p["vision"])
    conv_stem = p["conv_stem"] if cfg.conv_stem is None else cfg.conv_stem
    if conv_stem_override is not None:
        conv_stem = conv_stem_override
    text = dict(p["text"], context_length=cfg.context_length, vocab_size=cfg.vocab_size,
                # BERT vocabularies: pool at [SEP], not at the highest token id (open_clip's argmax).
                pool_type="eos", eos_id=sep_id, pad_id=pad_id)
    if vocab_size > cfg.vocab_size:
        raise ModelError(f"tokenizer has {vocab_size} entries, model embeds {cfg.vocab_size}")
    return ModelArch(preset=cfg.model, head=cfg.head, embed_dim=embed_dim, vision_cfg=vision, text_cfg=text,
                     conv_stem=conv_stem, reduced_tokens=cfg.reduced_tokens or p["reduced_tokens"],
                     reduced_groups=cfg.reduced_groups, init_logit_scale=math.log(1 / cfg.init_temperature),
                     max_logit_scale=cfg.max_logit_scale, tokenwise_chunk=cfg.tokenwise_chunk,
                     stem_convs_per_stage=p.get("stem_convs_per_stage", 1))


class ConvStem(nn.Module):
    """Stride-2 3x3 convolutions replacing the ViT patchify (Xiao et al., "Early convolutions
    help transformers see better"): small towers learn shapes far better with it."""

    def __init__(self, width: int, patch_size: int, convs_per_stage: int = 1):
        super().__init__()
        n = int(round(math.log2(patch_size)))
        if 2 ** n != patch_size:
            raise ModelError(f"conv stem needs a power-of-two patch size, got {patch_size}")
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(n):
            c_out = max(16, width >> (n - 1 - i))
            for j in range(max(1, convs_per_stage)):
                # The first convolution of a stage halves the resolution; the others refine at it.
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2 if j == 0 else 1, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.GELU()]
                c_in = c_out
        layers.append(nn.Conv2d(c_in, width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ContrastiveModel(nn.Module):
    """open_clip towers + a similarity head; `forward` returns the features the loss needs."""

    def __init__(self, arch: ModelArch):
        super().__init__()
        self.arch = arch
        cfg = arch.open_clip_cfg()
        cfg["vision_cfg"]["output_tokens"] = arch.head != "global"
        self.clip = open_clip.CLIP(**cfg, init_logit_scale=arch.init_logit_scale)
        if arch.conv_stem:
            v = self.clip.visual
            v.conv1 = ConvStem(v.conv1.out_channels, v.patch_size[0], arch.stem_convs_per_stage)
        self.reducer = (TokenReducer(arch.embed_dim, arch.reduced_tokens, arch.reduced_groups)
                        if arch.head == "reduced" else None)
        self.image_locked = False

    @property
    def token_head(self) -> bool:
        return self.arch.head != "global"

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().clamp(max=self.arch.max_logit_scale)

    def encode_image(self, images: torch.Tensor) -> dict:
        visual = self.clip.visual
        if not self.token_head:
            return {"image": normalize(visual(images))}
        pooled, tokens = visual(images)
        tokens = tokens @ visual.proj  # open_clip leaves token outputs unprojected
        if self.reducer is not None:
            tokens = self.reducer(tokens)
        return {"image": normalize(pooled), "image_tokens": normalize(tokens)}

    def encode_text(self, text: torch.Tensor) -> dict:
        c = self.clip
        cast = c.transformer.get_cast_dtype()
        x = c.token_embedding(text).to(cast) + c.positional_embedding.to(cast)
        x = c.ln_final(c.transformer(x, attn_mask=c.attn_mask))
        pooled = text_global_pool(x, text, "eos", eos_token_id=self.arch.text_cfg["eos_id"])
        out = {"text": normalize(self._project_text(pooled))}
        if self.token_head:
            pad = self.arch.text_cfg["pad_id"]
            # [CLS] sees only itself under the causal mask: a constant, so it is no evidence either.
            mask = (text != pad) & (torch.arange(text.shape[1], device=text.device) > 0)
            out["text_tokens"] = normalize(self._project_text(x))
            out["text_mask"] = mask
        return out

    def _project_text(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.clip.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> dict:
        out = self.encode_image(images)
        out.update(self.encode_text(text))
        return out

    # --- locked-image tuning ---
    def lock_image(self, unlocked_groups: int = 0) -> None:
        self.clip.lock_image_tower(unlocked_groups=unlocked_groups)
        self.image_locked = unlocked_groups == 0

    def train(self, mode: bool = True):
        super().train(mode)
        if self.image_locked:
            # A frozen tower keeps its normalisation statistics too.
            self.clip.visual.eval()
        return self

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.clip.set_grad_checkpointing(enable)


def build_model(arch: ModelArch) -> ContrastiveModel:
    return ContrastiveModel(arch)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
