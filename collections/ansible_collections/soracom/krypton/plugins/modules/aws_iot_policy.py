#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iot_policy
short_description: Manage an AWS IoT Core policy and its versions
version_added: 0.1.0
description:
  - Creates, updates or deletes an AWS IoT Core policy, such as the policy that SORACOM Krypton attaches
    to every device certificate it creates.
  - A changed document is stored as a new policy version and made the default version.
  - AWS IoT keeps at most five versions of a policy. When five exist, the oldest version that is not
    the default is deleted before the new one is created.
  - A policy that is still attached to certificates or other targets is not deleted. The module fails
    and lists the targets instead.
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
      - In check mode the module reads the policy and reports whether it would change, but writes nothing.
      - RV(policy) then describes the policy as it is now, not as it would be.
  diff_mode:
    support: full
    details:
      - The diff compares the current default policy document with the requested one.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the policy.
      - Up to 128 characters from letters, digits and V(_+=,.@-).
    type: str
    required: true
  policy:
    description:
      - The policy document, as a dictionary or as a JSON string.
      - Documents are compared as JSON values, so key order and whitespace do not matter.
        Lists are compared in order, so reordering the statements or the actions in a statement
        creates a new version.
      - Required when O(state=present).
    type: json
  state:
    description:
      - V(present) creates the policy or makes the requested document its default version.
      - V(absent) deletes the policy with all its versions. It fails if the policy is attached
        to any target.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The document is stored as compact JSON. AWS IoT limits a policy document to 2048 characters.
  - Certificates created by SORACOM Krypton have the policy attached. Before the policy can be deleted,
    the certificates must be detached from it or deleted.
seealso:
  - module: soracom.krypton.aws_iam_krypton_user
  - name: AWS IoT Core policies
    description: How AWS IoT Core policies authorize devices.
    link: https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html
  - name: CreatePolicyVersion API
    description: The five-version limit and the default version.
    link: https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicyVersion.html
"""

EXAMPLES = r"""
# AWS credentials and the region come from the environment or from
# module_defaults for group/soracom.krypton.aws in these examples.

- name: Allow each device to connect as its thing name and publish under its own topic
  soracom.krypton.aws_iot_policy:
    name: SoracomKryptonDevicePolicy
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: iot:Connect
          Resource: "arn:aws:iot:ap-northeast-1:*:client/${iot:Connection.Thing.ThingName}"
        - Effect: Allow
          Action: iot:Publish
          Resource: "arn:aws:iot:ap-northeast-1:*:topic/krypton/${iot:Connection.Thing.ThingName}/*"

- name: Use a policy document kept in a file
  soracom.krypton.aws_iot_policy:
    name: SoracomKryptonDevicePolicy
    policy: "{{ lookup('ansible.builtin.file', 'files/device-policy.json') }}"
    region: ap-northeast-1
  register: device_policy

- name: Show the default version
  ansible.builtin.debug:
    msg: "{{ device_policy.policy.policy_arn }} is at version {{ device_policy.policy.default_version_id }}"

- name: Delete the policy once no certificate uses it
  soracom.krypton.aws_iot_policy:
    name: SoracomKryptonDevicePolicy
    state: absent
"""

RETURN = r"""
policy:
  description:
    - The policy after the run.
    - In check mode, the policy as it is now.
    - An empty dictionary when the policy does not exist, that is after O(state=absent), or in check mode
      when the policy would be created.
  returned: success
  type: complex
  contains:
    policy_name:
      description: Name of the policy.
      returned: when the policy exists
      type: str
      sample: SoracomKryptonDevicePolicy
    policy_arn:
      description: ARN of the policy.
      returned: when the policy exists
      type: str
      sample: arn:aws:iot:ap-northeast-1:123456789012:policy/SoracomKryptonDevicePolicy
    default_version_id:
      description: ID of the default version, the one AWS IoT enforces.
      returned: when the policy exists
      type: str
      sample: "3"
    policy_document:
      description: The document of the default version.
      returned: when the policy exists
      type: dict
      sample: {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}
    versions:
      description: All versions of the policy, oldest first.
      returned: when the policy exists
      type: list
      elements: dict
      contains:
        version_id:
          description: ID of the version.
          type: str
          returned: always
          sample: "3"
        is_default_version:
          description: Whether this is the default version.
          type: bool
          returned: always
          sample: true
        create_date:
          description: When the version was created, in ISO 8601 format.
          type: str
          returned: always
          sample: "2026-04-01T09:30:00+00:00"
targets:
  description:
    - ARNs of the certificates and other targets the policy is attached to.
  returned: when O(state=absent) fails because the policy is attached
  type: list
  elements: str
  sample: ["arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c0e5b..."]
