# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.soracom.krypton.plugins.inventory.soracom_sims import build_hosts
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import SoracomError
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    AUTH_KEY,
    AUTH_KEY_ID,
    ENDPOINT,
    api,
    lab_imsi,
    lab_sim_id,
)

PLUGIN = "soracom.krypton.soracom_sims"


def selection(**overrides):
    """Return the plugin's default filter and naming options with ``overrides``."""
    values = dict(group_names=[], group_ids=[], tags={}, statuses=[], hostname_tag="name",
                  ansible_host_tag="ansible_host")
    values.update(overrides)
    return values


def host_names(hosts):
    return [name for name, dummy in hosts]


@pytest.fixture
def fleet(api):
    """Three SIMs in group krypton-pis, one in another group, one outside any group."""
    pis = api.add_group("krypton-pis")
    other = api.add_group("sensors")
    api.add_sim(1, group_id=pis, online=True, tags={"name": "pi01", "ansible_host": "192.0.2.11", "site": "tokyo"})
    api.add_sim(2, group_id=pis, tags={"name": "pi02", "site": "osaka"})
    api.add_sim(3, group_id=pis, tags={"name": "", "site": "osaka"})
    api.add_sim(4, group_id=other, tags={"name": "sensor04"})
    api.add_sim(5, tags={"site": "tokyo"})
    api.sims[lab_sim_id(5)]["status"] = "inactive"
    return dict(pis=pis, other=other)


def sims_and_groups(api):
    return list(api.sims.values()), list(api.groups.values())


# -- build_hosts: naming -----------------------------------------------------------------

def test_hosts_named_by_name_tag(api, fleet):
    hosts = build_hosts(*sims_and_groups(api), selection())
    assert host_names(hosts) == ["pi01", "pi02", lab_imsi(3), "sensor04", lab_imsi(5)]


def test_hostname_tag_configurable(api, fleet):
    hosts = build_hosts(*sims_and_groups(api), selection(hostname_tag="site", statuses=["active"],
                                                         tags={"site": ["tokyo"]}))
    assert host_names(hosts) == ["tokyo"]
    # SIM 4 has no site tag, so its IMSI names it.
    hosts = build_hosts(*sims_and_groups(api), selection(hostname_tag="site", group_names=["sensors"]))
    assert host_names(hosts) == [lab_imsi(4)]
    with pytest.raises(SoracomError) as caught:
        build_hosts(*sims_and_groups(api), selection(hostname_tag="site"))
    assert "both get the host name 'osaka'" in caught.value.message


def test_empty_hostname_tag_names_by_imsi(api, fleet):
    hosts = build_hosts(*sims_and_groups(api), selection(hostname_tag=""))
    assert host_names(hosts) == [lab_imsi(number) for number in range(1, 6)]


def test_duplicate_host_name_rejected(api, fleet):
    api.add_sim(6, tags={"name": "pi01"})
    with pytest.raises(SoracomError) as caught:
        build_hosts(*sims_and_groups(api), selection())
    assert lab_sim_id(1) in caught.value.message
    assert lab_sim_id(6) in caught.value.message
    assert "unique 'name' tag" in caught.value.message


def test_sim_without_imsi_named_by_sim_id(api):
    api.add_sim(7, tags={})
    sim = api.sims[lab_sim_id(7)]
    sim["profiles"] = {}
    sim["activeProfileId"] = None
    sim["sessionStatus"] = {"online": False}
    sim["tags"] = {}
    hosts = build_hosts(*sims_and_groups(api), selection())
    assert host_names(hosts) == [lab_sim_id(7)]
    variables = hosts[0][1]
    # provision.yml treats a defined soracom_imsi as the SIM's IMSI, so it must stay undefined.
    assert "soracom_imsi" not in variables
    assert variables["soracom_sim_id"] == lab_sim_id(7)


# -- build_hosts: host variables ----------------------------------------------------------

