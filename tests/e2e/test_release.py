"""The release tarball on the lab: playbooks/provision.yml with only the installed copy.

Builds the collection's tarball, installs it offline into an empty collections path, and runs
playbooks/provision.yml twice with Ansible pointed at that path alone, so the repository's own
copy of the collection cannot be used.
"""
from __future__ import annotations

import sys

import pytest

import demo
import labapi

sys.path.insert(0, str(labapi.REPO / "tests" / "release"))

import collection_build  # noqa: E402  (needs the path set above)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("release-e2e")
    dist = root / "dist"
    dist.mkdir()
    tarball = collection_build.build_tarball(collection_build.COLLECTION, dist)
    collections_path = root / "collections"
    collections_path.mkdir()
    installed_dir = collection_build.install_tarball(tarball, collections_path)
    return collections_path, installed_dir


@pytest.fixture(scope="module")
def provisioned_from_tarball(lab, installed):
    collections_path, _ = installed
    env = collection_build.isolated_env(collections_path, base={})
    labapi.reset_lab()
    first = labapi.run_playbook("playbooks/provision.yml", echo=False, env=env)
    calls_after_first = labapi.krypton_calls()
    second = labapi.run_playbook("playbooks/provision.yml", echo=False, env=env)
    return {"first": first, "second": second, "calls_after_first": calls_after_first}


def test_collection_found_only_in_installed_copy(installed):
    collections_path, installed_dir = installed
    result = collection_build.run(
        [str(collection_build.BIN / "ansible-galaxy"), "collection", "list", "soracom.krypton"],
        env=collection_build.isolated_env(collections_path), cwd=labapi.REPO,
    )
    assert result.returncode == 0, result.stderr
    assert f"# {collections_path / 'ansible_collections'}" in result.stdout
    assert str(collection_build.COLLECTION.parent.parent) not in result.stdout
    assert (installed_dir / "MANIFEST.json").is_file()


def test_empty_path_cannot_resolve_roles(tmp_path):
    # Under the environment the runs use, the repository's copy is out of reach: with an empty
    # collections path the playbook's roles are not found.
    result = labapi.run_playbook(
        "--syntax-check", "playbooks/provision.yml", echo=False,
        env=collection_build.isolated_env(tmp_path, base={}),
    )
    assert result.returncode != 0
    assert "the role 'soracom.krypton.cloud' was not found" in result.stdout + result.stderr


def test_installed_copy_provisions_every_pi(lab, provisioned_from_tarball):
    first = provisioned_from_tarball["first"]
    assert demo.check_first_run(lab, first) == [], first.stdout[-4000:]
    assert provisioned_from_tarball["calls_after_first"] == len(lab["pis"])


def test_installed_copy_second_run_changes_nothing(lab, provisioned_from_tarball):
    second = provisioned_from_tarball["second"]
    assert demo.check_second_run(lab, second, provisioned_from_tarball["calls_after_first"]) == [], \
        second.stdout[-4000:]


def test_installed_copy_one_certificate_per_pi(lab, provisioned_from_tarball):
    assert demo.check_certificates(lab) == []
