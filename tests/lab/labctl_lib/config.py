# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixed names, addresses and paths of the lab, and the identity of each simulated Pi."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# tests/lab/labctl_lib/config.py -> repository root is three levels up.
LAB_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = LAB_DIR.parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

CACHE_DIR = Path("/var/cache/soracom-krypton-lab")

LAB_NETNS = "tilab"
BRIDGE = "br0"
SUBNET_PREFIX = "10.213.0"
GATEWAY_IP = f"{SUBNET_PREFIX}.1"
SUBNET_CIDR = f"{SUBNET_PREFIX}.0/24"
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
    """Return every name that must resolve to the lab gateway 10.213.0.1."""
    return [*SORACOM_HOSTNAMES, APT_HOSTNAME, iot_ats_host(prefix), iot_data_host(prefix)]


@dataclasses.dataclass(frozen=True)
class PiSpec:
    """Identity of simulated Pi number ``n`` (1..50): names, addresses and its SIM."""

    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_PIS:
            raise ValueError(f"Pi number {self.n} is out of range 1..{MAX_PIS}")

    @property
    def name(self) -> str:
        return f"pi{self.n:02d}"

    @property
    def netns(self) -> str:
        return f"tipi{self.n}"

    @property
    def host_veth(self) -> str:
        """Name of the veth end that stays in tilab, attached to br0."""
        return f"tipi{self.n}-h"

    @property
    def ip(self) -> str:
        return f"{SUBNET_PREFIX}.{10 + self.n}"

    @property
    def mac(self) -> str:
        # A fixed MAC per address avoids stale ARP entries in tilab when a Pi is re-created,
        # which made SSH take about 11 s to connect instead of 0.3 s.
        return f"02:00:0a:d5:00:{10 + self.n:02x}"

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
        """Return the SIM as the emulator's ``POST /_lab/sims`` takes it (no group)."""
        return {"imsi": self.imsi, "sim_id": self.sim_id, "iccid": self.iccid, "ip": self.ip}

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
    """Files under the lab's state directory (tests/lab/.state, env KRYPTON_LAB_STATE)."""

    root: Path

    @classmethod
    def from_env(cls) -> StatePaths:
        override = os.environ.get("KRYPTON_LAB_STATE")
        root = Path(override).resolve() if override else LAB_DIR / ".state"
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
        """Values of kernel settings that labctl changed, restored by ``down``."""
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
    """Files in the repository that ``labctl up`` writes (all gitignored)."""

    repo: Path = REPO_ROOT

    @property
    def hosts_yml(self) -> Path:
        return self.repo / "inventory" / "lab" / "hosts.yml"

    @property
    def group_vars_yml(self) -> Path:
        return self.repo / "inventory" / "lab" / "group_vars" / "all" / "lab.yml"

    @property
    def integration_config(self) -> Path:
        return (self.repo / "collections" / "ansible_collections" / "soracom" / "krypton"
                / "tests" / "integration" / "integration_config.yml")

    def all(self) -> list[Path]:
        return [self.hosts_yml, self.group_vars_yml, self.integration_config]
