"""The soracom.krypton.soracom_sims inventory plugin against the lab's SORACOM emulator.

The lab registers each Pi's SIM with the tags name=piNN and ansible_host=<Pi address>, so the
plugin builds the same `pis` group as the lab's hand-written inventory. These tests run inside
the lab (`labctl exec`), which sets SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

import demo
import labapi

PLUGIN_FILE = "lab.soracom_sims.yml"
# The SIM group provision.yml creates: the cloud role's default cloud_group_name.
GROUP_NAME = "krypton-pis"


# The inventories copy the lab's group_vars, which contain the lab's SORACOM auth key. They live in
# directories removed after use, not in pytest's tmp_path, which pytest keeps after the run.
@pytest.fixture
def scratch():
    with tempfile.TemporaryDirectory() as directory:
        yield directory


def unwrap(value):
    """Drop the ``__ansible_unsafe`` wrappers ansible-inventory puts around plugin values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def lab_group_vars() -> dict:
    return yaml.safe_load(labapi.OUTPUTS.group_vars_yml.read_text())


def write_inventory(directory, **options) -> str:
    """Write an inventory directory: the plugin's file plus the lab's SSH and cloud variables.

    Return the path of the plugin's file.
    """
    os.makedirs(os.path.join(directory, "group_vars", "all"), exist_ok=True)
    config = {"plugin": "soracom.krypton.soracom_sims", "endpoint": lab_group_vars()["cloud_soracom_endpoint"]}
    config.update(options)
    path = os.path.join(directory, PLUGIN_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)

    # The SSH settings the lab's own inventory gives the group pis.
    lab_hosts = yaml.safe_load(labapi.OUTPUTS.hosts_yml.read_text())
    ssh_vars = lab_hosts["all"]["children"]["pis"]["vars"]
    with open(os.path.join(directory, "group_vars", "pis.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(ssh_vars, handle)
    # The cloud role's lab variables, auth key included, so the copy gets the original's mode.
    shutil.copy2(labapi.OUTPUTS.group_vars_yml, os.path.join(directory, "group_vars", "all", "lab.yml"))
    return path


def run_inventory(source: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [str(labapi.REPO / ".venv" / "bin" / "ansible-inventory"), "-i", source, "--list"]
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    full_env.update(env or {})
    return subprocess.run(command, cwd=labapi.REPO, env=full_env, text=True, capture_output=True,
                          timeout=120, check=False)


def listed(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return unwrap(json.loads(result.stdout))


def test_list_matches_lab_pis(lab, scratch):
    inventory = listed(run_inventory(write_inventory(scratch)))
    assert sorted(inventory["pis"]["hosts"]) == sorted(pi["name"] for pi in lab["pis"])
    for pi in lab["pis"]:
        variables = inventory["_meta"]["hostvars"][pi["name"]]
        assert variables["soracom_imsi"] == pi["imsi"]
        assert variables["soracom_sim_id"] == pi["sim_id"]
        assert variables["ansible_host"] == pi["ip"]
        assert variables["soracom_tags"]["name"] == pi["name"]
        assert variables["soracom_status"] == "active"


def test_tag_filter_and_keyed_groups(lab, scratch):
    expected_host = lab["pis"][-1]["name"]
    source = write_inventory(
        scratch,
        tags={"name": expected_host},
        keyed_groups=[{"key": "soracom_status", "prefix": "sim"}],
    )
    inventory = listed(run_inventory(source))
    assert inventory["pis"]["hosts"] == [expected_host]
    assert inventory["sim_active"]["hosts"] == [expected_host]


def test_wrong_auth_key_fails_without_showing_it(lab, scratch):
    source = write_inventory(scratch)
    result = run_inventory(source, env={
        "SORACOM_AUTH_KEY": "secret-e2e-wrong",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
    })
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "SORACOM authentication failed for auth key ID" in output
    assert "secret-e2e-wrong" not in output


@pytest.fixture(scope="module")
def provisioned_with_plugin(lab):
    """Provision the lab with the plugin's inventory, then re-run it on the SIM group only."""
    labapi.reset_lab()
    with tempfile.TemporaryDirectory() as by_tags_dir, tempfile.TemporaryDirectory() as by_group_dir:
        by_tags = write_inventory(by_tags_dir)
        first = labapi.run_playbook("-i", by_tags, "playbooks/provision.yml", echo=False)
        calls_after_first = labapi.krypton_calls()

        # After the first run every Pi's SIM is in the group, so the group alone selects them.
        by_group = write_inventory(by_group_dir, group_names=[GROUP_NAME])
        group_listing = run_inventory(by_group)
        second = labapi.run_playbook("-i", by_group, "playbooks/provision.yml", echo=False)
    return dict(first=first, second=second, calls_after_first=calls_after_first, group_listing=group_listing)


def test_provision_with_plugin_inventory(lab, provisioned_with_plugin):
    first = provisioned_with_plugin["first"]
    assert demo.check_first_run(lab, first) == [], first.stdout[-4000:]
    assert provisioned_with_plugin["calls_after_first"] == len(lab["pis"])
    assert demo.check_certificates(lab) == []


def test_group_filter_after_provision(lab, provisioned_with_plugin):
    inventory = listed(provisioned_with_plugin["group_listing"])
    assert sorted(inventory["pis"]["hosts"]) == sorted(pi["name"] for pi in lab["pis"])
    for pi in lab["pis"]:
        assert inventory["_meta"]["hostvars"][pi["name"]]["soracom_group_name"] == GROUP_NAME


def test_rerun_on_group_changes_nothing(lab, provisioned_with_plugin):
    second = provisioned_with_plugin["second"]
    problems = demo.check_second_run(lab, second, provisioned_with_plugin["calls_after_first"])
    assert problems == [], second.stdout[-4000:]
