"""Scale benchmark: N synthetic samples through the real `wukong filter` -> `dedup` -> `shards`.

Writes raw shards in the project's own format with planted rejects and duplicates
(`bench/rawgen.py`), runs each stage as its own `wukong` process (each with its own local Ray, or
attached to a two-node local cluster with `--cluster`) under `bench/proctree.py`'s supervisor, and
prints per stage: wall time, CPU of the process tree (Ray's daemons and workers included), peak RSS
of the stage's driver and peak PSS of the whole tree (sampled out of process), and the output size.
Then it accounts for every sample (`bench/chaincheck.py`): every planted reject rejected for its
reason, every planted duplicate removed for its reason with one survivor per group, the final
sample count equal to the kept decisions, no key twice.

    .venv/bin/python bench/scale.py --samples 1000000            # results in out/bench-scale/
    .venv/bin/python bench/scale.py --samples 100000 --cluster   # head + worker node on 127.0.0.2
    .venv/bin/python bench/scale.py --compare 1000000 10000000   # growth from N to 10N per stage

Disk: about 3.1 KB a sample for the raw shards and as much for the final ones (a tar member is at
least a 512-byte header and a 512-byte block; three members a sample), so 10M samples need ~60 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from bench.chaincheck import check_chain  # noqa: E402
from bench.rawgen import load_planted, write_raw  # noqa: E402
from shards.atomic import drop_from_page_cache  # noqa: E402

STAGES = ("filter", "dedup", "shards")
BYTES_PER_SAMPLE = 3300  # raw tar + index, and the final copy of about as much (see the docstring)
GIB = 1024 ** 3
# Growth limits from 1M to 10M samples (issue 15's definition of done).
LIMITS = {"peak_driver_rss": 1.5, "peak_tree_pss": 3.0, "wall_per_row": 1.3}


def stage_command(stage: str, raw: Path, work: Path, settings: list[str]) -> list[str]:
    out = work / stage
    cli = [sys.executable, "-m", "pipelines", stage, *[a for s in settings for a in ("--set", s)]]
    if stage == "filter":
        return cli + [str(raw), "--output", str(out)]
    if stage == "dedup":
        legacy = work / "filter" / "kept.parquet"
        return cli + [str(raw), "--output", str(out), "--kept", str(legacy if legacy.is_file() else work / "filter")]
    return cli + [str(raw), "--output", str(out), "--filter", str(work / "filter"), "--dedup", str(work / "dedup")]


def run_stage(stage: str, raw: Path, work: Path, env: dict, settings: list[str], interval: float,
              also: list[int]) -> dict:
    """One stage as its own process under the measuring supervisor; its output dir starts empty."""
    shutil.rmtree(work / stage, ignore_errors=True)
    report = work / f"{stage}.measure.json"
    log = work / f"{stage}.log"
    cmd = [sys.executable, "-m", "bench.proctree", "run", "--report", str(report), "--interval", str(interval),
           *[a for p in also for a in ("--also", str(p))], "--", *stage_command(stage, raw, work, settings)]
    load_before = os.getloadavg()[0]
    with open(log, "w") as fh:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    m = json.loads(report.read_text())
    if also:  # name the cluster's nodes: head first, then workers
        by_root = m.pop("cluster_cpu_s_by_root", {})
        m["cpu_s_by_node"] = {("head" if i == 0 else f"worker{i}"): by_root.get(str(p), 0.0) for i, p in enumerate(also)}
    # The machine is shared: the 1-minute load average around the run says how noisy it was.
    m["load_before"], m["load_after"] = round(load_before, 1), round(os.getloadavg()[0], 1)
    m["output_bytes"] = _du(work / stage)
    # The stage's own timing of its steps (its stats.json), to tell which step grew.
    try:
        own = json.loads((work / stage / "stats.json").read_text())
        m["stage_seconds"] = own.get("seconds_by_step") or own.get("seconds")
    except (OSError, ValueError):
        pass  # a stage that failed before writing its stats: the log tail below says why
    if m["rc"] != 0:
        m["log_tail"] = log.read_text(errors="replace")[-3000:]
    return m


def evict_page_cache(root: Path) -> int:
    """Drop the clean cached pages of every file under `root` (POSIX_FADV_DONTNEED; no root rights
    needed). At 100M nothing a stage reads is still in memory from the stage before, so each stage
    is measured cold at every size; otherwise a 1M run reads its inputs from RAM and a 10M run
    (30 GB of raw tars on a 24 GiB box) from disk, and the growth measures the page cache."""
    os.sync()  # dirty pages cannot be dropped; written outputs are flushed first
    files = [p for p in root.rglob("*") if p.is_file()]
    for p in files:
        drop_from_page_cache(p)
    return len(files)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _disk_check(work: Path, n: int, force: bool) -> None:
    need = 2 * n * BYTES_PER_SAMPLE
    free = shutil.disk_usage(work).free
    if need > free and not force:
        raise SystemExit(f"bench/scale.py: {n:,} samples need about {need / GIB:.0f} GiB, {free / GIB:.0f} GiB free "
                         f"under {work} (--force to try anyway)")


def run(args) -> dict:
    n = args.samples
    tag = f"{n}" + ("-cluster" if args.cluster else "")
    work = Path(args.workdir).resolve() / tag
    work.mkdir(parents=True, exist_ok=True)
    _disk_check(work, n, args.force)
    raw = work / "raw"
    t0 = time.perf_counter()
    planted_summary = write_raw(raw, n, args.seed, jobs=args.jobs)  # a kept run's complete shards are reused
    gen_s = time.perf_counter() - t0
    print(f"raw shards: {n:,} samples in {gen_s:.0f} s ({_du(raw) / GIB:.2f} GiB)", flush=True)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("RAY_ADDRESS", None)
    cluster = None
    ray_temp = None
    settings: list[str] = []
    also: list[int] = []
    try:
        if args.cluster:
            from bench.raycluster import LocalCluster
            cluster = LocalCluster(work / "cluster", head_cpus=args.head_cpus, object_store_mb=args.object_store_mb).__enter__()
            cluster.add_worker(cpus=args.worker_cpus)
            env = cluster.stage_env(env)
            also = [node.supervisor for node in cluster.nodes]
        else:
            # A short temp dir of its own (socket paths), no dashboard (its port may be taken).
            ray_temp = tempfile.mkdtemp(prefix="wks", dir="/tmp")
            settings = [f"ray.temp_dir={ray_temp}", "ray.include_dashboard=false"]
        stages = _previous_stages(args, tag) if args.reuse else {}
        for stage in args.stages:
            if not args.warm:
                evict_page_cache(work)
            print(f"{stage} ...", flush=True)
            m = run_stage(stage, raw, work, env, settings, args.interval, also)
            stages[stage] = m
            print(f"  {_row(stage, m, n)}", flush=True)
            if m["rc"] != 0:
                print(f"  {stage} failed (rc {m['rc']}):\n{m.get('log_tail', '')}", flush=True)
                break
    finally:
        if cluster is not None:
            cluster.close()
        if ray_temp:
            shutil.rmtree(ray_temp, ignore_errors=True)
    _, planted = load_planted(raw)
    checks = check_chain(work / "filter", work / "dedup", work / "shards", planted) \
        if all(m["rc"] == 0 for m in stages.values()) and set(stages) == set(STAGES) else {"problems": ["a stage failed or did not run"]}
    result = {"samples": n, "cluster": bool(args.cluster), "seed": args.seed, "generate_s": round(gen_s, 1),
              "raw_bytes": _du(raw), "planted": planted_summary, "stages": stages, "checks": checks,
              "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(), "cold": not args.warm}
    out = Path(args.workdir).resolve() / f"scale-{tag}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    (out.with_suffix(".md")).write_text(markdown(result))
    print(markdown(result))
    print(f"results: {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _gib(b: int) -> str:
    return f"{b / GIB:.2f} GiB" if b >= GIB / 4 else f"{b / 1024 ** 2:.0f} MiB"


def others_cores(m: dict) -> float:
    """Cores other users' processes kept busy, on average over the stage's run."""
    return max(0.0, m.get("machine_cpu_s", 0.0) - m["cpu_s"]) / max(m["wall_s"], 1e-9)


def _row(stage: str, m: dict, n: int) -> str:
    return (f"| `wukong {stage}` | {m['wall_s']:.1f} s | {m['cpu_s']:.1f} s | {_gib(m['peak_driver_rss'])} | "
            f"{_gib(m['peak_tree_pss'])} | {1e6 * m['wall_s'] / n:.0f} us | {_gib(m.get('output_bytes', 0))} | "
            f"{_gib(m.get('read_bytes', 0))} | {others_cores(m):.2f} | "
            f"{m.get('load_before', 0):.1f} / {m.get('load_after', 0):.1f} |")


def markdown(result: dict) -> str:
    n = result["samples"]
    lines = [f"### {n:,} samples" + (" (two-node local cluster)" if result["cluster"] else ""), "",
             "| stage | wall | tree CPU | peak driver RSS | peak tree PSS | wall per row | output | read from disk "
             "| others' cores | load before / after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [_row(s, m, n) for s, m in result["stages"].items()]
    lines += ["", "Steps (the stage's stats.json, seconds): " + "; ".join(
        f"{s} {m['stage_seconds']}" for s, m in result["stages"].items() if m.get("stage_seconds"))]
    if result["cluster"]:
        lines += ["", "CPU by node (driver excluded): " + "; ".join(
            f"{s} " + ", ".join(f"{k} {v:.1f} s" for k, v in m.get("cpu_s_by_node", {}).items())
            for s, m in result["stages"].items())]
    checks = result["checks"]
    lines.append("")
    if checks.get("problems"):
        lines.append("Checks FAILED:")
        lines += [f"- {p}" for p in checks["problems"]]
    else:
        f, d, s = checks["filter"], checks["dedup"], checks["shards"]
        planted = result["planted"]
        lines.append(f"Checks passed: {planted['success_rows']:,} downloaded rows each once in kept ({f['kept']:,}) "
                     f"or rejected ({f['rejected']:,}); planted rejects "
                     + ", ".join(f"{k} {v['rejected_as_planted']}/{v['planted']}" for k, v in f["planted_rejects"].items())
                     + f"; unplanted rejects {f['unplanted_rejects'] or 'none'}; planted duplicates removed for their reason "
                     + ", ".join(f"{k} {v['removed_as_planted']}/{v['removed']} ({v['groups']} groups, one survivor each)"
                                 for k, v in d["planted_groups"].items())
                     + f"; other removals {d['unplanted_removed']} (random pairs expected {d['random_near_pairs_expected']}); "
                     f"final samples {s['samples']:,} = kept decisions {d['kept']:,}, no key twice.")
    return "\n".join(lines) + "\n"


def compare(args) -> int:
    base = Path(args.workdir).resolve()
    suffix = "-cluster" if args.cluster else ""
    a, b = (json.loads((base / f"scale-{n}{suffix}.json").read_text()) for n in args.compare)
    na, nb = a["samples"], b["samples"]
    lines = [f"### Growth from {na:,} to {nb:,} samples (x{nb / na:g})", "",
             "| stage | driver RSS | tree PSS | wall per row | CPU per row |", "|---|---:|---:|---:|---:|"]
    ok = True
    for stage in STAGES:
        sa, sb = a["stages"].get(stage), b["stages"].get(stage)
        if not sa or not sb:
            lines.append(f"| `wukong {stage}` | missing | | | |")
            ok = False
            continue
        g = {"peak_driver_rss": sb["peak_driver_rss"] / sa["peak_driver_rss"],
             "peak_tree_pss": sb["peak_tree_pss"] / sa["peak_tree_pss"],
             "wall_per_row": (sb["wall_s"] / nb) / (sa["wall_s"] / na)}
        cpu = (sb["cpu_s"] / nb) / (sa["cpu_s"] / na)
        cells = []
        for k, v in g.items():
            passed = v <= LIMITS[k]
            ok &= passed
            cells.append(f"x{v:.2f} {'(ok)' if passed else f'(over {LIMITS[k]}x)'}")
        lines.append(f"| `wukong {stage}` | " + " | ".join(cells) + f" | x{cpu:.2f} |")
    lines += ["", f"Limits (issue 15): driver RSS <= {LIMITS['peak_driver_rss']}x, tree PSS <= "
              f"{LIMITS['peak_tree_pss']}x, wall per row <= {LIMITS['wall_per_row']}x."]
    print("\n".join(lines))
    return 0 if ok else 1


def _previous_stages(args, tag: str) -> dict:
    """Measurements of the stages not rerun now, from the saved result of the same size."""
    try:
        saved = json.loads((Path(args.workdir).resolve() / f"scale-{tag}.json").read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return {}
    return {s: m for s, m in saved.items() if s not in args.stages}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--compare", type=int, nargs=2, metavar=("N1", "N2"), help="growth between two saved runs")
    p.add_argument("--cluster", action="store_true", help="attach every stage to a two-node local Ray cluster")
    p.add_argument("--head-cpus", type=int, default=1, help="CPUs of the cluster's head node (--cluster)")
    p.add_argument("--worker-cpus", type=int, default=1, help="CPUs of the cluster's worker node (--cluster)")
    p.add_argument("--object-store-mb", type=int, default=512, help="object store per cluster node (--cluster)")
    p.add_argument("--workdir", default=str(ROOT / "out" / "bench-scale"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes writing raw shards")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between memory samples")
    p.add_argument("--keep", action="store_true", help="keep the raw shards and stage outputs")
    p.add_argument("--force", action="store_true", help="run even if the disk looks too small")
    p.add_argument("--warm", action="store_true",
                   help="leave the page cache as it is (default: drop the cached pages of the inputs before each stage)")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                   help="run only these stages (with --reuse: on the kept raw shards and earlier outputs)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the raw shards and stage outputs a --keep run left (same --samples)")
    args = p.parse_args()
    if args.compare:
        return compare(args)
    result = run(args)
    return 0 if not result["checks"].get("problems") else 1


if __name__ == "__main__":
    raise SystemExit(main())
