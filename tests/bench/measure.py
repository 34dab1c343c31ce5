"""Measure provision.yml on the running lab and print one JSON object.

Run inside the lab (`tests/lab/labctl exec -- .venv/bin/python tests/bench/measure.py`). It
returns the lab to the state `labctl up` left it in, then times `ansible pis -m ping` (the
floor), a first run of playbooks/provision.yml and a second, idempotent run. For each run it
counts the calls that the stand-ins served and, with the callback in callback_plugins/, the wall time
of each play and the slowest tasks. Krypton bootstrap requests (and how many of them
got HTTP 429), SORACOM POST /auth and all SORACOM API requests come from the SORACOM
emulator's /_lab/calls. AWS write calls come from moto_lab_server.py's call counts.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import labapi  # noqa: E402  (needs tests/e2e on sys.path)

MOTO_CALLS = "http://127.0.0.1:5000/moto-api/lab/calls"
SORACOM_CALLS = labapi.SORACOM_ADMIN + "/_lab/calls"
KRYPTON_PATHS = "/v1/provisioning/aws/iot/"
RUN_TIMEOUT = 1800
# How many of the slowest tasks of each run the result lists.
TOP_TASKS = 8


def request_json(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def clear_counts() -> None:
    request_json(SORACOM_CALLS, "DELETE")
    request_json(MOTO_CALLS, "DELETE")


def read_counts() -> dict:
    """Return the counts of the calls made since clear_counts()."""
    soracom = request_json(SORACOM_CALLS)
    aws = request_json(MOTO_CALLS)
    api = soracom["counts"].get("api", {})
    krypton_log = [entry for entry in soracom["log"]
                   if entry["service"] == "krypton" and entry["path"].startswith(KRYPTON_PATHS)]
    return {
        "krypton_calls": len(krypton_log),
        "krypton_429": sum(1 for entry in krypton_log if entry["status"] == 429),
        "aws_writes": aws["write_total"],
        "aws_write_calls": aws["writes"],
        "aws_reads": aws["read_total"],
        "soracom_auth": api.get("POST /v1/auth", 0),
        "soracom_calls": sum(api.values()),
        "soracom_log_dropped": soracom["dropped"],
    }


CALLBACKS = REPO / "tests" / "bench" / "callback_plugins"


def ansible_env(task_times: Path | None = None) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_DEPRECATION_WARNINGS="False")
    if task_times is not None:
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED="bench_task_times",
                   KRYPTON_BENCH_TASK_TIMES=str(task_times))
    return env


def timed(command: list[str], task_times: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=ansible_env(task_times), text=True, capture_output=True,
                            timeout=RUN_TIMEOUT, check=False)
    return time.monotonic() - started, result


def slowest_tasks(rows: list[list], count: int = TOP_TASKS) -> list[dict]:
    """Return the ``count`` tasks with the longest wall time, longest first."""
    ordered = sorted(rows, key=lambda row: row[2], reverse=True)[:count]
    return [{"play": play, "task": task, "seconds": seconds} for play, task, seconds in ordered]


def seconds_by_play(rows: list[list]) -> list[dict]:
    """Return the wall time of each play in the order the plays ran, summed over their tasks."""
    plays: dict[str, float] = {}
    for play, _, seconds in rows:
        plays[play] = plays.get(play, 0.0) + seconds
    return [{"play": play, "seconds": round(seconds, 2)} for play, seconds in plays.items()]


def ping() -> float:
    seconds, result = timed([str(REPO / ".venv" / "bin" / "ansible"), "pis", "-m", "ansible.builtin.ping"])
    if result.returncode != 0:
        raise RuntimeError(f"ansible -m ping failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return seconds


def provision(label: str, log_dir: Path | None) -> dict:
    clear_counts()
    with tempfile.TemporaryDirectory() as directory:
        task_times = Path(directory) / "task-times.json"
        seconds, result = timed([str(REPO / ".venv" / "bin" / "ansible-playbook"), "playbooks/provision.yml"],
                                task_times)
        rows = json.loads(task_times.read_text()) if task_times.exists() else []
    counts = read_counts()
    if log_dir is not None:
        (log_dir / f"{label}.log").write_text(result.stdout + result.stderr)
    recap = labapi.parse_recap(result.stdout)
    return {
        "seconds": round(seconds, 2),
        "rc": result.returncode,
        "changed": sum(host["changed"] for host in recap.values()),
        "failed": sum(host["failed"] + host["unreachable"] for host in recap.values()),
        **counts,
        "plays": seconds_by_play(rows),
        "slowest_tasks": slowest_tasks(rows),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pings", type=int, default=3, help="timed pings before the first run (default 3)")
    parser.add_argument("--log-dir", type=Path, help="directory for the output of both runs")
    args = parser.parse_args()

    lab = labapi.load_lab()
    load_before = load_average()
    labapi.reset_lab()
    ping()  # opens the SSH connections that ControlPersist keeps, as a real operator's session would
    pings = [ping() for _ in range(max(1, args.pings))]
    first = provision("first", args.log_dir)
    rerun = provision("rerun", args.log_dir)
    pings.append(ping())
    floor = statistics.median(pings)
    print(json.dumps({
        "pis": len(lab["pis"]),
        "ping_seconds": [round(value, 2) for value in pings],
        "floor": round(floor, 2),
        "first": first,
        "rerun": rerun,
        "first_ratio": round(first["seconds"] / floor, 2),
        "rerun_ratio": round(rerun["seconds"] / floor, 2),
        "load_before": load_before,
        "load_after": load_average(),
    }))
    return 0 if first["rc"] == 0 and rerun["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
