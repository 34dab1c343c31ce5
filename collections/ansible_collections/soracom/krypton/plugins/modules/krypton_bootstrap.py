#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: krypton_bootstrap
short_description: Get an AWS IoT certificate for a device from SORACOM Krypton
version_added: 0.1.0
description:
  - Calls the SORACOM Krypton AWS IoT bootstrap API from a device with a SORACOM SIM and stores the returned
    certificate, private key, root CA certificate and MQTT connection details in O(dest).
  - Krypton identifies the SIM by the cellular session the request arrives on. It creates the AWS IoT thing, a new key
    pair and certificate, and attaches the policy, all with the AWS credentials stored in the SIM group's
    C(SoracomKrypton) configuration.
  - Every call creates a new certificate in AWS IoT. The module therefore calls Krypton only when the device has no
    valid certificate, or when O(force=true).
  - The files are kept when all of them exist, C(certificate.pem) parses, C(private.key) belongs to it,
    C(root-ca.pem) parses, C(krypton.json) describes this certificate, the certificate does not expire within
    O(renew_before_days) days, and the stored host and thing name equal O(expected_host) and O(thing_name) when those
    are set.
  - Before anything is written the whole response is checked. It must be a JSON object with C(certificate),
    C(privateKey), C(host) and C(clientId), the PEM texts must parse, and the key must belong to the certificate.
    Then every file is written to a temporary file and the temporary files are renamed into place.
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
    details: In check mode the module inspects the files and reports whether it would call Krypton. It never calls
      Krypton and writes nothing.
  diff_mode:
    support: full
    details: The diff shows the fields of C(krypton.json) before and after. It never contains the private key.
  idempotent:
    support: full
    details: A second run with the same arguments finds a valid certificate and does not call Krypton.
  safe_file_operations:
    support: full
options:
  dest:
    description:
      - Directory for the files. Created with mode C(0700) when missing, and set to C(0700) when it exists.
      - It receives C(certificate.pem) (mode C(0644)), C(private.key) (mode C(0600)), C(root-ca.pem) (mode
        C(0644)) and C(krypton.json) (mode C(0644)).
      - C(krypton.json) contains C(host), C(client_id), C(thing_name), C(region), C(certificate_id),
        C(certificate_not_after), C(endpoint) and C(bootstrapped_at).
    type: path
    default: /etc/soracom/krypton
  endpoint:
    description:
      - Base URL of SORACOM Krypton.
    type: str
    default: https://krypton.soracom.io:8036
  thing_name:
    description:
      - Name of the AWS IoT thing, sent as C(requestParameters.thingName).
      - When not set, Krypton names the thing after the group's C(thingNamePattern).
      - When set, a stored certificate for another thing name counts as invalid.
    type: str
  expected_host:
    description:
      - AWS IoT data endpoint that the SIM group's Krypton configuration should return, for example
        C(a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com).
      - When set, a stored certificate for another host counts as invalid, and a Krypton response for another host is
        rejected before anything is written.
    type: str
  force:
    description:
      - Call Krypton and replace the files even when the stored certificate is valid.
      - Each call creates a new certificate in AWS IoT. The old certificate stays registered and active there.
    type: bool
    default: false
  renew_before_days:
    description:
      - Call Krypton when the stored certificate expires in fewer than this many days.
      - V(0) renews only expired certificates.
    type: int
    default: 30
  timeout:
    description:
      - Timeout in seconds for each request to Krypton.
    type: int
    default: 60
  retries:
    description:
      - How many times a failed request is repeated when Krypton responds with 429, 500, 502, 503 or 504, or the
        connection fails, so Krypton is called at most O(retries) + 1 times.
      - Retries wait as long as the response requests with C(Retry-After), C(X-Soracom-Ratelimit-Seconds-Before-Refresh)
        or C(X-Soracom-Ratelimit-Reset) (at most 60 seconds) plus up to 1 second of random jitter. Without such a
        header the wait is an exponential backoff with jitter, 1 to 2 seconds before the first retry, doubling for
        each later retry up to 15 to 30 seconds. With the default the waits add up to 75 to 150 seconds, enough to
        outlast a short drop of the cellular link.
      - O(retry_time_limit) bounds the total time as well.
      - Each retry is written once to the device's log (journal or syslog, through the module log), and the first
        three also appear as warnings.
    type: int
    default: 8
  retry_time_limit:
    description:
      - Upper bound in seconds on the time from the first request to the end of the last one, waits included.
      - No retry starts when the wait before it and its O(timeout) could end later than this.
    type: int
    default: 300
  max_clock_skew:
    description:
      - Largest difference in seconds between the device clock and the C(Date) header of Krypton's response that the
        module accepts.
      - When the difference is larger, the module still writes the new certificate and key, because Krypton cannot
        return that private key again and AWS IoT checks the certificate against its own clock, and then fails with
        a message that names both times and says how to fix the time synchronisation. The next run keeps the files
        and does not call Krypton.
      - V(0) turns this comparison off. The check of the system time before the call stays on.
    type: int
    default: 300
  validate_certs:
    description:
      - Whether to verify Krypton's TLS certificate. Only set V(false) for tests.
    type: bool
    default: true
  owner:
    description:
      - User name or uid that owns O(dest) and the files. When not set, the user running the module owns new files.
    type: str
  group:
    description:
      - Group name or gid of O(dest) and the files. When not set, the user's primary group is used for new files.
    type: str
