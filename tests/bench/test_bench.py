"""Tests of the benchmark's task-time callback and of the report it feeds. No lab needed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]
sys.path.insert(0, str(BENCH))

import bench  # noqa: E402  (needs tests/bench on sys.path)
import measure  # noqa: E402

PLAYBOOK = """\
- name: First play
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Quick task
      ansible.builtin.debug:
        msg: quick
    - name: Task that sleeps
      ansible.builtin.pause:
        seconds: 1
- name: Second play
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Last task
      ansible.builtin.debug:
        msg: last
"""


def run_result(seconds: float, plays: list | None = None, tasks: list | None = None) -> dict:
    result = {"seconds": seconds, "rc": 0, "changed": 0, "failed": 0, "krypton_calls": 0, "krypton_429": 0,
              "aws_writes": 0, "soracom_auth": 1, "soracom_calls": 8}
    if plays is not None:
        result.update(plays=plays, slowest_tasks=tasks)
    return result


@pytest.fixture
def results() -> list[dict]:
    small = {"pis": 1, "floor": 1.0, "first_ratio": 10.0, "rerun_ratio": 8.0, "load_before": [0.5],
             "load_after": [0.7], "first": run_result(10.0), "rerun": run_result(8.0)}
    large = {"pis": 20, "floor": 4.0, "first_ratio": 10.0, "rerun_ratio": 5.0, "load_before": [1.0],
             "load_after": [2.0],
             "first": run_result(40.0, [{"play": "Cloud", "seconds": 10.0}, {"play": "Pis", "seconds": 30.0}],
                                 [{"play": "Pis", "task": "Install missing packages", "seconds": 14.0}]),
             "rerun": run_result(20.0, [{"play": "Cloud", "seconds": 8.0}, {"play": "Pis", "seconds": 12.0}],
                                 [{"play": "Pis", "task": "Publish a message over MQTTS", "seconds": 4.0}])}
    return [small, large]


HOST = {"cores": 2, "cpu": "test CPU", "memory_gib": 4.0, "kernel": "6.0", "python": "Python 3.11",
        "ansible_core": "ansible [core 2.19]"}


def test_callback_writes_task_times(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    times = tmp_path / "times.json"
    env = measure.ansible_env(times)
    env.pop("ANSIBLE_CONFIG")
    completed = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook)],
                               env=env, cwd=tmp_path, text=True, capture_output=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = json.loads(times.read_text())
    assert [row[:2] for row in rows] == [["First play", "Quick task"], ["First play", "Task that sleeps"],
                                         ["Second play", "Last task"]]
    seconds = {row[1]: row[2] for row in rows}
    assert seconds["Task that sleeps"] >= 1.0
    assert seconds["Quick task"] < seconds["Task that sleeps"]


def test_callback_disabled_writes_nothing(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.replace("seconds: 1", "seconds: 0"))
    env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"),
               KRYPTON_BENCH_TASK_TIMES=str(tmp_path / "times.json"))
    completed = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook)],
                               env=env, cwd=tmp_path, text=True, capture_output=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not (tmp_path / "times.json").exists()


def test_slowest_tasks_and_play_totals():
    rows = [["Cloud", "a", 1.0], ["Cloud", "b", 3.0], ["Pis", "c", 2.0], ["Pis", "d", 0.5]]
    assert [task["task"] for task in measure.slowest_tasks(rows, 2)] == ["b", "c"]
    assert measure.seconds_by_play(rows) == [{"play": "Cloud", "seconds": 4.0}, {"play": "Pis", "seconds": 2.5}]


def test_report_breaks_down_the_largest_fleet(results):
    english = bench.report(results, HOST, "start", "end")
    section = english[english.index("## Where the time goes"):english.index("## Settings")]
    assert "Measured at N = 20 (ping floor 4.0 s)" in section
    assert "Measured at N = 1 " not in section
    assert "| Install missing packages | 14.0 | 35% |" in section
    assert "| Cloud | 8.0 | 40% |" in section
    assert "| Publish a message over MQTTS | 4.0 | 20% |" in section


def test_japanese_report_keeps_tables_apart(results):
    japanese = bench.report_ja(results, HOST, "start", "end")
    main_table = japanese[:japanese.index("## 目標")]
    assert "| 1 | 1.0 |" in main_table
    assert "| 20 | 4.0 |" in main_table
    assert "Install missing packages" not in main_table
    targets = japanese[japanese.index("## 目標"):japanese.index("## 時間の内訳")]
    assert "| 再実行: ping 下限の 2 倍以内 | 5.00x | **未達** |" in targets
    assert "Install missing packages" not in targets
    assert "| Install missing packages | 14.0 | 35% |" in japanese[japanese.index("## 時間の内訳"):]


def test_report_without_task_times(results):
    for result in results:
        for run in ("first", "rerun"):
            result[run].pop("plays", None)
            result[run].pop("slowest_tasks", None)
    assert "No task times were recorded." in bench.report(results, HOST, "start", "end")
