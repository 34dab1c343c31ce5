# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fs.inotify.max_user_instances, one limit shared by every lab on this machine.

The Pis' systemd runs as root of the host's user namespace, so the Pis of all labs count
against the same per-user limit. labctl raises it when the Pis of all running labs need
more, never lowers it while another lab runs, and restores the value it found when the
last lab goes down. That value is recorded in /run, which a reboot clears together with
the sysctl.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from .config import CACHE_DIR, LAB_NETNS_PATTERN, PI_NETNS_PATTERN, Lab, StatePaths
from .sysutil import file_lock, log, warn, write_file

# Estimated inotify instances per booted Pi (systemd, journald, udev, dbus, logind). On a
# 2-vCPU Debian 12 VM, 20 Pis and the host used 160 in all. With the kernel default of 128
# per user, systemd in the newer containers failed with "Failed to create inotify object:
# Too many open files" at about 20 Pis.
INOTIFY_PER_PI = 8
INOTIFY_HOST_RESERVE = 32
INOTIFY_RAISED = 1024
INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")
SYSCTL_KEY = "fs.inotify.max_user_instances"

# Shared by all labs and all state directories, and tests point them elsewhere. The lock lives
# beside the image cache, which outlives every lab, so that /run keeps nothing once the limit
# is restored.
SHARED_RUN_DIR = Path("/run/soracom-krypton-lab")
LOCK_FILE = CACHE_DIR / "inotify.lock"
NETNS_DIR = Path("/run/netns")


def inotify_needed(pi_count: int) -> int:
    return INOTIFY_HOST_RESERVE + INOTIFY_PER_PI * pi_count


def _record_path() -> Path:
    """JSON file with ``original`` (the value before any lab raised it) and ``raised_to``."""
    return SHARED_RUN_DIR / "inotify.json"


def _read_limit() -> int:
    return int(INOTIFY_SYSCTL.read_text())


def _load_record() -> dict | None:
    path = _record_path()
    return json.loads(path.read_text()) if path.exists() else None


def other_labs(lab: Lab) -> list[str]:
    """Return the namespaces of the labs other than ``lab`` that exist now (tilab, tilabK)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(entry.name for entry in NETNS_DIR.iterdir()
                  if LAB_NETNS_PATTERN.fullmatch(entry.name) and entry.name != lab.netns)


def other_labs_pi_count(lab: Lab) -> int:
    """Count the Pi namespaces of the labs other than ``lab``: one per booted Pi."""
    if not NETNS_DIR.is_dir():
        return 0
    own = "i" if lab.id == 0 else str(lab.id)
    count = 0
    for entry in NETNS_DIR.iterdir():
        match = PI_NETNS_PATTERN.fullmatch(entry.name)
        if match and match["lab"] != own:
            count += 1
    return count


def ensure_inotify_limit(lab: Lab, pi_count: int) -> None:
    """Raise the limit to at least 1024 when ``pi_count`` Pis plus other labs' Pis need more.

    The value found before the first raise is recorded for ``restore_inotify_limit``.
    """
    with file_lock(LOCK_FILE):
        total_pis = pi_count + other_labs_pi_count(lab)
        needed = inotify_needed(total_pis)
        current = _read_limit()
        if current >= needed:
            return
        record = _load_record() or {"original": current}
        new_value = max(INOTIFY_RAISED, needed)
        INOTIFY_SYSCTL.write_text(f"{new_value}\n")
        record["raised_to"] = new_value
        write_file(_record_path(), json.dumps(record) + "\n")
    log(f"{SYSCTL_KEY} raised from {current} to {new_value} for {total_pis} Pis of all labs")


def restore_inotify_limit(lab: Lab, state: StatePaths) -> None:
    """Restore the limit labctl raised, once no other lab runs.

    The limit is left alone when something other than labctl changed it after the raise.
    """
    with file_lock(LOCK_FILE):
        record = _load_record()
        if state.sysctl_saved.exists():
            # Written by labctl versions that ran one lab per machine.
            saved = json.loads(state.sysctl_saved.read_text())[SYSCTL_KEY]
            record = record or {"original": saved, "raised_to": _read_limit()}
            write_file(_record_path(), json.dumps(record) + "\n")
            state.sysctl_saved.unlink()
        if record is None:
            return
        running = other_labs(lab)
        if running:
            log(f"{SYSCTL_KEY} stays at {_read_limit()} because lab namespace(s) "
                f"{', '.join(running)} still exist")
            return
        current = _read_limit()
        if current == record["raised_to"]:
            INOTIFY_SYSCTL.write_text(f"{record['original']}\n")
            log(f"{SYSCTL_KEY} restored to {record['original']}")
        else:
            warn(f"{SYSCTL_KEY} is {current}, not the {record['raised_to']} labctl set, "
                 f"so it is left as it is instead of restored to {record['original']}")
        _record_path().unlink()
        with contextlib.suppress(OSError):  # rmdir fails if other files are there, and they stay
            SHARED_RUN_DIR.rmdir()
