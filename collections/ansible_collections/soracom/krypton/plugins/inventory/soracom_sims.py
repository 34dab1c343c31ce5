# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: soracom_sims
short_description: Build an inventory of devices from the SIMs of a SORACOM account
version_added: 0.1.0
description:
  - Reads the SIMs of a SORACOM operator with the SORACOM API (C(GET /sims) and C(GET /groups)) and adds one
    host per SIM to the inventory group O(inventory_group), V(pis) by default, which C(playbooks/provision.yml)
    provisions.
  - Each host is named after the SIM's O(hostname_tag) tag, or after its IMSI when the SIM lacks that tag
    or the tag is empty.
  - Each host gets the variables C(soracom_imsi), C(soracom_sim_id), C(soracom_iccid), C(soracom_group_id),
    C(soracom_group_name), C(soracom_tags), C(soracom_status), C(soracom_speed_class),
    C(soracom_session_online) and C(soracom_session_ip_address), and C(ansible_host) from the
    O(ansible_host_tag) tag when the SIM has it.
  - The filters O(group_names), O(group_ids), O(tags) and O(statuses) select which SIMs become hosts.
    A SIM must pass every filter that is set.
  - The inventory source is a YAML file whose name ends in C(soracom_sims.yml) or C(soracom_sims.yaml).
  - Requests are sent with the collection's SORACOM API client, which retries after HTTP 429 and 5xx
    responses and follows the API's paging. A failed request makes the inventory source fail to parse,
    which Ansible reports only as a warning by default. Set E(ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true),
    or C(any_unparsed_is_failed = true) in the C([inventory]) section of C(ansible.cfg), to stop a playbook
    instead of running it on an empty group.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description:
      - Name of this plugin. The file is an inventory source of this plugin only when it sets this key.
    type: str
    required: true
    choices: [soracom.krypton.soracom_sims]
  auth_key_id:
    description:
      - ID of the SORACOM auth key (of a SAM user or the root user) used to start an API session, such as V(keyId-xxxx).
      - The key needs permission for C(Sim:listSims) and C(Group:listGroups).
      - Can be a Jinja2 template, evaluated without host variables, so lookups work but inventory variables do not.
      - Can be an inline vault value (C(!vault)), or the whole file can be encrypted with ansible-vault.
    type: str
    env:
      - name: SORACOM_AUTH_KEY_ID
  auth_key:
    description:
      - Secret of the auth key O(auth_key_id).
      - Can be a Jinja2 template or an inline vault value, as O(auth_key_id).
      - The plugin never writes it to the inventory, the cache or a message.
    type: str
    env:
      - name: SORACOM_AUTH_KEY
  coverage_type:
    description:
      - SORACOM coverage whose API the plugin calls.
      - V(jp) selects Japan coverage at U(https://api.soracom.io/v1), V(g) global coverage at U(https://g.api.soracom.io/v1).
      - Ignored when O(endpoint) is set.
    type: str
    choices: [jp, g]
    default: jp
    env:
      - name: SORACOM_COVERAGE_TYPE
  endpoint:
    description:
      - Base URL of the SORACOM API, including the C(/v1) path, for example V(https://api.soracom.io/v1).
      - Overrides O(coverage_type). Meant for test servers and API proxies.
    type: str
    env:
      - name: SORACOM_ENDPOINT
  timeout:
    description:
      - Seconds to wait for the server on each request before the attempt counts as failed.
    type: int
    default: 30
  retries:
    description:
      - How many times a failed request is sent again, after HTTP 429, HTTP 5xx other than 501 or a connection failure.
      - The wait before a retry follows the server's rate-limit headers, or an exponential backoff with jitter
        from 1 to 2 seconds up to 16 to 32 seconds. Each retry is shown as a warning.
    type: int
    default: 5
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API server.
    type: bool
    default: true
  group_names:
    description:
      - Select only SIMs in a SIM group whose C(name) tag is one of these names.
      - SORACOM does not keep group names unique. A name that several groups share selects the SIMs of all of them, with a warning.
      - With O(group_ids) too, a SIM in any of the named or listed groups is selected.
      - A name that no group has selects no SIM and causes a warning.
    type: list
    elements: str
    default: []
  group_ids:
    description:
      - Select only SIMs in one of these SIM groups, given by group ID.
    type: list
    elements: str
    default: []
  tags:
    description:
      - Select only SIMs whose tags have these values. Each key is a tag name.
      - A value is one string, or a list of strings of which the tag must equal one.
      - Every tag given here must match.
    type: dict
    default: {}
  statuses:
    description:
      - Select only SIMs whose status is one of these, for example V(active), V(inactive), V(ready) or V(suspended).
      - The default, an empty list, selects SIMs of every status.
    type: list
    elements: str
    default: []
  hostname_tag:
    description:
      - SIM tag whose value becomes the host name.
      - A SIM without this tag, or with an empty value, is named after its IMSI (or its SIM ID when it has no IMSI).
      - Two selected SIMs with the same host name make the inventory source fail, naming both SIM IDs.
    type: str
    default: name
  ansible_host_tag:
    description:
      - SIM tag whose value becomes the host variable C(ansible_host), the address Ansible connects to.
      - A SIM without this tag gets no C(ansible_host), so Ansible connects to the host name, unless
        O(compose) sets C(ansible_host), for example from C(soracom_session_ip_address).
      - Set to an empty string to never read C(ansible_host) from a tag.
    type: str
    default: ansible_host
  inventory_group:
    description:
      - Inventory group that every host of this source is added to.
      - C(playbooks/provision.yml) provisions the group V(pis).
    type: str
    default: pis
notes:
  - The plugin reads all SIMs and all groups of the operator and filters them on the controller. A fleet of
    N SIMs costs about N / 100 + 2 requests, which counts against SORACOM's per-minute API rate limit.
  - With O(cache) on, the cache contains the SIM and group lists as the API returned them and the auth key ID,
    but not the auth key. A cache written for another API endpoint or auth key ID is ignored.
seealso:
  - module: soracom.krypton.soracom_sim_info
  - name: SORACOM Access Management permission examples
    description: Permission statements for SAM users, including C(Sim:listSims) and C(Group:listGroups).
    link: https://support.soracom.io/hc/en-us/articles/58765574607641-What-Are-Some-Examples-of-SAM-Permissions
"""

EXAMPLES = r"""
---
# inventory/production/soracom_sims.yml: every active SIM tagged fleet=krypton becomes a
# host of the group "pis", named after its "name" tag.
plugin: soracom.krypton.soracom_sims
tags:
  fleet: krypton
statuses:
  - active

---
# The SIMs of one SIM group. The auth key ID comes from an environment variable through a lookup,
# the secret is an inline vault value, and ansible_host comes from the SIM's "lan_address" tag.
plugin: soracom.krypton.soracom_sims
group_names:
  - krypton-pis
auth_key_id: "{{ lookup('ansible.builtin.env', 'SORACOM_AUTH_KEY_ID') }}"
auth_key: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  ...
ansible_host_tag: lan_address

---
# Global coverage, groups by SIM group name and by speed class, and a variable composed from tags.
plugin: soracom.krypton.soracom_sims
coverage_type: g
keyed_groups:
  - key: soracom_group_name
    prefix: sim_group
  - key: soracom_speed_class
    prefix: speed
groups:
  online: soracom_session_online
compose:
  site: soracom_tags.site | default('unknown')

---
# Cache the SIM list for 10 minutes in JSON files.
plugin: soracom.krypton.soracom_sims
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/soracom-krypton-inventory
cache_timeout: 600
"""

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    SoracomError,
    client_from_params,
    endpoint_from_params,
)
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_sims import describe_sim

VALID_FILE_SUFFIXES = ("soracom_sims.yml", "soracom_sims.yaml")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Inventory source that turns SORACOM SIMs into hosts."""

    NAME = "soracom.krypton.soracom_sims"

    def verify_file(self, path):
        if not super().verify_file(path):
            return False
        if path.endswith(VALID_FILE_SUFFIXES):
            return True
        self.display.vvv("Skipping %s: the file name of a soracom_sims inventory source must end in %s."
                         % (path, " or ".join(VALID_FILE_SUFFIXES)))
        return False

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)

        try:
            connection = self._connection_params()
            endpoint = endpoint_from_params(connection)
            listing = self._listing(path, connection, endpoint, cache)
            hosts = build_hosts(listing["sims"], listing["groups"], self._selection(), warn=self.display.warning)
        except SoracomError as exc:
            raise AnsibleParserError("soracom_sims inventory %s: %s" % (path, exc.message)) from exc

        self._populate(hosts)

    # -- options ------------------------------------------------------------

    def _connection_params(self):
        """Return the SORACOM client options, with templates in the credentials and endpoint evaluated."""
        return dict(
            auth_key_id=self._text_option("auth_key_id"),
            auth_key=self._text_option("auth_key"),
            coverage_type=self.get_option("coverage_type"),
            endpoint=self._text_option("endpoint"),
            timeout=self.get_option("timeout"),
            retries=self.get_option("retries"),
            validate_certs=self.get_option("validate_certs"),
            language="en",
        )

    def _text_option(self, name):
        value = self.get_option(name)
        if value is None:
            return None
        if self.templar.is_template(value):
            try:
                value = self.templar.template(value)
            except AnsibleError as exc:
                raise AnsibleParserError("The template in option %s of the soracom_sims inventory failed: %s"
                                         % (name, to_native(exc))) from exc
        # str() also decrypts an inline vault value.
        value = str(value).strip()
        return value or None

    def _selection(self):
        tags = self.get_option("tags") or {}
        if not isinstance(tags, dict):
            raise SoracomError("tags must be a mapping of tag names to values.")
        return dict(
            group_names=[str(name) for name in self.get_option("group_names") or []],
            group_ids=[str(group_id) for group_id in self.get_option("group_ids") or []],
            tags=dict((str(name), _tag_values(name, value)) for name, value in tags.items()),
            statuses=[str(status) for status in self.get_option("statuses") or []],
            hostname_tag=self.get_option("hostname_tag") or "",
            ansible_host_tag=self.get_option("ansible_host_tag") or "",
        )

    # -- SORACOM API and cache ----------------------------------------------

    def _listing(self, path, connection, endpoint, cache):
        """Return {"endpoint", "auth_key_id", "sims", "groups"} from the cache or from the SORACOM API.

        A cached listing counts only for the same endpoint and auth key ID, so a
        changed source configuration never shows another operator's SIMs.
        """
        cache_key = self.get_cache_key(path)
        use_cache = bool(self.get_option("cache"))
        if use_cache and cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
            if (isinstance(cached, dict) and cached.get("endpoint") == endpoint
                    and cached.get("auth_key_id") == connection["auth_key_id"]):
                return cached

        client = client_from_params(connection, log=self.display.warning, warn=None)
        listing = dict(
            endpoint=endpoint,
            auth_key_id=connection["auth_key_id"],
            sims=client.paginate("/sims"),
            groups=client.paginate("/groups"),
        )
        if use_cache:
            self._cache[cache_key] = listing
        return listing

    # -- inventory ------------------------------------------------------------

    def _populate(self, hosts):
        inventory_group = self.get_option("inventory_group")
        if inventory_group:
            inventory_group = self.inventory.add_group(inventory_group)
        strict = self.get_option("strict")
        for name, variables in hosts:
            self.inventory.add_host(name, group=inventory_group or None)
            for key, value in variables.items():
                self.inventory.set_variable(name, key, value)
            host_vars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), host_vars, name, strict=strict)
            host_vars = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)


