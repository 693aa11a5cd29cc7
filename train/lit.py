"""Locked-image tuning (LiT): an image tower loaded from a checkpoint, then frozen.

The source is a local checkpoint file (ours, or an open_clip one: a state dict with `visual.*`
keys, optionally under `state_dict` and with a `model_cfg`/`open_clip_cfg`), or, online, an
open_clip `MODEL:PRETRAINED` tag such as `ViT-B-32:openai`. The tower's architecture comes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from train.checkpoint import FORMAT


class LockImageError(ValueError):
    """A LiT source that cannot be read or holds no image tower."""


@dataclass
class LockedImage:
    vision_cfg: dict | None   # None: the preset's tower (the file carried no configuration)
    embed_dim: int
    conv_stem: bool
    visual_state: dict


def _from_file(path: Path) -> LockedImage:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LockImageError(f"cannot read image-tower checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict):
        raise LockImageError(f"{path} holds no state dict")
    cfg = None
    if state.get("format") == FORMAT:
        arch = state["arch"]
        cfg = {"vision_cfg": arch["vision_cfg"], "embed_dim": arch["embed_dim"]}
    else:
        cfg = state.get("open_clip_cfg") or state.get("model_cfg")
    sd = state.get("state_dict", state)
    sd = {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    visual = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    if not visual or "proj" not in visual:
        raise LockImageError(f"{path} holds no open_clip image tower (no visual.* weights)")
    vision_cfg = dict(cfg["vision_cfg"]) if cfg else None
    if vision_cfg:
        vision_cfg.pop("output_tokens", None)
    return LockedImage(vision_cfg=vision_cfg, embed_dim=int(visual["proj"].shape[1]),
                       conv_stem=any(k.startswith("conv1.net.") for k in visual), visual_state=visual)


def _from_tag(spec: str) -> LockedImage:
    import open_clip
    name, _, tag = spec.partition(":")
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise LockImageError(f"unknown open_clip model {name!r} in --lock-image {spec}")
    try:
        model = open_clip.create_model(name, pretrained=tag)  # downloads: online users only
    except Exception as exc:
        raise LockImageError(f"cannot load open_clip {spec}: {str(exc).splitlines()[0]}") from exc
    vision_cfg = dict(cfg["vision_cfg"])
    return LockedImage(vision_cfg=vision_cfg, embed_dim=int(cfg["embed_dim"]), conv_stem=False,
                       visual_state=model.visual.state_dict())


def load_locked_image(spec: str) -> LockedImage:
    p = Path(spec)
    if p.is_file():
        return _from_file(p)
    if ":" in spec and not p.suffix:
        return _from_tag(spec)
    raise LockImageError(f"--lock-image {spec}: no such file, and not an open_clip MODEL:PRETRAINED tag")
