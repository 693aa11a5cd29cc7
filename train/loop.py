"""The training loop: stream shards, step, log, checkpoint atomically, resume, summarise.

Runs the same single-process and as one Ray Train worker among many (train/ray_launcher.py).
A step whose gradients are not finite is skipped and counted (never applied); the data position
(epoch, batches done in it) is part of every checkpoint, so `--resume latest` continues where the
last checkpoint left off, with the optimizer, the schedule and the tokenizer of that run.

Read top to bottom: `run_training` sets the run up (train/setup.py), then runs epochs
(`train_epoch`: one loader pass from the saved position), each batch through `train_step`
(forward, backward, and on the last micro-batch of an accumulation the optimizer step), with
`after_step` logging and checkpointing; at the end a last checkpoint, the summary and the
held-out evaluation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import torch

from train.checkpoint import FORMAT, write_checkpoint
from train.data import StreamSpec, make_loader, normalize_images
from train.model import count_parameters
from train.progress import LogHook, ProgressLog, steady_rate
from train.setup import MODEL_KEYS, TrainError, TrainRun, setup_run

__all__ = ["MODEL_KEYS", "LogHook", "TrainError", "run_training"]


@dataclass
class RunState:
    """What changes as the run trains: the data position (saved in checkpoints) and this run's tallies."""
    pos: dict                   # step, epoch, batch_in_epoch, samples, train_seconds
    counters: Counter           # data errors, skipped non-finite steps (saved in checkpoints)
    start_seconds: float        # training seconds of earlier runs (resume)
    run_start: float = field(default_factory=time.perf_counter)
    last_ckpt_step: int = 0
    micro: int = 0              # micro-batches of this run (accumulation phase)
    lr: float = 0.0             # of the last optimizer step
    losses: list[float] = field(default_factory=list)
    marks: list[tuple[float, int]] = field(default_factory=list)  # (time, samples) after each step
    data_wait: float = 0.0
    samples_this_run: int = 0
    nonfinite_streak: int = 0

    @classmethod
    def start(cls, run: TrainRun) -> "RunState":
        if run.state is None:
            pos = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "samples": 0, "train_seconds": 0.0}
            counters: Counter = Counter()
        else:
            pos, counters = dict(run.state["position"]), Counter(run.state["counters"])
        return cls(pos=pos, counters=counters, start_seconds=pos["train_seconds"], last_ckpt_step=pos["step"])

    def elapsed(self) -> float:
        """Training seconds, earlier runs included (the time budget counts them)."""
        return self.start_seconds + time.perf_counter() - self.run_start

    def wall(self) -> float:
        """Seconds of this run."""
        return max(1e-9, time.perf_counter() - self.run_start)


def run_training(train_cfg: dict, train_shards: str, output: str, val_shards: str | None = None,
                 resume: str | None = None, eval_cfg: dict | None = None, on_log: LogHook | None = None) -> dict:
    """Train as configured; returns the run summary (the same dict on every rank; rank 0 adds val).

    `on_log(step, metrics)` is called in the rank-0 process on the logging cadence (`log_every`) and
    at the run's last step; `metrics` holds loss, lr, temperature, samples_per_s, data_wait_fraction
    and steps_since_last_log. Under Ray Train it travels pickled: give a module-level function.
    """
    run = setup_run(train_cfg, train_shards, output, resume, eval_cfg)
    st = RunState.start(run)
    logger = ProgressLog(run.output, run.ctx, run.length.total_steps, st.pos["step"], on_log, st.counters)
    run.ddp.train()
    while not finished(run, st):
        train_epoch(run, st, logger)
    if st.losses:
        logger.last_step(st.pos["step"], step_metrics(run, st))
    if st.pos["step"] != st.last_ckpt_step or not run.resumed:
        save_checkpoint(run, st)
    logger.close()
    summary = summarize(run, st)
    if val_shards and run.ctx.is_main:
        summary["val"] = evaluate(run, val_shards)
    return summary


def finished(run: TrainRun, st: RunState) -> bool:
    """Step count or time budget reached; every rank gets the same answer (so all stop at one step)."""
    cfg, total = run.cfg, run.length.total_steps
    stop = (total is not None and st.pos["step"] >= total) or \
           (cfg.time_budget_s > 0 and st.elapsed() >= cfg.time_budget_s)
    return bool(run.ctx.all_max(1.0 if stop else 0.0))


