"""Benchmark of `wukong download` against img2dataset 1.47.0 on the same URL list.

Generates photographic JPEGs (scikit-image sample photos cropped, scaled, noised; 300..1600 wide,
201..1200 high so Wukong's size rules keep every one and both tools do the same work), serves them
from nginx on 127.0.0.1 (a Python static server if nginx is missing), and lists them under distinct
query strings as a Wukong-format CSV. Both tools run on it with the same output size, resize mode,
shard size and process count, alternating, `--repeats` times each; the median ratio counts.
img2dataset is installed in its own virtual environment under bench/.peers/ on first use.

CPU time is that of each command's whole process tree (for us: the driver, Ray's daemons and
workers), sampled from /proc. The floor is decode + resize + pad + encode alone (Pillow with
`draft`, same images, same filter and quality) in one process: one pass after each pair of tool runs,
so that it meets the machine in the state the runs met (a shared host's speed drifts by 10% or
more over minutes), after a warm-up pass. Our CPU-ms per sample is set against the floor pass that
follows each run, and the median of those ratios counts, as the median pair counts for throughput.
The pHash section times imagehash.phash against ours on the images ingest hashes.

    .venv/bin/python bench/ingest.py [--images 3000] [--rows 45000] [--processes 2] [--repeats 3]

The list has 45,000 rows by default (each image 15 times) so that start-up costs are amortised as
they are at scale: a local Ray with its dashboard costs about 6 s of wall time and 10 CPU-s to start
on a 2-core machine, a sixth of a 15,000-row run. `--rows 15000` measures the shorter list.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The in-process references below are one-core measurements: BLAS must not add threads (Ray sets
# the same for its workers). The two tools' runs get the environment without this setting.
_BLAS_THREADS = "OPENBLAS_NUM_THREADS"
_INHERITED_BLAS_THREADS = os.environ.get(_BLAS_THREADS)
os.environ[_BLAS_THREADS] = "1"

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from bench.proctree import process_tree  # noqa: E402

OUT = ROOT / "bench" / "out" / "ingest"
PEER_VENV = ROOT / "bench" / ".peers" / "img2dataset"
PEER_SPEC = "img2dataset==1.47.0"
IMAGE_SEED = 20221
MIN_W, MAX_W, MIN_H, MAX_H = 300, 1600, 201, 1200
SOURCE_QUALITY = (80, 95)
CPU_SAMPLE_S = 0.1
RUN_TIMEOUT_S = 900
FLOOR_QUALITY = 95


# -- corpus -----------------------------------------------------------------------------------------

def _sources() -> list[np.ndarray]:
    from skimage import data
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(),
            data.hubble_deep_field(), data.retina(), data.cat()]


def make_corpus(n: int, directory: Path) -> list[Path]:
    """n photographic JPEGs, made once and reused (the manifest records how they were made)."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "manifest.json"
    want = {"n": n, "seed": IMAGE_SEED, "sizes": [MIN_W, MAX_W, MIN_H, MAX_H]}
    paths = [directory / f"{i:05d}.jpg" for i in range(n)]
    if manifest.is_file() and json.loads(manifest.read_text()) == want and all(p.is_file() for p in paths):
        return paths
    rng = np.random.default_rng(IMAGE_SEED)
    srcs = _sources()
    for i, path in enumerate(paths):
        src = srcs[i % len(srcs)]
        h, w = src.shape[:2]
        w_out = int(rng.integers(MIN_W, MAX_W + 1))
        h_out = int(np.clip(rng.integers(MIN_H, MAX_H + 1), max(MIN_H, w_out // 3 + 1), min(MAX_H, w_out * 3)))
        cw, ch = int(rng.integers(w // 3, w + 1)), int(rng.integers(h // 3, h + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = Image.fromarray(src[y:y + ch, x:x + cw]).convert("RGB").resize((w_out, h_out), Image.Resampling.BICUBIC)
        arr = np.asarray(im, dtype=np.int16) + rng.normal(0, 4, (h_out, w_out, 3)).astype(np.int16)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
            path, "JPEG", quality=int(rng.integers(*SOURCE_QUALITY)))
    manifest.write_text(json.dumps(want))
    return paths


def write_url_list(path: Path, port: int, n_images: int, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        for r in range(rows):
            w.writerow([f"http://127.0.0.1:{port}/{r % n_images:05d}.jpg?r={r}", f"样例图片 {r}"])


# -- server ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(images: Path, port: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    workdir.mkdir(parents=True, exist_ok=True)
    if nginx:
        conf = workdir / "nginx.conf"
        temp = workdir / "tmp"
        temp.mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(f"""{user}
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 120;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  types {{ image/jpeg jpg; }}
  server {{ listen 127.0.0.1:{port}; root {images}; location / {{ }} }}
}}
""")
        proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        kind = "nginx"
    else:
        proc = subprocess.Popen([sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port),
                                 "bench.ingest:static_app", str(images)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kind = "aiohttp static (nginx not installed)"
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, kind
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("image server did not start")


def static_app(argv):
    from aiohttp import web
    app = web.Application()
    app.router.add_static("/", argv[0])
    return app


# -- measuring a command -------------------------------------------------------------------------------

_tree = process_tree


def _cpu_s(pid: int) -> tuple[str, float] | None:
    """(process name, user + system CPU seconds) of a live process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            head, tail = fh.read().rsplit(")", 1)
        fields = tail.split()
        name = head.split("(", 1)[1]
        if name.startswith("python"):  # name Python daemons by their script
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            script = next((a for a in args[1:] if a.endswith(b".py")), None)
            if script:
                name = Path(script.decode()).name
        return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_measured(cmd: list[str], env: dict | None = None, log: Path | None = None) -> dict:
    """Wall time and CPU seconds of the command's whole process tree (each pid's last sample)."""
    seen: dict[int, float] = {}
    names: dict[int, str] = {}
    stop = threading.Event()
    logf = open(log, "w") if log else subprocess.DEVNULL
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

    def sample() -> None:
        while not stop.is_set():
            for pid in _tree(proc.pid):
                got = _cpu_s(pid)
                if got is not None:
                    names[pid] = got[0]
                    seen[pid] = max(got[1], seen.get(pid, 0.0))
            stop.wait(CPU_SAMPLE_S)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        rc = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        wall = time.monotonic() - t0
        stop.set()
        t.join()
        if proc.poll() is None:
            proc.kill()
        if logf is not subprocess.DEVNULL:
            logf.close()
    # The sampled maximum per pid undercounts at most one sample interval per process.
    by_name: dict[str, float] = {}
    for pid, cpu in seen.items():
        by_name[names[pid]] = by_name.get(names[pid], 0.0) + cpu
    top = dict(sorted(((k, round(v, 2)) for k, v in by_name.items()), key=lambda kv: -kv[1])[:12])
    return {"rc": rc, "wall_s": wall, "cpu_s": sum(seen.values()), "cpu_by_process": top}


# -- the two tools -------------------------------------------------------------------------------------

def _tool_env() -> dict[str, str]:
    """This process's environment as it was given, without the one-core BLAS setting above."""
    env = dict(os.environ)
    if _INHERITED_BLAS_THREADS is None:
        env.pop(_BLAS_THREADS, None)
    else:
        env[_BLAS_THREADS] = _INHERITED_BLAS_THREADS
    return env


def ensure_peer() -> Path:
    exe = PEER_VENV / "bin" / "img2dataset"
    if exe.exists():
        return exe
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + [PEER_SPEC], check=True)
    return exe


def run_ours(urls: Path, out: Path, args, port: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    ray_tmp = Path(tempfile.mkdtemp(prefix="wkb", dir="/tmp"))
    cmd = [str(ROOT / ".venv" / "bin" / "wukong"), "download", str(urls), "--output", str(out),
           "--processes", str(args.processes), "--image-size", str(args.image_size),
           "--resize-mode", args.resize_mode, "--no-progress",
           "--set", f"download.allowed_addresses=[127.0.0.1:{port}]",
           "--set", f"download.rows_per_shard={args.shard_size}",
           "--set", f"ray.temp_dir={ray_tmp}", "--set", f"ray.dashboard_port={free_port()}"]
    env = dict(_tool_env(), RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    try:
        res = run_measured(cmd, env, OUT / "ours.log")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    stats = json.loads((out / "stats.json").read_text()) if (out / "stats.json").is_file() else {}
    res["samples"] = stats.get("by_status", {}).get("success", 0)
    res["errors"] = stats.get("by_error", {})
    return res


def run_peer(exe: Path, urls: Path, out: Path, args) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(exe), "--url_list", str(urls), "--input_format", "csv", "--url_col", "url",
           "--caption_col", "caption", "--output_format", "webdataset", "--output_folder", str(out),
           "--processes_count", str(args.processes), "--thread_count", str(args.peer_threads),
           "--image_size", str(args.image_size), "--resize_mode", args.resize_mode,
           "--number_sample_per_shard", str(args.shard_size), "--distributor", "multiprocessing",
           "--enable_wandb", "False"]
    # albumentations (an img2dataset dependency) would otherwise look for updates online.
    env = dict(_tool_env(), NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled")
    res = run_measured(cmd, env, OUT / "peer.log")
    ok = 0
    for s in out.glob("*_stats.json"):
        ok += json.loads(s.read_text()).get("successes", 0)
    res["samples"] = ok
    return res


# -- in-process references -------------------------------------------------------------------------------

def floor_pass(bodies: list[bytes], size: int, quality: int) -> float:
    """Decode (draft) + resize (box) + pad + encode of every body, one process: CPU ms per image."""
    t0 = time.process_time()
    for body in bodies:
        im = Image.open(io.BytesIO(body))
        scale = size / max(im.size)
        target = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im.draft("RGB", target)
        im = im.convert("RGB").resize(target, Image.Resampling.BOX)
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
        canvas.save(io.BytesIO(), "JPEG", quality=quality)
    return (time.process_time() - t0) * 1000 / len(bodies)


def phash_ms(paths: list[Path], size: int) -> dict:
    """imagehash.phash against ours on the images ingest hashes (decoded, scaled to the output size).

    Ours is timed twice: cold, while it still derives Pillow's Lanczos weights for each new image
    size (once per size and worker process; one side of a scaled image is always `size`, so a run
    meets a few hundred sizes at most), and warm, the per-image cost over a long run.
    """
    import imagehash

    from crawler import phash as ph
    from crawler.imaging import ImageProcessor
    proc = ImageProcessor(image_size=size)
    scaled = [proc.scale(proc.decode_rgb(p.read_bytes())[0]) for p in paths]
    ph.clear_weight_tables()

    def ours() -> list[int]:
        return [int(v) for v in ph.phash_batch(np.stack([ph.phash_input(im) for im in scaled]))]

    t0 = time.process_time()
    ref = [int(str(imagehash.phash(im)), 16) for im in scaled]
    t_ref = time.process_time() - t0
    t0 = time.process_time()
    cold = ours()
    t_cold = time.process_time() - t0
    t0 = time.process_time()
    warm = ours()
    t_warm = time.process_time() - t0
    assert cold == ref and warm == ref, "batched pHash differs from imagehash"
    n = len(scaled)
    return {"images": n, "imagehash_ms": t_ref * 1000 / n, "ours_ms": t_warm * 1000 / n,
            "ours_first_pass_ms": t_cold * 1000 / n, "weight_tables": ph.weight_tables()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=45000, help="URL-list rows (at least 15,000)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each tool, alternating (at least 2)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--resize-mode", default="border")
    ap.add_argument("--shard-size", type=int, default=1000, help="rows per shard, both tools")
    ap.add_argument("--peer-threads", type=int, default=64)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--json", type=Path, default=OUT / "results.json")
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    paths = make_corpus(args.images, OUT / "images")
    mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    print(f"corpus: {len(paths)} JPEGs, mean {mean_kb:.0f} KB ({time.monotonic() - t:.0f} s)", flush=True)
    peer = None if args.skip_peer else ensure_peer()

    port = free_port()
    server, kind = start_server(OUT / "images", port, OUT / "server")
    urls = OUT / "urls.csv"
    write_url_list(urls, port, len(paths), args.rows)
    print(f"server: {kind} on 127.0.0.1:{port}; url list: {args.rows} rows", flush=True)
    bodies = [p.read_bytes() for p in paths]
    floor_pass(bodies, args.image_size, FLOOR_QUALITY)  # warm-up: first touches of allocator and code
    ours, theirs, floor_passes = [], [], []
    try:
        for i in range(args.repeats):
            r = run_ours(urls, OUT / "run_ours", args, port)
            ours.append(r)
            print(f"  wukong download  #{i + 1}: rc={r['rc']} {r['samples']} samples in {r['wall_s']:.1f} s = "
                  f"{r['samples'] / r['wall_s']:.0f} samples/s, {1000 * r['cpu_s'] / max(1, r['samples']):.2f} CPU-ms/sample",
                  flush=True)
            if peer is not None:
                r = run_peer(peer, urls, OUT / "run_peer", args)
                theirs.append(r)
                print(f"  img2dataset      #{i + 1}: rc={r['rc']} {r['samples']} samples in {r['wall_s']:.1f} s = "
                      f"{r['samples'] / r['wall_s']:.0f} samples/s, "
                      f"{1000 * r['cpu_s'] / max(1, r['samples']):.2f} CPU-ms/sample", flush=True)
            floor_passes.append(floor_pass(bodies, args.image_size, FLOOR_QUALITY))
            print(f"  floor            #{i + 1}: {floor_passes[-1]:.2f} CPU-ms/image", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)

    floor = statistics.median(floor_passes)
    ph = phash_ms(paths[:1000], args.image_size)

    def med(runs, f):
        return statistics.median(f(r) for r in runs) if runs else None

    ours_sps = med(ours, lambda r: r["samples"] / r["wall_s"])
    ours_cpu = med(ours, lambda r: 1000 * r["cpu_s"] / max(1, r["samples"]))
    # Each run against the floor pass measured right after it, in the same machine state.
    vs_floor = [1000 * r["cpu_s"] / max(1, r["samples"]) / f for r, f in zip(ours, floor_passes)]
    result = {
        "images": len(paths), "rows": args.rows, "processes": args.processes, "image_size": args.image_size,
        "resize_mode": args.resize_mode, "server": kind, "mean_kb": round(mean_kb, 1),
        "ours": ours, "peer": theirs,
        "ours_samples_per_s": ours_sps, "ours_cpu_ms_per_sample": ours_cpu,
        "floor_cpu_ms_per_image": floor, "floor_passes": floor_passes,
        "ours_cpu_vs_floor": statistics.median(vs_floor), "ours_cpu_vs_floor_runs": vs_floor, "phash": ph,
    }
    print(f"\nwukong download : {ours_sps:7.1f} samples/s   {ours_cpu:5.2f} CPU-ms/sample (with pHash and sha256)")
    if theirs:
        peer_sps = med(theirs, lambda r: r["samples"] / r["wall_s"])
        peer_cpu = med(theirs, lambda r: 1000 * r["cpu_s"] / max(1, r["samples"]))
        ratios = [o["samples"] / o["wall_s"] / (p["samples"] / p["wall_s"]) for o, p in zip(ours, theirs)]
        result.update(peer_samples_per_s=peer_sps, peer_cpu_ms_per_sample=peer_cpu, ratios=ratios,
                      ratio_median=statistics.median(ratios))
        print(f"img2dataset     : {peer_sps:7.1f} samples/s   {peer_cpu:5.2f} CPU-ms/sample")
        print(f"ratio (median of alternating pairs): {statistics.median(ratios):.2f}x  {['%.2f' % r for r in ratios]}")
    print(f"floor (decode+resize+pad+encode, one process, median of {['%.2f' % p for p in floor_passes]}): "
          f"{floor:.2f} CPU-ms/image; ours / floor = {statistics.median(vs_floor):.2f}x "
          f"(median of each run against the next floor pass: {['%.2f' % v for v in vs_floor]})")
    print(f"pHash per image on {ph['images']} images: imagehash {ph['imagehash_ms']:.3f} ms, ours {ph['ours_ms']:.3f} ms "
          f"(first pass {ph['ours_first_pass_ms']:.3f} ms while deriving {ph['weight_tables']} weight tables); "
          f"bit-identical")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
