#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_credential_info
short_description: List SORACOM credential sets
version_added: 0.1.0
description:
  - Lists the credential sets of the SORACOM operator, or the one with a given ID.
  - Secrets are never returned, because the API does not return them either.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.soracom
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_SORACOM
  - soracom.krypton.attributes.INFO_MODULE
options:
  credential_id:
    description:
      - ID of the credential set to return.
      - If not set, all credential sets are returned.
    type: str
    aliases: [credentials_id]
seealso:
  - module: soracom.krypton.soracom_credential
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: List all credential sets
  soracom.krypton.soracom_credential_info:
  register: all_credentials

- name: Check whether the Krypton credential set exists
  soracom.krypton.soracom_credential_info:
    credential_id: krypton-aws
  register: krypton_credential

- name: Show whether it exists
  ansible.builtin.debug:
    msg: "{{ 'present' if krypton_credential.credentials | length > 0 else 'missing' }}"
"""

RETURN = r"""
credentials:
  description:
    - The credential sets, without secrets.
    - Empty when O(credential_id) names no credential set.
  returned: always
  type: list
  elements: dict
  contains:
    credentials_id:
      description: ID of the credential set.
      type: str
      sample: krypton-aws
    type:
      description: Type of the credential set.
      type: str
      sample: aws-credentials
    description:
      description: Description of the credential set, V(null) when it has none.
      type: str
      sample: IAM user krypton-provisioner
    access_key_id:
      description: AWS access key ID of an V(aws-credentials) set, when the API returns it.
      type: str
      returned: when the API returns it
      sample: AKIAIOSFODNN7EXAMPLE
    create_date_time:
      description: Creation time as a UNIX timestamp, in the unit the API uses.
      type: int
      sample: 1767225600
    update_date_time:
      description: Time of the last update as a UNIX timestamp, in the unit the API uses.
      type: int
      sample: 1767225600
    last_used_date_time:
      description: Time a SORACOM service last used the set, as a UNIX timestamp in the unit the API uses.
      type: int
      sample: 1767229200
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_credentials import manage_credential_info
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        credential_id=dict(type="str", aliases=["credentials_id"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, **soracom_module_kwargs())
    run_module(module, manage_credential_info)


if __name__ == "__main__":
    main()
