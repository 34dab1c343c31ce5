# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated Raspberry Pis: systemd-nspawn --boot containers, one network namespace each.

Every Pi's root filesystem is an overlay of three layers: the cached image, the lab layer
(lab CA, root's authorized_keys) and the Pi's own upper directory. The upper directory keeps
the Pi's changes across ``pi-down``/``pi-up``, as a disk does across a power cycle.
``labctl down`` removes it.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import shutil
import time
from pathlib import Path

from . import LabError
from .config import PiSpec, StatePaths
from .image import Image
from .network import delete_pi_netns, ensure_pi_netns, hosts_file
from .sysutil import (
    live_pid, process_alive, process_matches, read_pid, ssh_banner, start_detached, stop_process, tail, write_file,
)

BOOT_TIMEOUT = 90.0  # seconds until sshd sends its banner, counted from the start of the batch
POWER_OFF_TIMEOUT = 20.0
NSPAWN_PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")


def nspawn_marker(pi: PiSpec) -> str:
    return f"--machine={pi.machine}"


def machine_id(pi: PiSpec) -> str:
    """Return a stable machine-id per Pi, as a real Pi keeps one across boots.

    The machine name of a lab 0 Pi is its host name, so lab 0 keeps the IDs it always had.
    """
    return hashlib.sha256(f"soracom-krypton-lab {pi.machine}".encode()).hexdigest()[:32]


class PiManager:
    def __init__(self, state: StatePaths, image: Image):
        self.state = state
        self.image = image

    def pid(self, pi: PiSpec) -> int | None:
        return live_pid(self.state.pid_file(pi.name), nspawn_marker(pi))

    def upper(self, pi: PiSpec) -> Path:
        return self.state.pi_dir(pi) / "upper"

    def prepare_upper(self, pi: PiSpec) -> None:
        """Write the Pi's own files (hostname, hosts, machine-id) on its first boot."""
        upper = self.upper(pi)
        if upper.exists():
            return
        etc = upper / "etc"
        etc.mkdir(parents=True)
        write_file(etc / "hostname", pi.name + "\n")
        write_file(etc / "hosts", hosts_file(pi.lab.gateway_ip, [], self_name=pi.name, self_ip=pi.ip))
        write_file(etc / "machine-id", machine_id(pi) + "\n", mode=0o444)

    def command(self, pi: PiSpec, lab_layer: Path) -> list[str]:
        rootfs = self.image.rootfs
        return [
            "nsenter", f"--net=/run/netns/{pi.netns}",
            "systemd-nspawn", "--register=no", "--keep-unit", "--boot",
            "-D", str(rootfs), f"--overlay={rootfs}:{lab_layer}:{self.upper(pi)}:/",
            nspawn_marker(pi), f"--hostname={pi.name}",
            "--console=read-only", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        ]

    def start(self, pi: PiSpec, lab_layer: Path) -> bool:
        """Create the Pi's namespace and boot it unless it runs; return True if booted now."""
        if self.pid(pi):
            return False
        ensure_pi_netns(pi)
        self.prepare_upper(pi)
        log_file = self.state.log_file(pi.name)
        pid = start_detached(self.command(pi, lab_layer), log_file)
        write_file(self.state.pid_file(pi.name), f"{pid}\n")
        return True

    def wait_ssh(self, pis: list[PiSpec], timeout: float = BOOT_TIMEOUT) -> None:
        """Wait in parallel until every Pi's sshd sends its banner; raise naming the Pis that did not."""
        if not pis:
            return
        deadline = time.monotonic() + timeout

        def wait_one(pi: PiSpec) -> str | None:
            while time.monotonic() < deadline:
                if ssh_banner(pi.ip, pi.lab.netns, timeout=1):
                    return None
                # Liveness only: the command line is empty while nsenter executes systemd-nspawn.
                pid = read_pid(self.state.pid_file(pi.name))
                if pid is None or not process_alive(pid):
                    return "systemd-nspawn exited"
                time.sleep(0.2)
            return f"no SSH banner from {pi.ip}:22 within {timeout:.0f} s"

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(pis), 16)) as pool:
            results = list(zip(pis, pool.map(wait_one, pis)))
        failures = [(pi, reason) for pi, reason in results if reason]
        if failures:
            details = []
            for pi, reason in failures:
                log_file = self.state.log_file(pi.name)
                details.append(f"{pi.name}: {reason}; see {log_file}. Last lines:\n{tail(log_file, 8)}")
            raise LabError(f"{len(failures)} Pi(s) did not come up:\n" + "\n".join(details))

    def stop(self, pi: PiSpec, remove_disk: bool) -> None:
        """Power the Pi off (SIGTERM to systemd-nspawn), delete its namespace, optionally its disk."""
        marker = nspawn_marker(pi)
        pid = self.pid(pi)
        if pid:
            stop_process(pid, marker, pi.name, POWER_OFF_TIMEOUT)
        else:
            recorded = read_pid(self.state.pid_file(pi.name))
            if recorded and process_matches(recorded, marker):
                raise LabError(f"{pi.name} (pid {recorded}) could not be stopped")
        self.state.pid_file(pi.name).unlink(missing_ok=True)
        # systemd-nspawn leaves this empty directory behind.
        propagate = NSPAWN_PROPAGATE_DIR / pi.machine
        if propagate.is_dir():
            propagate.rmdir()
        delete_pi_netns(pi)
        if remove_disk and self.state.pi_dir(pi).exists():
            shutil.rmtree(self.state.pi_dir(pi))

    def stop_many(self, pis: list[PiSpec], remove_disk: bool) -> None:
        if not pis:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(pis), 16)) as pool:
            futures = {pool.submit(self.stop, pi, remove_disk): pi for pi in pis}
            errors = []
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except LabError as exc:
                    errors.append(str(exc))
        if errors:
            raise LabError("; ".join(errors))