def _tag_values(name, value):
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    if value is None or isinstance(value, dict):
        raise SoracomError("tags.%s must be a string or a list of strings." % name)
    return [str(value)]


def build_hosts(sims, groups, selection, warn=None):
    """Select SIMs and return [(host name, host variables)] in the order of the SIM list.

    ``selection`` contains the plugin's filter and naming options. Raise
    SoracomError when two selected SIMs get the same host name.
    """
    warn = warn or (lambda message: None)
    group_names_by_id = {}
    group_ids_by_name = {}
    for group in groups:
        group_id = group.get("groupId")
        name = (group.get("tags") or {}).get("name")
        group_names_by_id[group_id] = name
        group_ids_by_name.setdefault(name, []).append(group_id)

    selected_group_ids = None
    if selection["group_names"] or selection["group_ids"]:
        selected_group_ids = set(selection["group_ids"])
        for name in selection["group_names"]:
            ids = group_ids_by_name.get(name, [])
            if not ids:
                warn("No SIM group is named %r, so group_names selects no SIM for it." % name)
            elif len(ids) > 1:
                warn("%d SIM groups are named %r (group IDs: %s). The SIMs of all of them are selected."
                     % (len(ids), name, ", ".join(sorted(str(group_id) for group_id in ids))))
            selected_group_ids.update(ids)

    hosts = []
    sim_id_by_host = {}
    for sim in sims:
        described = describe_sim(sim)
        tags = described["tags"]
        if selected_group_ids is not None and described["group_id"] not in selected_group_ids:
            continue
        if selection["statuses"] and described["status"] not in selection["statuses"]:
            continue
        if any(tags.get(name) not in values for name, values in selection["tags"].items()):
            continue

        name = _host_name(described, selection["hostname_tag"])
        if name is None:
            warn("SIM %s has no IMSI and no SIM ID and was left out." % described["sim_id"])
            continue
        if name in sim_id_by_host:
            raise SoracomError(
                "SIMs %s and %s both get the host name %r. Give each SIM a unique %r tag, or narrow the filters."
                % (sim_id_by_host[name], described["sim_id"], name, selection["hostname_tag"])
            )
        sim_id_by_host[name] = described["sim_id"]
        hosts.append((name, _host_variables(described, group_names_by_id, selection["ansible_host_tag"])))
    return hosts


def _host_name(described, hostname_tag):
    if hostname_tag:
        value = str(described["tags"].get(hostname_tag) or "").strip()
        if value:
            return value
    return described["imsi"] or described["sim_id"]


def _host_variables(described, group_names_by_id, ansible_host_tag):
    variables = {}
    # provision.yml takes a host's SIM from soracom_imsi or soracom_sim_id when they are defined,
    # so a SIM without an IMSI must leave soracom_imsi undefined rather than None.
    for name in ("imsi", "sim_id", "iccid"):
        if described[name]:
            variables["soracom_" + name] = described[name]
    variables.update(
        soracom_group_id=described["group_id"],
        soracom_group_name=group_names_by_id.get(described["group_id"]) if described["group_id"] else None,
        soracom_tags=described["tags"],
        soracom_status=described["status"],
        soracom_speed_class=described["speed_class"],
        soracom_session_online=described["session_status"]["online"],
        soracom_session_ip_address=described["session_status"]["ip_address"],
    )
    if ansible_host_tag:
        address = str(described["tags"].get(ansible_host_tag) or "").strip()
        if address:
            variables["ansible_host"] = address
    return variables