notes:
  - Run the module on the device, over the SIM's cellular connection. Requests through a proxy or another network do
    not reach Krypton as the SIM, so the module never uses a proxy.
  - A request that times out after Krypton received it may still have created a certificate. The retry then creates
    another one, and the first stays unused in AWS IoT.
  - When the response has no C(rootCaCertificate), an existing valid C(root-ca.pem) is kept. Without one, the module
    fails before writing anything.
  - Before calling Krypton the module fails, without calling it, when the system time is before 2025-01-01, the
    release date of this collection, because the TLS certificate check of the connection would fail. The message
    names the device clock and says how to fix NTP with C(timedatectl), C(systemd-timesyncd) or C(chrony).
  - When TLS verification of Krypton fails because a certificate is not yet valid or has expired by the device clock,
    the message names the device clock and points at the time synchronisation.
  - Mode and owner of the files are corrected on every run, which reports RV(ignore:changed=true) without calling
    Krypton.
  - The module fails before calling Krypton when the user running it cannot read and write O(dest), or cannot create
    it. Otherwise Krypton would create a certificate that cannot be stored.
seealso:
  - module: soracom.krypton.lte_link_info
    description: Checks that the cellular link and the clock are ready before this module runs.
  - module: soracom.krypton.mqtt_check
    description: Connects to AWS IoT Core with the files this module writes.
  - module: soracom.krypton.soracom_krypton_config
    description: Sets the SIM group's Krypton configuration that decides what Krypton returns.
  - name: SORACOM Krypton
    description: How Krypton provisions AWS IoT devices.
    link: https://users.soracom.io/ja-jp/docs/krypton/how-it-works/
"""

EXAMPLES = r"""
- name: Get the device certificate unless the device has a valid one
  soracom.krypton.krypton_bootstrap:
  register: krypton

- name: Get a certificate for a named thing and require the fleet's ATS endpoint
  soracom.krypton.krypton_bootstrap:
    dest: /etc/soracom/krypton
    thing_name: "{{ inventory_hostname }}"
    expected_host: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
    owner: root
    group: mqtt
  register: krypton

- name: Replace a certificate that is valid for another 60 days or less
  soracom.krypton.krypton_bootstrap:
    renew_before_days: 60

- name: Show where the device connects
  ansible.builtin.debug:
    msg: "{{ krypton.client_id }} connects to {{ krypton.host }} ({{ krypton.reason }})"
"""

RETURN = r"""
bootstrapped:
  description:
    - Whether the module called Krypton and replaced the files. In check mode, whether it would.
  returned: always
  type: bool
  sample: true
reason:
  description: One sentence explaining why Krypton was or was not called.
  returned: always
  type: str
  sample: 'Missing in /etc/soracom/krypton: root-ca.pem, certificate.pem, private.key, krypton.json.'
host:
  description:
    - AWS IoT data endpoint for MQTT. V(null) in check mode before the first bootstrap.
  returned: always
  type: str
  sample: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
client_id:
  description: MQTT client id that the AWS IoT policy expects. V(null) in check mode before the first bootstrap.
  returned: always
  type: str
  sample: '440103000000001'
thing_name:
  description:
    - AWS IoT thing name as requested with O(thing_name). Without it, the client ID Krypton returned, because Krypton
      uses the thing name as the client ID.
    - V(null) only in check mode when the device holds no certificate yet.
  returned: always
  type: str
  sample: pi01
