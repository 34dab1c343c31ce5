# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names, addresses and paths of a lab, and the identity of each simulated Pi.

Several labs can run on one machine at once. Env KRYPTON_LAB_ID (0..9) selects one, and
``Lab`` derives its network namespaces, subnet, MAC addresses and state directory from it.
Lab 0 keeps the names and addresses that the README, the integration targets and CI use.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from . import LabError

# tests/lab/labctl_lib/config.py -> repository root is three levels up.
LAB_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = LAB_DIR.parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

CACHE_DIR = Path("/var/cache/soracom-krypton-lab")

LAB_ID_ENV = "KRYPTON_LAB_ID"
MAX_LAB_ID = 9
BRIDGE = "br0"  # Lives in the lab's namespace, so every lab has its own br0.
MAX_PIS = 50
DEFAULT_PIS = 3

REGION = "ap-northeast-1"
AWS_ACCOUNT_ID = "123456789012"
AWS_ADMIN_USER = "lab-admin"
AWS_ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
DEFAULT_IOT_ENDPOINT_PREFIX = "a2labkrypton00"

MOTO_URL = "http://127.0.0.1:5000"
SORACOM_ADMIN_URL = "http://127.0.0.1:8099"
BROKER_ADMIN_URL = "http://127.0.0.1:8098"
SORACOM_ENDPOINT = "https://api.soracom.io/v1"
SORACOM_G_ENDPOINT = "https://g.api.soracom.io/v1"
KRYPTON_URL = "https://krypton.soracom.io:8036"
METADATA_URL = "http://metadata.soracom.io"
APT_REPO_PORT = 8081
APT_REPO_URL = f"http://pkgs.lab:{APT_REPO_PORT}/"
BROKER_PORT = 8883
SORACOM_OPERATOR_ID = "OP0099000001"

# Names that resolve to the lab gateway inside tilab and on every Pi.
SORACOM_HOSTNAMES = ("api.soracom.io", "g.api.soracom.io", "krypton.soracom.io", "metadata.soracom.io")
APT_HOSTNAME = "pkgs.lab"


def iot_endpoint_prefix() -> str:
    """Return the account-specific prefix of the IoT endpoints (env LAB_IOT_ENDPOINT_PREFIX)."""
    return os.environ.get("LAB_IOT_ENDPOINT_PREFIX") or DEFAULT_IOT_ENDPOINT_PREFIX


def iot_ats_host(prefix: str | None = None, region: str = REGION) -> str:
    """Return the iot:Data-ATS endpoint that the patched moto reports."""
    return f"{prefix or iot_endpoint_prefix()}-ats.iot.{region}.amazonaws.com"


def iot_data_host(prefix: str | None = None, region: str = REGION) -> str:
    """Return the legacy iot:Data endpoint that the patched moto reports."""
    return f"{prefix or iot_endpoint_prefix()}.iot.{region}.amazonaws.com"


def gateway_hostnames(prefix: str | None = None) -> list[str]:
    """Return every name that must resolve to the lab gateway (10.213.<lab id>.1)."""
    return [*SORACOM_HOSTNAMES, APT_HOSTNAME, iot_ats_host(prefix), iot_data_host(prefix)]


# Network namespace names of every lab on the machine, whichever state directory it uses:
# tilab and tilab1..tilab9 for the labs, tipiN and t1piN..t9piN for their Pis.
LAB_NETNS_PATTERN = re.compile(r"tilab[1-9]?")
PI_NETNS_PATTERN = re.compile(r"t(?P<lab>i|[1-9])pi(?P<n>[1-9][0-9]?)")


@dataclasses.dataclass(frozen=True)
class Lab:
    """One of the labs that can run side by side on this machine, numbered 0..9."""

    id: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.id <= MAX_LAB_ID:
            raise ValueError(f"lab ID {self.id} is out of range 0..{MAX_LAB_ID}")

    @classmethod
    def from_env(cls) -> Lab:
        """Return the lab that env KRYPTON_LAB_ID selects (0 when unset or empty)."""
        text = os.environ.get(LAB_ID_ENV, "").strip()
        if not text:
            return cls(0)
        if not (text.isdigit() and 0 <= int(text) <= MAX_LAB_ID):
            raise LabError(f"invalid {LAB_ID_ENV}={text!r}: expected an integer 0..{MAX_LAB_ID}")
        return cls(int(text))

    @property
    def netns(self) -> str:
        """Network namespace of the services and the controller (``labctl exec``)."""
        return "tilab" if self.id == 0 else f"tilab{self.id}"

    @property
    def pi_netns_prefix(self) -> str:
        # "t9pi50-h", the longest host-side veth name, stays below the 15-character limit
        # that the kernel sets for interface names, and so do the namespace names.
        return "tipi" if self.id == 0 else f"t{self.id}pi"

    @property
    def subnet_prefix(self) -> str:
        return f"10.213.{self.id}"

    @property
    def subnet_cidr(self) -> str:
        return f"{self.subnet_prefix}.0/24"

    @property
    def gateway_ip(self) -> str:
        """Address of br0 in the lab's namespace, where the services listen."""
        return f"{self.subnet_prefix}.1"

    @property
    def mac_prefix(self) -> str:
        """First five octets of the Pis' MACs: 02:00 and the subnet's octets 10.213.<id>."""
        return f"02:00:0a:d5:{self.id:02x}"

    @property
    def machine_prefix(self) -> str:
        """Prefix of the Pis' systemd-nspawn machine names, which name the propagate directories."""
        return "" if self.id == 0 else f"{self.netns}-"

    @property
    def netns_etc(self) -> Path:
        """Directory whose files ``ip netns exec`` bind-mounts over /etc in the lab's namespace."""
        return Path("/etc/netns") / self.netns

    @property
    def default_state_dir(self) -> Path:
        return LAB_DIR / (".state" if self.id == 0 else f".state-{self.id}")

    @property
    def env_prefix(self) -> str:
        """Shell prefix that selects this lab in the commands labctl suggests."""
        return "" if self.id == 0 else f"{LAB_ID_ENV}={self.id} "


