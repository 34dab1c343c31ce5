#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_group
short_description: Manage a SORACOM SIM group found by its name tag
version_added: 0.1.0
description:
  - Creates, retags or deletes a SORACOM SIM group. The group is identified by its C(name) tag.
  - SORACOM does not require group names to be unique. When several groups carry the name, the module fails
    and lists their group IDs instead of choosing one.
  - The group's configuration is left alone. Use M(soracom.krypton.soracom_krypton_config) for Krypton settings.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.soracom
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_SORACOM
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Value of the group's C(name) tag, which identifies the group.
    type: str
    required: true
  tags:
    description:
      - Other tags of the group, as tag name and value pairs. Values are converted to strings.
      - Tags listed here are added or updated. Tags not listed are kept unless O(purge_tags=true).
      - If not set, the tags of an existing group are left alone.
      - A C(name) key must equal O(name).
    type: dict
  purge_tags:
    description:
      - Whether to remove tags of an existing group that O(tags) does not list. The C(name) tag is never removed.
      - Has no effect when O(tags) is not set.
    type: bool
    default: false
  state:
    description:
      - V(present) creates the group if no group has the name.
      - V(absent) deletes the group if it exists. SORACOM may reject deleting a group that still has SIMs,
        so take them out first with M(soracom.krypton.soracom_sim).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Creating a group is not retried after a server error or a timeout, because the first request may
    have created the group. Running the task again finds that group by name.
seealso:
  - module: soracom.krypton.soracom_krypton_config
  - module: soracom.krypton.soracom_sim
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: Create the group for the Raspberry Pi fleet
  soracom.krypton.soracom_group:
    name: krypton-pis
  register: pi_group

- name: Tag the group, removing other tags
  soracom.krypton.soracom_group:
    name: krypton-pis
    tags:
      owner: iot-team
      site: osaka
    purge_tags: true

- name: Delete the group
  soracom.krypton.soracom_group:
    name: krypton-pis
    state: absent
"""

RETURN = r"""
group:
  description:
    - The group after the task.
    - In check mode, the group as it would be. For a group that would be created, RV(group.group_id) is V(null).
  returned: when O(state=present)
  type: dict
  contains:
    group_id:
      description: ID of the group, V(null) in check mode when the group would be created.
      type: str
      sample: 12345678-abcd-9012-efab-345678901234
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

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_groups import manage_group
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, **soracom_module_kwargs())
    run_module(module, manage_group)


if __name__ == "__main__":
    main()
