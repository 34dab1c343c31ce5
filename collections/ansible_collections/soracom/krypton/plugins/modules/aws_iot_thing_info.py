#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iot_thing_info
short_description: List AWS IoT Core things with their certificates
version_added: 0.1.0
description:
  - Returns things from the AWS IoT Core registry with their attributes, principals and, by default, the
    status and validity of each certificate, for example to find devices whose certificates are inactive
    or about to expire.
  - Without O(names) all things of the account and region are listed, page by page, and can be narrowed with
    O(name_prefix), O(attribute_name) and O(thing_type_name).
author:
  - soracom.krypton contributors (@soracom-krypton)
extends_documentation_fragment:
  - soracom.krypton.aws
  - soracom.krypton.attributes
  - soracom.krypton.attributes.INFO_MODULE
  - soracom.krypton.attributes.ACTION_GROUP_AWS
options:
  names:
    description:
      - Names of the things to return. Names that do not exist are left out of RV(things).
      - Cannot be combined with O(name_prefix), O(attribute_name) or O(thing_type_name).
    type: list
    elements: str
  name_prefix:
    description:
      - Return only things whose name starts with this prefix, such as V(pi).
      - The ListThings API has no name filter, so the module lists all things matching the other filters
        and filters them by name itself.
    type: str
  attribute_name:
    description:
      - Return only things that have this attribute with the value O(attribute_value).
      - AWS IoT applies this filter. Requires O(attribute_value).
    type: str
  attribute_value:
    description:
      - The value of O(attribute_name) to match exactly.
    type: str
  thing_type_name:
    description:
      - Return only things of this thing type. AWS IoT applies this filter.
    type: str
  certificates:
    description:
      - If V(true), read each certificate attached to a thing with DescribeCertificate and return its status,
        creation date and validity end in RV(things[].certificates).
      - If V(false), RV(things[].certificates) holds only certificate IDs and ARNs, and the module makes one
        call fewer for each certificate.
    type: bool
    default: true
seealso:
  - module: soracom.krypton.aws_iot_thing
  - module: soracom.krypton.aws_iot_certificate
  - name: ListThings API
    description: The filters AWS IoT applies when it lists things.
    link: https://docs.aws.amazon.com/iot/latest/apireference/API_ListThings.html
"""

EXAMPLES = r"""
# AWS credentials and the region come from the environment or from
# module_defaults for group/soracom.krypton.aws in these examples.

- name: List the Raspberry Pis provisioned through SORACOM Krypton
  soracom.krypton.aws_iot_thing_info:
    name_prefix: pi
  register: pis

- name: Show the things whose certificates are all inactive
  ansible.builtin.debug:
    msg: "{{ item.thing_name }} cannot connect"
  loop: "{{ pis.things }}"
  loop_control:
    label: "{{ item.thing_name }}"
  when: item.certificates | selectattr('status', 'equalto', 'ACTIVE') | list | length == 0

- name: Read two things without describing their certificates
  soracom.krypton.aws_iot_thing_info:
    names: [pi01, pi02]
    certificates: false
  register: two_pis
"""

RETURN = r"""
things:
  description:
    - The things found, sorted by name. An empty list when none match.
  returned: success
  type: list
  elements: dict
  contains:
    thing_name:
      description: Name of the thing.
      returned: always
      type: str
      sample: pi01
    thing_arn:
      description: ARN of the thing.
      returned: always
      type: str
      sample: arn:aws:iot:ap-northeast-1:123456789012:thing/pi01
    thing_id:
      description: Unique ID of the thing. ListThings does not return it, so it is present only for O(names).
      returned: when O(names) is set
      type: str
      sample: 8e1d2c3b-4a5f-4e6d-9c8b-7a6f5e4d3c2b
    thing_type_name:
      description: Name of the thing type.
      returned: when the thing has a thing type
      type: str
      sample: RaspberryPi
    attributes:
      description: Attributes of the thing.
      returned: always
      type: dict
      sample: {"site": "tokyo-01"}
    version:
      description: Version of the thing's registry entry.
      returned: always
      type: int
      sample: 1
    principals:
      description: ARNs of the principals attached to the thing, usually certificates.
      returned: always
      type: list
      elements: str
      sample: ["arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"]
    certificates:
      description: The certificates among the principals, in the order of RV(things[].principals).
      returned: always
      type: list
      elements: dict
      contains:
        certificate_id:
          description: ID of the certificate.
          returned: always
          type: str
          sample: 3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
        certificate_arn:
          description: ARN of the certificate.
          returned: always
          type: str
          sample: arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9
        status:
          description: Status of the certificate, such as V(ACTIVE), V(INACTIVE) or V(REVOKED).
          returned: when O(certificates=true) and the certificate exists
          type: str
          sample: ACTIVE
        creation_date:
          description: When the certificate was created, in ISO 8601 format.
          returned: when O(certificates=true) and the certificate exists
          type: str
          sample: "2026-04-01T09:30:00+00:00"
        not_after:
          description: End of the certificate's validity, in ISO 8601 format.
          returned: when O(certificates=true), the certificate exists and AWS IoT reports its validity
          type: str
          sample: "2049-12-31T23:59:59+00:00"
