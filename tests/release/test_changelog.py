"""The collection's changelog: antsibull-changelog lint, CHANGELOG.rst, and the release notes'
list of new plugins and roles."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from packaging.version import Version

import collection_build

ANTSIBULL_CHANGELOG = str(collection_build.BIN / "antsibull-changelog")
CHANGELOGS = collection_build.COLLECTION / "changelogs"


def releases() -> dict:
    return yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text())["releases"] or {}


def test_changelog_lint_clean():
    result = collection_build.run([ANTSIBULL_CHANGELOG, "lint"], cwd=collection_build.COLLECTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_changelog_rst_matches_changelog_yaml(release_build, tmp_path):
    # generate rewrites CHANGELOG.rst from changelogs/changelog.yaml; in a copy of the collection
    # it must produce the committed file unchanged.
    copy = tmp_path / "krypton"
    shutil.copytree(release_build.source, copy)
    (copy / "CHANGELOG.rst").unlink()
    result = collection_build.run([ANTSIBULL_CHANGELOG, "generate"], cwd=copy,
                                  env=collection_build.isolated_env(release_build.collections_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (copy / "CHANGELOG.rst").read_text() == (collection_build.COLLECTION / "CHANGELOG.rst").read_text(), \
        "CHANGELOG.rst is out of date: run 'antsibull-changelog generate' in the collection"


def test_galaxy_version_not_below_latest_release():
    released = [Version(version) for version in releases()]
    assert released, "changelogs/changelog.yaml holds no release"
    assert Version(collection_build.galaxy_metadata()["version"]) >= max(released)


@pytest.fixture(scope="module")
def shipped_content(release_build) -> dict[tuple[str, str], str]:
    """Map (type, short name) of every documented plugin and role in the tarball to its version_added."""
    result = collection_build.run(
        [str(collection_build.BIN / "ansible-doc"), "--metadata-dump", "--no-fail-on-errors", "soracom.krypton"],
        env=collection_build.isolated_env(release_build.collections_path), cwd=release_build.root,
    )
    assert result.returncode == 0, result.stderr
    content = {}
    for plugin_type, plugins in json.loads(result.stdout)["all"].items():
        for name, entry in plugins.items():
            # The dump also lists ansible-core's playbook keywords, which belong to no collection.
            if not name.startswith("soracom.krypton."):
                continue
            short_name = name.removeprefix("soracom.krypton.")
            if plugin_type == "role":
                main = entry.get("entry_points", {}).get("main", {})
                content[(plugin_type, short_name)] = str(main.get("version_added", ""))
            else:
                content[(plugin_type, short_name)] = str((entry.get("doc") or {}).get("version_added", ""))
    return content


def release_notes_content(release: dict) -> set[tuple[str, str]]:
    listed = {("module", entry["name"]) for entry in release.get("modules", [])}
    for plugin_type, entries in release.get("plugins", {}).items():
        listed |= {(plugin_type, entry["name"]) for entry in entries}
    for object_type, entries in release.get("objects", {}).items():
        listed |= {(object_type, entry["name"]) for entry in entries}
    return listed


def test_version_added_not_beyond_galaxy_version(shipped_content):
    galaxy_version = Version(collection_build.galaxy_metadata()["version"])
    ahead = sorted(
        f"{plugin_type} {name}: version_added {version_added}"
        for (plugin_type, name), version_added in shipped_content.items()
        if version_added and Version(version_added) > galaxy_version
    )
    assert not ahead, f"newer than galaxy.yml's version {galaxy_version}: {ahead}"


def test_release_notes_list_new_content(shipped_content):
    # antsibull-changelog lists a plugin or role as new in the release that matches its
    # version_added. One added after that release was made is missing until the release is
    # updated with 'antsibull-changelog release --update-existing'.
    all_releases = releases()
    missing = sorted(
        f"{plugin_type} {name} ({version_added})"
        for (plugin_type, name), version_added in shipped_content.items()
        if version_added in all_releases
        and (plugin_type, name) not in release_notes_content(all_releases[version_added])
    )
    assert not missing, f"not in the release notes of their version_added: {missing}"
