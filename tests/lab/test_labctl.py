# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of labctl's library and of the patched moto server.

Most tests need neither root nor the lab. Tests decorated with ``@lab`` check a running lab.
They run when env KRYPTON_LAB_UP=1 is set or lab.json exists, and they need root. Run with the venv:
``.venv/bin/pytest tests/lab/test_labctl.py`` (as root, after ``tests/lab/labctl up``, for all).
"""
from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

LAB_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB_DIR))

from labctl_lib import LabError  # noqa: E402
from labctl_lib import cli, config, image, inotify, network, pis, render, services  # noqa: E402
from labctl_lib.config import Lab, OutputPaths, PiSpec, StatePaths  # noqa: E402

MOTO_SERVER = LAB_DIR / "aws" / "moto_lab_server.py"
# Most tests pin lab 0, whose names and addresses the README and CI use, so that they pass
# whichever lab KRYPTON_LAB_ID selects for the tests of a running lab.
LAB0 = Lab(0)


# --- image recipe ------------------------------------------------------------------------------

def test_recipe_hash_is_stable():
    recipe = image.image_recipe("amd64")
    assert image.recipe_hash(recipe) == image.recipe_hash(image.image_recipe("amd64"))
    assert re.fullmatch(r"[0-9a-f]{16}", image.recipe_hash(recipe))


def test_recipe_hash_ignores_key_order():
    recipe = image.image_recipe("amd64")
    reordered = dict(reversed(list(recipe.items())))
    assert image.recipe_hash(reordered) == image.recipe_hash(recipe)


@pytest.mark.parametrize("change", [
    lambda r: r.update(arch="arm64"),
    lambda r: r.update(include=[*r["include"], "vim"]),
    lambda r: r.update(apt_repo_packages=[*r["apt_repo_packages"], "mosquitto"]),
    lambda r: r["files"].update({"/etc/motd": "x"}),
    lambda r: r.update(format=r["format"] + 1),
])
def test_recipe_hash_changes_with_recipe(change):
    recipe = image.image_recipe("amd64")
    changed = json.loads(json.dumps(recipe))
    change(changed)
    assert image.recipe_hash(changed) != image.recipe_hash(recipe)


def test_recipe_packages():
    recipe = image.image_recipe("amd64")
    assert recipe["include"] == sorted(["openssh-server", "python3", "python3-apt", "iproute2",
                                        "ca-certificates", "sudo", "curl", "systemd-sysv", "dbus"])
    # libfaketime lets the fault tests run one process on a Pi with a shifted clock.
    assert recipe["apt_repo_packages"] == sorted(["mosquitto-clients", "jq", "python3-paho-mqtt",
                                                  "python3-cryptography", "libfaketime"])
    assert recipe["files"]["/etc/apt/sources.list.d/lab.list"] == "deb [trusted=yes] http://pkgs.lab:8081/ ./\n"
    assert "/etc/apt/sources.list" in recipe["remove"]


def test_image_dir_named_by_hash(tmp_path):
    built = image.Image(cache_dir=tmp_path, arch="amd64")
    assert built.dir == tmp_path / "images" / image.recipe_hash(image.image_recipe("amd64"))
    assert not built.is_built()


# --- Debian mirror lookup ------------------------------------------------------------------------

def _apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, content in files.items():
        (tmp_path / name).write_text(textwrap.dedent(content))
    return tmp_path


def test_mirror_from_deb822(tmp_path, monkeypatch):
    monkeypatch.delenv("KRYPTON_LAB_MIRROR", raising=False)
    apt_dir = _apt_dir(tmp_path, {"sources.list.d/debian.sources": """\
        Types: deb
        URIs: http://security.example/debian-security
        Suites: bookworm-security
        Components: main

        Types: deb-src deb
        # a comment inside the stanza
        URIs: http://mirror.example/debian/
        Suites: bookworm bookworm-updates
        Components: main
        """})
    assert image.find_debian_mirror("bookworm", apt_dir) == "http://mirror.example/debian"


def test_mirror_skips_disabled_stanza(tmp_path, monkeypatch):
    monkeypatch.delenv("KRYPTON_LAB_MIRROR", raising=False)
    apt_dir = _apt_dir(tmp_path, {"sources.list.d/a.sources": """\
        Enabled: no
        Types: deb
        URIs: http://disabled.example/debian
        Suites: bookworm

        Types: deb
        URIs: http://enabled.example/debian
        Suites: bookworm
        """})
    assert image.find_debian_mirror("bookworm", apt_dir) == "http://enabled.example/debian"


def test_mirror_from_one_line_list(tmp_path, monkeypatch):
    monkeypatch.delenv("KRYPTON_LAB_MIRROR", raising=False)
    apt_dir = _apt_dir(tmp_path, {"sources.list": """\
        # deb http://commented.example/debian bookworm main
        deb-src http://src.example/debian bookworm main
        deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://one.example/debian bookworm main
        """})
    assert image.find_debian_mirror("bookworm", apt_dir) == "http://one.example/debian"


def test_mirror_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("KRYPTON_LAB_MIRROR", "http://override.example/debian")
    assert image.find_debian_mirror("bookworm", _apt_dir(tmp_path, {})) == "http://override.example/debian"


def test_mirror_missing_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("KRYPTON_LAB_MIRROR", raising=False)
    apt_dir = _apt_dir(tmp_path, {"sources.list": "deb http://old.example/debian bullseye main\n"})
    with pytest.raises(LabError, match="KRYPTON_LAB_MIRROR"):
        image.find_debian_mirror("bookworm", apt_dir)


# --- Pi and SIM identity -------------------------------------------------------------------------

def test_pi_identity_first():
    pi = PiSpec(1, LAB0)
    assert (pi.name, pi.netns, pi.host_veth) == ("pi01", "tipi1", "tipi1-h")
    assert pi.ip == "10.213.0.11"
    assert pi.mac == "02:00:0a:d5:00:0b"


def test_pi_identity_last():
    pi = PiSpec(50, LAB0)
    assert pi.name == "pi50"
    assert pi.ip == "10.213.0.60"
    assert pi.mac == "02:00:0a:d5:00:3c"


@pytest.mark.parametrize("n", [1, 7, 42, 50])
def test_sim_identity_format(n):
    pi = PiSpec(n, LAB0)
    assert re.fullmatch(r"4401030\d{8}", pi.imsi) and len(pi.imsi) == 15
    assert re.fullmatch(r"8981100000000\d{6}", pi.iccid) and len(pi.iccid) == 19
    assert pi.sim_id == pi.iccid
    assert int(pi.imsi[-8:]) == n
    assert int(pi.iccid[-6:]) == n


def test_sim_record_has_no_group():
    assert PiSpec(3, LAB0).sim_record() == {"imsi": "440103000000003", "sim_id": "8981100000000000003",
                                      "iccid": "8981100000000000003", "ip": "10.213.0.13",
                                      "tags": {"name": "pi03", "ansible_host": "10.213.0.13"}}


@pytest.mark.parametrize("n", [0, 51, -1])
def test_pi_number_out_of_range(n):
    with pytest.raises(ValueError):
        PiSpec(n, LAB0)


# --- lab IDs: several labs on one machine --------------------------------------------------------

def test_lab_zero_keeps_single_lab_names():
    pi = PiSpec(1, LAB0)
    assert (LAB0.netns, LAB0.subnet_cidr, LAB0.gateway_ip) == ("tilab", "10.213.0.0/24", "10.213.0.1")
    assert (pi.netns, pi.host_veth, pi.machine) == ("tipi1", "tipi1-h", "pi01")
    assert LAB0.netns_etc == Path("/etc/netns/tilab")
    assert LAB0.default_state_dir == LAB_DIR / ".state"
    assert LAB0.env_prefix == ""


@pytest.mark.parametrize("lab_id", range(1, 10))
def test_lab_names_and_addresses(lab_id):
    lab = Lab(lab_id)
    assert lab.netns == f"tilab{lab_id}"
    assert lab.subnet_cidr == f"10.213.{lab_id}.0/24"
    assert lab.gateway_ip == f"10.213.{lab_id}.1"
    assert lab.netns_etc == Path(f"/etc/netns/tilab{lab_id}")
    assert lab.default_state_dir == LAB_DIR / f".state-{lab_id}"
    assert lab.env_prefix == f"KRYPTON_LAB_ID={lab_id} "


@pytest.mark.parametrize("lab_id", range(1, 10))
def test_lab_pi_identity(lab_id):
    pi = PiSpec(7, Lab(lab_id))
    assert pi.name == "pi07"
    assert pi.netns == f"t{lab_id}pi7"
    assert pi.host_veth == f"t{lab_id}pi7-h"
    assert pi.machine == f"tilab{lab_id}-pi07"
    assert pi.ip == f"10.213.{lab_id}.17"
    assert pi.mac == f"02:00:0a:d5:0{lab_id}:11"
    assert pi.imsi == PiSpec(7, LAB0).imsi  # each lab has its own SORACOM emulator


def test_lab_names_fit_interface_limit():
    for lab_id in range(10):
        lab = Lab(lab_id)
        assert len(lab.netns) <= 15
        for n in range(1, config.MAX_PIS + 1):
            pi = PiSpec(n, lab)
            assert len(pi.netns) <= 15, pi.netns
            assert len(pi.host_veth) <= 15, pi.host_veth


def test_lab_names_unique_across_labs():
    all_pis = [PiSpec(n, Lab(lab_id)) for lab_id in range(10) for n in range(1, config.MAX_PIS + 1)]
    for attribute in ("netns", "host_veth", "machine", "ip", "mac"):
        values = [getattr(pi, attribute) for pi in all_pis]
        assert len(set(values)) == len(values), attribute
    lab_names = [Lab(lab_id).netns for lab_id in range(10)]
    assert len(set(lab_names)) == 10
    assert not set(lab_names) & {pi.netns for pi in all_pis}


def test_lab_netns_patterns_match_every_lab():
    for lab_id in range(10):
        lab = Lab(lab_id)
        assert config.LAB_NETNS_PATTERN.fullmatch(lab.netns)
        assert not config.PI_NETNS_PATTERN.fullmatch(lab.netns)
        for n in (1, 9, 10, 50):
            match = config.PI_NETNS_PATTERN.fullmatch(PiSpec(n, lab).netns)
            assert match, PiSpec(n, lab).netns
            assert match["lab"] == ("i" if lab_id == 0 else str(lab_id))
            assert int(match["n"]) == n
    assert not config.LAB_NETNS_PATTERN.fullmatch("tilab10")
    assert not config.PI_NETNS_PATTERN.fullmatch("tipi0")


def test_lab_zero_macs_unchanged():
    # Lab 0's MACs predate lab IDs; a change would give the running lab stale ARP entries.
    assert [PiSpec(n, LAB0).mac for n in (1, 50)] == ["02:00:0a:d5:00:0b", "02:00:0a:d5:00:3c"]


def test_lab_zero_machine_id_unchanged():
    import hashlib
    expected = hashlib.sha256(b"soracom-krypton-lab pi01").hexdigest()[:32]
    assert pis.machine_id(PiSpec(1, LAB0)) == expected
    assert pis.machine_id(PiSpec(1, Lab(1))) != expected


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("", 0), ("0", 0), ("4", 4), ("9", 9), (" 2 ", 2)])
def test_lab_from_env(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("KRYPTON_LAB_ID", raising=False)
    else:
        monkeypatch.setenv("KRYPTON_LAB_ID", value)
    assert Lab.from_env() == Lab(expected)


@pytest.mark.parametrize("value", ["10", "-1", "one", "1.0", "0x1"])
def test_lab_from_env_rejects_invalid(monkeypatch, value):
    monkeypatch.setenv("KRYPTON_LAB_ID", value)
    with pytest.raises(LabError, match="KRYPTON_LAB_ID"):
        Lab.from_env()


@pytest.mark.parametrize("lab_id", [-1, 10])
def test_lab_id_out_of_range(lab_id):
    with pytest.raises(ValueError):
        Lab(lab_id)


def test_state_dir_default_per_lab(monkeypatch):
    monkeypatch.delenv("KRYPTON_LAB_STATE", raising=False)
    assert StatePaths.from_env(LAB0).root == LAB_DIR / ".state"
    assert StatePaths.from_env(Lab(2)).root == LAB_DIR / ".state-2"


def test_output_paths_lab_zero_in_repository(tmp_path):
    outputs = OutputPaths.for_lab(LAB0, StatePaths(tmp_path / "state"), repo=tmp_path / "repo")
    assert outputs.hosts_yml == tmp_path / "repo" / "inventory" / "lab" / "hosts.yml"
    assert outputs.group_vars_yml == tmp_path / "repo" / "inventory" / "lab" / "group_vars" / "all" / "lab.yml"
    assert outputs.integration_config == (tmp_path / "repo" / "collections" / "ansible_collections" / "soracom"
                                          / "krypton" / "tests" / "integration" / "integration_config.yml")


def test_output_paths_other_lab_in_state_dir(tmp_path):
    outputs = OutputPaths.for_lab(Lab(1), StatePaths(tmp_path), repo=Path("/nonexistent/repo"))
    assert outputs.inventory == tmp_path / "inventory"
    assert outputs.hosts_yml == tmp_path / "inventory" / "hosts.yml"
    assert outputs.group_vars_yml == tmp_path / "inventory" / "group_vars" / "all" / "lab.yml"
    assert outputs.integration_config == tmp_path / "integration_config.yml"


def test_remove_outputs_other_lab(tmp_path):
    lab = Lab(1)
    state = StatePaths(tmp_path)
    outputs = OutputPaths.for_lab(lab, state)
    for path in [state.lab_json, *outputs.all()]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    cli.remove_outputs(lab, state)
    assert not state.lab_json.exists()
    assert not outputs.inventory.exists()
    assert not outputs.integration_config.exists()
    assert tmp_path.is_dir()


def test_exec_env_other_lab(tmp_path, monkeypatch):
    lab = Lab(2)
    monkeypatch.setenv("ANSIBLE_INVENTORY", "/somewhere/else")
    record = render.lab_record(lab, StatePaths(tmp_path), [PiSpec(1, lab)], ADMIN, AUTH, {})
    env = cli.exec_env(lab, StatePaths(tmp_path), record)
    assert env["KRYPTON_LAB_ID"] == "2"
    assert env["KRYPTON_LAB_STATE"] == str(tmp_path)
    assert env["ANSIBLE_INVENTORY"] == str(tmp_path / "inventory")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"  # loopback of tilab2


def test_lab_record_other_lab(tmp_path):
    lab = Lab(3)
    record = render.lab_record(lab, StatePaths(tmp_path), [PiSpec(1, lab), PiSpec(2, lab)], ADMIN, AUTH, {})
    assert record["lab_id"] == 3
    assert (record["netns"], record["subnet"], record["gateway"]) == ("tilab3", "10.213.3.0/24", "10.213.3.1")
    assert [pi["ip"] for pi in record["pis"]] == ["10.213.3.11", "10.213.3.12"]
    assert [pi["netns"] for pi in record["pis"]] == ["t3pi1", "t3pi2"]


def test_lab_record_lab_zero(tmp_path):
    record = render.lab_record(LAB0, StatePaths(tmp_path), [PiSpec(1, LAB0)], ADMIN, AUTH, {})
    assert record["lab_id"] == 0
    assert (record["netns"], record["subnet"], record["gateway"]) == ("tilab", "10.213.0.0/24", "10.213.0.1")


def test_load_lab_rejects_other_lab_id(tmp_path):
    state = StatePaths(tmp_path)
    state.lab_json.write_text(json.dumps({"lab_id": 1, "pis": []}))
    assert cli.load_lab(Lab(1), state) == {"lab_id": 1, "pis": []}
    with pytest.raises(LabError, match="belongs to lab 1"):
        cli.load_lab(Lab(2), state)


def test_load_lab_without_id_is_lab_zero(tmp_path):
    state = StatePaths(tmp_path)
    state.lab_json.write_text(json.dumps({"pis": []}))
    assert cli.load_lab(LAB0, state) == {"pis": []}
    with pytest.raises(LabError, match="belongs to lab 0"):
        cli.load_lab(Lab(1), state)


def test_service_commands_other_lab(tmp_path):
    lab = Lab(4)
    manager = services.ServiceManager(lab, StatePaths(tmp_path), Path("/cache/apt-repo"))
    soracom_cmd, _ = manager.command(services.SORACOM, None)
    assert soracom_cmd[soracom_cmd.index("--api") + 1] == "10.213.4.1:443"
    assert soracom_cmd[soracom_cmd.index("--krypton") + 1] == "10.213.4.1:8036"
    assert soracom_cmd[soracom_cmd.index("--metadata") + 1] == "10.213.4.1:80"
    assert soracom_cmd[soracom_cmd.index("--admin") + 1] == "127.0.0.1:8099"
    broker_cmd, _ = manager.command(services.BROKER, ADMIN)
    assert broker_cmd[broker_cmd.index("--listen") + 1] == "10.213.4.1:8883"
    apt_cmd, _ = manager.command(services.APT_REPO, None)
    assert apt_cmd[apt_cmd.index("--bind") + 1] == "10.213.4.1"
    assert services.APT_REPO.ready_url(lab) == "http://10.213.4.1:8081/Packages"
    assert services.BROKER.listen(lab) == "10.213.4.1:8883 admin 127.0.0.1:8098"
    assert services.MOTO.ready_url(lab) == "http://127.0.0.1:5000/moto-api/"


def test_hosts_file_other_lab(monkeypatch):
    monkeypatch.delenv("LAB_IOT_ENDPOINT_PREFIX", raising=False)
    lab = Lab(5)
    entries = _parse_hosts(network.hosts_file(lab.gateway_ip, [PiSpec(1, lab), PiSpec(2, lab)]))
    assert entries["api.soracom.io"] == "10.213.5.1"
    assert entries["a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"] == "10.213.5.1"
    assert entries["pi01"] == "10.213.5.11"
    assert entries["pi02"] == "10.213.5.12"


def test_cli_rejects_bad_pi_number():
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["pi-up", "51"])
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--pis", "zero"])
    assert parser.parse_args(["up", "--pis", "5"]).pis == 5


def test_cli_pi_down_remove_disk():
    parser = cli.build_parser()
    assert parser.parse_args(["pi-down", "2"]).remove_disk is False
    assert parser.parse_args(["pi-down", "2", "--remove-disk"]).remove_disk is True
    with pytest.raises(SystemExit):
        parser.parse_args(["pi-up", "2", "--remove-disk"])


def test_auth_key_format():
    key = services.new_auth_key()
    assert re.fullmatch(r"keyId-[0-9a-f]{32}", key["auth_key_id"])
    assert re.fullmatch(r"secret-[A-Za-z0-9]{64}", key["auth_key"])
    assert services.new_auth_key() != key


def test_iot_hosts_follow_prefix(monkeypatch):
    monkeypatch.delenv("LAB_IOT_ENDPOINT_PREFIX", raising=False)
    assert config.iot_ats_host() == "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"
    assert config.iot_data_host() == "a2labkrypton00.iot.ap-northeast-1.amazonaws.com"
    monkeypatch.setenv("LAB_IOT_ENDPOINT_PREFIX", "zzz")
    assert config.iot_ats_host() == "zzz-ats.iot.ap-northeast-1.amazonaws.com"


# --- rendering -----------------------------------------------------------------------------------

ADMIN = {"user": "lab-admin", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t/+="}
AUTH = {"auth_key_id": "keyId-" + "0" * 32, "auth_key": "secret-" + "a" * 64}


def test_yaml_round_trip():
    data = {"plain": "text", "tricky": ["yes", "no", "1.0", "null", "a: b", "#x", "", "-"],
            "numbers": [1, 2.5, True, False, None], "nested": {"list": [{"a": 1, "b": [1, 2]}, []], "empty": {}},
            "key with space": "v", "quote": 'say "hi"\n', "unicode": "ソラコム"}
    assert yaml.safe_load(render.to_yaml(data)) == data


def test_hosts_yml(tmp_path):
    state = StatePaths(tmp_path)
    pis = [PiSpec(1, LAB0), PiSpec(2, LAB0)]
    inventory = yaml.safe_load(render.hosts_yml(state, pis))
    group = inventory["all"]["children"]["pis"]
    assert list(group["hosts"]) == ["pi01", "pi02"]
    assert group["hosts"]["pi02"] == {"ansible_host": "10.213.0.12", "soracom_imsi": "440103000000002",
                                      "soracom_sim_id": "8981100000000000002"}
    assert group["vars"] == {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(tmp_path / "ssh" / "id_ed25519"),
        "ansible_ssh_args": render.SSH_ARGS,
        "ansible_ssh_common_args": render.SSH_COMMON_ARGS,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    assert "ControlPersist=300s" in group["vars"]["ansible_ssh_args"]
    # A cut ppp0 must end the SSH session quickly instead of hanging the playbook.
    assert "ServerAliveInterval=5" in group["vars"]["ansible_ssh_common_args"]
    assert "ConnectTimeout=10" in group["vars"]["ansible_ssh_common_args"]


def test_group_vars_yml(monkeypatch):
    monkeypatch.delenv("LAB_IOT_ENDPOINT_PREFIX", raising=False)
    assert yaml.safe_load(render.group_vars_yml(AUTH)) == {
        "cloud_soracom_auth_key_id": AUTH["auth_key_id"],
        "cloud_soracom_auth_key": AUTH["auth_key"],
        "cloud_soracom_endpoint": "https://api.soracom.io/v1",
        "cloud_aws_endpoint_url": "http://127.0.0.1:5000",
        "cloud_aws_region": "ap-northeast-1",
    }


def test_integration_config_yml(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_IOT_ENDPOINT_PREFIX", raising=False)
    state = StatePaths(tmp_path)
    pis = [PiSpec(1, LAB0), PiSpec(3, LAB0)]
    loaded = yaml.safe_load(render.integration_config_yml(state, pis, ADMIN, AUTH))
    assert loaded == {
        "soracom_endpoint": "https://api.soracom.io/v1",
        "soracom_auth_key_id": AUTH["auth_key_id"],
        "soracom_auth_key": AUTH["auth_key"],
        "lab_soracom_admin_url": "http://127.0.0.1:8099",
        "lab_broker_admin_url": "http://127.0.0.1:8098",
        "aws_endpoint_url": "http://127.0.0.1:5000",
        "aws_region": "ap-northeast-1",
        "aws_access_key": "AKIAEXAMPLE",
        "aws_secret_key": "s3cr3t/+=",
        "lab_iot_ats_host": "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com",
        "lab_ssh_key": str(tmp_path / "ssh" / "id_ed25519"),
        "lab_pis": [
            {"name": "pi01", "ip": "10.213.0.11", "imsi": "440103000000001", "sim_id": "8981100000000000001"},
            {"name": "pi03", "ip": "10.213.0.13", "imsi": "440103000000003", "sim_id": "8981100000000000003"},
        ],
    }


def test_lab_record_pis(tmp_path):
    record = render.lab_record(LAB0, StatePaths(tmp_path), [PiSpec(2, LAB0)], ADMIN, AUTH, {"hash": "h"})
    assert record["pis"][0] == PiSpec(2, LAB0).lab_record()
    assert {"name", "ip", "imsi", "sim_id", "iccid"} <= set(record["pis"][0])
    assert record["aws"]["access_key_id"] == "AKIAEXAMPLE"
    assert record["soracom"]["operator_id"] == "OP0099000001"
    assert record["iot"]["ats_host"].endswith("-ats.iot.ap-northeast-1.amazonaws.com")


def test_hosts_file_for_pi(monkeypatch):
    monkeypatch.delenv("LAB_IOT_ENDPOINT_PREFIX", raising=False)
    text = network.hosts_file("10.213.0.1", [], self_name="pi04", self_ip="10.213.0.14")
    entries = _parse_hosts(text)
    for name in ("api.soracom.io", "g.api.soracom.io", "krypton.soracom.io", "metadata.soracom.io",
                 "pkgs.lab", "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"):
        assert entries[name] == "10.213.0.1"
    assert entries["pi04"] == "10.213.0.14"
    assert entries["localhost"] == "127.0.0.1"


def test_hosts_file_for_tilab():
    entries = _parse_hosts(network.hosts_file("10.213.0.1", [PiSpec(1, LAB0), PiSpec(2, LAB0)]))
    assert entries["api.soracom.io"] == "10.213.0.1"
    assert entries["pi01"] == "10.213.0.11"
    assert entries["pi02"] == "10.213.0.12"


def _parse_hosts(text: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            entries.setdefault(name, fields[0])
    return entries


def test_exec_env(tmp_path, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.delenv("ANSIBLE_INVENTORY", raising=False)
    record = render.lab_record(LAB0, StatePaths(tmp_path), [PiSpec(1, LAB0)], ADMIN, AUTH, {})
    env = cli.exec_env(LAB0, StatePaths(tmp_path), record)
    assert "https_proxy" not in env and "HTTP_PROXY" not in env and "AWS_PROFILE" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t/+="
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "ap-northeast-1"
    assert env["SORACOM_AUTH_KEY_ID"] == AUTH["auth_key_id"]
    assert env["SORACOM_AUTH_KEY"] == AUTH["auth_key"]
    assert env["KRYPTON_LAB_STATE"] == str(tmp_path)
    assert env["KRYPTON_LAB_ID"] == "0"
    assert env["ANSIBLE_INVENTORY"] == str(cli.OutputPaths.for_lab(LAB0, StatePaths(tmp_path)).inventory)


def test_state_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("KRYPTON_LAB_STATE", str(tmp_path))
    state = StatePaths.from_env(Lab(3))
    assert state.lab_json == tmp_path / "lab.json"
    assert state.pid_file("moto") == tmp_path / "pids" / "moto.pid"
    assert state.log_file("pi01") == tmp_path / "logs" / "pi01.log"


def test_service_commands_match_contract(tmp_path):
    manager = services.ServiceManager(LAB0, StatePaths(tmp_path), Path("/cache/apt-repo"))
    moto_cmd, moto_env = manager.command(services.MOTO, None)
    assert moto_cmd[1:] == [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", "5000"]
    assert moto_env["MOTO_IAM_LOAD_MANAGED_POLICIES"] == "true"
    assert moto_env["MOTO_IOT_CA_CERT"] == str(tmp_path / "pki" / "device-ca.crt")
    broker_cmd, broker_env = manager.command(services.BROKER, ADMIN)
    assert broker_cmd[broker_cmd.index("--listen") + 1] == "10.213.0.1:8883"
    assert broker_env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    soracom_cmd, _ = manager.command(services.SORACOM, None)
    assert soracom_cmd[soracom_cmd.index("--api") + 1] == "10.213.0.1:443"
    assert soracom_cmd[soracom_cmd.index("--admin") + 1] == "127.0.0.1:8099"
    apt_cmd, _ = manager.command(services.APT_REPO, None)
    assert apt_cmd[1:] == ["-m", "http.server", "8081", "--bind", "10.213.0.1", "--directory", "/cache/apt-repo"]


# --- PKI -----------------------------------------------------------------------------------------

def certificate_dates(cert: Path) -> tuple[float, float]:
    """Return notBefore and notAfter of ``cert`` as UNIX times, read with openssl."""
    def seconds(option: str) -> float:
        text = subprocess.run(["openssl", "x509", "-noout", option, "-in", str(cert)], check=True,
                              capture_output=True, text=True).stdout.split("=", 1)[1].strip()
        return time.mktime(time.strptime(text, "%b %d %H:%M:%S %Y %Z")) - time.timezone
    return seconds("-startdate"), seconds("-enddate")


def test_pki_certificates_start_in_the_past_and_verify(tmp_path):
    from labctl_lib import pki
    state = StatePaths(tmp_path)
    pki.ensure_pki(state)
    now = time.time()
    for name in ("server-ca", "device-ca", "soracom", "broker"):
        not_before, not_after = certificate_dates(state.pki / f"{name}.crt")
        # A Pi whose clock is days behind still trusts the lab's servers.
        assert now - not_before > (pki.BACKDATE_DAYS - 1) * 86400, name
        assert not_after - now > (pki.LEAF_DAYS - 1) * 86400, name
        assert (state.pki / f"{name}.key").stat().st_mode & 0o077 == 0, name
    for name in ("soracom", "broker"):
        verify = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(state.pki / "server-ca.crt"),
                                 str(state.pki / f"{name}.crt")], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    assert pki._has_names(state.pki / "broker.crt", pki.broker_dns_names())


# --- inotify limit shared by all labs -------------------------------------------------------------

@pytest.fixture
def inotify_env(tmp_path, monkeypatch):
    """Point the inotify module at a fake sysctl, /run directory and /run/netns under tmp_path."""
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("128\n")
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    monkeypatch.setattr(inotify, "INOTIFY_SYSCTL", sysctl)
    monkeypatch.setattr(inotify, "SHARED_RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(inotify, "LOCK_FILE", tmp_path / "cache" / "inotify.lock")
    monkeypatch.setattr(inotify, "NETNS_DIR", netns_dir)

    def add_netns(*names: str) -> None:
        for name in names:
            (netns_dir / name).touch()

    return sysctl, add_netns


def _limit(sysctl: Path) -> int:
    return int(sysctl.read_text())


def test_inotify_unchanged_when_enough(inotify_env, tmp_path):
    sysctl, _ = inotify_env
    inotify.ensure_inotify_limit(Lab(1), 3)  # 32 + 8 * 3 = 56 <= 128
    assert _limit(sysctl) == 128
    assert not (tmp_path / "run" / "inotify.json").exists()


def test_inotify_raise_counts_other_labs(inotify_env):
    sysctl, add_netns = inotify_env
    # 10 Pis of lab 0 and 2 of lab 2 run: 32 + 8 * (10 + 2 + 1) = 136 > 128.
    add_netns("tilab", *(f"tipi{n}" for n in range(1, 11)), "tilab2", "t2pi1", "t2pi2", "tilab1", "t1pi1")
    inotify.ensure_inotify_limit(Lab(1), 1)
    assert _limit(sysctl) == 1024


def test_inotify_ignores_own_pi_netns(inotify_env):
    sysctl, add_netns = inotify_env
    # pi_count already covers the lab's own Pis, so their namespaces are not counted again.
    add_netns("tilab1", *(f"t1pi{n}" for n in range(1, 21)))
    inotify.ensure_inotify_limit(Lab(1), 1)
    assert _limit(sysctl) == 128


def test_inotify_raise_above_default(inotify_env):
    sysctl, _ = inotify_env
    inotify.ensure_inotify_limit(Lab(1), 200)
    assert _limit(sysctl) == inotify.inotify_needed(200) == 1632


def test_inotify_never_lowered_by_raise(inotify_env):
    sysctl, _ = inotify_env
    sysctl.write_text("4096\n")
    inotify.ensure_inotify_limit(Lab(1), 50)
    assert _limit(sysctl) == 4096


def test_inotify_restore_waits_for_last_lab(inotify_env, tmp_path):
    sysctl, add_netns = inotify_env
    inotify.ensure_inotify_limit(Lab(1), 20)
    assert _limit(sysctl) == 1024
    add_netns("tilab2")
    inotify.ensure_inotify_limit(Lab(2), 20)
    assert _limit(sysctl) == 1024

    (tmp_path / "netns" / "tilab2").unlink()  # lab 2 deleted its namespace before restoring
    add_netns("tilab1")
    inotify.restore_inotify_limit(Lab(2), StatePaths(tmp_path / "state-2"))
    assert _limit(sysctl) == 1024, "restored while lab 1 still runs"

    (tmp_path / "netns" / "tilab1").unlink()
    inotify.restore_inotify_limit(Lab(1), StatePaths(tmp_path / "state-1"))
    assert _limit(sysctl) == 128
    assert not (tmp_path / "run").exists()


def test_inotify_restore_ignores_own_netns(inotify_env, tmp_path):
    sysctl, add_netns = inotify_env
    inotify.ensure_inotify_limit(LAB0, 20)
    add_netns("tilab")
    inotify.restore_inotify_limit(LAB0, StatePaths(tmp_path / "state"))
    assert _limit(sysctl) == 128


def test_inotify_restore_skips_value_changed_by_others(inotify_env, tmp_path):
    sysctl, _ = inotify_env
    inotify.ensure_inotify_limit(Lab(1), 20)
    sysctl.write_text("2048\n")
    inotify.restore_inotify_limit(Lab(1), StatePaths(tmp_path / "state"))
    assert _limit(sysctl) == 2048
    assert not (tmp_path / "run" / "inotify.json").exists()


def test_inotify_restore_reads_single_lab_record(inotify_env, tmp_path):
    """A lab 0 brought up by a labctl that saved the value in its state directory."""
    sysctl, _ = inotify_env
    sysctl.write_text("1024\n")
    state = StatePaths(tmp_path / "state")
    state.root.mkdir()
    state.sysctl_saved.write_text(json.dumps({"fs.inotify.max_user_instances": 128}) + "\n")
    inotify.restore_inotify_limit(LAB0, state)
    assert _limit(sysctl) == 128
    assert not state.sysctl_saved.exists()


def test_inotify_restore_without_record(inotify_env, tmp_path):
    sysctl, _ = inotify_env
    sysctl.write_text("512\n")
    inotify.restore_inotify_limit(Lab(1), StatePaths(tmp_path / "state"))
    assert _limit(sysctl) == 512


# --- patched moto --------------------------------------------------------------------------------

def _run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # Under `labctl exec`, AWS_ENDPOINT_URL points at the lab's moto; these tests bring their own.
    base_env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={**base_env, **(env or {})}, cwd=LAB_DIR / "aws")


def test_moto_patches_in_process(tmp_path):
    """describe_endpoint is fixed, certificates come from the device CA, certificateId is SHA-256 of DER,
    and DescribeCertificate reports the certificate's own validity."""
    result = _run_python(f"""
        import datetime, hashlib, json
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Test Device CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
              .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(key, hashes.SHA256()))
        open({str(tmp_path / 'ca.crt')!r}, "wb").write(ca.public_bytes(serialization.Encoding.PEM))
        open({str(tmp_path / 'ca.key')!r}, "wb").write(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

        import moto_lab_server
        moto_lab_server.apply_patches({{"MOTO_IOT_CA_CERT": {str(tmp_path / 'ca.crt')!r},
                                        "MOTO_IOT_CA_KEY": {str(tmp_path / 'ca.key')!r},
                                        "LAB_IOT_ENDPOINT_PREFIX": "testprefix"}})
        import boto3
        from moto import mock_aws
        with mock_aws():
            iot = boto3.client("iot", region_name="ap-northeast-1")
            out = {{"ats": [iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] for _ in range(3)],
                    "data": iot.describe_endpoint(endpointType="iot:Data")["endpointAddress"]}}
            created = iot.create_keys_and_certificate(setAsActive=True)
            cert = x509.load_pem_x509_certificate(created["certificatePem"].encode())
            out["cert_id"] = created["certificateId"]
            out["der_sha256"] = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
            out["issuer"] = cert.issuer.rfc4514_string()
            key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                    cert.signature_hash_algorithm)
            out["signed_by_ca"] = True
            out["client_auth"] = x509.ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(
                x509.ExtendedKeyUsage).value
            validity = iot.describe_certificate(certificateId=created["certificateId"])["certificateDescription"]["validity"]
            out["described_not_after"] = validity["notAfter"].timestamp()
            out["cert_not_after"] = cert.not_valid_after_utc.timestamp()
        print(json.dumps(out))
        """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ats"] == ["testprefix-ats.iot.ap-northeast-1.amazonaws.com"] * 3
    assert out["data"] == "testprefix.iot.ap-northeast-1.amazonaws.com"
    assert out["cert_id"] == out["der_sha256"]
    assert out["issuer"] == "CN=Test Device CA"
    assert out["signed_by_ca"]
    assert out["client_auth"]
    assert out["described_not_after"] == out["cert_not_after"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_moto_server_enforces_iam():
    """With IAM enforcement on, an admin can make body-less IoT calls and unknown keys are rejected."""
    port = _free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"moto-lab-test-{port}.log"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    with open(log_path, "wb") as log_handle:
        server = subprocess.Popen([sys.executable, str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log_handle, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/moto-api/", timeout=30)
        result = _run_python(f"""
            import json, urllib.request, boto3, botocore.exceptions
            def client(service, key, secret):
                return boto3.client(service, endpoint_url={url!r}, region_name="ap-northeast-1",
                                    aws_access_key_id=key, aws_secret_access_key=secret)
            iam = client("iam", "x", "x")
            iam.create_user(UserName="admin")
            iam.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
            key = iam.create_access_key(UserName="admin")["AccessKey"]
            request = urllib.request.Request({url!r} + "/moto-api/reset-auth", data=b"0", method="POST",
                                             headers={{"Content-Type": "text/plain"}})
            urllib.request.urlopen(request).read()
            iot = client("iot", key["AccessKeyId"], key["SecretAccessKey"])
            out = {{"things": iot.list_things()["things"],
                    "cert": bool(iot.create_keys_and_certificate(setAsActive=True)["certificateId"])}}
            try:
                client("iam", "AKIAUNKNOWN000000000", "nope").list_users()
            except botocore.exceptions.ClientError as exc:
                out["unknown_iam"] = exc.response["Error"]["Code"]
            try:
                client("iot", "AKIAUNKNOWN000000000", "nope").list_things()
            except botocore.exceptions.ClientError as exc:
                # moto returns an XML error body for rest-json IoT calls, so boto3 gets only the status.
                out["unknown_iot_status"] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            print(json.dumps(out))
            """, env={"no_proxy": "*"})
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["things"] == []
        assert out["cert"] is True
        assert out["unknown_iam"] == "InvalidClientTokenId"
        assert out["unknown_iot_status"] == 403
    finally:
        server.terminate()
        server.wait(timeout=15)
        log_path.unlink(missing_ok=True)


def _wait_http(url: str, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout} s")


# --- running lab ---------------------------------------------------------------------------------

# The lab that KRYPTON_LAB_ID and KRYPTON_LAB_STATE select, as `labctl exec` sets them.
STATE = StatePaths.from_env(Lab.from_env())
LAB_UP = os.environ.get("KRYPTON_LAB_UP") == "1" or STATE.lab_json.exists()
lab = pytest.mark.skipif(not LAB_UP, reason="lab not up (run tests/lab/labctl up, or set KRYPTON_LAB_UP=1)")


@pytest.fixture(scope="module")
def lab_info() -> dict:
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces)")
    assert STATE.lab_json.exists(), f"{STATE.lab_json} not found although the lab is said to be up"
    return json.loads(STATE.lab_json.read_text())


def _in_lab_netns(info: dict, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the lab's namespace (tilab for lab 0) named in lab.json."""
    return subprocess.run(["ip", "netns", "exec", info["netns"], *cmd], capture_output=True, text=True,
                          timeout=timeout)


def _ssh(info: dict, pi: dict, command: str) -> subprocess.CompletedProcess:
    return _in_lab_netns(info, ["ssh", "-i", info["ssh"]["private_key"], "-o", "BatchMode=yes",
                      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                      "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", f"root@{pi['ip']}", command])


@lab
def test_lab_pis_answer_ssh(lab_info):
    assert lab_info["pis"], "lab.json lists no Pis"
    for pi in lab_info["pis"]:
        result = _ssh(lab_info, pi, "hostname; ip -o -4 addr show dev ppp0")
        assert result.returncode == 0, f"{pi['name']}: {result.stderr}"
        hostname, address_line = result.stdout.splitlines()[:2]
        assert hostname == pi["name"]
        assert f"inet {pi['ip']} peer {lab_info['gateway']}/32" in address_line


@lab
def test_lab_pi_names_resolve_to_lab(lab_info):
    pi = lab_info["pis"][0]
    result = _ssh(lab_info, pi, f"getent hosts api.soracom.io {lab_info['iot']['ats_host']}")
    assert result.returncode == 0, result.stderr
    addresses = {line.split()[0] for line in result.stdout.splitlines()}
    assert addresses == {lab_info["gateway"]}


@lab
def test_lab_has_no_route_out(lab_info):
    """Pis route everything into tilab over ppp0, and tilab has no route beyond its /24 (10.213.0.0/24)."""
    pi = lab_info["pis"][0]
    result = _ssh(lab_info, pi, "ip route get 8.8.8.8")
    assert result.returncode == 0, result.stderr
    assert " dev ppp0 " in result.stdout
    tilab = _in_lab_netns(lab_info, ["ip", "route", "get", "8.8.8.8"])
    assert tilab.returncode != 0
    assert "unreachable" in tilab.stderr.lower()


@lab
def test_lab_moto_rejects_unknown_key(lab_info):
    aws = lab_info["aws"]
    code = textwrap.dedent(f"""
        import json, boto3, botocore.exceptions
        def client(key, secret):
            return boto3.client("iam", endpoint_url={aws['endpoint_url']!r}, region_name="ap-northeast-1",
                                aws_access_key_id=key, aws_secret_access_key=secret)
        out = {{"admin": client({aws['access_key_id']!r}, {aws['secret_access_key']!r}).get_user()["User"]["UserName"]}}
        try:
            client("AKIAUNKNOWN000000000", "nope").list_users()
            out["unknown"] = "accepted"
        except botocore.exceptions.ClientError as exc:
            out["unknown"] = exc.response["Error"]["Code"]
        print(json.dumps(out))
        """)
    result = _in_lab_netns(lab_info, [sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["admin"] == "lab-admin"
    assert out["unknown"] == "InvalidClientTokenId"


@lab
def test_lab_tilab_trusts_lab_ca(lab_info):
    """Python's default trust store in tilab accepts the broker's certificate for the ATS host."""
    host = lab_info["iot"]["ats_host"]
    code = textwrap.dedent(f"""
        import socket, ssl
        with socket.create_connection(({host!r}, 8883), timeout=10) as sock:
            with ssl.create_default_context().wrap_socket(sock, server_hostname={host!r}) as tls:
                print(tls.version())
        """)
    result = _in_lab_netns(lab_info, [sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TLS")


def _lab_netns_of_this_process() -> str | None:
    """Return the lab namespace (tilab, tilabK) this process runs in, as under `labctl exec`, or None."""
    own = os.stat("/proc/self/ns/net")
    netns_dir = Path("/run/netns")
    for entry in (netns_dir.iterdir() if netns_dir.is_dir() else []):
        if config.LAB_NETNS_PATTERN.fullmatch(entry.name):
            other = entry.stat()
            if (other.st_dev, other.st_ino) == (own.st_dev, own.st_ino):
                return entry.name
    return None


def test_root_namespace_does_not_trust_lab_ca():
    """Outside tilab the default trust store has no lab CA."""
    netns = _lab_netns_of_this_process()
    if netns:
        pytest.skip(f"runs inside {netns}, whose /etc/ssl is the lab's copy; run pytest outside labctl exec")
    names = [cert.get("subject") for cert in ssl.create_default_context().get_ca_certs()]
    assert not any("SORACOM Krypton Lab Root CA" in str(subject) for subject in names)


def test_process_alive_ignores_command_line():
    from labctl_lib import sysutil

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert sysutil.process_alive(child.pid)
        assert not sysutil.process_matches(child.pid, "moto_lab_server.py")
    finally:
        child.kill()
    # Killed but not yet reaped: a zombie, which is not alive.
    deadline = time.monotonic() + 10
    while sysutil.process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sysutil.process_alive(child.pid)
    child.wait()
    assert not sysutil.process_alive(child.pid)
