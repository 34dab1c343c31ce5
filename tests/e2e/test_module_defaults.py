"""module_defaults for group/soracom.krypton.aws and group/soracom.krypton.soracom on the lab.

tests/e2e/playbooks/module_defaults.yml calls every module of both action groups without
connection options. The first run passes the lab's connection settings only through
module_defaults, with the AWS and SORACOM variables removed from the environment, so a module
succeeds only if the group's defaults reached it. The second run keeps the lab's environment
and sets a region and an endpoint that point nowhere, so every module must fail naming them:
module_defaults win over the environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

import labapi

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "module_defaults.yml"
RUNTIME = labapi.REPO / "collections/ansible_collections/soracom/krypton/meta/runtime.yml"
# Connection settings that the lab passes through the environment and that the first run moves
# into module_defaults.
CONNECTION_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
    "SORACOM_AUTH_KEY_ID", "SORACOM_AUTH_KEY", "SORACOM_ENDPOINT", "SORACOM_COVERAGE_TYPE",
)
UNKNOWN_REGION = "ap-nowhere-9"
# The discard port on loopback, where no lab service listens.
CLOSED_ENDPOINT = "http://127.0.0.1:9/v1"


def group_modules() -> dict[str, list[str]]:
    groups = yaml.safe_load(RUNTIME.read_text())["action_groups"]
    return {"aws": groups["aws"], "soracom": groups["soracom"]}


def run_module_defaults_playbook(name: str, md_aws: dict, md_soracom: dict, env: dict, lab: dict) -> dict:
    # The extra vars contain the lab's keys, so they go to a directory removed after the run and
    # not to pytest's tmp_path, which pytest keeps.
    with tempfile.TemporaryDirectory() as directory:
        results_file = Path(directory) / f"{name}-results.json"
        extra_vars = Path(directory) / f"{name}-vars.json"
        descriptor = os.open(extra_vars, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({
                "md_aws": md_aws,
                "md_soracom": md_soracom,
                "md_imsi": lab["pis"][0]["imsi"],
                "md_results_file": str(results_file),
            }, handle)
        command = [str(labapi.REPO / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOK), "-e", f"@{extra_vars}"]
        result = subprocess.run(command, cwd=labapi.REPO, env=env, text=True, capture_output=True, timeout=600,
                                check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        return json.loads(results_file.read_text())


def playbook_env(remove_connection_settings: bool) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    if remove_connection_settings:
        for name in CONNECTION_VARIABLES:
            env.pop(name, None)
        # With no configuration files boto3 has nowhere else to look for credentials, and it
        # does not query the instance metadata service.
        env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
                   AWS_EC2_METADATA_DISABLED="true")
    return env


@pytest.fixture(scope="module")
def lab_settings_only_in_defaults(lab):
    labapi.reset_lab()
    md_aws = {
        "region": os.environ["AWS_REGION"],
        "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
        "access_key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    md_soracom = {
        "auth_key_id": os.environ["SORACOM_AUTH_KEY_ID"],
        "auth_key": os.environ["SORACOM_AUTH_KEY"],
    }
    if os.environ.get("SORACOM_ENDPOINT"):
        md_soracom["endpoint"] = os.environ["SORACOM_ENDPOINT"]
    return run_module_defaults_playbook("lab", md_aws, md_soracom, playbook_env(True), lab)


@pytest.fixture(scope="module")
def settings_pointing_nowhere(lab):
    md_aws = {"region": UNKNOWN_REGION}
    md_soracom = {"endpoint": CLOSED_ENDPOINT, "retries": 0, "timeout": 5}
    return run_module_defaults_playbook("nowhere", md_aws, md_soracom, playbook_env(False), lab)


def test_playbook_calls_every_group_module():
    tasks = yaml.safe_load(PLAYBOOK.read_text())[0]["tasks"]
    prefix = "soracom.krypton."
    called = {key[len(prefix):] for task in tasks for key in task if key.startswith(prefix)}
    for group, modules in group_modules().items():
        missing = sorted(set(modules) - called)
        assert not missing, f"modules of group/soracom.krypton.{group} not called by {PLAYBOOK.name}: {missing}"


@pytest.mark.parametrize("group", ["aws", "soracom"])
def test_defaults_alone_reach_lab(lab_settings_only_in_defaults, group):
    for module in group_modules()[group]:
        result = lab_settings_only_in_defaults[module]
        assert not result.get("failed"), f"{module}: {result.get('msg')}"
    if group == "soracom":
        # The group did not exist after reset_lab(), so this was a real write.
        assert lab_settings_only_in_defaults["soracom_group"]["changed"]


@pytest.mark.parametrize("module", ["aws_iot_endpoint_info", "soracom_credential_info"])
def test_blank_environment_has_no_credentials(lab, module):
    # Without module_defaults the environment of the first run must not reach the lab, or that
    # run would prove nothing.
    command = [str(labapi.REPO / ".venv" / "bin" / "ansible"), "localhost", "-m", f"soracom.krypton.{module}"]
    result = subprocess.run(command, cwd=labapi.REPO, env=playbook_env(True), text=True, capture_output=True,
                            timeout=300, check=False)
    assert result.returncode != 0, f"{module} succeeded without any connection settings: {result.stdout}"
    assert "FAILED!" in result.stdout, result.stdout + result.stderr


def test_aws_defaults_override_environment(settings_pointing_nowhere):
    for module in group_modules()["aws"]:
        result = settings_pointing_nowhere[module]
        assert result.get("failed"), f"{module} ignored the region from module_defaults"
        assert UNKNOWN_REGION in result["msg"], f"{module}: {result['msg']}"


def test_soracom_defaults_override_environment(settings_pointing_nowhere):
    for module in group_modules()["soracom"]:
        result = settings_pointing_nowhere[module]
        assert result.get("failed"), f"{module} ignored the endpoint from module_defaults"
        assert "127.0.0.1:9" in result["msg"], f"{module}: {result['msg']}"
