#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_sim
short_description: Put SORACOM SIMs into a group or take them out
version_added: 0.1.0
description:
  - Sets the group of one or many SORACOM IoT SIMs, named by IMSI or SIM ID.
  - The module reads all SIMs of the operator once (in pages) and changes only the SIMs whose group differs,
    with C(POST /sims/{sim_id}/set_group) or C(POST /sims/{sim_id}/unset_group).
  - Every IMSI and SIM ID is checked for its format before any request, and every SIM must exist before
    any SIM is changed.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.soracom
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_SORACOM
attributes:
  check_mode:
    support: full
    details:
      - When the group named by O(group_name) or O(group_id) does not exist yet, check mode warns and predicts
        a change for every SIM instead of failing, because an earlier task of the same play may create it.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  imsis:
    description:
      - IMSIs of the SIMs, 15 digits each. A SIM with several subscriptions can be named by any of its IMSIs.
      - At least one of O(imsis) and O(sim_ids) must list a SIM.
    type: list
    elements: str
    default: []
  sim_ids:
    description:
      - SIM IDs (the ICCID of the SIM), 18 to 20 digits each.
      - At least one of O(imsis) and O(sim_ids) must list a SIM.
    type: list
    elements: str
    default: []
  group_id:
    description:
      - ID of the group.
      - With O(state=present), the group to put the SIMs in. One of O(group_id) and O(group_name) is required.
      - With O(state=absent), only SIMs that are in this group are taken out of it.
    type: str
  group_name:
    description:
      - Value of the C(name) tag of the group, used like O(group_id). The module fails when several groups
        have this name.
    type: str
  state:
    description:
      - V(present) puts the SIMs into the group.
      - V(absent) takes the SIMs out of their group. With O(group_id) or O(group_name), SIMs in another
        group, or in none, are left alone.
    type: str
    choices: [present, absent]
    default: present
notes:
  - When a request fails after some SIMs were changed, the failure result still lists in RV(sims) the SIMs
    handled so far. Running the task again completes the rest.
  - Each changed SIM costs one API request. SORACOM limits the request rate per API path, and the module
    waits and retries when it hits the limit, see O(retries).
seealso:
  - module: soracom.krypton.soracom_sim_info
  - module: soracom.krypton.soracom_group
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: Put the fleet's SIMs into the Krypton group
  soracom.krypton.soracom_sim:
    imsis:
      - "440103000000001"
      - "440103000000002"
    sim_ids:
      - "8981100000000000003"
    group_name: krypton-pis

- name: Put every Pi's SIM into the group, using inventory variables
  soracom.krypton.soracom_sim:
    imsis: "{{ groups['pis'] | map('extract', hostvars, 'soracom_imsi') | list }}"
    group_id: "{{ pi_group.group.group_id }}"

- name: Take a SIM out of the Krypton group (SIMs in other groups are left alone)
  soracom.krypton.soracom_sim:
    imsis:
      - "440103000000001"
    group_name: krypton-pis
    state: absent
"""

RETURN = r"""
sims:
  description:
    - One item per SIM, in the order of O(sim_ids) then O(imsis). A SIM named twice appears once.
    - In check mode, the groups the SIMs would have.
  returned: always
  type: list
  elements: dict
  contains:
    sim_id:
      description: SIM ID.
      type: str
      sample: "8981100000000000001"
    imsi:
      description: The IMSI the SIM was named by, or its primary IMSI when it was named by SIM ID.
      type: str
      sample: "440103000000001"
    group_id_before:
      description: ID of the SIM's group before the task, V(null) when it was in none.
      type: str
      sample: null
    group_id:
      description:
        - ID of the SIM's group after the task, V(null) when it is in none.
        - In check mode, V(null) also when the target group does not exist yet.
      type: str
      sample: 12345678-abcd-9012-efab-345678901234
    changed:
      description: Whether the task changed, or in check mode would change, the SIM's group.
      type: bool
      sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_sims import manage_sim
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        imsis=dict(type="list", elements="str", default=[]),
        sim_ids=dict(type="list", elements="str", default=[]),
        group_id=dict(type="str"),
        group_name=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **soracom_module_kwargs(
            mutually_exclusive=[["group_id", "group_name"]],
            required_if=[["state", "present", ["group_id", "group_name"], True]],
        )
    )
    run_module(module, manage_sim)


if __name__ == "__main__":
    main()
