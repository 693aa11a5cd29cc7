"""bench/train: samples/s of `wukong pretrain` against open_clip's own training script, same shards,
same tiny model (no conv stem, same vocabulary size), same batch size, on CPU; and the data
loader's throughput alone against the model's consumption (the loader must never be the bottleneck).

The peer runs from its own virtual environment (bench/.peers/openclip, created on first use with
open_clip_torch[training], which pins its own webdataset). Runs alternate (ours, peer, ours, peer)
and the ratio of medians is reported, so load from other jobs affects both sides alike.

    .venv/bin/python bench/train.py [--steps 60] [--rounds 2] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEER = REPO / "bench" / ".peers" / "openclip"
OUT = REPO / "bench" / "out" / "train"
PEER_REQS = ["torch==2.14.1 torchvision==0.29.1", "open_clip_torch[training]==3.3.0"]
# The tiny towers of train/model.py without the conv stem (open_clip has none), English-size vocab
# so open_clip's own tokenizer ids fit.
TINY = {"embed_dim": 128,
        "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 128, "layers": 4, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2}}
OUR_SETS = ["train.conv_stem=false", "train.vocab_size=49408", "train.lr=0.0005", "train.warmup_steps=10",
            "train.log_every=5", "train.checkpoint_every=100000", "train.shuffle_buffer=1000"]
ENV = dict(os.environ, RAY_AUTH_MODE="disabled", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1",
           TOKENIZERS_PARALLELISM="false")


def ensure_peer() -> Path:
    py = PEER / "bin" / "python"
    if not (PEER / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(PEER)], check=True)
        for req in PEER_REQS:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *req.split()], check=True)
        (PEER / ".installed").write_text("ok\n")
    return py


def make_shards(directory: Path, n: int, per_shard: int, seed: int = 0) -> list[Path]:
    """Photographic JPEGs (crops of scikit-image's sample photos, 256 px) with Chinese captions."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from shards.atomic import write_json_atomic
    from shards.format import AtomicTarWriter, sample_members

    if (directory / "sizes.json").is_file():
        return sorted(directory.glob("*.tar"))
    photos = [Image.fromarray(np.asarray(f())).convert("RGB") for f in
              (skdata.astronaut, skdata.coffee, skdata.chelsea, skdata.rocket, skdata.cat)]
    words = ["猫", "咖啡", "宇航员", "火箭", "风景", "高清", "壁纸", "城市", "夜晚", "美食", "一只", "可爱的", "桌子上的"]
    rng = random.Random(seed)
    sizes, paths = {}, []
    for shard, start in enumerate(range(0, n, per_shard)):
        path = directory / f"{shard:06d}.tar"
        with AtomicTarWriter(path) as w:
            for i in range(start, min(n, start + per_shard)):
                im = rng.choice(photos)
                s = rng.randint(min(im.size) // 3, min(im.size))
                x, y = rng.randint(0, im.width - s), rng.randint(0, im.height - s)
                crop = im.crop((x, y, x + s, y + s)).resize((256, 256))
                buf = io.BytesIO()
                crop.save(buf, format="JPEG", quality=90)
                cap = "".join(rng.choice(words) for _ in range(rng.randint(2, 6)))
                w.write_sample(f"{i:09d}", sample_members(buf.getvalue(), cap, {"caption": cap}))
        sizes[path.name] = w.count
        paths.append(path)
    write_json_atomic(directory / "sizes.json", sizes)
    return paths


def run_ours(shards: Path, steps: int, batch: int, workers: int, out: Path) -> dict:
    cmd = [str(REPO / ".venv" / "bin" / "python"), "-m", "pipelines", "pretrain", "--train-shards", str(shards),
           "--output", str(out), "--steps", str(steps), "--batch-size", str(batch),
           "--set", f"train.workers={workers}"]
    for s in OUR_SETS:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"wukong pretrain failed: {res.stderr[-2000:]}")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    return {"samples_per_s": summary["samples_per_s_steady"], "wall_s": time.perf_counter() - t0,
            "data_wait_fraction": summary["data_wait_fraction"]}


PEER_MAIN = """
import sys, open_clip
open_clip.add_model_config(sys.argv[1])
from open_clip_train.main import main
main(sys.argv[2:])
"""

# open_clip_train logs e.g. "Batch (t): 0.456, 140.33/s, 140.33/s/gpu": the first number is the mean
# step time (data included) since the previous log line; the rate after it is the last step only.
PEER_BATCH_TIME = re.compile(r"Batch \(t\): ([\d.]+),")


def run_peer(py: Path, shards: list[Path], steps: int, batch: int, workers: int, out: Path) -> dict:
    cfg_dir = out / "model_configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / "wukong-tiny.json").write_text(json.dumps(TINY))
    first, last = shards[0].stem, shards[-1].stem
    pattern = str(shards[0].parent / f"{{{first}..{last}}}.tar")
    cmd = [str(py), "-c", PEER_MAIN, str(cfg_dir), "--train-data", pattern, "--dataset-type", "webdataset",
           "--train-num-samples", str(steps * batch), "--batch-size", str(batch), "--epochs", "1",
           "--workers", str(workers), "--model", "wukong-tiny", "--precision", "fp32", "--lr", "5e-4",
           "--warmup", "10", "--log-every-n-steps", "5", "--save-frequency", "0", "--device", "cpu",
           "--logs", str(out / "logs"), "--name", f"run{time.time_ns()}", "--seed", "0"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=out, env=ENV, capture_output=True, text=True)
    log = res.stdout + res.stderr
    times = [float(m) for m in PEER_BATCH_TIME.findall(log)]
    if res.returncode or not times:
        raise RuntimeError(f"open_clip_train failed: {log[-2000:]}")
    # Same steady-state definition as ours: samples over wall time in the second half of the run.
    half = times[len(times) // 2:]
    return {"samples_per_s": batch / statistics.fmean(half), "wall_s": time.perf_counter() - t0}


def loader_throughput(shards: Path, batch: int, workers: int, batches: int) -> float:
    from train.data import StreamSpec, make_loader
    from train.shardspec import resolve_shards
    from train.tokenizer import build_tokenizer

    tok = build_tokenizer("", ["猫咖啡宇航员火箭风景高清壁纸"], 32, 49408)
    spec = StreamSpec(shards=resolve_shards(str(shards)), batch_size=batch, image_size=TINY["vision_cfg"]["image_size"],
                      tokenizer_json=tok.to_json(), context_length=32, steps=batches, shuffle_buffer=1000)
    t0, n = None, 0
    for i, b in enumerate(make_loader(spec, workers, timeout_s=600)):
        if i == 1:  # the first batch pays for starting the worker processes
            t0, n = time.perf_counter(), 0
        n += b["images"].shape[0]
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    shards_dir = OUT / "shards"
    shards = make_shards(shards_dir, args.steps * args.batch_size, 1000)
    py = ensure_peer()
    ours, peer = [], []
    for r in range(args.rounds):
        ours.append(run_ours(shards_dir, args.steps, args.batch_size, args.workers, OUT / f"ours_{r}"))
        peer.append(run_peer(py, shards, args.steps, args.batch_size, args.workers, OUT / f"peer_{r}"))
        print(f"round {r}: wukong {ours[-1]['samples_per_s']:.1f}/s, open_clip {peer[-1]['samples_per_s']:.1f}/s",
              flush=True)
    o = statistics.median(x["samples_per_s"] for x in ours)
    p = statistics.median(x["samples_per_s"] for x in peer)
    loader = loader_throughput(shards_dir, args.batch_size, args.workers, max(10, args.steps // 2))
    result = {"bench": "train", "model": "tiny (no conv stem), global head, fp32 CPU", "batch_size": args.batch_size,
              "steps": args.steps, "rounds": args.rounds, "wukong_samples_per_s": round(o, 2),
              "open_clip_samples_per_s": round(p, 2), "ratio_vs_open_clip": round(o / p, 3),
              "loader_samples_per_s": round(loader, 2), "loader_over_model": round(loader / o, 2),
              "data_wait_fraction": round(statistics.median(x["data_wait_fraction"] for x in ours), 4)}
    (OUT / "result.json").write_text(json.dumps(result, indent=2))
    print(f"wukong pretrain: {o:.1f} samples/s; open_clip_train: {p:.1f} samples/s; ratio {o / p:.2f}x")
    print(f"loader alone: {loader:.1f} samples/s = {loader / o:.1f}x the model's consumption")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