def test_host_variables(api, fleet):
    hosts = dict(build_hosts(*sims_and_groups(api), selection()))
    assert hosts["pi01"] == dict(
        soracom_imsi=lab_imsi(1),
        soracom_sim_id=lab_sim_id(1),
        soracom_iccid=lab_sim_id(1),
        soracom_group_id=fleet["pis"],
        soracom_group_name="krypton-pis",
        soracom_tags={"name": "pi01", "ansible_host": "192.0.2.11", "site": "tokyo"},
        soracom_status="active",
        soracom_speed_class="s1.standard",
        soracom_session_online=True,
        soracom_session_ip_address="10.213.0.11",
        ansible_host="192.0.2.11",
    )
    outside = hosts[lab_imsi(5)]
    assert outside["soracom_group_id"] is None
    assert outside["soracom_group_name"] is None
    assert outside["soracom_session_online"] is False
    assert outside["soracom_session_ip_address"] is None


def test_ansible_host_only_from_tag(api, fleet):
    hosts = dict(build_hosts(*sims_and_groups(api), selection()))
    assert "ansible_host" not in hosts["pi02"]
    hosts = dict(build_hosts(*sims_and_groups(api), selection(ansible_host_tag="site")))
    assert hosts["pi02"]["ansible_host"] == "osaka"
    hosts = dict(build_hosts(*sims_and_groups(api), selection(ansible_host_tag="")))
    assert "ansible_host" not in hosts["pi01"]


# -- build_hosts: filters ----------------------------------------------------------------

@pytest.mark.parametrize("filters, expected", [
    (dict(group_names=["krypton-pis"]), ["pi01", "pi02", lab_imsi(3)]),
    (dict(group_names=["sensors", "krypton-pis"]), ["pi01", "pi02", lab_imsi(3), "sensor04"]),
    (dict(tags={"site": ["osaka"]}), ["pi02", lab_imsi(3)]),
    (dict(tags={"site": ["osaka", "tokyo"]}), ["pi01", "pi02", lab_imsi(3), lab_imsi(5)]),
    (dict(tags={"site": ["tokyo"], "name": ["pi01"]}), ["pi01"]),
    (dict(tags={"missing": ["x"]}), []),
    (dict(statuses=["inactive"]), [lab_imsi(5)]),
    (dict(statuses=["active"], tags={"site": ["tokyo"]}), ["pi01"]),
    (dict(group_names=["krypton-pis"], tags={"site": ["osaka"]}, statuses=["active"]), ["pi02", lab_imsi(3)]),
])
def test_filters(api, fleet, filters, expected):
    assert host_names(build_hosts(*sims_and_groups(api), selection(**filters))) == expected


def test_group_ids_filter(api, fleet):
    hosts = build_hosts(*sims_and_groups(api), selection(group_ids=[fleet["other"]]))
    assert host_names(hosts) == ["sensor04"]
    hosts = build_hosts(*sims_and_groups(api), selection(group_ids=[fleet["other"]], group_names=["krypton-pis"]))
    assert host_names(hosts) == ["pi01", "pi02", lab_imsi(3), "sensor04"]


def test_unknown_group_name_warns(api, fleet):
    warnings = []
    hosts = build_hosts(*sims_and_groups(api), selection(group_names=["nope"]), warn=warnings.append)
    assert hosts == []
    assert warnings == ["No SIM group is named 'nope', so group_names selects no SIM for it."]


def test_shared_group_name_selects_all(api, fleet):
    twin = api.add_group("krypton-pis")
    api.add_sim(8, group_id=twin, tags={"name": "pi08"})
    warnings = []
    hosts = build_hosts(*sims_and_groups(api), selection(group_names=["krypton-pis"]), warn=warnings.append)
    assert host_names(hosts) == ["pi01", "pi02", lab_imsi(3), "pi08"]
    assert len(warnings) == 1
    assert "2 SIM groups are named 'krypton-pis'" in warnings[0]
    assert twin in warnings[0]


