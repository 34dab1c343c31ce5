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
    DEFAULT_PIS, LAB_ID_ENV, MAX_LAB_ID, MAX_PIS, MOTO_URL, REGION, VENV_PYTHON, Lab, OutputPaths,
    PiSpec, StatePaths,
)
from .image import Image, ensure_lab_layer
from .inotify import ensure_inotify_limit, restore_inotify_limit
from .network import (
    delete_lab_netns, ensure_lab_netns, netns_pids, remove_netns_etc, set_link_down, set_link_up,
    write_netns_etc,
)
from .pis import PiManager
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

def load_lab(lab: Lab, state: StatePaths, required: bool = True) -> dict | None:
    """Read lab.json, and raise LabError if it is missing (when ``required``) or another lab ID wrote it."""
    if not state.lab_json.exists():
        if required:
            raise LabError(f"lab {lab.id} is not up ({state.lab_json} not found); "
                           f"run {lab.env_prefix}labctl up")
        return None
    record = json.loads(state.lab_json.read_text())
    check_lab_id(lab, state, record)
    return record


def check_lab_id(lab: Lab, state: StatePaths, record: dict) -> None:
    """Reject a state directory that another lab ID wrote, for example through a stale KRYPTON_LAB_STATE."""
    # labctl versions that ran one lab per machine wrote no lab_id, and their lab was lab 0.
    recorded = record.get("lab_id", 0)
    if recorded != lab.id:
        raise LabError(f"{state.lab_json} belongs to lab {recorded}, but {LAB_ID_ENV} selects lab {lab.id}; "
                       f"set {LAB_ID_ENV}={recorded}, or unset KRYPTON_LAB_STATE to use "
                       f"{lab.default_state_dir}")


def lab_pi(lab: Lab, record: dict, number: int) -> PiSpec:
    known = [entry["n"] for entry in record["pis"]]
    if number not in known:
        raise LabError(f"pi{number:02d} is not part of lab {lab.id}, which has {len(known)} Pi(s); "
                       f"run {lab.env_prefix}labctl up --pis {number}")
    return PiSpec(number, lab)


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


def write_outputs(lab: Lab, state: StatePaths, pis: list[PiSpec], admin: dict, auth: dict,
                  image: Image) -> None:
    outputs = OutputPaths.for_lab(lab, state)
    image_info = {"hash": image.hash, "rootfs": str(image.rootfs), "apt_repo": str(image.apt_repo)}
    record = lab_record(lab, state, pis, admin, auth, image_info)
    write_file(state.lab_json, json.dumps(record, indent=2) + "\n", mode=0o600)
    write_file(outputs.hosts_yml, hosts_yml(state, pis), mode=0o644)
    write_file(outputs.group_vars_yml, group_vars_yml(auth), mode=0o600)
    write_file(outputs.integration_config, integration_config_yml(state, pis, admin, auth), mode=0o600)


def remove_outputs(lab: Lab, state: StatePaths) -> None:
    state.lab_json.unlink(missing_ok=True)
    outputs = OutputPaths.for_lab(lab, state)
    for path in outputs.all():
        path.unlink(missing_ok=True)
    # Remove the directories labctl created for them if nothing else is inside.
    for directory in (outputs.group_vars_yml.parent, outputs.group_vars_yml.parent.parent,
                      outputs.hosts_yml.parent):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


# --- commands -----------------------------------------------------------------------------------

