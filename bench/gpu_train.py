"""The prepared GPU check (run once on a GPU machine): ViT-B/32 with the global and the token-wise
heads, bf16 autocast, synthetic shards, at the largest batch that fits; reports samples/s and the
model FLOP utilisation (MFU) as JSON lines, and writes them to $OUT/gpu_train.json (or bench/out/).

    .venv/bin/python bench/gpu_train.py [--steps 30] [--heads global tokenwise] [--peak-tflops 989] [--max-batch 8192]

The batch search doubles until CUDA runs out of memory, then takes the last size that fitted.
Training goes through the real loop (train.loop.run_training: pinned-memory loader, bf16, the
same checkpoints), single process on one GPU.
Peak TFLOPS defaults to an H100/H200's dense bf16 figure; pass the card's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def vit_flops_per_sample(arch) -> float:
    """Forward+backward FLOPs of both towers (3x forward; attention and MLP matmuls)."""
    def tower(tokens: int, width: int, layers: int, mlp_ratio: float = 4.0) -> float:
        per_layer = 2 * tokens * (4 * width * width + 2 * mlp_ratio * width * width) + 2 * 2 * tokens * tokens * width
        return layers * per_layer
    v, t = arch.vision_cfg, arch.text_cfg
    tokens = (v["image_size"] // v["patch_size"]) ** 2 + 1
    patch = 2 * (tokens - 1) * (3 * v["patch_size"] ** 2) * v["width"]
    fwd = tower(tokens, v["width"], v["layers"]) + patch + tower(t["context_length"], t["width"], t["layers"])
    return 3 * fwd


def make_shards(directory: Path, n: int) -> None:
    import io
    import random

    from PIL import Image

    from shards.atomic import write_json_atomic
    from shards.format import AtomicTarWriter, sample_members
    sizes_file = directory / "sizes.json"
    if sizes_file.is_file() and sum(json.loads(sizes_file.read_text()).values()) >= n:
        return  # enough samples from an earlier head
    rng = random.Random(0)
    sizes = {}
    for shard, start in enumerate(range(0, n, 2000)):
        path = directory / f"{shard:06d}.tar"
        with AtomicTarWriter(path) as w:
            for i in range(start, min(n, start + 2000)):
                im = Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3)))
                im.paste(tuple(rng.randrange(256) for _ in range(3)), (rng.randrange(128), rng.randrange(128),
                                                                        rng.randrange(128, 256), rng.randrange(128, 256)))
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=85)
                cap = "一张合成的彩色方块图片" + str(i % 97)
                w.write_sample(f"{i:09d}", sample_members(buf.getvalue(), cap, {"caption": cap}))
        sizes[path.name] = w.count
    write_json_atomic(directory / "sizes.json", sizes)


def largest_batch(head: str, start: int = 64, limit: int = 8192) -> int:
    import torch

    from train.config import TrainConfig
    from train.loss import ContrastiveLoss
    from train.model import build_model, resolve_arch
    arch = resolve_arch(TrainConfig(model="vit-b-32", head=head), vocab_size=21128, pad_id=0, sep_id=3)
    model = build_model(arch).cuda()
    loss_fn = ContrastiveLoss(head, arch.tokenwise_chunk)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    best, b = 0, start
    while b <= limit:
        try:
            x = torch.randn(b, 3, 224, 224, device="cuda")
            t = torch.randint(5, 21000, (b, 32), device="cuda")
            t[:, 0], t[:, -1] = 2, 3
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_fn(model(x, t), model.logit_scale)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            best, b = b, b * 2
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    del model, opt
    torch.cuda.empty_cache()
    # Headroom for the loader's pinned buffers and allocator fragmentation.
    return max(start // 2, int(best * 0.75) // 8 * 8) if best else start // 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--heads", nargs="+", default=["global", "tokenwise"])
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--max-batch", type=int, default=8192, help="upper end of the batch search")
    args = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print(json.dumps({"bench": "gpu_train", "error": "no CUDA device"}))
        return 1
    out_dir = Path(os.environ.get("OUT") or REPO / "bench" / "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = out_dir / "gpu_shards"
    from train.config import TrainConfig
    from train.loop import run_training
    from train.model import resolve_arch
    results = []
    for head in args.heads:
        batch = largest_batch(head, limit=args.max_batch)
        make_shards(shards, batch * (args.steps + 2))
        cfg = dict(model="vit-b-32", head=head, batch_size=batch, steps=args.steps, use_gpu=True, precision="bf16",
                   workers=args.workers, warmup_steps=5, checkpoint_every=10**9, log_every=5, lr=1e-4)
        t0 = time.perf_counter()
        summary = run_training(cfg, str(shards), str(out_dir / f"gpu_{head}"))
        arch = resolve_arch(TrainConfig(**cfg), vocab_size=21128, pad_id=0, sep_id=3)
        rate = summary["samples_per_s_steady"] or summary["samples_per_s"]
        mfu = rate * vit_flops_per_sample(arch) / (args.peak_tflops * 1e12)
        r = {"bench": "gpu_train", "model": "vit-b-32", "head": head, "batch_size": batch, "precision": "bf16",
             "samples_per_s": round(rate, 1), "mfu": round(mfu, 4), "data_wait_fraction": summary["data_wait_fraction"],
             "gpu": torch.cuda.get_device_name(0), "wall_s": round(time.perf_counter() - t0, 1),
             "peak_tflops_assumed": args.peak_tflops}
        print(json.dumps(r), flush=True)
        results.append(r)
    (out_dir / "gpu_train.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
