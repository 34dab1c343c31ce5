"""ee/execution-environment.yml: `ansible-builder create` with no network, and the
requirements that ansible-builder finds in the installed collection.

No image is built: that needs a container runtime and network access to the base image's
registry and package mirrors.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

import collection_build

EE_FILE = collection_build.REPO / "ee" / "execution-environment.yml"
ANSIBLE_BUILDER = str(collection_build.BIN / "ansible-builder")


def read_ee() -> dict:
    return yaml.safe_load(EE_FILE.read_text())


@pytest.fixture(scope="module")
def build_context(release_build, tmp_path_factory):
    """Run `ansible-builder create` without network on a copy of ee/ beside a build/ tarball."""
    if os.geteuid() != 0:
        pytest.skip("unshare --net needs root")
    tree = tmp_path_factory.mktemp("ee")
    (tree / "ee").mkdir()
    shutil.copy(EE_FILE, tree / "ee" / EE_FILE.name)
    (tree / "build").mkdir()
    shutil.copy(release_build.tarball, tree / "build" / release_build.tarball.name)
    context = tree / "context"
    # A new network namespace has only a loopback interface that is down, so any attempt to
    # reach the network fails.
    result = subprocess.run(
        ["unshare", "--net", ANSIBLE_BUILDER, "create", "-f", str(tree / "ee" / EE_FILE.name),
         "--context", str(context), "--output-filename", "Containerfile"],
        cwd=tree, text=True, capture_output=True, timeout=120, check=False,
    )
    return result, context


def test_create_succeeds_offline(build_context):
    result, context = build_context
    assert result.returncode == 0, result.stdout + result.stderr
    assert (context / "Containerfile").is_file()


def test_containerfile_installs_collection(build_context):
    _, context = build_context
    containerfile = (context / "Containerfile").read_text()
    ee = read_ee()
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in containerfile
    assert ee["dependencies"]["ansible_core"]["package_pip"] in containerfile
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "COPY _build /build" in containerfile


def test_containerfile_installs_collection_requirements(build_context):
    # The builder stage collects the installed collections' requirements.txt and bindep.txt
    # through their meta/execution-environment.yml; the final stage installs them.
    _, context = build_context
    containerfile = (context / "Containerfile").read_text()
    assert "introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt" \
        in containerfile
    assert "RUN /output/scripts/assemble" in containerfile
    assert "RUN /output/scripts/install-from-bindep" in containerfile


def test_context_holds_release_tarball(build_context, release_build):
    _, context = build_context
    copied = context / "_build" / "collections" / release_build.tarball.name
    assert copied.read_bytes() == release_build.tarball.read_bytes()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": f"/build/collections/{release_build.tarball.name}", "type": "file"}]}


def test_ee_names_current_tarball():
    ee = read_ee()
    name = collection_build.tarball_name()
    assert ee["additional_build_files"] == [{"src": f"../build/{name}", "dest": "collections"}]
    assert ee["dependencies"]["galaxy"]["collections"] == [{"name": f"/build/collections/{name}", "type": "file"}]


def test_ee_ansible_core_matches_requirements_dev():
    pins = [
        line.strip() for line in (collection_build.REPO / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("ansible-core")
    ]
    assert pins == [read_ee()["dependencies"]["ansible_core"]["package_pip"]]


def test_introspect_finds_collection_requirements(release_build, tmp_path):
    pip_file, bindep_file = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    result = collection_build.run([
        ANSIBLE_BUILDER, "introspect", "--write-pip", str(pip_file), "--write-bindep", str(bindep_file),
        str(release_build.collections_path),
    ])
    assert result.returncode == 0, result.stdout + result.stderr
    python_requirements = pip_file.read_text()
    assert "boto3>=1.40  # from collection soracom.krypton" in python_requirements
    assert "botocore>=1.40  # from collection soracom.krypton" in python_requirements
    system_requirements = bindep_file.read_text()
    assert "openssh-clients [platform:rpm]  # from collection soracom.krypton" in system_requirements
