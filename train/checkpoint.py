"""Checkpoints: written atomically, `latest.pt` always complete, loadable with `weights_only=True`.

A checkpoint holds `open_clip_cfg` + `state_dict` (the open_clip towers, open_clip's key names),
`head_state_dict` (the reduced-token layer, if any), `arch`, the tokenizer JSON, the optimizer,
the step and data position (epoch, batches done in it), the run's config and counters.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

FORMAT = "wukong-contrastive/1"
LATEST = "latest.pt"
STEP_PATTERN = "step_{step:08d}.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing or not one of ours."""


def save_atomic(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide checkpoints from other users of the run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_checkpoint(directory: str | Path, state: dict, step: int, keep: int) -> Path:
    """step_NNNNNNNN.pt, then latest.pt pointing at the same bytes; older step files pruned."""
    directory = Path(directory)
    step_path = directory / STEP_PATTERN.format(step=step)
    save_atomic(step_path, state)
    fd, tmp = tempfile.mkstemp(prefix=f".{LATEST}.", suffix=".tmp", dir=directory)
    os.close(fd)
    os.unlink(tmp)
    try:
        os.link(step_path, tmp)   # a second name for the same complete file, then an atomic rename
        os.replace(tmp, directory / LATEST)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        save_atomic(directory / LATEST, state)
    steps = sorted(directory.glob("step_*.pt"))
    for old in steps[:-max(1, keep)]:
        old.unlink(missing_ok=True)
    for stale in directory.glob(".*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    return directory / LATEST


def load_checkpoint(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a wukong checkpoint (format {FORMAT})")
    return state


def resolve_resume(output: str | Path, resume: str | None) -> Path | None:
    """`latest` -> OUTPUT/checkpoints/latest.pt when it exists (else a fresh start); else a path."""
    if not resume:
        return None
    if resume == "latest":
        p = Path(output) / "checkpoints" / LATEST
        return p if p.is_file() else None
    p = Path(resume)
    if not p.is_file():
        raise CheckpointError(f"checkpoint to resume not found: {p}")
    return p


def restore_model(state: dict):
    """(ContrastiveModel with the checkpoint's weights, ChineseTokenizer) from a loaded checkpoint."""
    from train.model import ModelArch, build_model
    from train.tokenizer import ChineseTokenizer

    arch = ModelArch.from_dict(state["arch"])
    model = build_model(arch)
    model.clip.load_state_dict(state["state_dict"])
    if model.reducer is not None:
        model.reducer.load_state_dict(state["head_state_dict"])
    tok = ChineseTokenizer.from_json(state["tokenizer"], arch.text_cfg["context_length"])
    return model, tok
