#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_krypton_config
short_description: Manage the SORACOM Krypton configuration of a SIM group
version_added: 0.1.0
description:
  - Sets or removes the C(SoracomKrypton) configuration namespace of a SORACOM SIM group, which tells
    SORACOM Krypton how to provision the group's devices into AWS IoT Core.
  - The API merges written keys into the namespace, so the module writes only the keys whose value differs
    (C(enabled) and C(AwsIot)).
  - The values are checked before any request, see O(aws_iot).
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
      - When the group or the credential set does not exist yet, check mode warns and predicts a change
        instead of failing, because an earlier task of the same play may create it.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  group_id:
    description:
      - ID of the group.
      - Exactly one of O(group_id) and O(group_name) is required.
    type: str
  group_name:
    description:
      - Value of the C(name) tag of the group. The module fails when several groups have this name.
      - Exactly one of O(group_id) and O(group_name) is required.
    type: str
  enabled:
    description:
      - Whether Krypton is enabled for the group.
    type: bool
    default: true
  aws_iot:
    description:
      - Settings Krypton uses to provision devices into AWS IoT Core, written as the C(AwsIot) key.
      - If not set, an existing C(AwsIot) value is left alone and only O(enabled) is managed.
      - Keys of an existing C(AwsIot) value that these options do not cover are kept.
    type: dict
    suboptions:
      region:
        description:
          - AWS region of the AWS IoT Core endpoint, such as V(ap-northeast-1).
          - Checked against the regions in botocore's endpoint data when botocore is installed, otherwise
            against the pattern of AWS region names.
        type: str
        required: true
      credentials_id:
        description:
          - ID of the SORACOM credential set of type V(aws-credentials) Krypton calls AWS with,
            see M(soracom.krypton.soracom_credential).
          - The module checks that the set exists and has that type.
        type: str
        required: true
      policy_name:
        description:
          - Name of the AWS IoT policy Krypton attaches to each certificate it creates.
        type: str
        required: true
      thing_name_pattern:
        description:
          - Pattern of the thing name Krypton registers for a device that does not name its thing.
          - Must contain V($imsi), which Krypton replaces with the SIM's IMSI, so each SIM gets its own thing.
        type: str
        required: true
      host:
        description:
          - Host name of the AWS IoT Core data endpoint devices connect to, without scheme or port,
            such as V(a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com).
          - Must end in V(.amazonaws.com) or V(.amazonaws.com.cn), and its region must match O(aws_iot.region).
          - The module warns when the host is not an ATS endpoint (first label ending in C(-ats)), because
            devices that trust Amazon Root CA 1 fail TLS against a legacy endpoint.
        type: str
        required: true
      root_ca_certificate:
        description:
          - PEM root CA certificate Krypton returns to devices with their certificate.
          - If not set, an existing value is kept.
        type: str
  state:
    description:
      - V(present) writes the configuration.
      - V(absent) deletes every key of the group's C(SoracomKrypton) namespace.
        A group that does not exist counts as having no configuration.
    type: str
    choices: [present, absent]
    default: present
notes:
  - On the wire, the C(AwsIot) value uses the keys C(region), C(credentialsId), C(policyName), C(thingNamePattern),
    C(host) and C(rootCaCertificate).
seealso:
  - module: soracom.krypton.soracom_group
  - module: soracom.krypton.soracom_credential
  - name: SORACOM group configuration
    description: How group configuration namespaces and keys are written.
    link: https://dev.soracom.io/en/docs/group_configuration/
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: Enable Krypton for AWS IoT Core on the fleet's group
  soracom.krypton.soracom_krypton_config:
    group_name: krypton-pis
    enabled: true
    aws_iot:
      region: ap-northeast-1
      credentials_id: krypton-aws
      policy_name: krypton-device-policy
      thing_name_pattern: pi-$imsi
      host: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com

- name: Turn Krypton off but keep its settings
  soracom.krypton.soracom_krypton_config:
    group_id: "{{ pi_group.group.group_id }}"
    enabled: false

- name: Remove the Krypton configuration
  soracom.krypton.soracom_krypton_config:
    group_name: krypton-pis
    state: absent
"""

RETURN = r"""
group_id:
  description: ID of the group, V(null) when the group does not exist.
  returned: always
  type: str
  sample: 12345678-abcd-9012-efab-345678901234
config:
  description:
    - The group's C(SoracomKrypton) configuration after the task, with key names in snake_case.
    - Empty after O(state=absent).
  returned: always
  type: dict
  sample: {"enabled": true, "aws_iot": {"region": "ap-northeast-1", "credentials_id": "krypton-aws"}}
  contains:
    enabled:
      description: Whether Krypton is enabled for the group.
      type: bool
      returned: when set
      sample: true
    aws_iot:
      description: The C(AwsIot) value, with the option names of O(aws_iot).
      type: dict
      returned: when set
      sample:
        region: ap-northeast-1
        credentials_id: krypton-aws
        policy_name: krypton-device-policy
        thing_name_pattern: pi-$imsi
        host: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_groups import manage_krypton_config
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        group_id=dict(type="str"),
        group_name=dict(type="str"),
        enabled=dict(type="bool", default=True),
        aws_iot=dict(
            type="dict",
            options=dict(
                region=dict(type="str", required=True),
                credentials_id=dict(type="str", required=True),
                policy_name=dict(type="str", required=True),
                thing_name_pattern=dict(type="str", required=True),
                host=dict(type="str", required=True),
                root_ca_certificate=dict(type="str"),
            ),
        ),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        **soracom_module_kwargs(
            mutually_exclusive=[["group_id", "group_name"]],
            required_one_of=[["group_id", "group_name"]],
        )
    )
    run_module(module, manage_krypton_config)


if __name__ == "__main__":
    main()
