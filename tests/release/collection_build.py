"""Build the collection's release tarball and install it into a clean collections path.

Shared by the release checks in this directory and by tests/e2e/test_release.py.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections" / "ansible_collections" / "soracom" / "krypton"
BIN = REPO / ".venv" / "bin"
# Files that galaxy.yml's build_ignore must keep out of the tarball. The release_build fixture
# creates each of them in its copy of the collection.
IGNORED_FILES = (
    "tests/output/junit/result.xml",
    "tests/integration/integration_config.yml",
    "changelogs/.plugin-cache.yaml",
    ".pytest_cache/README.md",
    "soracom-krypton-0.0.1.tar.gz",
)


def galaxy_metadata() -> dict:
    return yaml.safe_load((COLLECTION / "galaxy.yml").read_text())


def tarball_name() -> str:
    metadata = galaxy_metadata()
    return f"{metadata['namespace']}-{metadata['name']}-{metadata['version']}.tar.gz"


def run(command: list[str], env: dict | None = None, cwd: Path | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, text=True, capture_output=True, timeout=timeout, check=False)


def build_tarball(source: Path, output_dir: Path) -> Path:
    """Run `ansible-galaxy collection build` on ``source`` and return the tarball's path."""
    result = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output_dir), str(source)])
    if result.returncode != 0:
        raise RuntimeError(f"ansible-galaxy collection build failed: {result.stdout}{result.stderr}")
    return output_dir / tarball_name()


def install_tarball(tarball: Path, collections_path: Path) -> Path:
    """Install ``tarball`` offline under ``collections_path`` and return the collection's directory."""
    result = run([
        str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force",
        "-p", str(collections_path), str(tarball),
    ], env=isolated_env(collections_path), cwd=collections_path)
    if result.returncode != 0:
        raise RuntimeError(f"ansible-galaxy collection install failed: {result.stdout}{result.stderr}")
    return collections_path / "ansible_collections" / "soracom" / "krypton"


def isolated_env(collections_path: Path, base: dict | None = None) -> dict:
    """Return an environment in which Ansible finds collections only under ``collections_path``.

    ANSIBLE_COLLECTIONS_PATH takes precedence over the repository's ansible.cfg, and turning off
    the scan of Python's sys.path hides collections installed with the ansible package.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
        ANSIBLE_NOCOLOR="1",
    )
    return env