error:
  description: Details of the AWS API call that failed.
  returned: when an AWS API call fails
  type: dict
  sample: {"operation": "CreatePolicyVersion", "code": "VersionsLimitExceededException", "http_status": 409,
           "message": "The policy has the maximum number of versions", "request_id": "0c1d2e3f"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    call,
    client_from_module,
    paginate,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_policy import (
    POLICY_NAME_RE,
    PolicyDocumentError,
    build_delete_plan,
    describe_target,
    format_versions,
    parse_policy_document,
    policy_documents_equal,
    serialize_policy_document,
    version_to_prune,
)


class PolicyInUseError(AwsError):
    """The policy is attached to targets and cannot be deleted."""

    def __init__(self, name, targets):
        self.targets = targets
        described = ", ".join(describe_target(target) for target in targets)
        count = "1 target" if len(targets) == 1 else "%d targets" % len(targets)
        super().__init__(
            "IoT policy '%s' is attached to %s: %s. Detach the policy from them first "
            "(for example with 'aws iot detach-policy --policy-name %s --target <ARN>'), or deactivate "
            "and delete those certificates, then run again." % (name, count, described, name)
        )

    def fail_kwargs(self):
        return dict(msg=self.message, targets=self.targets)


def read_policy(client, name):
    """Return (get_policy response, policy versions), or (None, []) when the policy does not exist."""
    try:
        policy = call(client, "get_policy", policyName=name)
    except AwsError as e:
        if e.is_not_found:
            return None, []
        raise
    versions = call(client, "list_policy_versions", policyName=name).get("policyVersions", [])
    return policy, versions


def current_document(policy):
    """Return the default document of a get_policy response as a dict, or None when it is not a JSON object."""
    try:
        return parse_policy_document(policy.get("policyDocument") or "")
    except PolicyDocumentError:
        return None


def describe_policy(policy, versions):
    """Return the RV(policy) result for a get_policy response and its versions."""
    if policy is None:
        return {}
    document = current_document(policy)
    return dict(
        policy_name=policy.get("policyName"),
        policy_arn=policy.get("policyArn"),
        default_version_id=policy.get("defaultVersionId"),
        policy_document=document if document is not None else policy.get("policyDocument"),
        versions=format_versions(versions),
    )


def ensure_present(client, name, document, check_mode):
    """Create the policy or make document its default version. Return (changed, before, after) policies."""
    policy, versions = read_policy(client, name)
    before = describe_policy(policy, versions)

    if policy is not None:
        current = current_document(policy)
        if current is not None and policy_documents_equal(current, document):
            return False, before, before
    if check_mode:
        return True, before, before

    if policy is None:
        call(client, "create_policy", policyName=name, policyDocument=serialize_policy_document(document))
    else:
        prune_id = version_to_prune(versions)
        if prune_id is not None:
            call(client, "delete_policy_version", policyName=name, policyVersionId=prune_id)
        call(
            client,
            "create_policy_version",
            policyName=name,
            policyDocument=serialize_policy_document(document),
            setAsDefault=True,
        )
    policy, versions = read_policy(client, name)
    return True, before, describe_policy(policy, versions)


def ensure_absent(client, name, check_mode):
    """Delete the policy and its versions unless it is attached. Return (changed, before, after) policies."""
    policy, versions = read_policy(client, name)
    before = describe_policy(policy, versions)
    if policy is None:
        return False, before, {}

    targets = paginate(client, "list_targets_for_policy", "targets", policyName=name)
    if targets:
        raise PolicyInUseError(name, targets)
    if check_mode:
        return True, before, before

    for method, params in build_delete_plan(name, versions):
        try:
            call(client, method, **params)
        except AwsError as e:
            # Another client deleted it in the meantime, which leaves the same end state.
            if not e.is_not_found:
                raise
    return True, before, {}


def build_diff(name, before, requested_document):
    before_diff = {}
    if before:
        before_diff = dict(policy_name=name, policy_document=before.get("policy_document"))
    after_diff = {}
    if requested_document is not None:
        after_diff = dict(policy_name=name, policy_document=requested_document)
    return dict(before=before_diff, after=after_diff)


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        policy=dict(type="json"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["policy"])],
        supports_check_mode=True,
    )
    name = module.params["name"]
    state = module.params["state"]

    if not POLICY_NAME_RE.match(name):
        module.fail_json(
            msg="Invalid policy name '%s': use 1 to 128 letters, digits or the characters _+=,.@-" % name
        )
    document = None
    if state == "present":
        try:
            document = parse_policy_document(module.params["policy"])
        except PolicyDocumentError as e:
            module.fail_json(msg="Invalid value for policy: %s" % e)

    client = client_from_module(module, "iot")
    try:
        if state == "present":
            changed, before, after = ensure_present(client, name, document, module.check_mode)
        else:
            changed, before, after = ensure_absent(client, name, module.check_mode)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())

    result = dict(changed=changed, policy=after)
    if module._diff:
        result["diff"] = build_diff(name, before, document)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
