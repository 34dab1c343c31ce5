#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_credential
short_description: Manage a SORACOM credential set that contains AWS access keys
version_added: 0.1.0
description:
  - Creates, replaces or deletes an entry of the SORACOM credential store (a credential set) of type
    V(aws-credentials). SORACOM Krypton uses such a set to call AWS IoT Core for the SIMs of a group.
  - The API never returns a stored secret, so the module cannot compare it. With the default
    O(overwrite=on_create) it writes the secret only when it creates the set and leaves an existing set alone.
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
    details:
      - The diff shows the ID, type, description and access key ID. The secret access key never appears in it.
  idempotent:
    support: partial
    details:
      - With O(overwrite=always) the module writes the credential set and reports a change on every run,
        because the stored secret cannot be read back for comparison.
options:
  credential_id:
    description:
      - ID of the credential set, unique within the SORACOM operator.
      - Other SORACOM settings refer to the set by this ID, for example O(soracom.krypton.soracom_krypton_config#module:aws_iot.credentials_id).
    type: str
    required: true
    aliases: [credentials_id]
  type:
    description:
      - Type of the credential set.
    type: str
    choices: [aws-credentials]
    default: aws-credentials
  description:
    description:
      - Free-text description of the credential set.
      - If not set, a new set gets no description and an existing set keeps its description.
    type: str
  access_key_id:
    description:
      - AWS access key ID stored in the credential set.
      - Required with O(secret_access_key) to create the set, and for O(overwrite=always).
      - Given without O(secret_access_key), it is only compared with the access key ID of an existing set,
        when the API returns that ID, and a difference is reported as a warning.
    type: str
  secret_access_key:
    description:
      - AWS secret access key stored in the credential set.
      - Required with O(access_key_id) to create the set, and for O(overwrite=always).
    type: str
  overwrite:
    description:
      - When to write the access key into a credential set.
      - V(on_create) writes it only when the set does not exist yet. An existing set is left unchanged, and the
        module warns when its type, description or access key ID differ from the options.
      - V(always) replaces the type, description and access key of an existing set on every run.
        Use it after the access key was rotated, when the new secret is at hand.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description:
      - V(present) creates the credential set if it does not exist.
      - V(absent) deletes it if it exists.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Use C(no_log) on tasks that pass O(secret_access_key), so the secret does not appear in logs.
  - Deleting a credential set that a group configuration still refers to breaks that service for the group's SIMs.
seealso:
  - module: soracom.krypton.soracom_credential_info
  - module: soracom.krypton.soracom_krypton_config
  - name: SORACOM credential sets
    description: How SORACOM services use credential sets.
    link: https://developers.soracom.io/en/docs/security/credential-sets/
"""

EXAMPLES = r"""
# The examples leave out the SORACOM credentials. Set them with module_defaults
# for group/soracom.krypton.soracom or with SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY.

- name: Store an IAM access key for Krypton (written only when the set is created)
  soracom.krypton.soracom_credential:
    credential_id: krypton-aws
    description: IAM user krypton-provisioner
    access_key_id: "{{ krypton_access_key_id }}"
    secret_access_key: "{{ krypton_secret_access_key }}"
  no_log: true

- name: Replace the key after rotating it
  soracom.krypton.soracom_credential:
    credential_id: krypton-aws
    access_key_id: "{{ new_key.access_key_id }}"
    secret_access_key: "{{ new_key.secret_access_key }}"
    overwrite: always
  no_log: true

- name: Delete the credential set
  soracom.krypton.soracom_credential:
    credential_id: krypton-aws
    state: absent
"""

RETURN = r"""
credential:
  description:
    - The credential set after the task, without its secret.
    - In check mode, the set as the module would write it. The timestamps of a set that would be created are V(null).
  returned: when O(state=present)
  type: dict
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
      description:
        - AWS access key ID of the set.
        - Present when the API returns it, or when this task wrote the key.
      type: str
      returned: when known
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

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_credentials import manage_credential
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        credential_id=dict(type="str", required=True, aliases=["credentials_id"]),
        type=dict(type="str", choices=["aws-credentials"], default="aws-credentials"),
        description=dict(type="str"),
        access_key_id=dict(type="str", no_log=False),
        secret_access_key=dict(type="str", no_log=True),
        overwrite=dict(type="str", choices=["on_create", "always"], default="on_create"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    # access_key_id alone is valid: it lets an existing set be compared with the
    # key without writing it. The secret checks happen in manage_credential.
    module = AnsibleModule(argument_spec=argument_spec, **soracom_module_kwargs())
    run_module(module, manage_credential)


if __name__ == "__main__":
    main()
