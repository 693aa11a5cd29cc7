"""The trainer end to end on real shards: every head, checkpoints, resume after a kill, LiT, eval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import open_clip
import pytest
import torch

from pipelines.cli import main
from train.checkpoint import load_checkpoint, restore_model

REPO = Path(__file__).resolve().parents[2]


def last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def pretrain(capsys, small_shards, output, *extra) -> tuple[int, dict | None]:
    args = ["pretrain", "--train-shards", small_shards["train"], "--output", str(output), "--batch-size", "8",
            "--set", "train.workers=0", "--set", "train.warmup_steps=1", "--set", "train.log_every=1",
            "--set", "train.tokenizer_max_captions=500", "--set", "eval.workers=0", *extra]
    rc = main(args)
    return rc, (last_json(capsys) if rc == 0 else None)


@pytest.mark.parametrize("head", ["global", "tokenwise", "reduced"])
def test_pretrain_each_head_writes_a_checkpoint_eval_takes(head, small_shards, tmp_path, capsys):
    out = tmp_path / head
    rc, summary = pretrain(capsys, small_shards, out, "--head", head, "--steps", "3",
                           "--val-shards", small_shards["val"])
    assert rc == 0
    assert summary["steps"] == 3 and summary["head"] == head and summary["samples_seen"] == 24
    assert summary["val"]["pairs"] == 48 and 0.0 <= summary["val"]["mean_recall"] <= 1.0
    assert summary["steps_per_epoch"] == 30 and summary["train_samples_indexed"] == 240
    ckpt = out / "checkpoints" / "latest.pt"
    assert ckpt.is_file() and json.loads((out / "stats.json").read_text())["steps"] == 3
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert main(["eval", "retrieval", "--checkpoint", str(ckpt), "--shards", small_shards["val"],
                 "--set", "eval.workers=0"]) == 0
    r = last_json(capsys)
    assert r["pairs"] == 48 and r["head"] == head and set(r) >= {"i2t_R@1", "t2i_R@10", "mean_recall"}


def test_global_checkpoint_loads_in_open_clip(small_shards, tmp_path, capsys):
    rc, _ = pretrain(capsys, small_shards, tmp_path, "--steps", "1", "--set", "train.conv_stem=false")
    assert rc == 0
    state = torch.load(tmp_path / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    clip = open_clip.CLIP(**state["open_clip_cfg"])
    clip.load_state_dict(state["state_dict"])
    model, tok = restore_model(load_checkpoint(tmp_path / "checkpoints" / "latest.pt"))
    ids = torch.from_numpy(tok(["两个红色的圆形"]))
    with torch.no_grad():
        # open_clip pools at [SEP] too once told its id (pool_type eos is saved in text_cfg).
        assert torch.allclose(clip.encode_text(ids, normalize=True), model.encode_text(ids)["text"], atol=1e-5)


def test_resume_latest_continues_the_same_run(small_shards, tmp_path, capsys):
    rc, first = pretrain(capsys, small_shards, tmp_path, "--steps", "4", "--set", "train.checkpoint_every=2")
    assert rc == 0 and first["steps"] == 4
    state = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert state["position"] == {**state["position"], "step": 4, "epoch": 0, "batch_in_epoch": 4, "samples": 32}
    rc, second = pretrain(capsys, small_shards, tmp_path, "--steps", "6", "--resume", "latest")
    assert rc == 0
    assert second["resumed_from_step"] == 4 and second["steps"] == 6 and second["steps_this_run"] == 2
    assert second["samples_seen"] == 48
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_00000004.pt", "step_00000006.pt"]


@pytest.mark.slow
def test_resume_after_kill(small_shards, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "pipelines", "pretrain", "--train-shards", small_shards["train"], "--output",
           str(out), "--batch-size", "8", "--steps", "400", "--set", "train.workers=1",
           "--set", "train.checkpoint_every=2", "--set", "train.tokenizer_max_captions=500"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.is_file() and load_checkpoint(latest)["position"]["step"] >= 4):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(latest)["position"]["step"]
    assert 4 <= killed_at < 400
    # latest.pt is complete whatever the moment of the kill; the rerun continues from it.
    cmd[cmd.index("400")] = str(killed_at + 2)
    res = subprocess.run(cmd + ["--resume", "latest"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["resumed_from_step"] == killed_at and summary["steps"] == killed_at + 2
    assert not list((out / "checkpoints").glob(".*.tmp"))  # a killed write's temporary is swept


def test_lit_keeps_the_loaded_image_tower_frozen(small_shards, tmp_path, capsys):
    rc, _ = pretrain(capsys, small_shards, tmp_path / "base", "--steps", "2")
    assert rc == 0
    base = tmp_path / "base" / "checkpoints" / "latest.pt"
    # Also an open_clip-style file: {"state_dict": {"visual.*": ...}, "model_cfg": ...}.
    plain = tmp_path / "open_clip_style.pt"
    st = load_checkpoint(base)
    torch.save({"state_dict": {f"module.{k}": v for k, v in st["state_dict"].items()},
                "model_cfg": st["open_clip_cfg"]}, plain)
    for src in (base, plain):
        out = tmp_path / f"lit_{src.stem}"
        rc, summary = pretrain(capsys, small_shards, out, "--steps", "3", "--lock-image", str(src), "--head",
                               "tokenwise")
        assert rc == 0 and summary["trainable_parameters"] < summary["parameters"]
        after = load_checkpoint(out / "checkpoints" / "latest.pt")
        for k, v in st["state_dict"].items():
            if k.startswith("visual."):
                assert torch.equal(after["state_dict"][k], v), k   # frozen: BN statistics included
        assert not torch.equal(after["state_dict"]["token_embedding.weight"], st["state_dict"]["token_embedding.weight"])


def test_zeroshot_cli_on_class_folders(small_shards, tmp_path, capsys):
    import synth
    rc, _ = pretrain(capsys, small_shards, tmp_path / "m", "--steps", "2", "--head", "reduced")
    assert rc == 0
    names = synth.write_class_folders(tmp_path / "zs", 3, seed=5, attribute="shape")
    rc = main(["eval", "zeroshot", "--checkpoint", str(tmp_path / "m" / "checkpoints" / "latest.pt"),
               "--images", str(tmp_path / "zs"), "--classnames", str(names)])
    assert rc == 0
    r = last_json(capsys)
    assert r["classes"] == 5 and r["images"] == 15 and r["templates"] >= 40 and r["chance"] == 0.2
    assert set(r["per_class_top1"]) == {"圆形", "正方形", "三角形", "五角星", "十字"}


@pytest.mark.parametrize("args, message", [
    (["--train-shards", "/nonexistent/dir/{000000..000001}.tar", "--steps", "1"], "shard not found"),
    (["--steps", "0", "--set", "train.default_epochs=0"], "give a length"),
    (["--steps", "1", "--set", "train.model=vit-huge"], "unknown model preset"),
    (["--steps", "1", "--lock-image", "/nonexistent.pt"], "no such file"),
])
def test_unusable_input_is_a_one_line_error(args, message, small_shards, tmp_path, capsys):
    base = ["pretrain", "--output", str(tmp_path), "--set", "train.workers=0"]
    if "--train-shards" not in args:
        base += ["--train-shards", small_shards["train"]]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bf16_autocast_path_runs_on_cpu(small_shards, tmp_path, capsys):
    """The GPU default (bf16 autocast, grad checkpointing, accumulation) exercised on the CPU."""
    rc, summary = pretrain(capsys, small_shards, tmp_path, "--steps", "2", "--head", "tokenwise",
                           "--set", "train.precision=bf16", "--set", "train.grad_checkpointing=true",
                           "--set", "train.accum_steps=2")
    assert rc == 0 and summary["precision"] == "bf16"
    assert summary["steps"] == 2 and summary["samples_seen"] == 32   # 2 steps x 2 micro-batches x 8
    assert summary["counters"].get("nonfinite_steps", 0) == 0 and summary["loss_last"] > 0
