"""Everything a training run fixes before its first step, in the order it is resolved.

Config (on resume the checkpoint's model keys win) -> shards and their exact sample count ->
tokenizer (rank 0 builds it, every rank uses it; or the checkpoint's) -> architecture and model
(LiT tower loaded and frozen; or the checkpoint's weights and RNG) -> DDP, loss, optimizer,
precision -> run length and learning-rate schedule. The result is one `TrainRun`, read by the loop.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from train.checkpoint import load_checkpoint, resolve_resume
from train.config import EvalConfig, TrainConfig
from train.data import iter_captions, steps_per_epoch
from train.distributed import DistContext, wrap_ddp
from train.lit import LockedImage, load_locked_image
from train.loss import ContrastiveLoss
from train.model import ContrastiveModel, ModelArch, build_model, count_parameters, resolve_arch
from train.schedule import Schedule
from train.shardspec import count_samples, resolve_shards
from train.tokenizer import ChineseTokenizer, build_tokenizer

log = logging.getLogger(__name__)

# Keys of TrainConfig that define the model: on resume, the checkpoint's values win.
MODEL_KEYS = ("model", "head", "conv_stem", "embed_dim", "reduced_tokens", "reduced_groups", "context_length",
              "vocab_size", "tokenizer", "lock_image", "lock_image_unlocked_groups")


class TrainError(RuntimeError):
    """Training cannot continue (no schedule given, gradients non-finite for too long)."""


@dataclass(frozen=True)
class RunLength:
    """Batches per epoch (exact, from the shards' index) and the run's length in optimizer steps."""
    micro_per_epoch: int        # micro-batches per epoch per rank, a multiple of `accum`
    accum: int                  # micro-batches per optimizer step
    steps_per_epoch: int        # optimizer steps per epoch
    total_steps: int | None     # None: the time budget alone ends the run


@dataclass
class TrainRun:
    """What stays fixed while the run trains."""
    cfg: TrainConfig
    ecfg: EvalConfig
    ctx: DistContext
    output: Path
    ckdir: Path
    shards: list[str]
    total_samples: int
    state: dict | None          # the checkpoint resumed from
    tok: ChineseTokenizer
    arch: ModelArch
    model: ContrastiveModel
    ddp: torch.nn.Module        # the model, DDP-wrapped when the world is larger than one
    loss_fn: ContrastiveLoss
    optimizer: torch.optim.Optimizer
    amp_dtype: torch.dtype | None
    length: RunLength
    schedule: Schedule

    @property
    def resumed(self) -> bool:
        return self.state is not None


def precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "bf16":
        return torch.bfloat16
    if cfg.precision != "auto":
        raise TrainError(f"unknown precision {cfg.precision!r} (auto, fp32, bf16)")
    # fp16 autocast on CPU is ~35x slower than fp32: CPU stays fp32 unless bf16 is asked for.
    return torch.bfloat16 if device.type == "cuda" else None


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Gains, biases, embeddings and the temperature are not decayed (as in open_clip).
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def plan_length(cfg: TrainConfig, total_samples: int, world: int) -> RunLength:
    """Steps, else epochs, else the time budget, else the default epochs: the first one given."""
    micro_per_epoch = steps_per_epoch(total_samples, cfg.batch_size, world)
    accum = max(1, cfg.accum_steps)
    opt_steps_per_epoch = max(1, micro_per_epoch // accum)
    if cfg.steps:
        total_steps = cfg.steps
    elif cfg.epochs:
        total_steps = cfg.epochs * opt_steps_per_epoch
    elif cfg.time_budget_s > 0:
        total_steps = None
    elif cfg.default_epochs > 0:
        total_steps = cfg.default_epochs * opt_steps_per_epoch
    else:
        raise TrainError("give a length: train.steps, train.epochs or train.time_budget_s")
    return RunLength(micro_per_epoch=opt_steps_per_epoch * accum, accum=accum,
                     steps_per_epoch=opt_steps_per_epoch, total_steps=total_steps)


def resolve_config(cfg: TrainConfig, state: dict | None) -> TrainConfig:
    if state is None:
        return cfg
    saved = state["config"]
    return dataclasses.replace(cfg, **{k: saved[k] for k in MODEL_KEYS if k in saved})


def make_tokenizer(cfg: TrainConfig, shards: list[str], ctx: DistContext, state: dict | None) -> ChineseTokenizer:
    """The checkpoint's vocabulary on resume; else one built by rank 0 and broadcast to every rank."""
    if state is not None:
        return ChineseTokenizer.from_json(state["tokenizer"], cfg.context_length)
    text = None
    if ctx.is_main:
        tok = build_tokenizer(cfg.tokenizer, iter_captions(shards, cfg.tokenizer_max_captions),
                              cfg.context_length, cfg.vocab_size, cfg.tokenizer_min_frequency)
        text = tok.to_json()
    text = ctx.broadcast_object(text)  # every rank uses rank 0's vocabulary
    return ChineseTokenizer.from_json(text, cfg.context_length)


def make_model(cfg: TrainConfig, tok: ChineseTokenizer, ctx: DistContext,
               state: dict | None) -> tuple[ModelArch, ContrastiveModel]:
    """Architecture and model on the run's device: fresh (LiT tower loaded), or the checkpoint's."""
    locked: LockedImage | None = None
    if cfg.lock_image and state is None:  # on resume the checkpoint already holds the tower
        locked = load_locked_image(cfg.lock_image)
    arch = resolve_arch(cfg, vocab_size=tok.vocab_size, pad_id=tok.pad_id, sep_id=tok.sep_id,
                        vision_override=locked.vision_cfg if locked else None,
                        embed_dim_override=locked.embed_dim if locked else None,
                        conv_stem_override=locked.conv_stem if locked else None)
    if state is not None:
        arch = ModelArch.from_dict(state["arch"])
    torch.manual_seed(cfg.seed)
    model = build_model(arch)
    if locked is not None:
        model.clip.visual.load_state_dict(locked.visual_state)
    if cfg.lock_image:
        model.lock_image(cfg.lock_image_unlocked_groups)
    if state is not None:
        model.clip.load_state_dict(state["state_dict"])
        if model.reducer is not None:
            model.reducer.load_state_dict(state["head_state_dict"])
        torch.set_rng_state(state["torch_rng"])
    model.to(ctx.device)
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    return arch, model


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, state: dict | None) -> torch.optim.Optimizer:
    # The fused kernel (CPU and CUDA): the per-tensor loop cost ~0.2 s per tiny step on a busy CPU.
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    return optimizer


