"""Benchmark of the pHash near-duplicate search: synthetic hashes with planted clusters.

For each size (default 1M, 10M, 100M) it generates uniformly random 64-bit hashes, plants
near-duplicate clusters (each member 0..radius bits from its root; 0 = an identical hash) and one
hot group of identical hashes (a blank image), then runs the stage's own path: collapse identical
hashes, one Ray task per permuted table, union-find, and a cluster label per sample. It reports
wall time, peak memory (PSS of this process and every Ray process it started, so the shared object
store counts once), recall of the planted pairs and precision of the found pairs against them.
The reference, in the same run, is an exact brute-force popcount search at 100k (vectorised numpy),
whose pair set must equal ours.

    .venv/bin/python bench/dedup.py [--sizes 1000000 10000000 100000000] [--radius 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from dedup.clusters import component_roots  # noqa: E402
from dedup.config import DedupConfig  # noqa: E402
from dedup.tables import choose_plan  # noqa: E402
from dedup.decisions import search_near  # noqa: E402
from dedup.near import sorted_unique  # noqa: E402
from pipelines.config import RayConfig  # noqa: E402
from pipelines.dedup_job import ray_near_finder  # noqa: E402
from pipelines.ray_runtime import init_ray, shutdown_ray  # noqa: E402
from bench.proctree import process_tree, tree_pss  # noqa: E402

CLUSTER_EVERY = 200      # one planted cluster root per this many samples
MAX_MEMBERS = 4          # members per planted cluster: 1..4
HOT_EVERY = 1000         # one sample in this many is the same blank-image hash


class PeakPss:
    """Peak total PSS of this process tree, sampled by a separate process every `interval` s.

    Reading smaps_rollup costs tens of ms per large process, so the sampler runs outside this
    process (no GIL contention), slowly, and is left out of the CPU and memory it reports."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.peak = 0
        self._proc: subprocess.Popen | None = None

    def cpu_seconds(self) -> float:
        """User + system CPU time of this process tree (Ray workers persist between runs)."""
        total = 0
        for pid in process_tree(os.getpid(), self._exclude()):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
                total += int(f[11]) + int(f[12])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we read
        return total / os.sysconf("SC_CLK_TCK")

    def _exclude(self) -> frozenset[int]:
        return frozenset({self._proc.pid}) if self._proc else frozenset()

    def now(self) -> int:
        return tree_pss(os.getpid(), self._exclude())

    def __enter__(self):
        self.peak = self.now()
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.proctree", str(os.getpid()), str(self.interval)],
                                      cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        out, _ = self._proc.communicate("")
        self.peak = max(self.peak, int(out.strip() or 0), self.now())
        self._proc = None


def synthesize(n: int, radius: int, seed: int):
    """n hashes; returns (hashes, planted (root, member) index pairs)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    n_clusters = n // CLUSTER_EVERY
    sizes = rng.integers(1, MAX_MEMBERS + 1, size=n_clusters)
    members = int(sizes.sum())
    roots = np.repeat(np.arange(n_clusters), sizes)
    mask = np.zeros(members, dtype=np.uint64)
    flips = rng.integers(0, radius + 1, size=members)
    for j in range(radius):
        bit = rng.integers(0, 64, size=members).astype(np.uint64)
        mask ^= np.where(j < flips, np.uint64(1) << bit, np.uint64(0))
    member_idx = np.arange(n - members, n)
    h[member_idx] = h[roots] ^ mask
    hot = np.arange(n_clusters, n - members, HOT_EVERY)
    h[hot] = 0
    return h, roots, member_idx


def run_ours(h: np.ndarray, cfg: DedupConfig):
    """The stage's own path: identical hashes collapsed, the table search on Ray (numbering every
    sample's hash meanwhile), union-find, a cluster label per sample."""
    t0 = time.perf_counter()
    lo, hi, stats, unique, node = search_near(h, cfg, ray_near_finder)
    t_search = time.perf_counter() - t0
    roots = component_roots(unique.size, lo, hi)
    label = roots[node]  # cluster of every sample
    total = time.perf_counter() - t0
    stats.update(t_search=round(t_search, 2), t_clusters_and_labels=round(total - t_search, 2))
    return total, unique, lo, hi, label, node, stats


def brute_force(unique: np.ndarray, radius: int, chunk: int = 256):
    """Every pair within the radius by popcount over all pairs (chunked rows, vectorised)."""
    a, b = [], []
    for s in range(0, unique.size, chunk):
        block = unique[s:s + chunk]
        d = np.bitwise_count(block[:, None] ^ unique[None, :])
        i, j = np.nonzero(d <= radius)
        i = i + s
        keep = j > i
        a.append(i[keep])
        b.append(j[keep])
    return np.concatenate(a), np.concatenate(b)


