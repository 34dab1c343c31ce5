#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: soracom_auth
short_description: Start a SORACOM API session that later tasks share
version_added: 0.1.0
description:
  - Authenticates with a SORACOM auth key (C(POST /auth)) and returns the session, an API key and an API token.
  - Pass RV(session) to the other SORACOM modules through their O(session) option, best once for a whole play with
    C(module_defaults) for C(group/soracom.krypton.soracom). The play then calls C(POST /auth) once instead of once
    per task.
  - The result contains the API token, which grants the auth key's permissions until it expires. Always set
    C(no_log) on the task and keep the registered variable out of output and files.
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
      - The module authenticates in check mode too, because a session changes nothing that the collection manages,
        and the tasks that follow need it to read the current state.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Every run starts a new session and returns a new token, and reports RV(ignore:changed=false).
options:
  token_timeout:
    description:
      - Lifetime of the token in seconds, sent as C(tokenTimeoutSeconds).
      - When not set, the API's default applies, 86400 seconds (24 hours). The API allows at most 172800.
      - A module that receives an expired session and the auth key starts a new session once, see O(session).
    type: int
notes:
  - O(auth_key_id) and O(auth_key) are required, from the options or the environment. O(api_key), O(token) and
    O(session) are accepted, so that C(module_defaults) for the group can set them for every SORACOM module, but
    this module ignores them and always starts a new session.
seealso:
  - module: soracom.krypton.soracom_sim
  - module: soracom.krypton.soracom_group
"""

EXAMPLES = r"""
- name: Set up SORACOM with one API session for the whole block
  module_defaults:
    group/soracom.krypton.soracom:
      auth_key_id: "{{ vault_soracom_auth_key_id }}"
      auth_key: "{{ vault_soracom_auth_key }}"
      # Undefined until the first task has run, so it is left out there.
      session: "{{ soracom_session.session | default(omit) }}"
  block:
    - name: Start the SORACOM API session
      soracom.krypton.soracom_auth:
      register: soracom_session
      no_log: true

    - name: Create the SIM group (uses the session, no new POST /auth)
      soracom.krypton.soracom_group:
        name: krypton-pis

    - name: Put the SIMs into the group (uses the session too)
      soracom.krypton.soracom_sim:
        imsis:
          - "440103000000001"
        group_name: krypton-pis
"""

RETURN = r"""
session:
  description:
    - The new session. Pass it unchanged to the O(session) option of the other SORACOM modules.
    - Contains the API token. Never print it or write it to a file.
  returned: success
  type: dict
  contains:
    api_key:
      description: API key of the session, sent as C(X-Soracom-API-Key).
      type: str
      sample: api-EXAMPLE
    token:
      description: API token of the session, sent as C(X-Soracom-Token).
      type: str
      sample: VALUE_NOT_SHOWN
operator_id:
  description: ID of the operator the auth key belongs to.
  returned: success
  type: str
  sample: OP0012345678
endpoint:
  description: Base URL of the SORACOM API the session belongs to. Other endpoints do not accept it.
  returned: success
  type: str
  sample: https://api.soracom.io/v1
token_timeout:
  description: Lifetime of the token in seconds, counted from the time this module ran.
  returned: success
  type: int
  sample: 86400
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    run_module,
    soracom_argument_spec,
    soracom_module_kwargs,
    start_session,
)


def main():
    argument_spec = soracom_argument_spec()
    argument_spec.update(
        token_timeout=dict(type="int"),
    )
    module = AnsibleModule(argument_spec=argument_spec, **soracom_module_kwargs())
    run_module(module, start_session)


if __name__ == "__main__":
    main()