def cmd_up(lab: Lab, state: StatePaths, pi_count: int | None) -> int:
    started_at = time.monotonic()
    check_tools()
    for directory in (state.root, state.pids, state.logs):
        directory.mkdir(parents=True, exist_ok=True)
    with file_lock(state.lock):
        image = Image()
        image.ensure()
        ensure_pki(state)
        ensure_ssh_key(state)

        previous = load_lab(lab, state, required=False)
        previous_count = len(previous["pis"]) if previous else 0
        if pi_count is not None and pi_count < previous_count:
            log(f"the lab keeps its {previous_count} Pis (labctl down, then up, makes it smaller)")
        requested = DEFAULT_PIS if pi_count is None else pi_count
        pis = [PiSpec(n, lab) for n in range(1, max(requested, previous_count) + 1)]
        pi_manager = PiManager(state, image)
        any_pi_running = any(pi_manager.pid(PiSpec(n, lab)) for n in range(1, MAX_PIS + 1))
        lab_layer = ensure_lab_layer(image, state, pis_running=any_pi_running)

        ensure_lab_netns(lab)
        write_netns_etc(lab, pis, state.pki_file("server-ca.crt"))

        services = ServiceManager(lab, state, image.apt_repo)
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
        write_outputs(lab, state, pis, admin, auth, image)

        ensure_inotify_limit(lab, len(pis))
        booted = [pi for pi in pis if pi_manager.start(pi, lab_layer)]
        if booted:
            log(f"booting {len(booted)} Pi(s): {', '.join(pi.name for pi in booted)}")
        pi_manager.wait_ssh(pis)
    log(f"lab {lab.id} up with {len(pis)} Pi(s) in {time.monotonic() - started_at:.1f} s; "
        f"namespace {lab.netns}, subnet {lab.subnet_cidr}, state {state.root}; "
        f"try: {lab.env_prefix}tests/lab/labctl exec -- ssh -i {state.ssh_key} "
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


def cmd_down(lab: Lab, state: StatePaths) -> int:
    started_at = time.monotonic()
    state.root.mkdir(parents=True, exist_ok=True)
    with file_lock(state.lock):
        load_lab(lab, state, required=False)  # raises LabError when another lab ID wrote this state
        image = Image()
        pi_manager = PiManager(state, image)
        all_pis = [PiSpec(n, lab) for n in range(1, MAX_PIS + 1)]
        present = [pi for pi in all_pis
                   if state.pid_file(pi.name).exists() or netns_exists(pi.netns) or state.pi_dir(pi).exists()]
        pi_manager.stop_many(present, remove_disk=True)
        ServiceManager(lab, state, image.apt_repo).stop_all()

        leftovers = netns_pids(lab.netns)
        if leftovers:
            described = ", ".join(f"{pid} ({' '.join(process_cmdline(pid))[:60]})" for pid in leftovers)
            warn(f"processes not started by labctl still run in {lab.netns}: {described}; "
                 "the namespace is deleted anyway and ends when they exit")
        delete_lab_netns(lab)
        for mount_point in mounts_under(state.root):
            run(["umount", "--lazy", mount_point], check=False)
        remove_netns_etc(lab)
        restore_inotify_limit(lab, state)
        if state.pis.exists():
            shutil.rmtree(state.pis)
        if state.pids.exists():
            for pid_file in state.pids.glob("*.pid"):
                pid_file.unlink()
        remove_outputs(lab, state)
    log(f"lab {lab.id} down in {time.monotonic() - started_at:.1f} s")
    return 0


def cmd_status(lab: Lab, state: StatePaths) -> int:
    record = load_lab(lab, state, required=False)
    image = Image()
    services = ServiceManager(lab, state, image.apt_repo).status()
    healthy = True
    print(f"lab {lab.id}: {'up' if record else 'down'}  state: {state.root}  netns {lab.netns}: "
          f"{'present' if netns_exists(lab.netns) else 'absent'}  subnet: {lab.subnet_cidr}")
    print(f"{'SERVICE':<9} {'PID':>8}  {'ALIVE':<5}  LISTEN")
    for row in services:
        healthy &= row["alive"]
        print(f"{row['name']:<9} {row['pid'] or '-':>8}  {'yes' if row['alive'] else 'no':<5}  {row['listen']}")
    pi_manager = PiManager(state, image)
    print(f"{'PI':<5} {'IP':<12} {'PID':>8}  {'ALIVE':<5}  SSH")
    for entry in (record or {}).get("pis", []):
        pi = PiSpec(entry["n"], lab)
        pid = pi_manager.pid(pi)
        banner = ssh_banner(pi.ip, lab.netns, timeout=1) if pid and netns_exists(lab.netns) else None
        healthy &= bool(banner)
        print(f"{pi.name:<5} {pi.ip:<12} {pid or '-':>8}  {'yes' if pid else 'no':<5}  "
              f"{'reachable' if banner else 'unreachable'}")
    return 0 if record and healthy else 1


def exec_env(lab: Lab, state: StatePaths, record: dict) -> dict:
    """Return the environment of ``labctl exec``: the caller's, plus the lab's keys and endpoints."""
    env = {key: value for key, value in os.environ.items()
           if key not in EXEC_DROP_ENV and key.lower() not in EXEC_DROP_ENV}
    env.update({
        "AWS_ENDPOINT_URL": MOTO_URL,
        "AWS_ACCESS_KEY_ID": record["aws"]["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": record["aws"]["secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SORACOM_AUTH_KEY_ID": record["soracom"]["auth_key_id"],
        "SORACOM_AUTH_KEY": record["soracom"]["auth_key"],
        LAB_ID_ENV: str(lab.id),
        "KRYPTON_LAB_STATE": str(state.root),
        # The venv comes first so that ansible-playbook, ansible-test and pytest are found.
        "PATH": f"{VENV_PYTHON.parent}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
    })
    # Only commands run through exec get the lab inventory: ansible.cfg names none, so a
    # playbook started outside the lab cannot send the lab's keys to the real SORACOM API.
    env["ANSIBLE_INVENTORY"] = str(OutputPaths.for_lab(lab, state).inventory)
    return env


def cmd_exec(lab: Lab, state: StatePaths, command: list[str]) -> int:
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("nothing to run; usage: labctl exec -- COMMAND [ARG...]")
    record = load_lab(lab, state)
    if not netns_exists(lab.netns):
        raise LabError(f"network namespace {lab.netns} not found; run {lab.env_prefix}labctl up")
    os.execvpe("ip", ["ip", "netns", "exec", lab.netns, *command], exec_env(lab, state, record))
    return 127  # not reached: execvpe replaces this process or raises


def cmd_pi_up(lab: Lab, state: StatePaths, number: int) -> int:
    record = load_lab(lab, state)
    pi = lab_pi(lab, record, number)
    with file_lock(state.lock):
        image = Image()
        pi_manager = PiManager(state, image)
        any_pi_running = any(pi_manager.pid(PiSpec(entry["n"], lab)) for entry in record["pis"])
        lab_layer = ensure_lab_layer(image, state, pis_running=any_pi_running)
        ensure_inotify_limit(lab, len(record["pis"]))
        if pi_manager.start(pi, lab_layer):
            log(f"booting {pi.name}")
        pi_manager.wait_ssh([pi])
    log(f"{pi.name} is up ({pi.ip})")
    return 0


def cmd_pi_down(lab: Lab, state: StatePaths, number: int, remove_disk: bool = False) -> int:
    record = load_lab(lab, state)
    pi = lab_pi(lab, record, number)
    with file_lock(state.lock):
        PiManager(state, Image()).stop(pi, remove_disk=remove_disk)
    if remove_disk:
        log(f"{pi.name} is powered off and its disk removed; {lab.env_prefix}labctl pi-up {number} "
            "boots it from the image as on the first up")
    else:
        log(f"{pi.name} is powered off; its disk is kept for {lab.env_prefix}labctl pi-up {number}")
    return 0


def cmd_link(lab: Lab, state: StatePaths, number: int, up: bool) -> int:
    record = load_lab(lab, state)
    pi = lab_pi(lab, record, number)
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
                    "network namespaces on this machine. Needs root. "
                    f"Env {LAB_ID_ENV} (0..{MAX_LAB_ID}, default 0) selects one of several labs "
                    "that can run at once. State directory: tests/lab/.state for lab 0, "
                    "tests/lab/.state-K for lab K (env KRYPTON_LAB_STATE overrides).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="build what is missing and start the lab (idempotent)")
    up.add_argument("--pis", type=pi_number, default=None, metavar="N",
                    help=f"number of Pis, 1..{MAX_PIS} (default {DEFAULT_PIS}, or as many as the "
                         "running lab has); a running lab only grows")
    commands.add_parser("down", help="stop everything and remove namespaces, mounts and lab files (idempotent)")
    commands.add_parser("status", help="show services and Pis; exit code 1 unless all are up")
    run_cmd = commands.add_parser("exec", help="run a command in the lab's namespace (tilab, or tilabK for "
                                             "lab K) with the lab's AWS and SORACOM keys")
    run_cmd.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    for name, text in (("pi-up", "boot Pi N (keeps its disk from before pi-down)"),
                       ("pi-down", "power Pi N off and remove its network namespace"),
                       ("link-down", "set Pi N's ppp0 down"),
                       ("link-up", "set Pi N's ppp0 up and restore its address and default route")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("n", type=pi_number, metavar="N", help=f"Pi number, 1..{MAX_PIS}")
        if name == "pi-down":
            sub.add_argument("--remove-disk", action="store_true",
                             help="also delete the Pi's disk, so that the next pi-up boots a fresh Pi")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        lab = Lab.from_env()
        state = StatePaths.from_env(lab)
        require_root()
        if args.command == "up":
            return cmd_up(lab, state, args.pis)
        if args.command == "down":
            return cmd_down(lab, state)
        if args.command == "status":
            return cmd_status(lab, state)
        if args.command == "exec":
            return cmd_exec(lab, state, args.argv)
        if args.command == "pi-up":
            return cmd_pi_up(lab, state, args.n)
        if args.command == "pi-down":
            return cmd_pi_down(lab, state, args.n, remove_disk=args.remove_disk)
        if args.command in ("link-down", "link-up"):
            return cmd_link(lab, state, args.n, up=args.command == "link-up")
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
