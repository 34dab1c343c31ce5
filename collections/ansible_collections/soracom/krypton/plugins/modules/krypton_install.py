#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: krypton_install
short_description: Move a staged set of Krypton files into the device's working directory
version_added: 0.1.0
description:
  - Copies C(root-ca.pem), C(certificate.pem), C(private.key) and C(krypton.json) from O(src), a staging directory
    that M(soracom.krypton.krypton_bootstrap) wrote, over the files in O(dest).
  - The staged set is checked first, as M(soracom.krypton.krypton_bootstrap) checks a stored set. When it is not
    usable, nothing in O(dest) changes.
  - Every file is first written in full to a temporary file in O(dest). Only then are the temporary files renamed
    over the old ones, C(krypton.json) last. Each rename is atomic, so a reader sees the old or the new version of each
    file and never a partly written one.
  - Used by C(playbooks/rotate.yml) after the new certificate passed its MQTT check.
author:
  - soracom.krypton contributors (@soracom-krypton)
requirements:
  - cryptography, for example Debian's C(python3-cryptography) 38 or later.
extends_documentation_fragment:
  - soracom.krypton.attributes
  - soracom.krypton.attributes.FILES
attributes:
  check_mode:
    support: full
    details: In check mode the module checks the staged set and reports whether it would replace the files.
  diff_mode:
    support: full
    details: The diff shows the fields of C(krypton.json) before and after. It never contains the private key.
  idempotent:
    support: full
    details: When O(dest) already holds the same four files as O(src), the module changes nothing.
  safe_file_operations:
    support: full
options:
  src:
    description:
      - Staging directory that holds the new set of files.
      - The module does not remove it.
    type: path
    required: true
  dest:
    description:
      - Working directory of the device. Created with mode C(0700) when missing.
      - The files get the modes M(soracom.krypton.krypton_bootstrap) gives them, C(0600) for C(private.key) and
        C(0644) for the others.
    type: path
    default: /etc/soracom/krypton
  owner:
    description:
      - User name or uid that owns O(dest) and the files. When not set, the user running the module owns new files.
    type: str
  group:
    description:
      - Group name or gid of O(dest) and the files. When not set, the user's primary group is used for new files.
    type: str
notes:
  - The four renames follow each other within microseconds, but they are four operations. A power cut between two of
    them leaves a mix of old and new files. M(soracom.krypton.krypton_bootstrap) then finds that the key, the
    certificate and C(krypton.json) do not match, and the next run of C(playbooks/provision.yml) bootstraps again.
seealso:
  - module: soracom.krypton.krypton_bootstrap
    description: Writes the staged set, with O(soracom.krypton.krypton_bootstrap#module:dest) set to the staging directory.
  - module: soracom.krypton.krypton_certificate_info
    description: Reads the certificate in a directory.
  - module: soracom.krypton.mqtt_check
    description: Checks the staged set with an MQTT publish before it is moved into place.
"""

EXAMPLES = r"""
- name: Move the verified new certificate into place
  soracom.krypton.krypton_install:
    src: /etc/soracom/krypton.rotate
    dest: /etc/soracom/krypton
  register: installed

- name: Show which certificate the device holds now
  ansible.builtin.debug:
    msg: "{{ installed.previous_certificate_id }} was replaced by {{ installed.certificate_id }}"
"""

RETURN = r"""
certificate_id:
  description: AWS IoT certificate ID of the certificate in O(src), which O(dest) holds after the run.
  returned: success
  type: str
  sample: 5f1b0c3e8d0c4e1a9b2d7f6e5c4b3a29187f6e5d4c3b2a19087f6e5d4c3b2a19
previous_certificate_id:
  description: Certificate ID that C(krypton.json) in O(dest) named before the run. V(null) when it named none.
  returned: success
  type: str
  sample: 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9
files:
  description: Paths of the files in O(dest). The private key itself is never returned.
  returned: success
  type: dict
  contains:
    certificate:
      description: Path of the device certificate.
      type: str
      sample: /etc/soracom/krypton/certificate.pem
    private_key:
      description: Path of the private key.
      type: str
      sample: /etc/soracom/krypton/private.key
    root_ca:
      description: Path of the root CA certificate.
      type: str
      sample: /etc/soracom/krypton/root-ca.pem
    state:
      description: Path of C(krypton.json).
      type: str
      sample: /etc/soracom/krypton/krypton.json
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _files, _krypton


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _stored_fields(path):
    try:
        return _krypton.read_state_file(path)
    except (OSError, ValueError):
        return {}


def install(src, dest, uid=None, gid=None, check_mode=False, now=None):
    """Copy the staged set from ``src`` over ``dest`` and return the result dict.

    Raises ValueError when the staged set is not usable, and _files.FileWriteError when a
    file cannot be written. Nothing in ``dest`` changes in either case, except after a
    failed rename (see StagedFiles.commit).
    """
    if os.path.realpath(src) == os.path.realpath(dest):
        raise ValueError('src and dest are the same directory, %s.' % dest)
    if not os.path.isdir(src):
        raise ValueError('The staging directory %s does not exist.' % src)
    state = _krypton.inspect_credentials(src, renew_before_days=0, now=now)
    if not state.valid:
        raise ValueError('The files in %s are not a usable set: %s' % (src, state.reason))

    contents = dict((name, _read(os.path.join(src, name))) for name in _krypton.WRITE_ORDER)
    before = _stored_fields(os.path.join(dest, _krypton.STATE_FILE))
    after = dict(state.stored)
    result = {
        'changed': False,
        'certificate_id': after['certificate_id'],
        'previous_certificate_id': before.get('certificate_id'),
        'files': {
            'certificate': os.path.join(dest, _krypton.CERTIFICATE_FILE),
            'private_key': os.path.join(dest, _krypton.PRIVATE_KEY_FILE),
            'root_ca': os.path.join(dest, _krypton.ROOT_CA_FILE),
            'state': os.path.join(dest, _krypton.STATE_FILE),
        },
        'diff': {'before': before, 'after': after},
    }

    same_content = all(_read(os.path.join(dest, name)) == contents[name] for name in _krypton.WRITE_ORDER)
    same_attributes = not (_files.attributes_differ(dest, 0o700, uid, gid) or any(
        _files.attributes_differ(os.path.join(dest, name), mode, uid, gid)
        for name, mode in _krypton.FILE_MODES.items()))
    if same_content and same_attributes:
        return result

    result['changed'] = True
    if check_mode:
        return result
    _files.ensure_directory(dest, 0o700, uid, gid)
    with _files.StagedFiles() as staged:
        for name in _krypton.WRITE_ORDER:
            staged.stage(os.path.join(dest, name), contents[name], _krypton.FILE_MODES[name], uid, gid)
        staged.commit()
    return result


def run_module(module, now=None):
    if not _cert.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=_cert.CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    try:
        uid = _files.resolve_owner(params['owner'])
        gid = _files.resolve_group(params['group'])
    except ValueError as exc:
        module.fail_json(msg='%s.' % exc)

    try:
        result = install(params['src'], params['dest'], uid, gid, module.check_mode, now)
    except ValueError as exc:
        module.fail_json(msg='%s Nothing in %s was changed.' % (exc, params['dest']))
    except _files.FileWriteError as exc:
        module.fail_json(msg='The new files could not be moved into place: %s' % exc, path=exc.path)
    except OSError as exc:
        module.fail_json(msg='Failed to read the files in %s: %s' % (params['src'], exc))

    if not module._diff:
        result.pop('diff')
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            dest=dict(type='path', default='/etc/soracom/krypton'),
            owner=dict(type='str'),
            group=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == '__main__':
    main()