region:
  description: AWS region from Krypton's response. V(null) when unknown.
  returned: always
  type: str
  sample: ap-northeast-1
certificate_id:
  description:
    - AWS IoT certificate id, the lowercase hex SHA-256 of the DER certificate. V(null) in check mode before the first
      bootstrap.
  returned: always
  type: str
  sample: 5f1b0c3e8d0c4e1a9b2d7f6e5c4b3a29187f6e5d4c3b2a19087f6e5d4c3b2a19
certificate_not_after:
  description: End of the certificate's validity, ISO 8601 in UTC. V(null) in check mode before the first bootstrap.
  returned: always
  type: str
  sample: '2049-12-31T23:59:59Z'
files:
  description: Paths of the files in O(dest). The private key itself is never returned.
  returned: always
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
      description: Path of the root CA certificate that signs the AWS IoT endpoint's certificate.
      type: str
      sample: /etc/soracom/krypton/root-ca.pem
    state:
      description: Path of C(krypton.json).
      type: str
      sample: /etc/soracom/krypton/krypton.json
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _files, _krypton
from ansible_collections.soracom.krypton.plugins.module_utils._retry import RetryReporter


def _paths(dest):
    return {
        'certificate': os.path.join(dest, _krypton.CERTIFICATE_FILE),
        'private_key': os.path.join(dest, _krypton.PRIVATE_KEY_FILE),
        'root_ca': os.path.join(dest, _krypton.ROOT_CA_FILE),
        'state': os.path.join(dest, _krypton.STATE_FILE),
    }


def _attributes_need_change(dest, uid, gid):
    """Return True when the directory or a file has another mode or owner than expected."""
    if _files.attributes_differ(dest, 0o700, uid, gid):
        return True
    for name, mode in _krypton.FILE_MODES.items():
        if _files.attributes_differ(os.path.join(dest, name), mode, uid, gid):
            return True
    return False


def _fix_attributes(dest, uid, gid):
    changed = _files.set_attributes(dest, 0o700, uid, gid)
    for name, mode in _krypton.FILE_MODES.items():
        changed = _files.set_attributes(os.path.join(dest, name), mode, uid, gid) or changed
    return changed


def _existing_root_ca(path):
    try:
        with open(path, 'rb') as handle:
            content = handle.read()
        _cert.load_certificates(content)
    except (OSError, _cert.CertificateError):
        return None
    return content


def _result_fields(stored):
    stored = stored or {}
    fields = dict((field, stored.get(field)) for field in
                  ('host', 'client_id', 'thing_name', 'region', 'certificate_id', 'certificate_not_after'))
    # Krypton uses the thing name as the client ID; a krypton.json without a thing name gets it from there.
    fields['thing_name'] = fields['thing_name'] or fields['client_id']
    return fields


