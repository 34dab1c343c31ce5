#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iot_certificate
short_description: Activate, deactivate or delete an AWS IoT Core certificate
version_added: 0.1.0
description:
  - Sets the status of an existing AWS IoT Core device certificate, such as one that SORACOM Krypton
    created for a device, or deletes the certificate.
  - The module does not create certificates. Krypton creates one each time a device bootstraps.
  - Deleting a certificate first sets it to C(INACTIVE) and detaches it from every policy and every thing,
    because AWS IoT refuses to delete a certificate that is C(ACTIVE) or still attached.
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.aws
  - soracom.krypton.attributes
  - soracom.krypton.attributes.ACTION_GROUP_AWS
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reads the certificate, its policies and its things and reports whether
        anything would change, but writes nothing.
      - RV(certificate) then describes the certificate as it is now.
  diff_mode:
    support: full
    details:
      - The diff shows the status and the names of the attached policies and things, before and after.
  idempotent:
    support: full
options:
  certificate_id:
    description:
      - The certificate ID, 64 hexadecimal digits, or the certificate ARN
        C(arn:aws:iot:<region>:<account>:cert/<certificate ID>).
      - An ARN must be in the region the module connects to (O(region)), otherwise the module fails.
      - The ID is sent in lower case, the form AWS IoT uses.
    type: str
    required: true
    aliases: [certificate_arn]
  state:
    description:
      - V(active) sets the status to C(ACTIVE), so devices can connect with the certificate.
      - V(inactive) sets the status to C(INACTIVE). AWS IoT disconnects devices that use the certificate
        within a few minutes, and they cannot connect again until it is active.
      - V(absent) sets the certificate to C(INACTIVE) if it is C(ACTIVE), detaches it from all policies and
        things (see O(detach_things)), and deletes it. A certificate that does not exist is not a change.
      - The option has no default, so that a task cannot activate or delete a certificate by omission.
    type: str
    choices: [active, inactive, absent]
    required: true
  detach_things:
    description:
      - With O(state=absent), detach the certificate from every thing it is attached to before deleting it.
      - If V(false), the module fails for a certificate that is still attached to a thing and names the things.
        Use it to delete a certificate only when no thing uses it, so that a thing cannot lose its certificate by
        mistake.
    type: bool
    default: true
notes:
  - A certificate that does not exist makes O(state=active) and O(state=inactive) fail.
  - AWS IoT does not allow the status of a C(REVOKED) certificate to change, so O(state=active) and
    O(state=inactive) fail for it. O(state=absent) deletes it.
  - AWS IoT applies a detachment asynchronously. When the delete right after a detachment fails because
    the certificate is still attached, the module retries the delete up to 10 times, 3 seconds apart.
seealso:
  - module: soracom.krypton.aws_iot_thing
  - module: soracom.krypton.aws_iot_thing_info
  - module: soracom.krypton.aws_iot_policy
  - name: UpdateCertificate API
    description: The certificate statuses and what happens to connected devices.
    link: https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html
  - name: DeleteCertificate API
    description: Why a certificate must be inactive and detached before it can be deleted.
    link: https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html
"""

EXAMPLES = r"""
# AWS credentials and the region come from the environment or from
# module_defaults for group/soracom.krypton.aws in these examples.

- name: Stop a lost device from connecting
  soracom.krypton.aws_iot_certificate:
    certificate_id: 3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
    state: inactive

- name: Let it connect again
  soracom.krypton.aws_iot_certificate:
    certificate_id: 3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
    state: active

- name: Delete the certificate that a device held before it bootstrapped again, given by ARN
  soracom.krypton.aws_iot_certificate:
    certificate_arn: "arn:aws:iot:ap-northeast-1:123456789012:cert/{{ old_certificate_id }}"
    state: absent

- name: Delete a certificate that a Pi held, unless a thing still uses it
  soracom.krypton.aws_iot_certificate:
    certificate_id: "{{ held_certificate_id }}"
    state: absent
    detach_things: false
"""

RETURN = r"""
certificate:
  description:
    - The certificate after the run.
    - In check mode, the certificate as it is now.
    - An empty dictionary when the certificate does not exist, that is after O(state=absent).
  returned: success
  type: complex
  contains:
    certificate_id:
      description: ID of the certificate.
      returned: when the certificate exists
      type: str
      sample: 3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
    certificate_arn:
      description: ARN of the certificate.
      returned: when the certificate exists
      type: str
      sample: arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
    status:
      description: Status of the certificate, such as V(ACTIVE), V(INACTIVE) or V(REVOKED).
      returned: when the certificate exists
      type: str
      sample: ACTIVE
    creation_date:
      description: When the certificate was created, in ISO 8601 format.
      returned: when the certificate exists
      type: str
      sample: "2026-04-01T09:30:00+00:00"
    not_after:
      description: End of the certificate's validity, in ISO 8601 format.
      returned: when the certificate exists and AWS IoT reports its validity
      type: str
      sample: "2049-12-31T23:59:59+00:00"
    policies:
      description: Names of the policies attached to the certificate.
      returned: when the certificate exists
      type: list
      elements: str
      sample: ["SoracomKryptonDevicePolicy"]
    things:
      description: Names of the things the certificate is attached to.
      returned: when the certificate exists
      type: list
      elements: str
      sample: ["pi01"]
