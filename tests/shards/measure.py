"""Not a test: peak driver RSS, peak tree PSS and wall of `wukong shards` on synthetic inputs.

    PYTHONPATH=$PWD RAY_AUTH_MODE=disabled .venv/bin/python tests/shards/measure.py --samples 100000 \
        --data /tmp/shards-synth [--code DIR]   # DIR: another checkout to run instead (a reference)

Writes the synthetic inputs once per size (`synthetic_outputs.py`, both layouts), runs the command in a
subprocess (in the checkout it measures, so `-m` imports that code) and samples it from this process every 0.2 s: the driver's VmHWM and the PSS of its
process tree (Ray's daemons and workers included, this process excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from bench.proctree import tree_pss  # noqa: E402
from synthetic_outputs import write_synthetic  # noqa: E402


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(cmd: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=env["PYTHONPATH"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"rss": 0, "pss": 0}
    me = frozenset({os.getpid()})

    def sample():
        while proc.poll() is None:
            peak["rss"] = max(peak["rss"], _hwm(proc.pid))
            peak["pss"] = max(peak["pss"], tree_pss(proc.pid, me))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall_s": round(wall, 1), "driver_rss_gib": round(peak["rss"] / 2**30, 3),
            "tree_pss_gib": round(peak["pss"] / 2**30, 3), "printed": out.strip().splitlines()[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, required=True)
    ap.add_argument("--data", default="/tmp/shards-synth")
    ap.add_argument("--code", default=str(ROOT), help="checkout whose `wukong shards` runs")
    ap.add_argument("--per-shard", type=int, default=10_000, help="rows per raw shard")
    ap.add_argument("--keep-output", action="store_true")
    args = ap.parse_args()
    data = Path(args.data) / str(args.samples)
    if not ((data / "dedup" / "decisions.parquet").is_file() or (data / "dedup" / "decisions" / "_manifest.json").is_file()):
        shutil.rmtree(data, ignore_errors=True)
        t = time.perf_counter()
        write_synthetic(data, args.samples, per_shard=args.per_shard, layout="both", keep_truth=False)
        print(f"synthetic inputs: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    out = data / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": args.code, "RAY_AUTH_MODE": "disabled"}
    temp = f"/tmp/wk-m{os.getpid()}"
    cmd = [sys.executable, "-m", "pipelines", "shards", str(data / "raw"), "--output", str(out),
           "--filter", str(data / "filter"), "--dedup", str(data / "dedup"),
           "--set", "ray.num_cpus=2", "--set", "ray.include_dashboard=false",
           "--set", "ray.object_store_memory_mb=512", "--set", f"ray.temp_dir={temp}"]
    result = measure(cmd, env)
    shutil.rmtree(temp, ignore_errors=True)
    if not args.keep_output:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"samples": args.samples, "code": args.code, **result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