def train_epoch(run: TrainRun, st: RunState, logger: ProgressLog) -> None:
    """One loader pass from the saved data position, until the epoch ends or the run is finished."""
    cfg, ctx = run.cfg, run.ctx
    loader = make_loader(_stream_spec(run, st), cfg.workers, pin_memory=ctx.device.type == "cuda",
                         prefetch_factor=cfg.prefetch_factor, timeout_s=cfg.loader_timeout_s)
    got_batch = False
    t_wait = time.perf_counter()
    for batch in loader:
        got_batch = True
        st.data_wait += time.perf_counter() - t_wait
        if train_step(run, st, batch):
            after_step(run, st, logger)
            if st.pos["batch_in_epoch"] >= run.length.micro_per_epoch or finished(run, st):
                break
        t_wait = time.perf_counter()
    del loader  # its worker processes end before the next epoch's start
    if not got_batch and st.pos["batch_in_epoch"] < run.length.micro_per_epoch:
        raise TrainError(f"the loader ended epoch {st.pos['epoch']} after {st.pos['batch_in_epoch']} of "
                         f"{run.length.micro_per_epoch} batches")
    if st.pos["batch_in_epoch"] >= run.length.micro_per_epoch:
        st.pos["epoch"] += 1
        st.pos["batch_in_epoch"] = 0


def _stream_spec(run: TrainRun, st: RunState) -> StreamSpec:
    cfg, ctx, tok = run.cfg, run.ctx, run.tok
    return StreamSpec(shards=run.shards, batch_size=cfg.batch_size, image_size=run.arch.vision_cfg["image_size"],
                      tokenizer_json=tok.to_json(), context_length=tok.context_length, seed=cfg.seed,
                      epoch=st.pos["epoch"], steps=run.length.micro_per_epoch, skip_batches=st.pos["batch_in_epoch"],
                      world=ctx.world, rank=ctx.rank, shuffle_buffer=cfg.shuffle_buffer, resample=cfg.resample,
                      indexed_samples=run.total_samples)


def train_step(run: TrainRun, st: RunState, batch: dict) -> bool:
    """One micro-batch forward and backward; True when it completed an optimizer step."""
    loss = _forward_backward(run, st, batch)
    if st.micro % run.length.accum:
        return False
    _optimizer_step(run, st, loss)
    return True


def _forward_backward(run: TrainRun, st: RunState, batch: dict) -> torch.Tensor:
    ctx = run.ctx
    st.counters.update({f"data_{k}": v for k, v in batch["errors"].items()})
    images = normalize_images(batch["images"], ctx.device)
    text = batch["text"].to(ctx.device, non_blocking=True)
    st.micro += 1
    last_micro = st.micro % run.length.accum == 0
    # Gradients are all-reduced once per optimizer step, not per micro-batch.
    sync = contextlib.nullcontext() if last_micro or ctx.world == 1 else run.ddp.no_sync()
    autocast = (torch.autocast(device_type=ctx.device.type, dtype=run.amp_dtype) if run.amp_dtype
                else contextlib.nullcontext())
    with sync:
        with autocast:
            feats = run.ddp(images, text)
            loss = run.loss_fn(feats, run.model.logit_scale)
        (loss / run.length.accum).backward()
    st.pos["batch_in_epoch"] += 1
    n = images.shape[0] * ctx.world
    st.pos["samples"] += n
    st.samples_this_run += n
    return loss


def _optimizer_step(run: TrainRun, st: RunState, loss: torch.Tensor) -> None:
    """Scheduled lr, gradient clipping, the update (skipped and counted when not finite)."""
    cfg, model, optimizer = run.cfg, run.model, run.optimizer
    st.lr = run.schedule.lr(st.pos["step"], st.elapsed())
    for g in optimizer.param_groups:
        g["lr"] = st.lr
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    # Gradients are identical on every rank after DDP's all-reduce: the decision is too.
    if torch.isfinite(norm) and math.isfinite(loss.item()):
        optimizer.step()
        st.nonfinite_streak = 0
        with torch.no_grad():
            model.clip.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
    else:
        st.counters["nonfinite_steps"] += 1
        st.nonfinite_streak += 1
        if st.nonfinite_streak >= cfg.max_nonfinite_steps:
            raise TrainError(f"{st.nonfinite_streak} consecutive steps with non-finite gradients")
    optimizer.zero_grad(set_to_none=True)
    st.pos["step"] += 1
    st.losses.append(float(loss.item()))
    st.marks.append((time.perf_counter(), st.samples_this_run))