# -- the plugin through Ansible's inventory loader -------------------------------------------

def write_config(tmp_path, name="fleet.soracom_sims.yml", **options):
    config = dict(plugin=PLUGIN, endpoint=ENDPOINT, auth_key_id=AUTH_KEY_ID, auth_key=AUTH_KEY)
    config.update(options)
    for key in [key for key, value in config.items() if value is None]:
        del config[key]
    path = tmp_path / name
    # JSON is valid YAML, and keeps the test free of a YAML writer.
    path.write_text(json.dumps(config))
    return str(path)


def parse(path, cache=False):
    plugin = inventory_loader.get(PLUGIN)
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), path, cache=cache)
    return plugin, inventory


def host_vars(inventory, name):
    return inventory.get_host(name).get_vars()


def test_parse_builds_pis_group(api, fleet, tmp_path):
    dummy, inventory = parse(write_config(tmp_path, group_names=["krypton-pis"]))
    assert [host.name for host in inventory.groups["pis"].get_hosts()] == ["pi01", "pi02", lab_imsi(3)]
    assert host_vars(inventory, "pi01")["soracom_imsi"] == lab_imsi(1)
    assert host_vars(inventory, "pi01")["ansible_host"] == "192.0.2.11"
    # The fake API returns two items per page, so five SIMs take three requests.
    assert [call[1] for call in api.calls].count("/sims") == 3


def test_parse_inventory_group_option(api, fleet, tmp_path):
    dummy, inventory = parse(write_config(tmp_path, inventory_group="devices", statuses=["inactive"]))
    assert [host.name for host in inventory.groups["devices"].get_hosts()] == [lab_imsi(5)]
    assert "pis" not in inventory.groups


def test_parse_constructed_options(api, fleet, tmp_path):
    path = write_config(
        tmp_path,
        compose={"site": "soracom_tags.site | default('unknown')"},
        groups={"online": "soracom_session_online"},
        keyed_groups=[{"key": "soracom_group_name", "prefix": "sim_group", "default_value": "none"}],
    )
    dummy, inventory = parse(path)
    assert host_vars(inventory, "pi01")["site"] == "tokyo"
    assert host_vars(inventory, "sensor04")["site"] == "unknown"
    assert [host.name for host in inventory.groups["online"].get_hosts()] == ["pi01"]
    assert [host.name for host in inventory.groups["sim_group_krypton_pis"].get_hosts()] == [
        "pi01", "pi02", lab_imsi(3)]
    assert [host.name for host in inventory.groups["sim_group_sensors"].get_hosts()] == ["sensor04"]
    assert [host.name for host in inventory.groups["sim_group_none"].get_hosts()] == [lab_imsi(5)]


def test_parse_strict_compose_error(api, fleet, tmp_path):
    path = write_config(tmp_path, strict=True, compose={"bad": "undefined_variable + 1"})
    with pytest.raises(Exception) as caught:
        parse(path)
    assert "undefined_variable" in str(caught.value)


def test_parse_credentials_from_environment(api, fleet, tmp_path, monkeypatch):
    monkeypatch.setenv("SORACOM_AUTH_KEY_ID", AUTH_KEY_ID)
    monkeypatch.setenv("SORACOM_AUTH_KEY", AUTH_KEY)
    dummy, inventory = parse(write_config(tmp_path, auth_key_id=None, auth_key=None))
    assert len(inventory.groups["pis"].get_hosts()) == 5
    assert api.auth_count == 1


