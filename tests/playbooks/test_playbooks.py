"""Checks of the playbooks and the example inventory that need no lab."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=ENV, text=True, capture_output=True, timeout=120, **kwargs)


def test_provision_syntax():
    result = run(str(BIN / "ansible-playbook"), "-i", "inventory/example", "--syntax-check", "playbooks/provision.yml")
    assert result.returncode == 0, result.stderr


def test_report_syntax():
    result = run(str(BIN / "ansible-playbook"), "-i", "inventory/example", "--syntax-check", "playbooks/report.yml")
    assert result.returncode == 0, result.stderr


def test_ansible_doc_renders_report_filters():
    for name in ("fleet_report", "fleet_report_thing_names", "fleet_report_html", "fleet_report_markdown"):
        result = run(str(BIN / "ansible-doc"), "-t", "filter", f"soracom.krypton.{name}")
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "EXAMPLES:" in result.stdout, name


def test_rotate_syntax():
    result = run(str(BIN / "ansible-playbook"), "-i", "inventory/example", "--syntax-check", "playbooks/rotate.yml")
    assert result.returncode == 0, result.stderr


def test_deprovision_syntax():
    result = run(str(BIN / "ansible-playbook"), "-i", "inventory/example", "--syntax-check", "playbooks/deprovision.yml")
    assert result.returncode == 0, result.stderr


def test_deprovision_without_limit_stops(tmp_path):
    # The guard runs before any task reaches a host, so the example fleet's addresses are never contacted.
    password_file = tmp_path / "vault-password"
    password_file.write_text("krypton-example\n")
    result = run(
        str(BIN / "ansible-playbook"), "-i", "inventory/example", "--vault-password-file", str(password_file),
        "playbooks/deprovision.yml",
    )
    assert result.returncode != 0
    assert "Stopped before any change: no --limit was given" in " ".join(result.stdout.split())
    assert "Read which thing and certificate" not in result.stdout


def test_example_inventory_with_vault(tmp_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text("krypton-example\n")
    result = run(
        str(BIN / "ansible-inventory"), "-i", "inventory/example", "--vault-password-file", str(password_file),
        "--list",
    )
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    pis = inventory["pis"]["hosts"]
    assert len(pis) == 3
    for host in pis:
        variables = inventory["_meta"]["hostvars"][host]
        assert "soracom_imsi" in variables or "soracom_sim_id" in variables
        assert variables["vault_soracom_auth_key_id"].startswith("keyId-")


def test_example_vault_is_encrypted():
    text = (REPO / "inventory" / "example" / "group_vars" / "all" / "vault.yml").read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256")


MODULES = sorted(
    path.stem for path in (REPO / "collections/ansible_collections/soracom/krypton/plugins/modules").glob("*.py")
)


def test_every_module_is_listed_in_both_readmes():
    assert MODULES, "no modules found"
    for readme in ("README.md", "README.ja.md"):
        text = (REPO / readme).read_text(encoding="utf-8")
        missing = [module for module in MODULES if f"`{module}`" not in text]
        assert not missing, f"{readme} does not list {missing}"


def test_ansible_doc_renders_every_module():
    for module in MODULES:
        result = run(str(BIN / "ansible-doc"), f"soracom.krypton.{module}")
        assert result.returncode == 0, f"{module}: {result.stderr}"
        assert "EXAMPLES:" in result.stdout, module
        assert "RETURN VALUES:" in result.stdout, module


def test_ansible_doc_renders_roles():
    for role in ("cloud", "device"):
        result = run(str(BIN / "ansible-doc"), "-t", "role", f"soracom.krypton.{role}")
        assert result.returncode == 0, f"{role}: {result.stderr}"
        assert "ENTRY POINT: *main*" in result.stdout


def test_ansible_doc_renders_inventory_plugin():
    result = run(str(BIN / "ansible-doc"), "-t", "inventory", "soracom.krypton.soracom_sims")
    assert result.returncode == 0, result.stderr
    assert "EXAMPLES:" in result.stdout
    assert "keyed_groups" in result.stdout
