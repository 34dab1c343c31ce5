#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: krypton_certificate_info
short_description: Read the device certificate that krypton_bootstrap stored
version_added: 0.1.0
description:
  - Reads the files that M(soracom.krypton.krypton_bootstrap) keeps in O(src) on the device and returns the
    certificate's ID and validity, read from C(certificate.pem) itself, with the thing name and host from
    C(krypton.json).
  - RV(usable) tells whether the files form a set that a device can connect with. The checks are the ones
    M(soracom.krypton.krypton_bootstrap) makes before it keeps a set, without the check for early expiry.
author:
  - soracom.krypton contributors (@soracom-krypton)
requirements:
  - cryptography, for example Debian's C(python3-cryptography) 38 or later.
extends_documentation_fragment:
  - soracom.krypton.attributes
  - soracom.krypton.attributes.INFO_MODULE
options:
  src:
    description:
      - Directory with C(certificate.pem), C(private.key), C(root-ca.pem) and C(krypton.json).
    type: path
    default: /etc/soracom/krypton
seealso:
  - module: soracom.krypton.krypton_bootstrap
    description: Writes the files this module reads.
  - module: soracom.krypton.krypton_install
    description: Moves a new set of files into place.
"""

EXAMPLES = r"""
- name: Read the device certificate
  soracom.krypton.krypton_certificate_info:
  register: device_certificate

- name: Show when it expires
  ansible.builtin.debug:
    msg: "{{ device_certificate.certificate_id }} expires on {{ device_certificate.not_after }}"
  when: device_certificate.exists
"""

RETURN = r"""
exists:
  description: Whether C(certificate.pem) exists in O(src) and parses.
  returned: always
  type: bool
  sample: true
usable:
  description:
    - Whether all four files exist, the private key belongs to the certificate, the root CA parses, C(krypton.json)
      describes this certificate, and the certificate has not expired.
  returned: always
  type: bool
  sample: true
reason:
  description: One sentence explaining RV(usable).
  returned: always
  type: str
  sample: The certificate 5f1b0c3e8d0c is valid until 2027-12-04T10:00:00Z (365 days left).
certificate_id:
  description: AWS IoT certificate ID of C(certificate.pem), the lowercase hex SHA-256 of the DER certificate.
  returned: when RV(exists) is true
  type: str
  sample: 5f1b0c3e8d0c4e1a9b2d7f6e5c4b3a29187f6e5d4c3b2a19087f6e5d4c3b2a19
not_after:
  description: End of the certificate's validity, ISO 8601 in UTC.
  returned: when RV(exists) is true
  type: str
  sample: '2027-12-04T10:00:00Z'
days_left:
  description: Days until RV(not_after) by the device clock, negative once the certificate has expired.
  returned: when RV(exists) is true
  type: float
  sample: 364.9
thing_name:
  description: Thing name from C(krypton.json), or its client ID when it names no thing. V(null) without C(krypton.json).
  returned: always
  type: str
  sample: krypton-440103000000001
client_id:
  description: MQTT client ID from C(krypton.json). V(null) without C(krypton.json).
  returned: always
  type: str
  sample: krypton-440103000000001
host:
  description: AWS IoT data endpoint from C(krypton.json). V(null) without C(krypton.json).
  returned: always
  type: str
  sample: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _krypton


def read_certificate_facts(src, now=None):
    """Return the facts of the certificate set in ``src`` as a result dict (without ``changed``).

    Raises OSError when a file exists but cannot be read.
    """
    state = _krypton.inspect_credentials(src, renew_before_days=0, now=now)
    stored = state.stored or {}
    result = {
        'exists': False,
        'usable': state.valid,
        'reason': state.reason.replace(', so Krypton was not called', ''),
        'thing_name': stored.get('thing_name') or stored.get('client_id'),
        'client_id': stored.get('client_id'),
        'host': stored.get('host'),
    }
    path = os.path.join(src, _krypton.CERTIFICATE_FILE)
    if not os.path.isfile(path):
        return result
    with open(path, 'rb') as handle:
        content = handle.read()
    try:
        certificate = _cert.load_certificate(content)
    except _cert.CertificateError:
        return result
    dummy, days_left = _cert.check_validity(certificate, 0, now)
    result.update(
        exists=True,
        certificate_id=_cert.certificate_id(certificate),
        not_after=_cert.format_time(_cert.not_valid_after(certificate)),
        days_left=round(days_left, 3),
    )
    return result


def run_module(module, now=None):
    if not _cert.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=_cert.CRYPTOGRAPHY_IMPORT_ERROR)
    src = module.params['src']
    try:
        result = read_certificate_facts(src, now)
    except OSError as exc:
        module.fail_json(msg='Failed to read the files in %s: %s. Run the task with become: true if they belong to '
                             'another user.' % (src, exc))
    module.exit_json(changed=False, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', default='/etc/soracom/krypton'),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == '__main__':
    main()