@dataclasses.dataclass(frozen=True)
class PiSpec:
    """Identity of simulated Pi number ``n`` (1..50) of ``lab``: names, addresses and its SIM.

    The SIM identity depends on ``n`` only, because every lab has its own SORACOM emulator.
    """

    n: int
    lab: Lab

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_PIS:
            raise ValueError(f"Pi number {self.n} is out of range 1..{MAX_PIS}")

    @property
    def name(self) -> str:
        return f"pi{self.n:02d}"

    @property
    def machine(self) -> str:
        """systemd-nspawn machine name, unique on this machine."""
        return f"{self.lab.machine_prefix}{self.name}"

    @property
    def netns(self) -> str:
        return f"{self.lab.pi_netns_prefix}{self.n}"

    @property
    def host_veth(self) -> str:
        """Name of the veth end that stays in the lab's namespace, attached to br0."""
        return f"{self.netns}-h"

    @property
    def ip(self) -> str:
        return f"{self.lab.subnet_prefix}.{10 + self.n}"

    @property
    def mac(self) -> str:
        # A fixed MAC per address avoids stale ARP entries in tilab when a Pi is re-created,
        # which made SSH take about 11 s to connect instead of 0.3 s.
        return f"{self.lab.mac_prefix}:{10 + self.n:02x}"

    @property
    def imsi(self) -> str:
        return f"4401030{self.n:08d}"

    @property
    def iccid(self) -> str:
        return f"8981100000000{self.n:06d}"

    @property
    def sim_id(self) -> str:
        return self.iccid

    def sim_record(self) -> dict:
        """Return the SIM as the emulator's ``POST /_lab/sims`` takes it (no group).

        The tags name the Pi and its SSH address, so the soracom.krypton.soracom_sims inventory
        plugin can build the lab's inventory from the SIM list.
        """
        return {"imsi": self.imsi, "sim_id": self.sim_id, "iccid": self.iccid, "ip": self.ip,
                "tags": {"name": self.name, "ansible_host": self.ip}}

    def lab_record(self) -> dict:
        """Return the Pi's entry in lab.json."""
        return {
            "n": self.n,
            "name": self.name,
            "ip": self.ip,
            "mac": self.mac,
            "netns": self.netns,
            "imsi": self.imsi,
            "sim_id": self.sim_id,
            "iccid": self.iccid,
        }


@dataclasses.dataclass(frozen=True)
class StatePaths:
    """Files under the lab's state directory (env KRYPTON_LAB_STATE, else ``Lab.default_state_dir``)."""

    root: Path

    @classmethod
    def from_env(cls, lab: Lab) -> StatePaths:
        override = os.environ.get("KRYPTON_LAB_STATE")
        root = Path(override).resolve() if override else lab.default_state_dir
        return cls(root)

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def lab_json(self) -> Path:
        return self.root / "lab.json"

    @property
    def lock(self) -> Path:
        return self.root / "labctl.lock"

    @property
    def sysctl_saved(self) -> Path:
        """Kernel settings saved by labctl versions that ran one lab per machine; read by ``down``."""
        return self.root / "sysctl-saved.json"

    @property
    def lab_layer(self) -> Path:
        """Overlay layer shared by all Pis of this lab: lab CA and root's authorized_keys."""
        return self.root / "image-layer"

    @property
    def pis(self) -> Path:
        return self.root / "pis"

    def pi_dir(self, pi: PiSpec) -> Path:
        return self.pis / pi.name

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pki_file(self, name: str) -> Path:
        return self.pki / name


@dataclasses.dataclass(frozen=True)
class OutputPaths:
    """The Ansible inventory and ansible-test's integration_config.yml that ``labctl up`` writes.

    Lab 0 writes them into the repository (gitignored), where ansible-test looks for the
    integration configuration. Other labs write them under their state directory, so that
    labs do not overwrite each other's files. ``labctl exec`` sets ANSIBLE_INVENTORY to the
    lab's inventory in both cases.
    """

    inventory: Path
    integration_config: Path

    @classmethod
    def for_lab(cls, lab: Lab, state: StatePaths, repo: Path = REPO_ROOT) -> OutputPaths:
        if lab.id != 0:
            return cls(state.root / "inventory", state.root / "integration_config.yml")
        return cls(repo / "inventory" / "lab",
                   repo / "collections" / "ansible_collections" / "soracom" / "krypton"
                   / "tests" / "integration" / "integration_config.yml")

    @property
    def hosts_yml(self) -> Path:
        return self.inventory / "hosts.yml"

    @property
    def group_vars_yml(self) -> Path:
        return self.inventory / "group_vars" / "all" / "lab.yml"

    def all(self) -> list[Path]:
        return [self.hosts_yml, self.group_vars_yml, self.integration_config]
