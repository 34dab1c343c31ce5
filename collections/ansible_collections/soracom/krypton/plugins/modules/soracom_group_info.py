#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_group_info
short_description: List SORACOM SIM groups with their names and configuration
version_added: 0.1.0
description:
  - Lists the SIM groups of the SORACOM operator, the groups with given IDs, or the groups whose C(name) tag has a
    given value.
  - Use it to turn the RV(soracom.krypton.soracom_sim_info#module:sims[].group_id) of SIMs into group names.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.soracom
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_SORACOM
  - soracom.krypton.attributes.INFO_MODULE
options:
  group_ids:
    description:
      - IDs of the groups to return. IDs of groups that do not exist are left out of RV(groups).
      - Each group is read with its own request. Without O(group_ids) and O(name), all groups are listed in pages.
    type: list
    elements: str
  name:
    description:
      - Return only the groups whose C(name) tag is this value. Names are not unique in SORACOM, so several groups
        can match.
    type: str
seealso:
  - module: soracom.krypton.soracom_group
  - module: soracom.krypton.soracom_sim_info
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: List every SIM group
  soracom.krypton.soracom_group_info:
  register: all_groups

- name: Read the groups of some SIMs
  soracom.krypton.soracom_group_info:
    group_ids: "{{ sims.sims | map(attribute='group_id') | select | unique | list }}"
  register: sim_groups

- name: Map group IDs to group names
  ansible.builtin.set_fact:
    group_names: "{{ sim_groups.groups | items2dict(key_name='group_id', value_name='name') }}"
"""

RETURN = r"""
groups:
  description:
    - The groups found, in the order the API lists them, or in the order of O(group_ids). Empty when none match.
  returned: always
  type: list
  elements: dict
  contains:
    group_id:
      description: ID of the group.
      type: str
      sample: 12345678-abcd-9012-efab-345678901234
    name:
      description: Value of the group's C(name) tag, V(null) when the group has none.
      type: str
      sample: krypton-pis
    tags:
      description: All tags of the group, including C(name).
      type: dict
      sample: {"name": "krypton-pis", "owner": "iot-team"}
    configuration:
      description: The group's configuration by namespace, with the API's key names.
      type: dict
      sample: {"SoracomKrypton": {"enabled": true}}
    operator_id:
      description: ID of the SORACOM operator that owns the group.
      type: str
      sample: OP0012345678
    created_time:
      description: Creation time, UNIX time in milliseconds.
      type: int
      sample: 1767225600000
    last_modified_time:
      description: Time of the last change, UNIX time in milliseconds.
      type: int
      sample: 1767225600000
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_groups import (
    describe_group,
    find_groups_by_name,
    get_group,
)
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    SoracomError,
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def describe_group_with_name(group):
    described = describe_group(group)
    described["name"] = described["tags"].get("name")
    return described


def manage_group_info(client, params, context):
    """Return the groups chosen by ID, by name, or all of them."""
    group_ids = params.get("group_ids")
    name = params.get("name")
    if group_ids is not None:
        empty = [group_id for group_id in group_ids if not group_id]
        if empty:
            raise SoracomError("group_ids must not contain empty strings.")
        groups = []
        for group_id in dict.fromkeys(group_ids):
            group = get_group(client, group_id)
            if group is not None:
                groups.append(group)
    elif name is not None:
        groups = find_groups_by_name(client, name)
    else:
        groups = client.paginate("/groups")
    return dict(changed=False, groups=[describe_group_with_name(group) for group in groups])


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        group_ids=dict(type="list", elements="str"),
        name=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **soracom_module_kwargs(mutually_exclusive=[["group_ids", "name"]])
    )
    run_module(module, manage_group_info)


if __name__ == "__main__":
    main()
