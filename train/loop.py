"""The training loop: stream shards, step, log, checkpoint atomically, resume, summarise.

Runs the same single-process and as one Ray Train worker among many (see train/distributed.py).
A step whose gradients are not finite is skipped and counted (never applied); the data position
(epoch, batches done in it) is part of every checkpoint, so `--resume latest` continues where the
last checkpoint left off, with the optimizer, the schedule and the tokenizer of that run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from train.checkpoint import FORMAT, load_checkpoint, resolve_resume, write_checkpoint
from train.config import EvalConfig, TrainConfig
from train.data import StreamSpec, iter_captions, make_loader, normalize_images, steps_per_epoch
from train.distributed import DistContext, wrap_ddp
from train.lit import LockedImage, load_locked_image
from train.loss import ContrastiveLoss
from train.model import build_model, count_parameters, resolve_arch
from train.shardspec import count_samples, resolve_shards
from train.tokenizer import ChineseTokenizer, build_tokenizer

log = logging.getLogger(__name__)

# Keys of TrainConfig that define the model: on resume, the checkpoint's values win.
MODEL_KEYS = ("model", "head", "conv_stem", "embed_dim", "reduced_tokens", "reduced_groups", "context_length",
              "vocab_size", "tokenizer", "lock_image", "lock_image_unlocked_groups")


class TrainError(RuntimeError):
    """Training cannot continue (no schedule given, gradients non-finite for too long)."""


def _precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "bf16":
        return torch.bfloat16
    if cfg.precision != "auto":
        raise TrainError(f"unknown precision {cfg.precision!r} (auto, fp32, bf16)")
    # fp16 autocast on CPU is ~35x slower than fp32: CPU stays fp32 unless bf16 is asked for.
    return torch.bfloat16 if device.type == "cuda" else None


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
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


class Schedule:
    """Linear warmup then cosine decay over the run's progress (steps or time, whichever is further)."""

    def __init__(self, cfg: TrainConfig, total_steps: int | None):
        self.cfg = cfg
        self.total = total_steps
        self.warmup = min(cfg.warmup_steps, max(0, (total_steps or 10**12) // 2))

    def progress(self, step: int, elapsed: float) -> float:
        p = 0.0
        if self.total:
            p = step / self.total
        if self.cfg.time_budget_s > 0:
            p = max(p, elapsed / self.cfg.time_budget_s)
        return min(1.0, p)

    def lr(self, step: int, elapsed: float) -> float:
        c = self.cfg
        if self.total:
            warm = step / self.warmup if self.warmup and step < self.warmup else 1.0
        else:
            span = c.warmup_fraction * c.time_budget_s
            warm = min(1.0, elapsed / span) if span > 0 else 1.0
        warm = max(warm, 1.0 / max(1, self.warmup or 1)) if warm < 1.0 else 1.0
        cos = 0.5 * (1.0 + math.cos(math.pi * self.progress(step, elapsed)))
        return (c.min_lr + (c.lr - c.min_lr) * cos) * warm


def _steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Samples/s over the second half of the run's steps (start-up and first batches excluded)."""
    if len(marks) < 4:
        return None
    (t0, s0), (t1, s1) = marks[len(marks) // 2], marks[-1]
    return (s1 - s0) / max(1e-9, t1 - t0)


def _build_tokenizer(cfg: TrainConfig, shards: list[str], ctx: DistContext) -> ChineseTokenizer:
    text = None
    if ctx.is_main:
        tok = build_tokenizer(cfg.tokenizer, iter_captions(shards, cfg.tokenizer_max_captions),
                              cfg.context_length, cfg.vocab_size, cfg.tokenizer_min_frequency)
        text = tok.to_json()
    text = ctx.broadcast_object(text)  # every rank uses rank 0's vocabulary
    return ChineseTokenizer.from_json(text, cfg.context_length)


class _Logger:
    """Progress bar + TensorBoard on rank 0; nothing elsewhere."""

    def __init__(self, output: Path, ctx: DistContext, total: int | None, start: int):
        self.enabled = ctx.is_main
        self.tb = self.bar = None
        if not self.enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(output / "tensorboard"))
        except Exception as exc:  # TensorBoard missing or unwritable: the terminal log remains
            log.warning("TensorBoard disabled: %s", exc)
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr,
                        mininterval=2.0, disable=not sys.stderr.isatty() and total is None)

    def step(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    def advance(self, n: int = 1) -> None:
        if self.enabled and self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb:
            self.tb.flush()
            self.tb.close()


def _checkpoint_state(model, arch, tok, optimizer, cfg: TrainConfig, pos: dict, counters: dict) -> dict:
    return {
        "format": FORMAT,
        "open_clip_cfg": arch.open_clip_cfg(),
        "state_dict": model.clip.state_dict(),
        "head_state_dict": model.reducer.state_dict() if model.reducer is not None else {},
        "arch": arch.to_dict(),
        "tokenizer": tok.to_json(),
        "optimizer": optimizer.state_dict(),
        "config": dataclasses.asdict(cfg),
        "position": dict(pos),
        "counters": dict(counters),
        "torch_rng": torch.get_rng_state(),
    }


def run_training(train_cfg: dict, train_shards: str, output: str, val_shards: str | None = None,
                 resume: str | None = None, eval_cfg: dict | None = None) -> dict:
    """Train as configured; returns the run summary (the same dict on every rank; rank 0 adds val)."""
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
    counts = count_samples(shards)
    total_samples = sum(counts.values())

    resume_path = resolve_resume(out, resume)
    state = load_checkpoint(resume_path) if resume_path else None
    if state is not None:
        saved = state["config"]
        cfg = dataclasses.replace(cfg, **{k: saved[k] for k in MODEL_KEYS if k in saved})

    # --- tokenizer, architecture, model ---
    locked: LockedImage | None = None
    if state is not None:
        tok = ChineseTokenizer.from_json(state["tokenizer"], cfg.context_length)
    else:
        tok = _build_tokenizer(cfg, shards, ctx)
    if cfg.lock_image and state is None:  # on resume the checkpoint already holds the tower
        locked = load_locked_image(cfg.lock_image)
    arch = resolve_arch(cfg, vocab_size=tok.vocab_size, pad_id=tok.pad_id, sep_id=tok.sep_id,
                        vision_override=locked.vision_cfg if locked else None,
                        embed_dim_override=locked.embed_dim if locked else None,
                        conv_stem_override=locked.conv_stem if locked else None)
    if state is not None:
        from train.model import ModelArch
        arch = ModelArch.from_dict(state["arch"])
    torch.manual_seed(cfg.seed)
    model = build_model(arch)
    if locked is not None and state is None:
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
    ddp = wrap_ddp(model, ctx)
    loss_fn = ContrastiveLoss(arch.head, arch.tokenwise_chunk)
    # The fused kernel (CPU and CUDA): the per-tensor loop cost ~0.2 s per tiny step on a busy CPU.
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    amp_dtype = _precision(cfg, ctx.device)

    # --- schedule: exact batches per epoch from the index ---
    micro_per_epoch = steps_per_epoch(total_samples, cfg.batch_size, ctx.world)
    accum = max(1, cfg.accum_steps)
    opt_steps_per_epoch = max(1, micro_per_epoch // accum)
    micro_per_epoch = opt_steps_per_epoch * accum
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
    schedule = Schedule(cfg, total_steps)

    pos = dict(state["position"]) if state is not None else {"step": 0, "epoch": 0, "batch_in_epoch": 0,
                                                              "samples": 0, "train_seconds": 0.0}
    counters: Counter = Counter(state["counters"] if state is not None else {})
    resumed_from = pos["step"] if state is not None else None
    logger = _Logger(out, ctx, total_steps, pos["step"])
    if ctx.is_main:
        log.info("training %s/%s: %d parameters (%d trainable), %d samples in %d shards, "
                 "%d steps/epoch, world %d, device %s, %s", arch.preset, arch.head, count_parameters(model),
                 count_parameters(model, True), total_samples, len(shards), opt_steps_per_epoch, ctx.world,
                 ctx.device, "bf16 autocast" if amp_dtype else "fp32")

    losses: list[float] = []
    marks: list[tuple[float, int]] = []  # (time, samples) after each step, for the steady-state rate
    data_wait = compute = 0.0
    run_start = time.perf_counter()
    start_seconds = pos["train_seconds"]
    samples_this_run = 0
    nonfinite_streak = 0
    last_ckpt_step = pos["step"]

    def elapsed() -> float:
        return start_seconds + time.perf_counter() - run_start

    def finished() -> bool:
        stop = (total_steps is not None and pos["step"] >= total_steps) or \
               (cfg.time_budget_s > 0 and elapsed() >= cfg.time_budget_s)
        return bool(ctx.all_max(1.0 if stop else 0.0))  # every rank stops at the same step

    def save() -> None:
        nonlocal last_ckpt_step
        if ctx.is_main:
            pos["train_seconds"] = elapsed()
            write_checkpoint(ckdir, _checkpoint_state(model, arch, tok, optimizer, cfg, pos, counters),
                             pos["step"], cfg.keep_checkpoints)
        last_ckpt_step = pos["step"]
        ctx.barrier()

    ddp.train()
    micro = 0
    while not finished():
        spec = StreamSpec(shards=shards, batch_size=cfg.batch_size, image_size=arch.vision_cfg["image_size"],
                          tokenizer_json=tok.to_json(), context_length=tok.context_length, seed=cfg.seed,
                          epoch=pos["epoch"], steps=micro_per_epoch, skip_batches=pos["batch_in_epoch"],
                          world=ctx.world, rank=ctx.rank, shuffle_buffer=cfg.shuffle_buffer,
                          resample=cfg.resample, indexed_samples=total_samples)
        loader = make_loader(spec, cfg.workers, pin_memory=ctx.device.type == "cuda",
                             prefetch_factor=cfg.prefetch_factor, timeout_s=cfg.loader_timeout_s)
        stop = False
        got_batch = False
        t_wait = time.perf_counter()
        for batch in loader:
            got_batch = True
            t_got = time.perf_counter()
            data_wait += t_got - t_wait
            counters.update({f"data_{k}": v for k, v in batch["errors"].items()})
            images = normalize_images(batch["images"], ctx.device)
            text = batch["text"].to(ctx.device, non_blocking=True)
            micro += 1
            last_micro = micro % accum == 0
            sync = contextlib.nullcontext() if last_micro or ctx.world == 1 else ddp.no_sync()
            autocast = (torch.autocast(device_type=ctx.device.type, dtype=amp_dtype) if amp_dtype
                        else contextlib.nullcontext())
            with sync:
                with autocast:
                    feats = ddp(images, text)
                    loss = loss_fn(feats, model.logit_scale)
                (loss / accum).backward()
            pos["batch_in_epoch"] += 1
            n = images.shape[0] * ctx.world
            pos["samples"] += n
            samples_this_run += n
            if not last_micro:
                t_wait = time.perf_counter()
                continue
            lr = schedule.lr(pos["step"], elapsed())
            for g in optimizer.param_groups:
                g["lr"] = lr
            params = [p for p in model.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            # Gradients are identical on every rank after DDP's all-reduce: the decision is too.
            if torch.isfinite(norm) and math.isfinite(loss.item()):
                optimizer.step()
                nonfinite_streak = 0
                with torch.no_grad():
                    model.clip.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
            else:
                counters["nonfinite_steps"] += 1
                nonfinite_streak += 1
                if nonfinite_streak >= cfg.max_nonfinite_steps:
                    raise TrainError(f"{nonfinite_streak} consecutive steps with non-finite gradients")
            optimizer.zero_grad(set_to_none=True)
            pos["step"] += 1
            compute += time.perf_counter() - t_got
            losses.append(float(loss.item()))
            marks.append((time.perf_counter(), samples_this_run))
            logger.advance()
            if pos["step"] % cfg.log_every == 0 or pos["step"] == 1:
                wall = max(1e-9, time.perf_counter() - run_start)
                logger.step(pos["step"], {"loss": losses[-1], "lr": lr,
                                          "temperature": 1.0 / float(model.logit_scale.detach()),
                                          "samples_per_s": samples_this_run / wall,
                                          "data_wait_fraction": data_wait / wall})
            if pos["step"] - last_ckpt_step >= cfg.checkpoint_every:
                save()
            if pos["batch_in_epoch"] >= micro_per_epoch or finished():
                stop = True
            if stop:
                break
            t_wait = time.perf_counter()
        del loader
        if not got_batch and pos["batch_in_epoch"] < micro_per_epoch:
            raise TrainError(f"the loader ended epoch {pos['epoch']} after {pos['batch_in_epoch']} of "
                             f"{micro_per_epoch} batches")
        if pos["batch_in_epoch"] >= micro_per_epoch:
            pos["epoch"] += 1
            pos["batch_in_epoch"] = 0
    if pos["step"] != last_ckpt_step or state is None:
        save()
    logger.close()
    wall = max(1e-9, time.perf_counter() - run_start)
    window = max(1, min(len(losses) // 4, 20))
    summary = {
        "task": "pretrain", "model": arch.preset, "head": arch.head, "world": ctx.world,
        "steps": pos["step"], "epoch": pos["epoch"], "samples_seen": pos["samples"],
        "steps_this_run": len(losses), "resumed_from_step": resumed_from,
        "samples_per_s": samples_this_run / wall, "data_wait_fraction": data_wait / wall,
        "samples_per_s_steady": _steady_rate(marks),
        "train_seconds": round(elapsed(), 3), "steps_per_epoch": opt_steps_per_epoch,
        "train_samples_indexed": total_samples, "shards": len(shards),
        "loss_first": sum(losses[:window]) / window if losses else None,
        "loss_last": sum(losses[-window:]) / window if losses else None,
        "temperature": 1.0 / float(model.logit_scale.detach()), "parameters": count_parameters(model),
        "trainable_parameters": count_parameters(model, True), "counters": dict(counters),
        "checkpoint": str((ckdir / "latest.pt").resolve()), "precision": "bf16" if amp_dtype else "fp32",
    }
    if val_shards and ctx.is_main:
        from train.evaluate import retrieval
        vcfg = dataclasses.replace(ecfg, max_samples=cfg.val_max_samples)
        summary["val"] = retrieval(model, tok, val_shards, vcfg, ctx.device)
    return summary

