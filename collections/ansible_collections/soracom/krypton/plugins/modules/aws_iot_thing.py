#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iot_thing
short_description: Manage an AWS IoT Core thing and its attributes
version_added: 0.1.0
description:
  - Creates, updates or deletes a thing in the AWS IoT Core registry, such as the thing that SORACOM Krypton
    creates for a device.
  - Deleting a thing first detaches its principals, usually the device certificates. With
    O(delete_principals=true) the certificates that no other thing uses are deleted too.
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
      - In check mode the module reads the thing, its principals and, for O(delete_principals=true), the
        things that use each certificate, and reports whether anything would change, but writes nothing.
      - RV(thing) then describes the thing as it is now.
  diff_mode:
    support: full
    details:
      - The diff shows the thing's name, attributes and principal ARNs before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the thing.
      - Up to 128 characters from letters, digits and V(:_-).
    type: str
    required: true
  attributes:
    description:
      - Attributes of the thing, as names and values.
      - Numbers and booleans are stored as strings, such as V(42) and V(true). An empty or null value
        removes that attribute.
      - Names may use letters, digits and V(_.,@/:#-), values also V(=[]). Values are up to 800 characters.
      - If not set, the attributes are left as they are, even with O(purge_attributes=true).
    type: dict
  purge_attributes:
    description:
      - If V(true), attributes that are not in O(attributes) are removed from the thing.
      - If V(false), they are kept.
    type: bool
    default: false
  detach_principals:
    description:
      - With O(state=absent), detach every principal from the thing before it is deleted.
      - If V(false), the module fails for a thing that still has principals and names them, because AWS IoT
        does not delete such a thing.
    type: bool
    default: true
  delete_principals:
    description:
      - With O(state=absent), also delete the certificates detached from the thing, unless another thing
        still uses them. Each certificate is detached from its policies, set to C(INACTIVE) and deleted.
      - Certificates that other things still use are only detached from this thing, with a warning.
      - Requires O(detach_principals=true).
    type: bool
    default: false
  state:
    description:
      - V(present) creates the thing or updates its attributes.
      - V(absent) deletes the thing. A thing that does not exist is not a change.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The module does not attach principals to a thing. SORACOM Krypton attaches the certificate it creates.
  - AWS IoT applies a detachment asynchronously. When the delete right after a detachment fails because
    the thing or certificate is still attached, the module retries the delete up to 10 times, 3 seconds
    apart.
seealso:
  - module: soracom.krypton.aws_iot_thing_info
  - module: soracom.krypton.aws_iot_certificate
  - name: Managing things with the AWS IoT registry
    description: Things, attributes and how principals are attached.
    link: https://docs.aws.amazon.com/iot/latest/developerguide/thing-registry.html
  - name: UpdateThing API
    description: How attributes are merged and removed.
    link: https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateThing.html
"""

EXAMPLES = r"""
# AWS credentials and the region come from the environment or from
# module_defaults for group/soracom.krypton.aws in these examples.

- name: Record where a device is installed
  soracom.krypton.aws_iot_thing:
    name: pi01
    attributes:
      site: tokyo-01
      imsi: "440103000000001"

- name: Keep only the site attribute
  soracom.krypton.aws_iot_thing:
    name: pi01
    attributes:
      site: tokyo-01
    purge_attributes: true

- name: Retire a device with its certificates
  soracom.krypton.aws_iot_thing:
    name: pi01
    state: absent
    delete_principals: true
  register: retired

- name: Show the deleted certificates
  ansible.builtin.debug:
    msg: "Deleted certificates: {{ retired.deleted_certificate_ids }}"
"""

RETURN = r"""
thing:
  description:
    - The thing after the run.
    - In check mode, the thing as it is now.
    - An empty dictionary when the thing does not exist, that is after O(state=absent), or in check mode
      when the thing would be created.
  returned: success
  type: complex
  contains:
    thing_name:
      description: Name of the thing.
      returned: when the thing exists
      type: str
      sample: pi01
    thing_arn:
      description: ARN of the thing.
      returned: when the thing exists
      type: str
      sample: arn:aws:iot:ap-northeast-1:123456789012:thing/pi01
    thing_id:
      description: Unique ID of the thing.
      returned: when the thing exists
      type: str
      sample: 8e1d2c3b-4a5f-4e6d-9c8b-7a6f5e4d3c2b
    thing_type_name:
      description: Name of the thing type.
      returned: when the thing has a thing type
      type: str
      sample: RaspberryPi
    attributes:
      description: Attributes of the thing.
      returned: when the thing exists
      type: dict
      sample: {"site": "tokyo-01"}
    version:
      description: Version of the thing's registry entry, which AWS IoT increments on every update.
      returned: when the thing exists
      type: int
      sample: 2
    principals:
      description: ARNs of the principals attached to the thing, usually certificates.
      returned: when the thing exists
      type: list
      elements: str
      sample: ["arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"]
deleted_certificate_ids:
  description:
    - IDs of the certificates deleted with the thing because of O(delete_principals=true).
    - In check mode, the certificates that would be deleted.
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"]
principals:
  description: ARNs of the principals attached to the thing.
  returned: when O(state=absent) fails because O(detach_principals=false) and the thing has principals
  type: list
  elements: str
  sample: ["arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"]
error:
  description: Details of the AWS API call that failed.
  returned: when an AWS API call fails
  type: dict
  sample: {"operation": "DeleteThing", "code": "InvalidRequestException", "http_status": 400,
           "message": "Cannot delete. Thing pi01 is still attached to one or more principals", "request_id": "0c1d2e3f"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    client_from_module,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_registry import (
    read_certificate,
    read_thing,
    run_plan,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_things import (
    THING_NAME_RE,
    ThingAttributeError,
    build_thing_delete_plan,
    certificate_id_from_arn,
    normalize_attributes,
    plan_attribute_update,
    predict_thing_view,
    split_certificates_by_use,
    thing_diff_view,
)


class ThingHasPrincipalsError(AwsError):
    """The thing has principals and detach_principals is false."""

    def __init__(self, name, principals):
        self.principals = principals
        super().__init__(
            "IoT thing '%s' has %d attached principal(s): %s. AWS IoT does not delete a thing with attached "
            "principals. Set detach_principals=true, or detach them first." % (name, len(principals), ", ".join(principals))
        )

    def fail_kwargs(self):
        return dict(msg=self.message, principals=self.principals)


def ensure_present(client, name, attributes, purge, check_mode):
    """Create the thing or update its attributes. Return (changed, before, after, predicted diff view)."""
    before = read_thing(client, name)
    update = plan_attribute_update(before["attributes"] if before else {}, attributes, purge)
    predicted = predict_thing_view(name, thing_diff_view(before), update)
    if before is not None and not update:
        return False, before, before, predicted
    if check_mode:
        return True, before or {}, before or {}, predicted

    if before is None:
        params = dict(thingName=name)
        if update:
            params["attributePayload"] = dict(attributes=update)
        run_plan(client, [("create_thing", params)])
    else:
        payload = dict(attributes=update, merge=True)
        run_plan(client, [("update_thing", dict(thingName=name, attributePayload=payload))])
    after = read_thing(client, name) or {}
    return True, before or {}, after, predicted


def ensure_absent(client, name, detach_principals, delete_principals, check_mode):
    """Delete the thing, detaching and optionally deleting its principals.

    Return (changed, before, deleted certificate IDs, warnings).
    """
    before = read_thing(client, name)
    if before is None:
        return False, {}, [], []
    principals = before["principals"]
    if principals and not detach_principals:
        raise ThingHasPrincipalsError(name, principals)

    certificates = {}
    if delete_principals:
        for arn in principals:
            certificate_id = certificate_id_from_arn(arn)
            certificate = read_certificate(client, certificate_id) if certificate_id else None
            if certificate is not None:
                certificates[arn] = certificate
    unused, shared = split_certificates_by_use(
        name, {arn: certificate["things"] for arn, certificate in certificates.items()}
    )
    to_delete = [certificates[arn] for arn in unused]

    verb = "would be" if check_mode else "was"
    warnings = []
    for arn, others in shared.items():
        warnings.append(
            "Certificate %s %s detached from thing '%s' but not deleted, because these things still use it: %s."
            % (certificates[arn]["certificate_id"], verb, name, ", ".join(others))
        )
    deleted_ids = [certificate["certificate_id"] for certificate in to_delete]
    if check_mode:
        return True, before, deleted_ids, warnings

    run_plan(client, build_thing_delete_plan(name, principals, to_delete))
    return True, before, deleted_ids, warnings


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        attributes=dict(type="dict"),
        purge_attributes=dict(type="bool", default=False),
        detach_principals=dict(type="bool", default=True),
        delete_principals=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["name"]

    if not THING_NAME_RE.match(name):
        module.fail_json(msg="Invalid thing name '%s': use 1 to 128 letters, digits or the characters :_-" % name)
    if params["delete_principals"] and not params["detach_principals"]:
        module.fail_json(
            msg="delete_principals=true requires detach_principals=true, because a certificate must be detached "
                "from the thing before it can be deleted."
        )
    try:
        attributes = normalize_attributes(params["attributes"])
    except ThingAttributeError as e:
        module.fail_json(msg=str(e))

    client = client_from_module(module, "iot")
    result = dict(changed=False)
    try:
        if params["state"] == "present":
            changed, before, after, predicted = ensure_present(
                client, name, attributes, params["purge_attributes"], module.check_mode
            )
            after_view = predicted if module.check_mode else thing_diff_view(after)
            result.update(changed=changed, thing=after)
        else:
            changed, before, deleted_ids, warnings = ensure_absent(
                client, name, params["detach_principals"], params["delete_principals"], module.check_mode
            )
            after_view = {}
            for warning in warnings:
                module.warn(warning)
            result.update(
                changed=changed,
                thing=before if module.check_mode else {},
                deleted_certificate_ids=deleted_ids,
            )
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())

    if module._diff:
        result["diff"] = dict(before=thing_diff_view(before), after=after_view)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
