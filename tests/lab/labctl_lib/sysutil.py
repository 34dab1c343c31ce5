# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Process, file, network-namespace and HTTP helpers shared by the labctl modules."""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Sequence

from . import LabError

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def log(message: str) -> None:
    """Print a progress line on stderr, so stdout stays free for command output."""
    print(f"labctl: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"labctl: warning: {message}", file=sys.stderr, flush=True)


def run(cmd: Sequence[str], *, check: bool = True, capture: bool = True, timeout: float = 600,
        input_text: str | None = None, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command and raise LabError with its output when it fails and ``check`` is set."""
    try:
        result = subprocess.run(
            list(cmd), check=False, text=True, input=input_text, env=env, cwd=cwd, timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout:.0f} s: {shlex.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {cmd[0]} (install it, see tests/lab/README.md)") from exc
    if check and result.returncode != 0:
        detail = ((result.stderr or "") + (result.stdout or "")).strip() if capture else ""
        raise LabError(f"command failed with exit code {result.returncode}: {shlex.join(cmd)}"
                       + (f"\n{detail}" if detail else ""))
    return result


def write_file(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    """Write ``path`` atomically (temporary file and rename) with the given mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 900) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` so that two labctl runs do not interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(f"another labctl holds {path} for more than {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- network namespaces -------------------------------------------------------------------

def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the calling thread into network namespace ``name`` for the duration of the block.

    setns() changes only the calling thread, so worker threads may use this in parallel.
    Sockets keep the namespace they were created in. Do not start subprocesses inside the
    block: use ``ip netns exec`` for that, which also applies /etc/netns/<name>.
    """
    target_path = Path("/run/netns", name)
    if not target_path.exists():
        raise LabError(f"network namespace {name} not found (run labctl up)")
    with open("/proc/thread-self/ns/net") as original, open(target_path) as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(original.fileno())


def http_request(url: str, *, method: str = "GET", body: bytes | None = None,
                 content_type: str = "application/json", timeout: float = 5,
                 netns: str | None = None) -> tuple[int, bytes]:
    """Send one HTTP request, optionally from inside ``netns``; return (status, body).

    Connection errors are returned as status 0 so that readiness loops can retry.
    A proxy is never used: every lab URL is local.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    context = in_netns(netns) if netns else contextlib.nullcontext()
    with context:
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""


def ssh_banner(ip: str, netns: str, timeout: float = 2) -> str | None:
    """Return the SSH server's identification line at ip:22 seen from ``netns``, or None."""
    with in_netns(netns):
        try:
            with socket.create_connection((ip, 22), timeout=timeout) as sock:
                sock.settimeout(timeout)
                line = sock.recv(256).decode(errors="replace").strip()
        except OSError:
            return None
    return line if line.startswith("SSH-") else None


# --- processes -----------------------------------------------------------------------------

def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_alive(pid: int) -> bool:
    """Tell whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def process_matches(pid: int, marker: str) -> bool:
    """Tell whether ``pid`` is alive (not a zombie) and its command line contains ``marker``.

    The marker check keeps labctl from signalling an unrelated process that reused a PID
    recorded in a stale pid file.
    """
    return process_alive(pid) and any(marker in part for part in process_cmdline(pid))


def live_pid(pid_file: Path, marker: str) -> int | None:
    """Return the PID from ``pid_file`` if that process is alive and matches ``marker``."""
    pid = read_pid(pid_file)
    if pid is not None and process_matches(pid, marker):
        return pid
    return None


def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not process_matches(pid, marker):
            return True
        time.sleep(0.1)
    _reap(pid)
    return not process_matches(pid, marker)


def _reap(pid: int) -> None:
    # Processes started by this labctl run are its children; collect them so they do not
    # linger as zombies.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_process(pid: int, marker: str, name: str, timeout: float = 15) -> None:
    """Send SIGTERM to ``pid``, then SIGKILL after ``timeout`` seconds if it is still alive."""
    if not process_matches(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, marker, timeout):
        return
    warn(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f} s, sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_gone(pid, marker, 5):
        raise LabError(f"{name} (pid {pid}) is still alive after SIGKILL")


def start_detached(cmd: Sequence[str], log_path: Path, env: dict | None = None,
                   cwd: Path | None = None) -> int:
    """Start ``cmd`` in its own session with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_handle:
        log_handle.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} labctl starts: "
                         f"{shlex.join(cmd)}\n".encode())
        log_handle.flush()
        process = subprocess.Popen(
            list(cmd), stdin=subprocess.DEVNULL, stdout=log_handle, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
        )
    return process.pid


def tail(path: Path, lines: int = 15) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(content[-lines:])


def is_mountpoint(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def mounts_under(prefix: Path) -> list[str]:
    """Return mount points at or below ``prefix`` (deepest first)."""
    base = str(prefix.resolve())
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point == base or point.startswith(base + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)
