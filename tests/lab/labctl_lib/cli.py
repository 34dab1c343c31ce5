# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line of tests/lab/labctl: up, down, status, exec, pi-up, pi-down, link-down, link-up."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from . import LabError
from .config import (
    DEFAULT_PIS, LAB_NETNS, MAX_PIS, MOTO_URL, REGION, VENV_PYTHON, OutputPaths, PiSpec, StatePaths,
)
from .image import Image, ensure_lab_layer
from .network import (
    delete_lab_netns, ensure_lab_netns, netns_pids, remove_netns_etc, set_link_down, set_link_up,
    write_netns_etc,
)
from .pis import PiManager, ensure_inotify_limit, restore_inotify_limit
from .pki import ensure_pki, ensure_ssh_key
from .render import group_vars_yml, hosts_yml, integration_config_yml, lab_record
from .services import APT_REPO, BROKER, MOTO, SORACOM, ServiceManager, new_auth_key
from .sysutil import (
    file_lock, log, mounts_under, netns_exists, process_cmdline, run, ssh_banner, warn, write_file,
)

REQUIRED_TOOLS = ("ip", "nsenter", "systemd-nspawn", "debootstrap", "openssl", "ssh-keygen",
                  "apt-ftparchive", "chroot", "mount")
# Environment variables that must not leak into ``labctl exec``: proxies would send lab
# traffic elsewhere, and AWS profile settings would override the lab key.
EXEC_DROP_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy",
                 "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE")


# --- shared helpers ------------------------------------------------------------------------------

def load_lab(state: StatePaths, required: bool = True) -> dict | None:
    if not state.lab_json.exists():
        if required:
            raise LabError(f"the lab is not up ({state.lab_json} not found); run labctl up")
        return None
    return json.loads(state.lab_json.read_text())


def lab_pi(lab: dict, number: int) -> PiSpec:
    known = [entry["n"] for entry in lab["pis"]]
    if number not in known:
        raise LabError(f"pi{number:02d} is not part of the lab, which has {len(known)} Pi(s); "
                       f"run labctl up --pis {number}")
    return PiSpec(number)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("labctl needs root (network namespaces, mounts, systemd-nspawn)")


def check_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if not shutil.which(tool)]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)}; install debootstrap systemd-container "
                       "apt-utils iproute2 openssh-client openssl")
    if not VENV_PYTHON.exists():
        raise LabError(f"{VENV_PYTHON} not found; create the venv from requirements-dev.txt")


def write_outputs(state: StatePaths, pis: list[PiSpec], admin: dict, auth: dict, image: Image) -> None:
    outputs = OutputPaths()
    image_info = {"hash": image.hash, "rootfs": str(image.rootfs), "apt_repo": str(image.apt_repo)}
    record = lab_record(state, pis, admin, auth, image_info)
    write_file(state.lab_json, json.dumps(record, indent=2) + "\n", mode=0o600)
    write_file(outputs.hosts_yml, hosts_yml(state, pis), mode=0o644)
    write_file(outputs.group_vars_yml, group_vars_yml(auth), mode=0o600)
    write_file(outputs.integration_config, integration_config_yml(state, pis, admin, auth), mode=0o600)


def remove_outputs(state: StatePaths) -> None:
    state.lab_json.unlink(missing_ok=True)
    outputs = OutputPaths()
    for path in outputs.all():
        path.unlink(missing_ok=True)
    # Remove the directories labctl created for them if nothing else is inside.
    for directory in (outputs.group_vars_yml.parent, outputs.group_vars_yml.parent.parent,
                      outputs.hosts_yml.parent):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


# --- commands -----------------------------------------------------------------------------------

