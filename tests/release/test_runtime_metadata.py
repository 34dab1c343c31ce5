"""meta/runtime.yml: the action groups and the supported ansible-core versions."""
from __future__ import annotations

import re
from importlib.metadata import version

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import collection_build

RUNTIME = yaml.safe_load((collection_build.COLLECTION / "meta" / "runtime.yml").read_text())
MODULE_DIR = collection_build.COLLECTION / "plugins" / "modules"
# The doc fragment of a group's connection options, and the fragment that declares membership.
GROUP_FRAGMENTS = {
    "aws": ("soracom.krypton.aws", "soracom.krypton.attributes.ACTION_GROUP_AWS"),
    "soracom": ("soracom.krypton.soracom", "soracom.krypton.attributes.ACTION_GROUP_SORACOM"),
}


def module_fragments() -> dict[str, list[str]]:
    """Map each module to the doc fragments its DOCUMENTATION extends."""
    fragments = {}
    for path in sorted(MODULE_DIR.glob("*.py")):
        match = re.search(r'^DOCUMENTATION = r?"""(.*?)^"""', path.read_text(), re.MULTILINE | re.DOTALL)
        assert match, f"{path.name} has no DOCUMENTATION"
        fragments[path.stem] = yaml.safe_load(match.group(1)).get("extends_documentation_fragment", [])
    return fragments


@pytest.mark.parametrize("group", sorted(GROUP_FRAGMENTS))
def test_action_group_lists_every_connection_module(group):
    options_fragment, _ = GROUP_FRAGMENTS[group]
    with_options = sorted(name for name, fragments in module_fragments().items() if options_fragment in fragments)
    assert with_options, f"no module extends {options_fragment}"
    assert sorted(RUNTIME["action_groups"][group]) == with_options


@pytest.mark.parametrize("group", sorted(GROUP_FRAGMENTS))
def test_group_members_document_membership(group):
    _, membership_fragment = GROUP_FRAGMENTS[group]
    fragments = module_fragments()
    for module in RUNTIME["action_groups"][group]:
        assert membership_fragment in fragments[module], f"{module} does not extend {membership_fragment}"


@pytest.mark.parametrize("group", sorted(GROUP_FRAGMENTS))
def test_action_group_alphabetical(group):
    assert RUNTIME["action_groups"][group] == sorted(RUNTIME["action_groups"][group])


def test_requires_ansible_admits_tested_core():
    assert Version(version("ansible-core")) in SpecifierSet(RUNTIME["requires_ansible"])


def test_roles_minimum_matches_requires_ansible():
    lower_bounds = [spec.version for spec in SpecifierSet(RUNTIME["requires_ansible"]) if spec.operator == ">="]
    assert len(lower_bounds) == 1
    minimum = Version(lower_bounds[0])
    for meta in sorted((collection_build.COLLECTION / "roles").glob("*/meta/main.yml")):
        role_minimum = Version(str(yaml.safe_load(meta.read_text())["galaxy_info"]["min_ansible_version"]))
        assert (role_minimum.major, role_minimum.minor) == (minimum.major, minimum.minor), meta
