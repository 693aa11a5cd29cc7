"""Not a test: wall, peak driver RSS and peak tree PSS of `wukong dedup` on synthetic raw indexes.

    PYTHONPATH=$PWD RAY_AUTH_MODE=disabled .venv/bin/python tests/dedup/measure.py --samples 100000 \
        --data /tmp/dedup-synth [--code DIR]   # DIR: another checkout to run instead (a reference)

Writes the raw indexes once per size (`rawgen.synthetic_rows`: planted URL, sha256, pair, same and
near pHash duplicates, rows without a pHash, failures; split into indexes of `--per-shard` rows),
runs `python -m pipelines dedup` in a subprocess from the checkout it measures, with a local Ray
of 2 CPUs, and samples it every 0.2 s from this process: the driver's VmHWM and the PSS of its
process tree (Ray's daemons and workers included, this process excluded). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from rawgen import synthetic_rows, write_synthetic_indexes  # noqa: E402


def _sampler():
    """`measure(cmd, env)` of tests/shards/measure.py: the same sampler for both stages."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shards_measure", ROOT / "tests" / "shards" / "measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.measure


def write_inputs(data: Path, samples: int, per_shard: int) -> Path:
    raw = data / "raw"
    done = data / "written.json"
    if done.is_file() and json.loads(done.read_text()) == {"samples": samples, "per_shard": per_shard}:
        return raw
    shutil.rmtree(data, ignore_errors=True)
    t = time.perf_counter()
    write_synthetic_indexes(raw, synthetic_rows(samples, seed=1), max(1, samples // per_shard))
    done.write_text(json.dumps({"samples": samples, "per_shard": per_shard}))
    print(f"synthetic inputs: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, required=True)
    ap.add_argument("--data", default="/tmp/dedup-synth")
    ap.add_argument("--code", default=str(ROOT), help="checkout whose `wukong dedup` runs")
    ap.add_argument("--per-shard", type=int, default=10_000, help="rows per raw index")
    args = ap.parse_args()
    raw = write_inputs(Path(args.data) / str(args.samples), args.samples, args.per_shard)
    out = Path(args.data) / str(args.samples) / f"out-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=args.code, RAY_AUTH_MODE="disabled")
    temp = f"/tmp/wk-d{os.getpid()}"
    cmd = [sys.executable, "-m", "pipelines", "dedup", str(raw), "--output", str(out),
           "--set", "ray.num_cpus=2", "--set", "ray.include_dashboard=false",
           "--set", "ray.object_store_memory_mb=512", "--set", f"ray.temp_dir={temp}"]
    result = _sampler()(cmd, env)
    stats = json.loads((out / "stats.json").read_text())
    shutil.rmtree(temp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()
    work = {k: v for k, v in stats.get("work", {}).items() if k not in ("reused",)}
    print(json.dumps({"samples": args.samples, "code": args.code, **result, "stage_seconds": stats.get("seconds"),
                      "work": work, "load_avg": [round(x, 1) for x in load]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