def cmd_up(state: StatePaths, pi_count: int | None) -> int:
    started_at = time.monotonic()
    check_tools()
    for directory in (state.root, state.pids, state.logs):
        directory.mkdir(parents=True, exist_ok=True)
    with file_lock(state.lock):
        image = Image()
        image.ensure()
        ensure_pki(state)
        ensure_ssh_key(state)

        previous = load_lab(state, required=False)
        previous_count = len(previous["pis"]) if previous else 0
        if pi_count is not None and pi_count < previous_count:
            log(f"the lab keeps its {previous_count} Pis (labctl down, then up, makes it smaller)")
        requested = DEFAULT_PIS if pi_count is None else pi_count
        pis = [PiSpec(n) for n in range(1, max(requested, previous_count) + 1)]
        pi_manager = PiManager(state, image)
        any_pi_running = any(pi_manager.pid(PiSpec(n)) for n in range(1, MAX_PIS + 1))
        lab_layer = ensure_lab_layer(image, state, pis_running=any_pi_running)

        ensure_lab_netns()
        write_netns_etc(pis, state.pki_file("server-ca.crt"))

        services = ServiceManager(state, image.apt_repo)
        admin = None
        if previous:
            admin = {"user": previous["aws"]["admin_user"],
                     "access_key_id": previous["aws"]["access_key_id"],
                     "secret_access_key": previous["aws"]["secret_access_key"]}
        admin = _start_aws(services, admin)

        auth = ({"auth_key_id": previous["soracom"]["auth_key_id"],
                 "auth_key": previous["soracom"]["auth_key"]} if previous else new_auth_key())
        # The auth key is registered on every run: an emulator that outlived a failed
        # `up` may not know the key lab.json holds.
        if services.start(SORACOM):
            services.seed_soracom(pis, auth)
        elif services.pid(SORACOM):
            services.seed_soracom(pis[previous_count:], auth)
        else:
            warn("SIMs and the auth key were not registered because the SORACOM emulator is not running")

        if admin.get("new"):
            services.stop(BROKER)  # a running broker still uses the previous admin key
        services.start(BROKER, admin)
        services.start(APT_REPO)
        admin.pop("new", None)
        write_outputs(state, pis, admin, auth, image)

        ensure_inotify_limit(state, len(pis))
        booted = [pi for pi in pis if pi_manager.start(pi, lab_layer)]
        if booted:
            log(f"booting {len(booted)} Pi(s): {', '.join(pi.name for pi in booted)}")
        pi_manager.wait_ssh(pis)
    log(f"lab up with {len(pis)} Pi(s) in {time.monotonic() - started_at:.1f} s; "
        f"state {state.root}; try: tests/lab/labctl exec -- ssh -i {state.ssh_key} "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@pi01")
    return 0


def _start_aws(services: ServiceManager, admin: dict | None) -> dict:
    """Start moto if needed and return a working lab admin key (``new`` set if just created)."""
    started = services.start(MOTO)
    if not started and admin:
        check = services.check_aws(admin)
        if check["ok"]:
            return dict(admin)
        warn(f"the running moto rejects the recorded admin key ({check['error']}); restarting it")
    if not started:
        services.stop(BROKER)
        services.stop(MOTO)
        services.start(MOTO)
    admin = services.bootstrap_admin()
    services.check_aws(admin)
    log("AWS stand-in checked: admin key accepted, unknown key rejected, endpoints stable")
    return {**admin, "new": True}


def cmd_down(state: StatePaths) -> int:
    started_at = time.monotonic()
    state.root.mkdir(parents=True, exist_ok=True)
    with file_lock(state.lock):
        image = Image()
        pi_manager = PiManager(state, image)
        present = [PiSpec(n) for n in range(1, MAX_PIS + 1)
                   if state.pid_file(PiSpec(n).name).exists() or netns_exists(PiSpec(n).netns)
                   or state.pi_dir(PiSpec(n)).exists()]
        pi_manager.stop_many(present, remove_disk=True)
        ServiceManager(state, image.apt_repo).stop_all()

        leftovers = netns_pids(LAB_NETNS)
        if leftovers:
            described = ", ".join(f"{pid} ({' '.join(process_cmdline(pid))[:60]})" for pid in leftovers)
            warn(f"processes not started by labctl still run in {LAB_NETNS}: {described}; "
                 "the namespace is deleted anyway and ends when they exit")
        delete_lab_netns()
        for mount_point in mounts_under(state.root):
            run(["umount", "--lazy", mount_point], check=False)
        remove_netns_etc()
        restore_inotify_limit(state)
        if state.pis.exists():
            shutil.rmtree(state.pis)
        if state.pids.exists():
            for pid_file in state.pids.glob("*.pid"):
                pid_file.unlink()
        remove_outputs(state)
    log(f"lab down in {time.monotonic() - started_at:.1f} s")
    return 0


def cmd_status(state: StatePaths) -> int:
    lab = load_lab(state, required=False)
    image = Image()
    services = ServiceManager(state, image.apt_repo).status()
    healthy = True
    print(f"lab: {'up' if lab else 'down'}  state: {state.root}  netns {LAB_NETNS}: "
          f"{'present' if netns_exists(LAB_NETNS) else 'absent'}")
    print(f"{'SERVICE':<9} {'PID':>8}  {'ALIVE':<5}  LISTEN")
    for row in services:
        healthy &= row["alive"]
        print(f"{row['name']:<9} {row['pid'] or '-':>8}  {'yes' if row['alive'] else 'no':<5}  {row['listen']}")
    pi_manager = PiManager(state, image)
    print(f"{'PI':<5} {'IP':<12} {'PID':>8}  {'ALIVE':<5}  SSH")
    for entry in (lab or {}).get("pis", []):
        pi = PiSpec(entry["n"])
        pid = pi_manager.pid(pi)
        banner = ssh_banner(pi.ip, LAB_NETNS, timeout=1) if pid and netns_exists(LAB_NETNS) else None
        healthy &= bool(banner)
        print(f"{pi.name:<5} {pi.ip:<12} {pid or '-':>8}  {'yes' if pid else 'no':<5}  "
              f"{'reachable' if banner else 'unreachable'}")
    return 0 if lab and healthy else 1


def exec_env(state: StatePaths, lab: dict) -> dict:
    """Return the environment of ``labctl exec``: the caller's, plus the lab's keys and endpoints."""
    env = {key: value for key, value in os.environ.items()
           if key not in EXEC_DROP_ENV and key.lower() not in EXEC_DROP_ENV}
    env.update({
        "AWS_ENDPOINT_URL": MOTO_URL,
        "AWS_ACCESS_KEY_ID": lab["aws"]["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": lab["aws"]["secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SORACOM_AUTH_KEY_ID": lab["soracom"]["auth_key_id"],
        "SORACOM_AUTH_KEY": lab["soracom"]["auth_key"],
        "KRYPTON_LAB_STATE": str(state.root),
        # The venv comes first so that ansible-playbook, ansible-test and pytest are found.
        "PATH": f"{VENV_PYTHON.parent}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
    })
    return env


def cmd_exec(state: StatePaths, command: list[str]) -> int:
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("nothing to run; usage: labctl exec -- COMMAND [ARG...]")
    lab = load_lab(state)
    if not netns_exists(LAB_NETNS):
        raise LabError(f"network namespace {LAB_NETNS} not found; run labctl up")
    os.execvpe("ip", ["ip", "netns", "exec", LAB_NETNS, *command], exec_env(state, lab))
    return 127  # not reached: execvpe replaces this process or raises


def cmd_pi_up(state: StatePaths, number: int) -> int:
    lab = load_lab(state)
    pi = lab_pi(lab, number)
    with file_lock(state.lock):
        image = Image()
        pi_manager = PiManager(state, image)
        any_pi_running = any(pi_manager.pid(PiSpec(entry["n"])) for entry in lab["pis"])
        lab_layer = ensure_lab_layer(image, state, pis_running=any_pi_running)
        ensure_inotify_limit(state, len(lab["pis"]))
        if pi_manager.start(pi, lab_layer):
            log(f"booting {pi.name}")
        pi_manager.wait_ssh([pi])
    log(f"{pi.name} is up ({pi.ip})")
    return 0


def cmd_pi_down(state: StatePaths, number: int) -> int:
    lab = load_lab(state)
    pi = lab_pi(lab, number)
    with file_lock(state.lock):
        PiManager(state, Image()).stop(pi, remove_disk=False)
    log(f"{pi.name} is powered off; its disk is kept for labctl pi-up {number}")
    return 0


def cmd_link(state: StatePaths, number: int, up: bool) -> int:
    lab = load_lab(state)
    pi = lab_pi(lab, number)
    if up:
        set_link_up(pi)
    else:
        set_link_down(pi)
    log(f"{pi.name}: ppp0 {'up' if up else 'down'}")
    return 0


# --- argument parsing ---------------------------------------------------------------------------

def pi_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid Pi number {text!r}: expected 1..{MAX_PIS}") from None
    if not 1 <= number <= MAX_PIS:
        raise argparse.ArgumentTypeError(f"invalid Pi number {number}: expected 1..{MAX_PIS}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labctl",
        description="Run the soracom.krypton lab: SORACOM, AWS IoT and Raspberry Pi stand-ins in "
                    "network namespaces on this machine. Needs root. State directory: "
                    "tests/lab/.state (env KRYPTON_LAB_STATE).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="build what is missing and start the lab (idempotent)")
    up.add_argument("--pis", type=pi_number, default=None, metavar="N",
                    help=f"number of Pis, 1..{MAX_PIS} (default {DEFAULT_PIS}, or as many as the "
                         "running lab has); a running lab only grows")
    commands.add_parser("down", help="stop everything and remove namespaces, mounts and lab files (idempotent)")
    commands.add_parser("status", help="show services and Pis; exit code 1 unless all are up")
    run_cmd = commands.add_parser("exec", help="run a command in tilab with the lab's AWS and SORACOM keys")
    run_cmd.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    for name, text in (("pi-up", "boot Pi N (keeps its disk from before pi-down)"),
                       ("pi-down", "power Pi N off and remove its network namespace"),
                       ("link-down", "set Pi N's ppp0 down"),
                       ("link-up", "set Pi N's ppp0 up and restore its address and default route")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("n", type=pi_number, metavar="N", help=f"Pi number, 1..{MAX_PIS}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = StatePaths.from_env()
    try:
        require_root()
        if args.command == "up":
            return cmd_up(state, args.pis)
        if args.command == "down":
            return cmd_down(state)
        if args.command == "status":
            return cmd_status(state)
        if args.command == "exec":
            return cmd_exec(state, args.argv)
        if args.command == "pi-up":
            return cmd_pi_up(state, args.n)
        if args.command == "pi-down":
            return cmd_pi_down(state, args.n)
        if args.command in ("link-down", "link-up"):
            return cmd_link(state, args.n, up=args.command == "link-up")
    except LabError as exc:
        print(f"labctl: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labctl: interrupted; run labctl down to clean up", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (for example ``labctl status | head``). Point stdout
        # at /dev/null so that the flush at interpreter exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 2