def test_parse_credentials_from_template(api, fleet, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIT_TEST_SORACOM_KEY", AUTH_KEY)
    path = write_config(tmp_path, auth_key="{{ lookup('ansible.builtin.env', 'UNIT_TEST_SORACOM_KEY') }}")
    dummy, inventory = parse(path)
    assert len(inventory.groups["pis"].get_hosts()) == 5


def test_parse_without_credentials_fails(api, tmp_path):
    with pytest.raises(AnsibleParserError) as caught:
        parse(write_config(tmp_path, auth_key_id=None, auth_key=None))
    assert "No SORACOM credentials were given" in str(caught.value)
    assert api.calls == []


def test_wrong_auth_key_not_shown(api, fleet, tmp_path):
    with pytest.raises(AnsibleParserError) as caught:
        parse(write_config(tmp_path, auth_key="secret-wrong-key"))
    message = str(caught.value)
    assert "SORACOM authentication failed for auth key ID %s" % AUTH_KEY_ID in message
    assert "secret-wrong-key" not in message


def test_auth_key_not_in_host_vars(api, fleet, tmp_path):
    dummy, inventory = parse(write_config(tmp_path))
    for host in inventory.hosts.values():
        assert AUTH_KEY not in json.dumps(host.get_vars(), default=str)


def test_duplicate_names_fail_parse(api, fleet, tmp_path):
    api.add_sim(6, tags={"name": "pi02"})
    with pytest.raises(AnsibleParserError) as caught:
        parse(write_config(tmp_path))
    assert "both get the host name 'pi02'" in str(caught.value)


def test_invalid_tags_option(api, fleet, tmp_path):
    with pytest.raises(AnsibleParserError) as caught:
        parse(write_config(tmp_path, tags={"site": {"nested": "x"}}))
    assert "tags.site must be a string or a list of strings" in str(caught.value)


@pytest.mark.parametrize("name, expected", [
    ("fleet.soracom_sims.yml", True),
    ("soracom_sims.yaml", True),
    ("fleet.yml", False),
    ("soracom_sims.json", False),
])
def test_verify_file(tmp_path, name, expected):
    path = tmp_path / name
    path.write_text("plugin: %s\n" % PLUGIN)
    assert inventory_loader.get(PLUGIN).verify_file(str(path)) is expected


# -- cache ----------------------------------------------------------------------------------

def cached_config(tmp_path, **options):
    return write_config(tmp_path, cache=True, cache_plugin="ansible.builtin.jsonfile",
                        cache_connection=str(tmp_path / "cache"), **options)


def test_cache_reused(api, fleet, tmp_path):
    path = cached_config(tmp_path)
    plugin, dummy = parse(path, cache=True)
    plugin.update_cache_if_changed()
    calls_after_first = len(api.calls)
    assert calls_after_first > 0

    dummy, inventory = parse(path, cache=True)
    assert len(api.calls) == calls_after_first
    assert len(inventory.groups["pis"].get_hosts()) == 5
    cache_files = list((tmp_path / "cache").iterdir())
    assert cache_files
    for cache_file in cache_files:
        assert AUTH_KEY not in cache_file.read_text()


def test_cache_refreshed_when_flushed(api, fleet, tmp_path):
    path = cached_config(tmp_path)
    plugin, dummy = parse(path, cache=True)
    plugin.update_cache_if_changed()
    calls_after_first = len(api.calls)

    api.add_sim(6, tags={"name": "pi06"})
    plugin, inventory = parse(path, cache=False)
    assert len(api.calls) > calls_after_first
    assert "pi06" in inventory.hosts


@pytest.mark.parametrize("stale", [
    dict(endpoint="https://other.test/v1", auth_key_id=AUTH_KEY_ID),
    dict(endpoint=ENDPOINT, auth_key_id="keyId-of-another-operator"),
], ids=["other-endpoint", "other-auth-key-id"])
def test_cache_of_other_source_ignored(api, fleet, tmp_path, stale):
    path = cached_config(tmp_path)
    plugin, dummy = parse(path, cache=True)
    plugin.cache[plugin.get_cache_key(path)] = dict(stale, sims=[], groups=[])
    plugin.update_cache_if_changed()

    dummy, inventory = parse(path, cache=True)
    assert len(inventory.groups["pis"].get_hosts()) == 5
