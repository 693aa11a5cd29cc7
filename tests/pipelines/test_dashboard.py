"""`wukong dashboard` and `wukong submit`: a real Ray head, a run attached to it, its dashboard APIs,
its counters, and a stop that ends exactly the head's processes.

The fast tests drive the process bookkeeping on real processes (no Ray); the slow ones start real
heads on free ports in short temp dirs of their own.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines import processes
from pipelines.crawl_metrics import JournalCounter
from pipelines.metrics import read_endpoint
from pipelines.processes import ProcessRecord
from pipelines.progress import ProgressLine

ROOT = Path(__file__).resolve().parents[2]
# A parent that starts a child, both sleeping; the parent prints the child's PID.
_TREE = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']);"
         "print(c.pid, flush=True); time.sleep(300)")
_STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True);"
             "time.sleep(300)")


def _spawn(code: str, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, text=True)


def _alive(rec: ProcessRecord) -> bool:
    return processes.live(rec) is not None


@pytest.fixture
def reaped():
    """Popen objects a test started: reaped (and killed if still running) at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


# -- process bookkeeping on real processes -------------------------------------------------------

def test_recorded_processes_and_their_children_end_and_a_lookalike_survives(reaped, tmp_path):
    marker = str(tmp_path / "head-temp-dir")
    tree = _spawn(_TREE, marker)
    decoy = _spawn("import time; time.sleep(300)", marker)  # same command-line words, not recorded
    reaped += [tree, decoy]
    child_pid = int(tree.stdout.readline())
    recs = processes.with_descendants([processes.record(tree.pid, "parent")])
    assert {r.pid for r in recs} == {tree.pid, child_pid}
    assert next(r for r in recs if r.pid == child_pid).role == "child of parent"
    outcomes = dict((r.pid, how) for r, how in processes.end_processes(recs, timeout_s=10))
    assert outcomes == {tree.pid: processes.ENDED, child_pid: processes.ENDED}
    assert not any(_alive(r) for r in recs)
    assert decoy.poll() is None, "a process that merely mentions the same path is never touched"


def test_a_process_ignoring_sigterm_is_killed_and_a_reused_pid_is_left_alone(reaped):
    stubborn = _spawn(_STUBBORN)
    bystander = _spawn("import time; time.sleep(300)")
    reaped += [stubborn, bystander]
    assert stubborn.stdout.readline().strip() == "ready"
    rec = processes.record(stubborn.pid, "stubborn")
    # The bystander's PID with another start time: what a record looks like once its PID is reused.
    reused = ProcessRecord(bystander.pid, processes.record(bystander.pid, "x").create_time - 100, "old")
    t0 = time.monotonic()
    outcomes = processes.end_processes([rec, reused], timeout_s=1)
    assert [how for _, how in outcomes] == [processes.KILLED, processes.GONE]
    assert time.monotonic() - t0 < 1 + processes.KILL_WAIT_S
    assert stubborn.wait(timeout=5) == -signal.SIGKILL
    assert bystander.poll() is None


def test_a_failed_start_ends_only_what_it_started(reaped):
    from pipelines.ray_head import end_started_since, own_descendants
    earlier = _spawn("import time; time.sleep(300)")  # e.g. a test session's own Ray
    reaped.append(earlier)
    before = own_descendants()
    started = _spawn(_TREE)
    reaped.append(started)
    grandchild = int(started.stdout.readline())
    outcomes = end_started_since(before, timeout_s=10)
    assert {r.pid: how for r, how in outcomes} == {started.pid: processes.ENDED, grandchild: processes.ENDED}
    assert not any(_alive(r) for r, _ in outcomes)
    assert earlier.poll() is None


def test_records_round_trip_through_the_head_file(tmp_path):
    from pipelines.ray_head import HeadRecord, read_record, remove_record, write_record
    rec = HeadRecord(address="192.0.2.2:6379", dashboard_url="http://127.0.0.1:8265", session_dir="/s",
                     node_ip="192.0.2.2", metrics_export_port=4321, started_at=1.5,
                     processes=[ProcessRecord(10, 2.25, "raylet", "raylet")])
    write_record(tmp_path, rec)
    assert read_record(tmp_path) == rec
    assert rec.metrics_url == "http://192.0.2.2:4321/metrics"
    (tmp_path / "wukong_head.json").write_text("{not json")
    assert read_record(tmp_path) is None
    remove_record(tmp_path)
    assert read_record(tmp_path) is None