error:
  description: Details of the AWS API call that failed.
  returned: when an AWS API call fails
  type: dict
  sample: {"operation": "ListThings", "code": "ThrottlingException", "http_status": 400,
           "message": "Rate exceeded", "request_id": "0c1d2e3f"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    call,
    client_from_module,
    paginate,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_registry import read_certificate_description
from ansible_collections.soracom.krypton.plugins.module_utils._iot_things import (
    THING_NAME_RE,
    certificate_id_from_arn,
    format_thing,
    summarize_certificate,
)


def list_thing_entries(client, params):
    """Return the DescribeThing or ListThings entries of the requested things, sorted by name."""
    if params["names"] is not None:
        entries = []
        for name in sorted(set(params["names"])):
            try:
                entries.append(call(client, "describe_thing", thingName=name))
            except AwsError as e:
                if not e.is_not_found:
                    raise
        return entries

    filters = {}
    if params["attribute_name"] is not None:
        filters.update(attributeName=params["attribute_name"], attributeValue=params["attribute_value"])
    if params["thing_type_name"] is not None:
        filters["thingTypeName"] = params["thing_type_name"]
    entries = paginate(client, "list_things", "things", **filters)
    prefix = params["name_prefix"] or ""
    return sorted((entry for entry in entries if entry["thingName"].startswith(prefix)), key=lambda entry: entry["thingName"])


def describe_certificates(client, principals, with_details, cache):
    """Return the certificate entries for the certificate ARNs among principals.

    cache maps certificate IDs to DescribeCertificate descriptions (or None),
    so a certificate shared by several things is read once.
    """
    result = []
    for arn in principals:
        certificate_id = certificate_id_from_arn(arn)
        if certificate_id is None:
            continue
        entry = dict(certificate_id=certificate_id, certificate_arn=arn)
        if with_details:
            if certificate_id not in cache:
                cache[certificate_id] = read_certificate_description(client, certificate_id)
            description = cache[certificate_id]
            if description is not None:
                summary = summarize_certificate(description)
                summary.pop("certificate_id")
                summary.pop("certificate_arn")
                entry.update(summary)
        result.append(entry)
    return result


def gather_things(client, params):
    """Return the RV(things) list."""
    things = []
    cache = {}
    for entry in list_thing_entries(client, params):
        try:
            principals = paginate(client, "list_thing_principals", "principals", thingName=entry["thingName"])
        except AwsError as e:
            # Deleted by another client since it was listed.
            if e.is_not_found:
                continue
            raise
        thing = format_thing(entry, principals)
        thing["certificates"] = describe_certificates(client, thing["principals"], params["certificates"], cache)
        things.append(thing)
    return things


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        names=dict(type="list", elements="str"),
        name_prefix=dict(type="str"),
        attribute_name=dict(type="str"),
        attribute_value=dict(type="str"),
        thing_type_name=dict(type="str"),
        certificates=dict(type="bool", default=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[
            ("names", "name_prefix"),
            ("names", "attribute_name"),
            ("names", "thing_type_name"),
        ],
        required_together=[("attribute_name", "attribute_value")],
        supports_check_mode=True,
    )
    params = module.params

    invalid = [name for name in params["names"] or [] if not THING_NAME_RE.match(name)]
    if invalid:
        module.fail_json(
            msg="Invalid thing name(s) in names: %s. Use 1 to 128 letters, digits or the characters :_-"
                % ", ".join("'%s'" % name for name in invalid)
        )

    client = client_from_module(module, "iot")
    try:
        things = gather_things(client, params)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())
    module.exit_json(changed=False, things=things)


if __name__ == "__main__":
    main()