def quality(h, roots, member_idx, unique, lo, hi, label, node, radius):
    recall = float(np.mean(label[roots] == label[member_idx]))
    planted_of_node = np.full(unique.size, -1, dtype=np.int64)
    planted_of_node[node[member_idx]] = roots
    planted_of_node[node[roots]] = roots
    true = (planted_of_node[lo] == planted_of_node[hi]) & (planted_of_node[lo] >= 0)
    precision = float(true.mean()) if lo.size else 1.0
    within = bool((np.bitwise_count(unique[lo] ^ unique[hi]) <= radius).all())
    return recall, precision, within


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    ap.add_argument("--radius", type=int, default=DedupConfig().radius)
    # One table layout at every size (the one the stage picks for the largest size), so the
    # growth from the smallest to the largest size measures the algorithm, not a changing plan.
    ap.add_argument("--blocks", type=int, default=-1, help="-1: the auto choice for the largest size; 0: auto per size")
    ap.add_argument("--reference-size", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs per size at most (median reported)")
    ap.add_argument("--repeat-budget-s", type=float, default=30.0, help="no further repeat once a size has run this long")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    biggest = max(args.sizes + [args.reference_size])
    blocks = choose_plan(max(args.sizes), args.radius).blocks if args.blocks < 0 else args.blocks
    cfg = DedupConfig(radius=args.radius, blocks=blocks)
    print(f"radius {args.radius}, blocks {blocks or 'auto per size'}", flush=True)
    store_mb = max(512, int(biggest * 8 * 1.3 / 2**20))
    init_ray(RayConfig(temp_dir="/tmp/wukong-bench-dedup-ray", include_dashboard=False, num_cpus=os.cpu_count(),
                       object_store_memory_mb=store_mb))
    results = {"radius": args.radius, "blocks": blocks, "cpus": os.cpu_count(), "runs": []}

    # Reference, same run: brute force vs ours at the reference size.
    h, roots, members = synthesize(args.reference_size, args.radius, args.seed)
    t0 = time.perf_counter()
    ref_unique = sorted_unique(h)
    ra, rb = brute_force(ref_unique, args.radius)
    t_ref = time.perf_counter() - t0
    t_ours, unique, lo, hi, label, node, _ = run_ours(h, cfg)
    same = set(zip(ra.tolist(), rb.tolist())) == set(zip(lo.tolist(), hi.tolist()))
    ref = {"n": args.reference_size, "brute_force_s": round(t_ref, 2), "ours_s": round(t_ours, 2),
           "speedup": round(t_ref / t_ours, 1), "identical_pairs": same, "pairs": int(lo.size)}
    results["reference"] = ref
    print(f"reference n={args.reference_size:,}: brute force {t_ref:.2f} s, ours {t_ours:.2f} s "
          f"-> {t_ref / t_ours:.1f}x faster; identical pair sets: {same} ({lo.size} pairs)", flush=True)
    if not same:
        print("ERROR: the table search disagrees with brute force", file=sys.stderr)
        return 1

    for n in sorted(args.sizes):
        h, roots, members = synthesize(n, args.radius, args.seed)
        # Small sizes run a few times and report the median: a 1M run lasts under a second, so
        # one scheduling hiccup would otherwise move the growth figure by several percent.
        times, cpus, started = [], [], time.perf_counter()
        while not times or (len(times) < args.repeats and time.perf_counter() - started < args.repeat_budget_s):
            with PeakPss() as mem:
                base = mem.peak
                cpu0 = mem.cpu_seconds()
                t, unique, lo, hi, label, node, stats = run_ours(h, cfg)
                cpu = mem.cpu_seconds() - cpu0
            times.append(t)
            cpus.append(cpu)
        t, cpu = statistics.median(times), statistics.median(cpus)
        recall, precision, within = quality(h, roots, members, unique, lo, hi, label, node, args.radius)
        run = {**stats, "tables_seconds": stats.get("seconds"), "n": n, "seconds": round(t, 2),
               "runs_seconds": [round(x, 2) for x in times], "cpu_seconds": round(cpu, 1),
               "peak_gib": round(mem.peak / 2**30, 2),
               "peak_gib_over_input": round((mem.peak - base) / 2**30, 2), "recall": recall,
               "precision": round(precision, 6), "all_within_radius": within, "planted_pairs": int(members.size),
               "distinct_hashes": int(unique.size)}
        results["runs"].append(run)
        print(f"n={n:>11,}: {t:7.1f} s (median of {len(times)}; {cpu:.0f} CPU-s)  peak {run['peak_gib']:5.2f} GiB  "
              f"recall {recall:.4f}  precision {precision:.6f}  tables {stats['tables']} (blocks {stats['blocks']}, key >= "
              f"{stats['min_key_bits']} bits)  candidates {stats['candidates']:,}  pairs {stats['pairs']:,}  "
              f"hot buckets {stats['hot_buckets']}  [search {stats['t_search']} s (tables {stats['seconds']} s), "
              f"clusters {stats['t_clusters_and_labels']} s]", flush=True)
        del h, unique, lo, hi, label, node
    runs = results["runs"]
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        nlogn = (b["n"] * math.log(b["n"])) / (a["n"] * math.log(a["n"]))
        growth = b["seconds"] / a["seconds"]
        cpu_growth = b["cpu_seconds"] / max(a["cpu_seconds"], 1e-9)
        results["growth"] = {"time_ratio": round(growth, 1), "cpu_ratio": round(cpu_growth, 1),
                             "nlogn_ratio": round(nlogn, 1), "time_over_nlogn": round(growth / nlogn, 2),
                             "cpu_over_nlogn": round(cpu_growth / nlogn, 2)}
        # CPU time is the fairer measure on a shared machine: wall time also counts other jobs.
        print(f"{a['n']:,} -> {b['n']:,}: wall x{growth:.1f}, CPU x{cpu_growth:.1f}; n log n x{nlogn:.1f}; "
              f"wall/nlogn {growth / nlogn:.2f}, CPU/nlogn {cpu_growth / nlogn:.2f} (<= 1: no faster than n log n)")
    shutdown_ray()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
