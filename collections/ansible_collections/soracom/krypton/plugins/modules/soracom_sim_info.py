#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_sim_info
short_description: List SORACOM IoT SIMs and their group, status and session
version_added: 0.1.0
description:
  - Lists the IoT SIMs of the SORACOM operator that match every given filter.
  - The module reads all SIMs once (in pages) and filters them on the controller.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.soracom
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_SORACOM
  - soracom.krypton.attributes.INFO_MODULE
options:
  imsis:
    description:
      - Return only SIMs that have one of these IMSIs (15 digits each).
    type: list
    elements: str
  sim_ids:
    description:
      - Return only SIMs with one of these SIM IDs (18 to 20 digits each).
    type: list
    elements: str
  group_id:
    description:
      - Return only SIMs in the group with this ID.
    type: str
  group_name:
    description:
      - Return only SIMs in a group whose C(name) tag is this value. When several groups have the name,
        SIMs of all of them are returned.
    type: str
  tag_name:
    description:
      - Return only SIMs whose tag O(tag_name) has the value O(tag_value).
    type: str
  tag_value:
    description:
      - Value of the tag O(tag_name).
    type: str
seealso:
  - module: soracom.krypton.soracom_sim
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: List the SIMs in the Krypton group
  soracom.krypton.soracom_sim_info:
    group_name: krypton-pis
  register: group_sims

- name: Show which of them are online
  ansible.builtin.debug:
    msg: "{{ group_sims.sims | selectattr('session_status.online') | map(attribute='imsi') | list }}"

- name: Look up two SIMs by IMSI
  soracom.krypton.soracom_sim_info:
    imsis:
      - "440103000000001"
      - "440103000000002"
"""

RETURN = r"""
sims:
  description:
    - The matching SIMs, in the order the API lists them. Empty when none match.
  returned: always
  type: list
  elements: dict
  contains:
    sim_id:
      description: SIM ID.
      type: str
      sample: "8981100000000000001"
    iccid:
      description: ICCID of the SIM's active profile.
      type: str
      sample: "8981100000000000001"
    imsi:
      description: Primary IMSI of the SIM.
      type: str
      sample: "440103000000001"
    imsis:
      description: All IMSIs of the SIM, the primary IMSI first.
      type: list
      elements: str
      sample: ["440103000000001"]
    group_id:
      description: ID of the SIM's group, V(null) when it is in none.
      type: str
      sample: 12345678-abcd-9012-efab-345678901234
    status:
      description: Status of the SIM, such as V(ready), V(active), V(inactive), V(standby), V(suspended) or V(terminated).
      type: str
      sample: active
    tags:
      description: Tags of the SIM.
      type: dict
      sample: {"name": "pi01"}
    speed_class:
      description: Speed class of the SIM.
      type: str
      sample: s1.standard
    session_status:
      description: The SIM's current cellular session.
      type: dict
      contains:
        online:
          description: Whether the SIM has a session now.
          type: bool
          sample: true
        ip_address:
          description: IP address of the device in the session, V(null) when offline or unknown.
          type: str
          sample: 10.213.0.11
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_sims import manage_sim_info
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        imsis=dict(type="list", elements="str"),
        sim_ids=dict(type="list", elements="str"),
        group_id=dict(type="str"),
        group_name=dict(type="str"),
        tag_name=dict(type="str"),
        tag_value=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **soracom_module_kwargs(
            mutually_exclusive=[["group_id", "group_name"]],
            required_together=[["tag_name", "tag_value"]],
        )
    )
    run_module(module, manage_sim_info)


if __name__ == "__main__":
    main()
