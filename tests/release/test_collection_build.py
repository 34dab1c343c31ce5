"""The release tarball: what it contains, and the collection installed offline from it."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

import collection_build

MODULES = sorted(path.stem for path in (collection_build.COLLECTION / "plugins" / "modules").glob("*.py"))
ROLES = sorted(path.name for path in (collection_build.COLLECTION / "roles").iterdir() if path.is_dir())
RELEASE_FILES = (
    "README.md",
    "COPYING",
    "CHANGELOG.rst",
    "changelogs/changelog.yaml",
    "changelogs/config.yaml",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "requirements.txt",
    "bindep.txt",
)


def tarball_members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as archive:
        return {member.name for member in archive.getmembers()}


def source_files(directory: Path) -> set[str]:
    return {
        str(path.relative_to(collection_build.COLLECTION))
        for path in directory.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_manifest_matches_galaxy_yml(release_build):
    with tarfile.open(release_build.tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
    galaxy = collection_build.galaxy_metadata()
    for key in ("namespace", "name", "version", "license", "dependencies", "repository", "readme"):
        assert manifest[key] == galaxy[key], key


def test_tarball_contains_release_files(release_build):
    members = tarball_members(release_build.tarball)
    for name in RELEASE_FILES:
        assert name in members, f"{name} is missing from {release_build.tarball.name}"
        assert (collection_build.COLLECTION / name).is_file(), f"{name} is missing from the collection"


def test_tarball_contains_every_plugin_and_role_file(release_build):
    members = tarball_members(release_build.tarball)
    expected = source_files(collection_build.COLLECTION / "plugins") | source_files(collection_build.COLLECTION / "roles")
    missing = sorted(expected - members)
    assert not missing, f"missing from the tarball: {missing}"


@pytest.mark.parametrize("relative", collection_build.IGNORED_FILES)
def test_tarball_leaves_out_build_ignore(release_build, relative):
    assert (release_build.source / relative).exists()
    assert relative not in tarball_members(release_build.tarball)


def test_tarball_has_no_bytecode(release_build):
    compiled = [name for name in tarball_members(release_build.tarball) if "__pycache__" in name or name.endswith(".pyc")]
    assert not compiled


def test_installed_copy_has_modules_and_roles(release_build):
    installed = release_build.installed
    assert json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["version"] == \
        collection_build.galaxy_metadata()["version"]
    assert sorted(path.stem for path in (installed / "plugins" / "modules").glob("*.py")) == MODULES
    for role in ROLES:
        assert (installed / "roles" / role / "meta" / "argument_specs.yml").is_file(), role
    installed_runtime = yaml.safe_load((installed / "meta" / "runtime.yml").read_text())
    source_runtime = yaml.safe_load((collection_build.COLLECTION / "meta" / "runtime.yml").read_text())
    assert installed_runtime == source_runtime


def ansible_doc(release_build, *args: str, collections_path: Path | None = None):
    env = collection_build.isolated_env(collections_path or release_build.collections_path)
    return collection_build.run([str(collection_build.BIN / "ansible-doc"), *args], env=env, cwd=release_build.root)


def test_ansible_doc_lists_installed_modules(release_build):
    result = ansible_doc(release_build, "--json", "-l", "soracom.krypton")
    assert result.returncode == 0, result.stderr
    listed = sorted(name.removeprefix("soracom.krypton.") for name in json.loads(result.stdout))
    assert listed == MODULES


@pytest.mark.parametrize("module", ["aws_iot_policy", "soracom_group", "krypton_bootstrap", "mqtt_check"])
def test_ansible_doc_reads_installed_module(release_build, module):
    result = ansible_doc(release_build, "--json", f"soracom.krypton.{module}")
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)[f"soracom.krypton.{module}"]
    assert Path(entry["doc"]["filename"]).is_relative_to(release_build.installed)
    assert entry["doc"]["options"]
    assert entry["examples"].strip()
    assert entry["return"]


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_reads_installed_role(release_build, role):
    result = ansible_doc(release_build, "--json", "-t", "role", f"soracom.krypton.{role}")
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)[f"soracom.krypton.{role}"]
    assert Path(entry["path"]) == release_build.installed
    assert "main" in entry["entry_points"]


def test_empty_path_hides_repository_copy(release_build, tmp_path):
    # The environment that points ansible-doc at the installed copy leaves no other way to the
    # collection: with an empty collections path the module is not found at all.
    result = ansible_doc(release_build, "soracom.krypton.aws_iot_policy", collections_path=tmp_path)
    assert "was not found" in result.stderr
    assert "aws_iot_policy" not in result.stdout