things:
  description: Names of the things the certificate is attached to.
  returned: when O(state=absent) fails because O(detach_things=false) and the certificate is attached to things
  type: list
  elements: str
  sample: ["pi01"]
error:
  description: Details of the AWS API call that failed.
  returned: when an AWS API call fails
  type: dict
  sample: {"operation": "DeleteCertificate", "code": "DeleteConflictException", "http_status": 409,
           "message": "Things must be detached before deletion", "request_id": "0c1d2e3f"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    client_from_module,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_registry import read_certificate, run_plan
from ansible_collections.soracom.krypton.plugins.module_utils._iot_things import (
    ACTIVE,
    INACTIVE,
    REVOKED,
    CertificateReferenceError,
    build_certificate_delete_plan,
    certificate_diff_view,
    parse_certificate_reference,
    predict_certificate_view,
)

STATUS_FOR_STATE = dict(active=ACTIVE, inactive=INACTIVE)


class CertificateNotFoundError(AwsError):
    """The certificate whose status should be set does not exist."""

    def __init__(self, certificate_id, region):
        super().__init__(
            "IoT certificate %s was not found in region %s. Check the certificate ID, the region and the AWS "
            "account. This module does not create certificates: SORACOM Krypton creates one when a device "
            "bootstraps." % (certificate_id, region)
        )


class CertificateAttachedError(AwsError):
    """The certificate to delete is attached to things and detach_things is false."""

    def __init__(self, certificate_id, things):
        self.things = things
        super().__init__(
            "IoT certificate %s is attached to thing(s) %s, so it was not deleted. Delete it with those things "
            "(soracom.krypton.aws_iot_thing with delete_principals=true), or set detach_things=true."
            % (certificate_id, ", ".join(things))
        )

    def fail_kwargs(self):
        return dict(msg=self.message, things=self.things)


class CertificateRevokedError(AwsError):
    """The status of a REVOKED certificate cannot change."""

    def __init__(self, certificate_id, status):
        super().__init__(
            "IoT certificate %s is REVOKED, and AWS IoT does not allow the status of a revoked certificate to "
            "change to %s. Delete it with state=absent, and let the device bootstrap again for a new "
            "certificate." % (certificate_id, status)
        )


def ensure_status(client, certificate_id, status, check_mode):
    """Set the certificate's status. Return (changed, before, after) certificates."""
    before = read_certificate(client, certificate_id)
    if before is None:
        raise CertificateNotFoundError(certificate_id, client.meta.region_name)
    if before["status"] == status:
        return False, before, before
    if before["status"] == REVOKED:
        raise CertificateRevokedError(certificate_id, status)
    if check_mode:
        return True, before, before

    run_plan(client, [("update_certificate", dict(certificateId=certificate_id, newStatus=status))])
    after = read_certificate(client, certificate_id)
    if after is None:
        raise CertificateNotFoundError(certificate_id, client.meta.region_name)
    return True, before, after


def ensure_absent(client, certificate_id, check_mode, detach_things=True):
    """Deactivate, detach and delete the certificate. Return (changed, before, after) certificates."""
    before = read_certificate(client, certificate_id)
    if before is None:
        return False, {}, {}
    if before["things"] and not detach_things:
        raise CertificateAttachedError(certificate_id, before["things"])
    if check_mode:
        return True, before, before

    plan = build_certificate_delete_plan(
        certificate_id, before["certificate_arn"], before["status"], before["policies"], before["things"]
    )
    run_plan(client, plan)
    return True, before, {}


def check_region(region, connected_region):
    """Return an error message when a certificate ARN's region differs from the client's, or None."""
    if region is None or region == connected_region:
        return None
    return (
        "The certificate ARN is in region %s, but the module connects to region %s. Set region to %s, or pass "
        "the certificate ID instead of the ARN." % (region, connected_region, region)
    )


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        certificate_id=dict(type="str", required=True, aliases=["certificate_arn"]),
        state=dict(type="str", required=True, choices=["active", "inactive", "absent"]),
        detach_things=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    state = module.params["state"]

    try:
        certificate_id, arn_region = parse_certificate_reference(module.params["certificate_id"])
    except CertificateReferenceError as e:
        module.fail_json(msg=str(e))

    client = client_from_module(module, "iot")
    message = check_region(arn_region, client.meta.region_name)
    if message:
        module.fail_json(msg=message)

    try:
        if state == "absent":
            changed, before, after = ensure_absent(
                client, certificate_id, module.check_mode, detach_things=module.params["detach_things"]
            )
        else:
            changed, before, after = ensure_status(client, certificate_id, STATUS_FOR_STATE[state], module.check_mode)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())

    result = dict(changed=changed, certificate=after)
    if module._diff:
        before_view = certificate_diff_view(before)
        if module.check_mode:
            after_view = predict_certificate_view(before_view, state)
        else:
            after_view = certificate_diff_view(after)
        result["diff"] = dict(before=before_view, after=after_view)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