def test_stop_without_a_head_says_so(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "dashboard", "stop", "--set", f"ray.temp_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "nothing to stop" in proc.stdout
    status = subprocess.run([sys.executable, "-m", "pipelines", "dashboard", "status", "--set",
                             f"ray.temp_dir={tmp_path}"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert status.returncode == 1 and "not running" in status.stdout


# -- counters, progress lines, submission --------------------------------------------------------

def test_crawl_journal_is_counted_from_where_the_task_started(tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.write_text(json.dumps({"fetched": 1, "pairs": [{}, {}]}) + "\n")  # an earlier run's page
    counter = JournalCounter(journal, "00003", poll_s=0.05)
    with counter:
        with open(journal, "a") as fh:
            fh.write(json.dumps({"fetched": 1, "reason": None, "pairs": [{}, {}, {}]}) + "\n")
            fh.write(json.dumps({"fetched": 0, "reason": "robots_disallowed"}) + "\n")
            fh.write(json.dumps({"fetched": 1, "reason": "not_html", "pairs": []}) + "\n")
            fh.write('{"fetched": 1, "pairs": [{}]')  # still being written when the counter looks
            fh.flush()
            time.sleep(0.2)
            fh.write("}\n")
    assert counter.totals == {"pages_fetched": 3, "pages_robots_skipped": 1, "pairs": 4}


def test_progress_is_plain_lines_off_a_terminal():
    out = io.StringIO()
    bar = ProgressLine("download", total=200, stream=out, interval_s=0)
    bar.update(50, 40)
    bar.update(200, 150)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("download: 50/200 rows (25%)") and "success 80.0%" in lines[0]
    assert lines[-1].startswith("download: 200/200 rows (100%)") and "\r" not in out.getvalue()
    quiet = io.StringIO()
    ProgressLine("download", total=5, stream=quiet, enabled=False).close()
    assert quiet.getvalue() == ""


def test_read_endpoint_returns_only_wukong_samples():
    text = (b"# HELP ray_wukong_download_rows_total rows\n# TYPE ray_wukong_download_rows_total counter\n"
            b'ray_wukong_download_rows_total{run_id="01000000",stage="download",status="success"} 48.0\n'
            b"# HELP ray_node_cpu_count cpus\n# TYPE ray_node_cpu_count gauge\nray_node_cpu_count 2.0\n")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        samples = read_endpoint(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert samples == [("ray_wukong_download_rows_total",
                        {"run_id": "01000000", "stage": "download", "status": "success"}, 48.0)]


def test_submit_job_spec_runs_this_checkout_here_and_ships_code_elsewhere(monkeypatch):
    from pipelines.cmd_submit import job_spec
    monkeypatch.setenv("PYTHONPATH", "/checkout")
    entry, env = job_spec(["download", "a list.csv", "--output", "out"], local=True, ship_code=True)
    assert entry == (f"cd {os.getcwd()} && exec {sys.executable} -m pipelines download 'a list.csv' --output out")
    assert env["env_vars"]["PYTHONPATH"] == "/checkout" and "py_modules" not in env
    entry, env = job_spec(["crawl", "--output", "o"], local=False, ship_code=True)
    assert entry == "python -m pipelines crawl --output o"
    assert {Path(m.__file__).parent.name for m in env["py_modules"]} >= {"crawler", "pipelines", "shards"}


def test_submit_without_a_head_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "pipelines", "submit", "--set", f"ray.temp_dir={tmp_path}", "--",
                           "download", "x.csv", "--output", "o"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "no Ray head to submit to" in proc.stderr
    nothing = subprocess.run([sys.executable, "-m", "pipelines", "submit"], capture_output=True, text=True,
                             cwd=ROOT, env=env, timeout=60)
    assert nothing.returncode == 2 and "nothing to submit" in nothing.stderr


def test_prometheus_scrape_config_follows_the_sessions_nodes(tmp_path):
    import yaml

    from pipelines.prometheus import SERVICE_DISCOVERY_FILE, write_scrape_config
    session = tmp_path / "session_2026-01-01_00-00-00_000000_1"
    path = write_scrape_config(session)
    cfg = yaml.safe_load(path.read_text())
    (job,) = cfg["scrape_configs"]
    assert job["file_sd_configs"][0]["files"] == [str(session / SERVICE_DISCOVERY_FILE)]
    assert path.parent.parent == session


def test_grafana_dashboard_queries_only_counters_the_stages_export():
    """Every panel of docs/grafana/wukong.json reads a `ray_wukong_*` series of a stage that
    reports it, filtered by the run picked in the dashboard."""
    import re
    board = json.loads((ROOT / "docs" / "grafana" / "wukong.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    names = {n for e in exprs for n in re.findall(r"ray_wukong_\w+", e)}
    stages = {n.split("_")[2] for n in names}
    assert {"download", "crawl", "filter", "dedup", "shards", "train"} <= stages
    assert all('run_id=~"$run_id"' in e for e in exprs)
    assert {v["name"] for v in board["templating"]["list"]} >= {"datasource", "run_id"}


# -- a real head ---------------------------------------------------------------------------------

def _free_port() -> int:
    from pipelines.ray_head import free_port
    return free_port()


def _wukong(*args: str, env: dict, timeout: float = 240, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _poll(fn, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what() if callable(what) else what} not seen in {timeout_s} s (last: {last!r})")


@pytest.fixture
def short_tmp():
    """Ray's socket paths must stay under 107 bytes: its temp dir needs a short name."""
    import shutil
    path = Path(tempfile.mkdtemp(prefix="wk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_head_beside_a_local_run_shows_stages_and_counters_and_stops_only_itself(tmp_path, short_tmp, reaped):
    from tests.crawler import corpus
    from tests.crawler.servers import LoopbackServer

    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    head_dir, local_dir = short_tmp / "h", short_tmp / "l"
    dashboard_port = _free_port()
    head_sets = ["--set", f"ray.temp_dir={head_dir}", "--set", f"ray.dashboard_port={dashboard_port}",
                 "--set", f"ray.head_port={_free_port()}", "--set", "ray.num_cpus=2",
                 "--set", "ray.object_store_memory_mb=256"]
    # Another run in progress on its own local Ray, configured like the head (same dashboard port):
    # it must take a free port instead, so the head can still start.
    local_code = ("import json, sys; from pipelines.config import load_config; from pipelines.ray_runtime import init_ray;"
                  "info = init_ray(load_config(None, sys.argv[1:]).ray); print(json.dumps(info), flush=True);"
                  "sys.stdin.read()")
    local_run = subprocess.Popen([sys.executable, "-c", local_code, f"ray.temp_dir={local_dir}",
                                  f"ray.dashboard_port={dashboard_port}", "ray.num_cpus=1",
                                  "ray.object_store_memory_mb=128"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    reaped.append(local_run)
    local_info = json.loads(local_run.stdout.readline())
    assert local_info["started"] and not local_info["dashboard_url"].endswith(f":{dashboard_port}")
    local_tree = processes.with_descendants([processes.record(local_run.pid, "local run")])
    assert len(local_tree) > 3

    started = _wukong("dashboard", "start", *head_sets, env=env)
    assert started.returncode == 0, started.stderr[-3000:]
    record = json.loads((head_dir / "wukong_head.json").read_text())
    url = record["dashboard_url"]
    assert url == f"http://127.0.0.1:{dashboard_port}"
    recorded = [ProcessRecord.from_dict(p) for p in record["processes"]]
    names = {p.name for p in recorded}
    roles = {p.role for p in recorded}
    assert {"gcs_server", "raylet", "dashboard", "monitor", "log_monitor"} <= roles
    assert {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names
    decoy = None
    try:
        with LoopbackServer() as srv:
            corpus.populate(srv)
            expected = corpus.write_wukong_csv(tmp_path / "in.csv", srv, rows=60, bad_every=5)
            submitted = _wukong("submit", *head_sets, "--", "download", str(tmp_path / "in.csv"), "--output",
                                str(tmp_path / "raw"), "--allow-private", "--set", "download.rows_per_shard=20",
                                env=env, cwd=tmp_path)
        assert submitted.returncode == 0, (submitted.stdout[-2000:], submitted.stderr[-3000:])
        summary = json.loads([line for line in submitted.stdout.splitlines() if line.startswith('{"output"')][-1])
        assert summary["rows"] == 60 and summary["success"] == sum(v is None for v in expected.values())
        # The job page's data: the submitted job with its driver's Ray job id, one task group per stage.
        jobs = [j for j in _get(f"{url}/api/jobs/") if (j.get("metadata") or {}).get("wukong_command", "").startswith("download")]
        (job,) = jobs
        assert job["status"] == "SUCCEEDED" and job["job_id"]
        summary_api = _get(f"{url}/api/v0/tasks/summarize")["data"]["result"]["result"]["node_id_to_summary"]
        groups = summary_api["cluster"]["summary"]
        assert groups["download"]["state_counts"] == {"FINISHED": 3}
        assert groups["download-scan"]["state_counts"] == {"FINISHED": 1}
        assert not [name for name in groups if name.startswith("download") and name not in ("download", "download-scan")]
        # The stage's counters on the head's metrics endpoint, labelled with the run's id.
        metrics_url = f"http://{record['node_ip']}:{record['metrics_export_port']}/metrics"

        seen = []

        def rows_of_run():
            seen[:] = [(lab.get("run_id"), lab.get("status"), v) for name, lab, v in read_endpoint(metrics_url)
                       if name == "ray_wukong_download_rows_total"]
            got: dict = {}
            for run, status, v in seen:  # one sample per partition and status
                if run == job["job_id"]:
                    got[status] = got.get(status, 0) + v
            return got if sum(got.values()) == 60 else None

        by_status = _poll(rows_of_run, 60, lambda: f"download rows of run {job['job_id']} (seen: {seen})")
        assert by_status == {"success": summary["success"], "failed": 60 - summary["success"]}
        status = _wukong("dashboard", "status", *head_sets, env=env)
        assert status.returncode == 0 and metrics_url in status.stdout
        assert f"run_id='{job['job_id']}', stage='download', status='success'}} {summary['success']}" in status.stdout

        # A process whose command line names the head's temp dir, not of the head.
        decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(head_dir), url])
        reaped.append(decoy)
    finally:
        stopped = _wukong("dashboard", "stop", *head_sets, env=env, timeout=120)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "ray::DashboardAgent" in stopped.stdout and "ray::RuntimeEnvAgent" in stopped.stdout
    assert not [p for p in recorded if _alive(p)], "every recorded process of the head ended"
    assert decoy is not None and decoy.poll() is None, "the decoy is alive"
    assert all(_alive(p) for p in local_tree if p.role == "local run" or p.name in ("gcs_server", "raylet")), \
        "the other run's Ray is untouched"
    assert not (head_dir / "wukong_head.json").exists()
    local_run.stdin.close()  # the other run ends on its own, shutting down its Ray
    assert local_run.wait(timeout=60) == 0


@pytest.mark.slow
def test_a_start_that_fails_midway_leaves_nothing_running(short_tmp):
    """The head's processes are up when the start fails (here: the readiness check raises): all of
    them end, and the command fails with one line."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pipelines import ray_head\n"
        "from pipelines.config import RayConfig\n"
        "def fail(check, timeout_s, what):\n"
        "    Path(sys.argv[2]).write_text(json.dumps([r.to_dict() for r in ray_head.own_descendants()]))\n"
        "    raise ray_head.HeadError(what + ' never answered')\n"
        "ray_head._wait_until = fail\n"
        "cfg = RayConfig(temp_dir=sys.argv[1], num_cpus=1, object_store_memory_mb=128,\n"
        "                dashboard_port=ray_head.free_port(), head_port=ray_head.free_port())\n"
        "try:\n"
        "    ray_head.start_head(cfg, Path(sys.argv[1]), {})\n"
        "except ray_head.HeadError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    seen = short_tmp / "seen.json"
    proc = subprocess.run([sys.executable, "-c", code, str(short_tmp / "r"), str(seen)], capture_output=True,
                          text=True, env=env, timeout=180, cwd=ROOT)
    assert proc.returncode == 2 and "never answered" in proc.stdout, proc.stderr[-2000:]
    started = [ProcessRecord.from_dict(d) for d in json.loads(seen.read_text())]
    assert {"gcs_server", "raylet"} <= {p.name for p in started}
    assert not [p for p in started if _alive(p)]