def after_step(run: TrainRun, st: RunState, logger: ProgressLog) -> None:
    """Progress on the logging cadence; a checkpoint every `checkpoint_every` steps."""
    logger.advance()
    step = st.pos["step"]
    if step % run.cfg.log_every == 0 or step == 1:
        logger.step(step, step_metrics(run, st))
    if step - st.last_ckpt_step >= run.cfg.checkpoint_every:
        save_checkpoint(run, st)


def step_metrics(run: TrainRun, st: RunState) -> dict:
    wall = st.wall()
    return {"loss": st.losses[-1], "lr": st.lr, "temperature": 1.0 / float(run.model.logit_scale.detach()),
            "samples_per_s": st.samples_this_run / wall, "data_wait_fraction": st.data_wait / wall}


def save_checkpoint(run: TrainRun, st: RunState) -> None:
    """Rank 0 writes it atomically; every rank waits for it (so none runs ahead of a saved state)."""
    if run.ctx.is_main:
        st.pos["train_seconds"] = st.elapsed()
        write_checkpoint(run.ckdir, checkpoint_state(run, st), st.pos["step"], run.cfg.keep_checkpoints)
    st.last_ckpt_step = st.pos["step"]
    run.ctx.barrier()


def checkpoint_state(run: TrainRun, st: RunState) -> dict:
    model = run.model
    return {
        "format": FORMAT,
        "open_clip_cfg": run.arch.open_clip_cfg(),
        "state_dict": model.clip.state_dict(),
        "head_state_dict": model.reducer.state_dict() if model.reducer is not None else {},
        "arch": run.arch.to_dict(),
        "tokenizer": run.tok.to_json(),
        "optimizer": run.optimizer.state_dict(),
        "config": dataclasses.asdict(run.cfg),
        "position": dict(st.pos),
        "counters": dict(st.counters),
        "torch_rng": torch.get_rng_state(),
    }


def summarize(run: TrainRun, st: RunState) -> dict:
    wall = st.wall()
    losses = st.losses
    window = max(1, min(len(losses) // 4, 20))
    model = run.model
    return {
        "task": "pretrain", "model": run.arch.preset, "head": run.arch.head, "world": run.ctx.world,
        "steps": st.pos["step"], "epoch": st.pos["epoch"], "samples_seen": st.pos["samples"],
        "steps_this_run": len(losses),
        "resumed_from_step": run.state["position"]["step"] if run.resumed else None,
        "samples_per_s": st.samples_this_run / wall, "data_wait_fraction": st.data_wait / wall,
        "samples_per_s_steady": steady_rate(st.marks),
        "train_seconds": round(st.elapsed(), 3), "steps_per_epoch": run.length.steps_per_epoch,
        "train_samples_indexed": run.total_samples, "shards": len(run.shards),
        "loss_first": sum(losses[:window]) / window if losses else None,
        "loss_last": sum(losses[-window:]) / window if losses else None,
        "temperature": 1.0 / float(model.logit_scale.detach()), "parameters": count_parameters(model),
        "trainable_parameters": count_parameters(model, True), "counters": dict(st.counters),
        "checkpoint": str((run.ckdir / "latest.pt").resolve()), "precision": "bf16" if run.amp_dtype else "fp32",
    }


def evaluate(run: TrainRun, val_shards: str) -> dict:
    """Retrieval recall on the held-out shards (rank 0, at the end of training)."""
    from train.evaluate import retrieval
    vcfg = dataclasses.replace(run.ecfg, max_samples=run.cfg.val_max_samples)
    return retrieval(run.model, run.tok, val_shards, vcfg, run.ctx.device)