def setup_run(train_cfg: dict, train_shards: str, output: str, resume: str | None,
              eval_cfg: dict | None) -> TrainRun:
    """Resolve, build or restore everything the run needs, on every rank alike."""
    cfg = TrainConfig(**train_cfg)
    ecfg = EvalConfig(**(eval_cfg or {}))
    ctx = DistContext.current(cfg.use_gpu)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out = Path(output)
    ckdir = out / "checkpoints"
    if ctx.is_main:
        ckdir.mkdir(parents=True, exist_ok=True)

    shards = resolve_shards(train_shards)
    total_samples = sum(count_samples(shards).values())

    resume_path = resolve_resume(out, resume)
    state = load_checkpoint(resume_path) if resume_path else None
    cfg = resolve_config(cfg, state)

    tok = make_tokenizer(cfg, shards, ctx, state)
    arch, model = make_model(cfg, tok, ctx, state)
    ddp = wrap_ddp(model, ctx)
    loss_fn = ContrastiveLoss(arch.head, arch.tokenwise_chunk)
    optimizer = make_optimizer(model, cfg, state)
    amp_dtype = precision(cfg, ctx.device)
    length = plan_length(cfg, total_samples, ctx.world)
    run = TrainRun(cfg=cfg, ecfg=ecfg, ctx=ctx, output=out, ckdir=ckdir, shards=shards, total_samples=total_samples,
                   state=state, tok=tok, arch=arch, model=model, ddp=ddp, loss_fn=loss_fn, optimizer=optimizer,
                   amp_dtype=amp_dtype, length=length, schedule=Schedule(cfg, length.total_steps))
    if ctx.is_main:
        log.info("training %s/%s: %d parameters (%d trainable), %d samples in %d shards, "
                 "%d steps/epoch, world %d, device %s, %s", arch.preset, arch.head, count_parameters(model),
                 count_parameters(model, True), total_samples, len(shards), length.steps_per_epoch, ctx.world,
                 ctx.device, "bf16 autocast" if run.amp_dtype else "fp32")
    return run
