# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Callback for tests/bench/measure.py: the wall time from each task's start to the next one's."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_task_times
type: aggregate
short_description: Write each task's wall time to a JSON file
description:
  - Records when each play and task starts. At the end of the run it writes a JSON list of
    C([play, task, seconds]) to the file named by E(KRYPTON_BENCH_TASK_TIMES), where seconds runs
    from the task's start to the start of the next task or play, or to the end of the run.
  - With the linear strategy a task starts when the previous task ended on every host, so the
    seconds of a task are its wall time on the slowest host.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._play = ""
        self._open: tuple[str, str, float] | None = None
        self._rows: list[list] = []

    def _close(self, now: float) -> None:
        if self._open is not None:
            play, task, started = self._open
            self._rows.append([play, task, round(now - started, 3)])
            self._open = None

    def v2_playbook_on_play_start(self, play):
        self._close(time.monotonic())
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        now = time.monotonic()
        self._close(now)
        self._open = (self._play, task.get_name(), now)

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close(time.monotonic())
        path = os.environ.get("KRYPTON_BENCH_TASK_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self._rows, handle)