def _is_read_only_mount(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_access(dest):
    """Return an error message when this user cannot read and write ``dest``, else None.

    Without this check an unreadable directory would look empty, and Krypton would
    create a certificate that cannot be stored.
    """
    if os.path.isdir(dest):
        if _is_read_only_mount(dest):
            return ('%s is on a read-only file system, so a new certificate could not be stored. Remount it '
                    'read-write or set dest to a writable directory.' % dest)
        if not os.access(dest, os.R_OK | os.W_OK | os.X_OK):
            return ('%s cannot be read and written by this user. Run the task with become: true, or set dest to '
                    'a directory this user owns.' % dest)
        return None
    if os.path.lexists(dest):
        return '%s exists and is not a directory.' % dest
    ancestor = os.path.dirname(os.path.abspath(dest))
    while not os.path.isdir(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return ('%s cannot be created because this user cannot write to %s. Run the task with become: true.'
                % (dest, ancestor))
    return None


def validate_params(params):
    if params['renew_before_days'] < 0:
        return 'renew_before_days must be 0 or more, got %d.' % params['renew_before_days']
    if params['timeout'] < 1:
        return 'timeout must be at least 1 second, got %d.' % params['timeout']
    if params['retries'] < 0:
        return 'retries must be 0 or more, got %d.' % params['retries']
    if params['retry_time_limit'] < params['timeout']:
        return ('retry_time_limit must be at least timeout (%d s), got %d.'
                % (params['timeout'], params['retry_time_limit']))
    if params['max_clock_skew'] < 0:
        return 'max_clock_skew must be 0 or more seconds, got %d.' % params['max_clock_skew']
    endpoint = params['endpoint'] or ''
    if not (endpoint.startswith('https://') or endpoint.startswith('http://')) or len(endpoint.split('://', 1)[1]) < 1:
        return 'endpoint must be an https:// or http:// URL, got %r.' % endpoint
    if params['thing_name'] is not None and not params['thing_name'].strip():
        return 'thing_name must not be empty.'
    return None


def bootstrap(module, client, dest, uid, gid, now=None):
    """Call Krypton, validate the response, write the files and return (stored fields, warnings, clock problem).

    The clock problem is None, or a message saying that the device clock differs from
    Krypton's Date header by more than max_clock_skew. The files are written even then,
    because Krypton created the certificate in AWS IoT and cannot return its private key
    again. AWS IoT checks the certificate against its own clock, so the files work once the
    device clock is right, and the next run keeps them instead of minting another one.
    """
    params = module.params
    try:
        response = client.bootstrap(params['thing_name'])
    except _krypton.KryptonError as exc:
        if exc.clock_suspect:
            hint = ' ' + _krypton.tls_clock_hint(_cert.utc_now())
        elif exc.status is None:
            hint = (' Krypton responds only over the SIM\'s cellular session. Run soracom.krypton.lte_link_info to '
                    'check the link, the routes and the clock.')
        elif exc.status == 403 and 'denied' in (exc.api_message or '').lower():
            hint = (' The IAM user of the credential set lacks a permission Krypton needs: run the cloud role again '
                    '(soracom.krypton.aws_iam_krypton_user) to restore its policy.')
        elif 400 <= exc.status < 500 and exc.status != 429:
            hint = (' Check that the SIM is in a group whose SoracomKrypton configuration is enabled and names a valid '
                    'credential set (soracom.krypton.soracom_krypton_config).')
        else:
            hint = ''
        module.fail_json(msg='%s.%s' % (str(exc).rstrip('.'), hint), status=exc.status, code=exc.code,
                         attempts=exc.attempts)
    try:
        values = _krypton.validate_bootstrap_response(response.data, params['expected_host'])
    except _krypton.KryptonError as exc:
        module.fail_json(msg=str(exc), status=response.status, attempts=response.attempts)

    warnings = list(values['warnings'])
    clock_problem = _krypton.clock_skew_message(response, params['max_clock_skew'], client.endpoint,
                                                values['certificate_not_before'])

    paths = _paths(dest)
    root_ca = values['root_ca_pem']
    if root_ca is None:
        root_ca_bytes = _existing_root_ca(paths['root_ca'])
        if root_ca_bytes is None:
            module.fail_json(msg='The Krypton response has no rootCaCertificate and %s holds no valid certificate. '
                                 'Put the root CA of the AWS IoT endpoint (Amazon Root CA 1 for an ATS endpoint) '
                                 'there and run again. Nothing was written.' % paths['root_ca'])
        warnings.append('The Krypton response has no rootCaCertificate, so the existing %s was kept.'
                        % paths['root_ca'])
    else:
        root_ca_bytes = root_ca.encode('utf-8')

    stored = {
        'host': values['host'],
        'client_id': values['client_id'],
        'thing_name': params['thing_name'] or values['thing_name'],
        'region': values['region'],
        'certificate_id': values['certificate_id'],
        'certificate_not_after': values['certificate_not_after'],
        'endpoint': client.endpoint,
        'bootstrapped_at': _cert.format_time(now or _cert.utc_now()),
    }
    contents = {
        _krypton.ROOT_CA_FILE: root_ca_bytes,
        _krypton.CERTIFICATE_FILE: values['certificate_pem'].encode('utf-8'),
        _krypton.PRIVATE_KEY_FILE: values['private_key_pem'].encode('utf-8'),
        _krypton.STATE_FILE: (json.dumps(stored, indent=2, sort_keys=True) + '\n').encode('utf-8'),
    }
    try:
        _files.ensure_directory(dest, 0o700, uid, gid)
        with _files.StagedFiles() as staged:
            for name in _krypton.WRITE_ORDER:
                staged.stage(os.path.join(dest, name), contents.pop(name), _krypton.FILE_MODES[name], uid, gid)
            staged.commit()
    except _files.FileWriteError as exc:
        module.fail_json(msg='Krypton returned a new certificate, but it could not be stored: %s' % exc,
                         path=exc.path)
    return stored, warnings, clock_problem


def run_module(module, client_factory=None, now=None):
    params = module.params
    error = validate_params(params)
    if error:
        module.fail_json(msg=error)
    if not _cert.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=_cert.CRYPTOGRAPHY_IMPORT_ERROR)

    dest = params['dest']
    error = check_access(dest)
    if error:
        module.fail_json(msg=error)
    try:
        uid = _files.resolve_owner(params['owner'])
        gid = _files.resolve_group(params['group'])
    except ValueError as exc:
        module.fail_json(msg='%s.' % exc)

    try:
        state = _krypton.inspect_credentials(dest, params['thing_name'], params['expected_host'],
                                             params['renew_before_days'], now)
    except OSError as exc:
        module.fail_json(msg='Failed to read the files in %s: %s' % (dest, exc))
    for warning in state.warnings:
        module.warn(warning)

    result = {'changed': False, 'bootstrapped': False, 'files': _paths(dest)}
    before = dict((field, state.stored.get(field)) for field in _krypton.STATE_FIELDS) if state.stored else {}

    if state.valid and not params['force']:
        result.update(_result_fields(state.stored))
        result['reason'] = state.reason
        if _attributes_need_change(dest, uid, gid):
            if not module.check_mode:
                try:
                    _fix_attributes(dest, uid, gid)
                except _files.FileWriteError as exc:
                    module.fail_json(msg=str(exc), path=exc.path)
            result['changed'] = True
            result['reason'] += ' The mode or owner of %s or its files was corrected.' % dest
        if module._diff:
            result['diff'] = {'before': before, 'after': before}
        module.exit_json(**result)

    reason = 'force is true, so Krypton was called.' if state.valid else state.reason
    clock_message = _krypton.implausible_clock_message(now or _cert.utc_now())
    if clock_message:
        needed = 'force is true.' if state.valid else state.reason
        module.fail_json(msg='A bootstrap is needed: %s %s' % (needed, clock_message), bootstrapped=False,
                         **_result_fields(state.stored))
    result['changed'] = True
    result['bootstrapped'] = True

    if module.check_mode:
        result.update(_result_fields(state.stored))
        result['reason'] = '%s Check mode: Krypton would be called.' % reason
        if module._diff:
            predicted = dict((field, '(returned by Krypton)') for field in _krypton.STATE_FIELDS)
            predicted.update(endpoint=params['endpoint'].rstrip('/'), bootstrapped_at='(time of the call)')
            if params['thing_name']:
                predicted['thing_name'] = params['thing_name']
            if params['expected_host']:
                predicted['host'] = params['expected_host']
            result['diff'] = {'before': before, 'after': predicted}
        module.exit_json(**result)

    # Every retry goes once to the device's journal or syslog, and the first three also to the play output.
    client = (client_factory or _krypton.KryptonClient)(
        endpoint=params['endpoint'], timeout=params['timeout'], retries=params['retries'],
        time_budget=params['retry_time_limit'], validate_certs=params['validate_certs'],
        retry_callback=RetryReporter(module.log, module.warn, subject='Krypton requests'))
    stored, warnings, clock_problem = bootstrap(module, client, dest, uid, gid, now)
    for warning in warnings:
        module.warn(warning)

    result.update(_result_fields(stored))
    result['reason'] = '%s Krypton returned certificate %s.' % (reason, stored['certificate_id'][:12])
    if module._diff:
        result['diff'] = {'before': before, 'after': dict(stored)}
    if clock_problem:
        result['msg'] = ('%s The certificate and key were written to %s anyway, because Krypton cannot return this '
                         'private key again and AWS IoT checks the certificate against its own clock. %s The next run '
                         'keeps these files and does not call Krypton.' % (clock_problem, dest, _krypton.CLOCK_FIX_HINT))
        module.fail_json(**result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type='path', default='/etc/soracom/krypton'),
            endpoint=dict(type='str', default=_krypton.DEFAULT_ENDPOINT),
            thing_name=dict(type='str'),
            expected_host=dict(type='str'),
            force=dict(type='bool', default=False),
            renew_before_days=dict(type='int', default=30),
            timeout=dict(type='int', default=60),
            retries=dict(type='int', default=_krypton.DEFAULT_RETRIES),
            retry_time_limit=dict(type='int', default=int(_krypton.RETRY_TIME_BUDGET)),
            max_clock_skew=dict(type='int', default=300),
            validate_certs=dict(type='bool', default=True),
            owner=dict(type='str'),
            group=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == '__main__':
    main()
