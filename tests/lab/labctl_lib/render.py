# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab.json, the Ansible inventory of the lab and ansible-test's integration_config.yml.

labctl uses only the standard library, so it cannot use PyYAML. The small YAML writer
here covers dicts, lists and scalars, which is all these files need.
"""
from __future__ import annotations

import json
import re

from .config import (
    APT_REPO_URL, AWS_ACCOUNT_ID, BROKER_ADMIN_URL, BROKER_PORT, KRYPTON_URL, METADATA_URL,
    MOTO_URL, REGION, SORACOM_ADMIN_URL, SORACOM_ENDPOINT, SORACOM_G_ENDPOINT, SORACOM_OPERATOR_ID,
    Lab, PiSpec, StatePaths, iot_ats_host, iot_data_host, iot_endpoint_prefix,
)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The lab's SSH runs over the Pis' ppp0, so a link cut by `labctl link-down` must end the
# connection within seconds rather than leave Ansible waiting on TCP retransmissions.
SSH_COMMON_ARGS = ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                   "-o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3")
# Replaces Ansible's default ssh_args: master connections stay open for 5 minutes, so a
# re-run soon after a run skips the SSH handshakes, and the lab's local links need no -C.
SSH_ARGS = "-o ControlMaster=auto -o ControlPersist=300s"
HEADER = "# Written by tests/lab/labctl up for the running lab; rewritten on every run.\n"


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(str(value))


def _key(key) -> str:
    text = str(key)
    return text if _PLAIN_KEY.match(text) else json.dumps(text)


def _emit(value, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_key(key)}:")
                _emit(item, indent + 1, lines)
            else:
                lines.append(f"{pad}{_key(key)}: {_inline(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                nested: list[str] = []
                _emit(item, indent + 1, nested)
                nested[0] = f"{pad}- " + nested[0][len(pad) + 2:]
                lines.extend(nested)
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-")
                _emit(item, indent + 1, lines)
            else:
                lines.append(f"{pad}- {_inline(item)}")
    else:
        lines.append(pad + _scalar(value))


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(value) -> str:
    """Serialise dicts, lists, str, int, float, bool and None as block-style YAML."""
    lines: list[str] = []
    _emit(value, 0, lines)
    return "\n".join(lines) + "\n"


def lab_record(lab: Lab, state: StatePaths, pis: list[PiSpec], admin: dict, auth: dict,
               image_info: dict) -> dict:
    """Return lab.json's content: everything tests need to reach and check the lab."""
    pki = state.pki
    return {
        "format": 1,
        "lab_id": lab.id,
        "state_dir": str(state.root),
        "netns": lab.netns,
        "subnet": lab.subnet_cidr,
        "gateway": lab.gateway_ip,
        "region": REGION,
        "aws": {
            "endpoint_url": MOTO_URL,
            "account_id": AWS_ACCOUNT_ID,
            "admin_user": admin["user"],
            "access_key_id": admin["access_key_id"],
            "secret_access_key": admin["secret_access_key"],
        },
        "iot": {
            "endpoint_prefix": iot_endpoint_prefix(),
            "ats_host": iot_ats_host(),
            "data_host": iot_data_host(),
            "broker_port": BROKER_PORT,
            "broker_admin_url": BROKER_ADMIN_URL,
        },
        "soracom": {
            "endpoint": SORACOM_ENDPOINT,
            "g_endpoint": SORACOM_G_ENDPOINT,
            "krypton_url": KRYPTON_URL,
            "metadata_url": METADATA_URL,
            "admin_url": SORACOM_ADMIN_URL,
            "operator_id": SORACOM_OPERATOR_ID,
            "auth_key_id": auth["auth_key_id"],
            "auth_key": auth["auth_key"],
        },
        "apt_repo_url": APT_REPO_URL,
        "ssh": {
            "user": "root",
            "private_key": str(state.ssh_key),
            "public_key": str(state.ssh_key.with_suffix(".pub")),
        },
        "pki": {name: str(pki / name) for name in (
            "server-ca.crt", "device-ca.crt", "device-ca.key", "soracom.crt", "broker.crt")},
        "paths": {
            "pids": str(state.pids),
            "logs": str(state.logs),
        },
        "image": image_info,
        "pis": [pi.lab_record() for pi in pis],
    }


def hosts_yml(state: StatePaths, pis: list[PiSpec]) -> str:
    hosts = {pi.name: {"ansible_host": pi.ip, "soracom_imsi": pi.imsi, "soracom_sim_id": pi.sim_id}
             for pi in pis}
    inventory = {"all": {"children": {"pis": {
        "hosts": hosts,
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(state.ssh_key),
            "ansible_ssh_args": SSH_ARGS,
            "ansible_ssh_common_args": SSH_COMMON_ARGS,
            "ansible_python_interpreter": "/usr/bin/python3",
        },
    }}}}
    return HEADER + to_yaml(inventory)


def group_vars_yml(auth: dict) -> str:
    # Variables of the soracom.krypton.cloud role that point it at the lab's stand-ins.
    # AWS credentials come from the environment `labctl exec` sets.
    return HEADER + to_yaml({
        "cloud_soracom_auth_key_id": auth["auth_key_id"],
        "cloud_soracom_auth_key": auth["auth_key"],
        "cloud_soracom_endpoint": SORACOM_ENDPOINT,
        "cloud_aws_endpoint_url": MOTO_URL,
        "cloud_aws_region": REGION,
    })


def integration_config_yml(state: StatePaths, pis: list[PiSpec], admin: dict, auth: dict) -> str:
    return HEADER + to_yaml({
        "soracom_endpoint": SORACOM_ENDPOINT,
        "soracom_auth_key_id": auth["auth_key_id"],
        "soracom_auth_key": auth["auth_key"],
        "lab_soracom_admin_url": SORACOM_ADMIN_URL,
        "lab_broker_admin_url": BROKER_ADMIN_URL,
        "aws_endpoint_url": MOTO_URL,
        "aws_region": REGION,
        "aws_access_key": admin["access_key_id"],
        "aws_secret_key": admin["secret_access_key"],
        "lab_iot_ats_host": iot_ats_host(),
        "lab_ssh_key": str(state.ssh_key),
        "lab_pis": [{"name": pi.name, "ip": pi.ip, "imsi": pi.imsi, "sim_id": pi.sim_id} for pi in pis],
    })
