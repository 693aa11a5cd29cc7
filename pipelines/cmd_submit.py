"""`wukong submit -- COMMAND ...`: run a wukong command as a Ray job of the head in use.

Through Ray's Job Submission API, so the command's driver log, progress lines and summary appear on
the dashboard's job page, beside one progress row per stage. The head is `RAY_ADDRESS` (a GCS
address or the dashboard's http URL), else `ray.address`, else the one `make dashboard` started.
The driver's output is followed here and the command's exit status returned; Ctrl-C stops the job.
On a head of this machine the job runs this checkout's code (PYTHONPATH) in the current directory,
so relative paths mean what they mean here; on a remote cluster the project's packages are shipped
with it (`ray.ship_code`) and paths are the cluster's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import socket
import sys
import time
from urllib.parse import urlsplit

# Job states after which a job's log is complete.
_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# Seconds `submit` waits for a stopped job (Ctrl-C) to end.
_STOP_WAIT_S = 30.0


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("submit", help="run a wukong command as a Ray job (its log and progress on the dashboard)",
                       description=__doc__.splitlines()[0],
                       usage="wukong submit [--no-wait] [--config FILE] [--set KEY=VALUE] -- COMMAND [ARGS ...]")
    p.add_argument("--no-wait", action="store_true", help="submit and return; do not follow the log")
    add_config_args(p)
    p.add_argument("wukong_args", nargs="...", metavar="COMMAND", help="a wukong command line, e.g. -- crawl --output out/crawl")
    p.set_defaults(func=run)


def _local_host(host: str) -> bool:
    if host in ("localhost", "") or host.startswith("127."):
        return True
    try:
        import psutil
        addresses = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
        return socket.gethostbyname(host) in addresses or host in addresses
    except OSError:
        return False


def _host_of(address: str) -> str:
    return urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""


def resolve_head(cfg) -> tuple[str | None, bool, str]:
    """(address for JobSubmissionClient, whether the head runs on this machine, where it came from);
    address None means RAY_ADDRESS, which Ray's client reads itself."""
    from pipelines.ray_head import is_running, read_record
    from pipelines.ray_runtime import resolve_temp_dir

    if os.environ.get("RAY_ADDRESS"):
        return None, _local_host(_host_of(os.environ["RAY_ADDRESS"])), "RAY_ADDRESS"
    if cfg.ray.address:
        return cfg.ray.address, _local_host(_host_of(cfg.ray.address)), "ray.address"
    rec = read_record(resolve_temp_dir(cfg.ray))
    if rec is not None and is_running(rec):
        return rec.dashboard_url, True, "the head of `make dashboard`"
    return "", False, ""


def job_spec(command: list[str], local: bool, ship_code: bool) -> tuple[str, dict]:
    """Entrypoint and runtime env running `wukong COMMAND` as a job."""
    args = " ".join(shlex.quote(a) for a in command)
    if local:
        entrypoint = f"cd {shlex.quote(os.getcwd())} && exec {shlex.quote(sys.executable)} -m pipelines {args}"
        env = {k: os.environ[k] for k in ("PYTHONPATH", "RAY_AUTH_MODE", "TOKENIZERS_PARALLELISM") if k in os.environ}
        env.setdefault("RAY_AUTH_MODE", "disabled")
        env["PYTHONUNBUFFERED"] = "1"
        env["RAY_DEDUP_LOGS"] = "0"  # one log line per partition, not "repeated 4x"
        return entrypoint, {"env_vars": env}
    runtime_env: dict = {"env_vars": {"PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0"}}
    if ship_code:
        from pipelines.ray_runtime import _stage_packages
        runtime_env["py_modules"] = _stage_packages()
    return f"python -m pipelines {args}", runtime_env


async def _follow(client, submission_id: str) -> None:
    async for chunk in client.tail_job_logs(submission_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def _wait_terminal(client, submission_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    status = str(client.get_job_status(submission_id).value)
    while status not in _TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        status = str(client.get_job_status(submission_id).value)
    return status


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args

    command = list(args.wukong_args)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("nothing to submit: wukong submit -- COMMAND [ARGS ...]")
    if command[0] in ("submit", "dashboard"):
        raise UsageError(f"`wukong {command[0]}` runs on this machine, not as a job")
    cfg = config_from_args(args)
    address, local, source = resolve_head(cfg)
    if address == "":
        raise UsageError("no Ray head to submit to: start one with `make dashboard`, or set RAY_ADDRESS")

    from ray.job_submission import JobSubmissionClient
    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot reach the Ray head ({source}): {str(exc).splitlines()[0]}") from None
    dashboard = client.get_address().rstrip("/")
    entrypoint, runtime_env = job_spec(command, local, cfg.ray.ship_code)
    submission_id = f"wukong-{command[0]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    client.submit_job(entrypoint=entrypoint, submission_id=submission_id, runtime_env=runtime_env,
                      metadata={"wukong_command": " ".join(command), "cwd": os.getcwd()})
    page = f"{dashboard}/#/jobs/{submission_id}"
    print(f"wukong submit: job {submission_id} on {source}; its page: {page}", file=sys.stderr, flush=True)
    if args.no_wait:
        print(submission_id)
        return 0
    try:
        asyncio.run(_follow(client, submission_id))
        status = _wait_terminal(client, submission_id, _STOP_WAIT_S)
    except KeyboardInterrupt:
        client.stop_job(submission_id)
        status = _wait_terminal(client, submission_id, _STOP_WAIT_S)
        print(f"wukong submit: job {submission_id} {status.lower()} on request", file=sys.stderr)
        return 130
    info = client.get_job_info(submission_id)
    code = info.driver_exit_code
    print(f"wukong submit: job {submission_id} {status}" + (f" (exit status {code})" if code is not None else "")
          + f"; its page: {page}", file=sys.stderr)
    if code is not None:
        return int(code)
    return 0 if status == "SUCCEEDED" else 1
