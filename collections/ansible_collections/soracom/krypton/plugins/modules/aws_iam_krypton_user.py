#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: aws_iam_krypton_user
short_description: Manage the IAM user and access key that SORACOM Krypton uses for AWS IoT
version_added: 0.1.0
description:
  - Creates or deletes an IAM user whose access key SORACOM Krypton stores in a SORACOM credential set
    and uses to create things and certificates in AWS IoT Core.
  - With O(policy_mode=least_privilege), the default, the user gets one inline policy that allows only the AWS IoT
    calls of Krypton's bootstrap. C(iot:CreateThing) and C(iot:DescribeThing) on the things of the account and
    region whose names start with O(thing_name_prefix), C(iot:CreateKeysAndCertificate) (which supports no
    resource-level permissions), C(iot:AttachPolicy) and C(iot:AttachPrincipalPolicy) on the certificates of the
    account and region, and C(iot:AttachThingPrincipal) on those things and certificates.
  - The account ID in that document comes from STS C(GetCallerIdentity), and the region is O(region).
  - With O(policy_mode=hands_on), the user gets what the SORACOM hands-on gives it, that is the AWS managed policy
    C(AWSIoTThingsRegistration) and an inline policy that allows C(iot:CreateKeysAndCertificate), which the managed
    policy does not include. The module then warns that this grants more than Krypton needs.
  - AWS authorizes C(iot:AttachPolicy) against the certificate, not against the IoT policy, and IAM offers no
    condition key for the policy name. So in both modes the key can attach any IoT policy of the account to a
    certificate.
  - The user keeps exactly one access key. The module creates one when the user has none and keeps an
    existing one otherwise, unless O(replace_access_key=true).
  - The secret access key can only be read in the response that creates the key, so it is returned
    only by the run that creates the key.
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
      - In check mode the module reads the user, its policies and its access keys and reports whether
        anything would change, but writes nothing and creates no access key.
      - RV(user), RV(policies) and RV(access_key) then describe the user as it is now.
  diff_mode:
    support: full
    details:
      - The diff shows the user's path, managed policy ARNs, inline policy names, the document of the inline policy
        O(inline_policy_name) and the access key IDs. It never contains a secret access key.
  idempotent:
    support: partial
    details:
      - With O(replace_access_key=true) every run creates a new access key and reports a change.
options:
  name:
    description:
      - Name of the IAM user.
      - Up to 64 characters from letters, digits and V(_+=,.@-).
    type: str
    required: true
  path:
    description:
      - IAM path of the user. It must begin and end with V(/).
      - The path of an existing user is updated to this value.
    type: str
    default: /
  policy_mode:
    description:
      - Which permissions the user gets.
      - V(least_privilege) writes one inline policy that allows only Krypton's bootstrap calls, and detaches
        O(managed_policy_arn) when it is attached, as an earlier V(hands_on) run or an earlier version of this module
        left it. Other managed policies stay attached.
      - V(hands_on) attaches O(managed_policy_arn) and writes the inline policy that allows
        C(iot:CreateKeysAndCertificate), as the SORACOM hands-on does, and warns that this allows more than Krypton
        needs.
      - V(least_privilege) needs a region, from O(region), the environment or the profile.
    type: str
    choices: [least_privilege, hands_on]
    default: least_privilege
  thing_name_prefix:
    description:
      - With O(policy_mode=least_privilege), Krypton may create and attach only things whose names start with this
        prefix.
      - Use the part of the SIM group's thing name pattern before C($imsi), for example V(krypton-) for
        C(krypton-$imsi). Devices that send their own thing name to Krypton must use names with this prefix.
      - The empty string, the default, allows every thing in the account and region.
      - Up to 127 letters, digits and the characters V(:_-).
      - Ignored with O(policy_mode=hands_on).
    type: str
    default: ""
  managed_policy_arn:
    description:
      - ARN of the managed policy that O(policy_mode=hands_on) attaches and O(policy_mode=least_privilege) detaches.
      - Defaults to C(arn:<partition>:iam::aws:policy/service-role/AWSIoTThingsRegistration), where
        C(<partition>) is the partition of O(region), such as C(aws) or C(aws-cn). Note the
        C(service-role/) part of the path.
      - Managed policies attached to the user by other means are left attached.
    type: str
  inline_policy_name:
    description:
      - Name of the inline policy that the module writes.
      - Defaults to V(KryptonProvisioning) with O(policy_mode=least_privilege) and to
        V(KryptonCreateKeysAndCertificate) with O(policy_mode=hands_on).
      - The document of an existing inline policy with this name is replaced when it differs.
      - When the user has an inline policy under the default name of the other O(policy_mode), the module deletes it,
        so switching the mode leaves no policy of the old mode behind.
    type: str
  replace_access_key:
    description:
      - If V(true), create a new access key and then delete all older keys of the user, so the new
        secret is returned.
      - If V(false), keep the existing access key. When the user has more than one access key the module
        fails and lists them, because it cannot tell which one SORACOM Krypton uses.
      - An IAM user can have at most two access keys. With two keys, the inactive or older one is deleted
        before the new key is created.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or updates the user, its policies and its access key.
      - V(absent) deletes all access keys of the user, detaches all its managed policies, deletes all its
        inline policies and then deletes the user.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Set the C(no_log) task keyword to V(true), because RV(access_key.secret_access_key) is returned when a key
    is created.
  - Store the secret at once, for example in a SORACOM credential set with M(soracom.krypton.soracom_credential).
    AWS cannot show it again, and the only way to get a new secret is O(replace_access_key=true).
  - Krypton's bootstrap calls C(DescribeThing), C(CreateThing) when the thing does not exist,
    C(CreateKeysAndCertificate), C(AttachPolicy) and C(AttachThingPrincipal) with the key. These are the calls the
    O(policy_mode=least_privilege) document is built for.
  - O(state=absent) fails if the user still has a console password, MFA devices, signing certificates,
    SSH public keys, service-specific credentials or group memberships. Remove them first.
seealso:
  - module: soracom.krypton.aws_iot_policy
  - module: soracom.krypton.soracom_credential
  - name: Actions, resources, and condition keys for AWS IoT
    description: Which resource each AWS IoT action is authorized against.
    link: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html
  - name: AWSIoTThingsRegistration managed policy
    description: The permissions the managed policy of O(policy_mode=hands_on) grants.
    link: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSIoTThingsRegistration.html
  - name: Managing access keys for IAM users
    description: Why a secret access key can be read only when it is created.
    link: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html
"""

EXAMPLES = r"""
# AWS credentials come from the environment or from module_defaults for
# group/soracom.krypton.aws in these examples.

- name: Create the IAM user for SORACOM Krypton with one access key and least privilege
  soracom.krypton.aws_iam_krypton_user:
    name: soracom-krypton
    region: ap-northeast-1
    # The SIM group's thing name pattern is krypton-$imsi.
    thing_name_prefix: krypton-
  register: krypton_user
  no_log: true

- name: Store the new key in the SORACOM credential set (only when a key was just created)
  soracom.krypton.soracom_credential:
    credential_id: krypton-aws-iot
    type: aws-credentials
    access_key_id: "{{ krypton_user.access_key.access_key_id }}"
    secret_access_key: "{{ krypton_user.access_key.secret_access_key }}"
  when: krypton_user.access_key.secret_access_key is defined
  no_log: true

- name: Rotate the access key (pass the same policy options as above, or the policy changes too)
  soracom.krypton.aws_iam_krypton_user:
    name: soracom-krypton
    region: ap-northeast-1
    thing_name_prefix: krypton-
    replace_access_key: true
  register: rotated_user
  no_log: true

- name: Give the user the permissions of the SORACOM hands-on instead (warns that they are broader)
  soracom.krypton.aws_iam_krypton_user:
    name: soracom-krypton
    policy_mode: hands_on

- name: Delete the user, its access keys and its policies
  soracom.krypton.aws_iam_krypton_user:
    name: soracom-krypton
    state: absent
"""

RETURN = r"""
user:
  description:
    - The IAM user. In check mode, the user as it is now.
    - An empty dictionary when the user does not exist, that is after O(state=absent), or in check mode
      when the user would be created.
  returned: success
  type: complex
  contains:
    user_name:
      description: Name of the user.
      returned: when the user exists
      type: str
      sample: soracom-krypton
    user_id:
      description: Unique ID of the user.
      returned: when the user exists
      type: str
      sample: AIDA2EXAMPLEUSERID000
    arn:
      description: ARN of the user.
      returned: when the user exists
      type: str
      sample: arn:aws:iam::123456789012:user/soracom-krypton
    path:
      description: IAM path of the user.
      returned: when the user exists
      type: str
      sample: /
access_key:
  description:
    - The user's access key.
    - An empty dictionary when the user has no key, that is after O(state=absent), or in check mode when a
      key would be created.
  returned: success, and also on failure after a key was created
  type: complex
  contains:
    access_key_id:
      description: ID of the access key.
      returned: when the user has an access key
      type: str
      sample: AKIA2EXAMPLEKEYID000
    status:
      description: V(Active) or V(Inactive).
      returned: when the user has an access key
      type: str
      sample: Active
    create_date:
      description: When the key was created, in ISO 8601 format.
      returned: when the user has an access key
      type: str
      sample: "2026-04-01T09:30:00+00:00"
    secret_access_key:
      description:
        - The secret access key.
        - AWS returns it only when the key is created, so later runs cannot return it.
      returned: only when this run created the key
      type: str
      sample: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
policies:
  description: Policies of the user. In check mode, the policies as they are now.
  returned: success
  type: complex
  contains:
    managed_policy_arns:
      description: ARNs of all managed policies attached to the user.
      returned: success
      type: list
      elements: str
      sample: []
    inline_policy_names:
      description: Names of all inline policies of the user.
      returned: success
      type: list
      elements: str
      sample: ["KryptonProvisioning"]
    inline_policy_document:
      description:
        - Document of the inline policy O(inline_policy_name). V(null) when the user has no such policy.
      returned: success
      type: dict
      sample: {"Version": "2012-10-17", "Statement": [{"Sid": "CreateCertificates", "Effect": "Allow",
               "Action": "iot:CreateKeysAndCertificate", "Resource": "*"}]}
    policy_mode:
      description: The O(policy_mode) of this run.
      returned: success
      type: str
      sample: least_privilege
error:
  description: Details of the AWS API call that failed.
  returned: when an AWS API call fails
  type: dict
  sample: {"operation": "CreateAccessKey", "code": "LimitExceeded", "http_status": 409,
           "message": "Cannot exceed quota for AccessKeysPerUser: 2", "request_id": "0c1d2e3f"}
"""

import json
import re
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsError,
    aws_argument_spec,
    call,
    client_from_module,
    iso_date,
    paginate,
    partition_for_region,
)
from ansible_collections.soracom.krypton.plugins.module_utils._iot_policy import policy_documents_equal
from ansible_collections.soracom.krypton.plugins.module_utils._krypton_iam import (
    DEFAULT_INLINE_POLICY_NAMES,
    HANDS_ON_INLINE_DOCUMENT,
    POLICY_MODES,
    hands_on_managed_policy_arn,
    hands_on_warning,
    least_privilege_document,
    validate_thing_name_prefix,
)

# An IAM user can have at most this many access keys.
MAX_ACCESS_KEYS = 2

USER_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
# Names of inline policies: PutUserPolicy allows these characters, 1 to 128 of them.
INLINE_POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
# IAM paths: "/" or "/" + printable ASCII + "/", up to 512 characters.
PATH_RE = re.compile(r"^/(?:[\x21-\x7e]*/)?$")

# Shown in check-mode diffs in place of the ID of a key that would be created.
NEW_KEY_PLACEHOLDER = "(new access key)"


class TooManyAccessKeysError(AwsError):
    """The user has several access keys and replace_access_key is false."""

    def __init__(self, name, key_ids):
        self.key_ids = key_ids
        super().__init__(
            "IAM user '%s' has %d access keys (%s), but the module keeps exactly one and cannot tell which one "
            "SORACOM Krypton uses. Set replace_access_key=true to create a new key and delete these, or delete "
            "the unused key yourself." % (name, len(key_ids), ", ".join(key_ids))
        )


class KeyCreatedError(AwsError):
    """Failure after a new access key was created. The result carries the new key, so its secret is not lost."""

    def __init__(self, error, access_key):
        self.access_key = access_key
        super().__init__(
            "%s The new access key %s was created before this failure; its secret is in the access_key "
            "result of this task." % (error.message, access_key.get("access_key_id"))
        )
        self.cause = error

    def fail_kwargs(self):
        kwargs = self.cause.fail_kwargs()
        kwargs.update(msg=self.message, access_key=self.access_key, changed=True)
        return kwargs


def _created_at(key):
    created = key.get("CreateDate")
    return created.timestamp() if isinstance(created, datetime) else 0.0


def plan_access_keys(name, keys, replace):
    """Decide what happens to the access keys of a user.

    keys is the AccessKeyMetadata list of ListAccessKeys. Return a dict with
    delete_before (IDs to delete before creating, to stay under the limit of
    two keys), create (bool), delete_after (IDs to delete after creating) and
    keep (the metadata of the key that stays, or None).
    """
    plan = dict(delete_before=[], create=False, delete_after=[], keep=None)
    if replace:
        # Inactive keys first, then the oldest, so the key most likely in use is deleted last.
        ordered = sorted(keys, key=lambda key: (key.get("Status") == "Active", _created_at(key)))
        room_needed = max(0, len(ordered) - (MAX_ACCESS_KEYS - 1))
        plan["delete_before"] = [key["AccessKeyId"] for key in ordered[:room_needed]]
        plan["delete_after"] = [key["AccessKeyId"] for key in ordered[room_needed:]]
        plan["create"] = True
    elif not keys:
        plan["create"] = True
    elif len(keys) == 1:
        plan["keep"] = keys[0]
    else:
        raise TooManyAccessKeysError(name, [key["AccessKeyId"] for key in keys])
    return plan


def read_user(client, name, inline_policy_name):
    """Return the current state of the user, or None when it does not exist."""
    try:
        user = call(client, "get_user", UserName=name)["User"]
    except AwsError as e:
        if e.is_not_found:
            return None
        raise

    inline_document = None
    try:
        inline_document = call(client, "get_user_policy", UserName=name, PolicyName=inline_policy_name)["PolicyDocument"]
    except AwsError as e:
        if not e.is_not_found:
            raise
    return dict(
        user=user,
        managed_policy_arns=[
            policy["PolicyArn"] for policy in paginate(client, "list_attached_user_policies", "AttachedPolicies", UserName=name)
        ],
        inline_policy_names=paginate(client, "list_user_policies", "PolicyNames", UserName=name),
        inline_document=inline_document,
        access_keys=paginate(client, "list_access_keys", "AccessKeyMetadata", UserName=name),
    )


def describe_user(state):
    if not state:
        return {}
    user = state["user"]
    return dict(user_name=user.get("UserName"), user_id=user.get("UserId"), arn=user.get("Arn"), path=user.get("Path"))


def describe_policies(state, policy_mode=None):
    if not state:
        return dict(managed_policy_arns=[], inline_policy_names=[], inline_policy_document=None, policy_mode=policy_mode)
    return dict(
        managed_policy_arns=sorted(state["managed_policy_arns"]),
        inline_policy_names=sorted(state["inline_policy_names"]),
        inline_policy_document=state["inline_document"],
        policy_mode=policy_mode,
    )


def describe_access_key(key, secret=None):
    if not key:
        return {}
    result = dict(access_key_id=key.get("AccessKeyId"), status=key.get("Status"), create_date=iso_date(key.get("CreateDate")))
    if secret is not None:
        result["secret_access_key"] = secret
    return result


def diff_view(state):
    """Return the secret-free view of a user state that the diff shows."""
    if not state:
        return {}
    return dict(
        user_name=state["user"].get("UserName"),
        path=state["user"].get("Path"),
        managed_policy_arns=sorted(state["managed_policy_arns"]),
        inline_policy_names=sorted(state["inline_policy_names"]),
        inline_policy_document=state["inline_document"],
        access_key_ids=sorted(key["AccessKeyId"] for key in state["access_keys"]),
    )


def plan_policies(before, params, document):
    """Decide which policy changes a present run makes. Return a dict of flags and names.

    The keys are attach_managed, detach_managed, put_inline (bool) and
    delete_inline (names of inline policies that the other policy mode wrote).
    """
    managed_policy_arn = params["managed_policy_arn"]
    inline_policy_name = params["inline_policy_name"]
    hands_on = params["policy_mode"] == "hands_on"
    managed = set(before["managed_policy_arns"]) if before else set()
    inline = set(before["inline_policy_names"]) if before else set()
    current_document = before["inline_document"] if before else None

    # The other mode's inline policy, under its default name, is this module's own leftover.
    other_mode = "least_privilege" if hands_on else "hands_on"
    stale_name = DEFAULT_INLINE_POLICY_NAMES[other_mode]
    return dict(
        attach_managed=hands_on and managed_policy_arn not in managed,
        detach_managed=not hands_on and managed_policy_arn in managed,
        put_inline=current_document is None or not policy_documents_equal(current_document, document),
        delete_inline=[stale_name] if stale_name != inline_policy_name and stale_name in inline else [],
    )


def predict_diff_after(before, params, document, policy_plan, key_plan):
    """Return the diff view of the user after a present run that has not happened yet (check mode)."""
    key_ids = []
    if before:
        removed = set(key_plan["delete_before"]) | set(key_plan["delete_after"])
        key_ids = [key["AccessKeyId"] for key in before["access_keys"] if key["AccessKeyId"] not in removed]
    if key_plan["create"]:
        key_ids.append(NEW_KEY_PLACEHOLDER)
    managed = set(before["managed_policy_arns"]) if before else set()
    inline = set(before["inline_policy_names"]) if before else set()
    if policy_plan["attach_managed"]:
        managed.add(params["managed_policy_arn"])
    if policy_plan["detach_managed"]:
        managed.discard(params["managed_policy_arn"])
    inline = (inline | {params["inline_policy_name"]}) - set(policy_plan["delete_inline"])
    return dict(
        user_name=params["name"],
        path=params["path"],
        managed_policy_arns=sorted(managed),
        inline_policy_names=sorted(inline),
        inline_policy_document=document,
        access_key_ids=sorted(key_ids),
    )


def apply_policies(client, name, params, document, policy_plan):
    """Apply ``policy_plan``: attach the managed policy, write the inline policy, then remove what the other mode left."""
    if policy_plan["attach_managed"]:
        call(client, "attach_user_policy", UserName=name, PolicyArn=params["managed_policy_arn"])
    if policy_plan["put_inline"]:
        call(
            client,
            "put_user_policy",
            UserName=name,
            PolicyName=params["inline_policy_name"],
            PolicyDocument=json.dumps(document, separators=(",", ":")),
        )
    # Remove the old permissions only after the new document is in place, so Krypton keeps the ones it uses.
    if policy_plan["detach_managed"]:
        call(client, "detach_user_policy", UserName=name, PolicyArn=params["managed_policy_arn"])
    for policy_name in policy_plan["delete_inline"]:
        call(client, "delete_user_policy", UserName=name, PolicyName=policy_name)


def ensure_present(client, params, check_mode, document):
    """Create or update the user, its policies and its access key. Return the result fields.

    ``document`` is the inline policy document that the user gets under
    ``params["inline_policy_name"]``.
    """
    name = params["name"]
    path = params["path"]
    inline_policy_name = params["inline_policy_name"]

    before = read_user(client, name, inline_policy_name)
    key_plan = plan_access_keys(name, before["access_keys"] if before else [], params["replace_access_key"])
    policy_plan = plan_policies(before, params, document)

    create_user = before is None
    update_path = not create_user and before["user"].get("Path") != path
    policies_change = (policy_plan["attach_managed"] or policy_plan["detach_managed"] or policy_plan["put_inline"]
                       or bool(policy_plan["delete_inline"]))
    changed = create_user or update_path or policies_change or key_plan["create"]

    result = dict(changed=changed, before=diff_view(before), warnings=[])
    if params["policy_mode"] == "hands_on":
        result["warnings"].append(hands_on_warning(params["managed_policy_arn"]))
    if check_mode:
        result.update(
            after=predict_diff_after(before, params, document, policy_plan, key_plan),
            user=describe_user(before),
            policies=describe_policies(before, params["policy_mode"]),
            access_key=describe_access_key(key_plan["keep"]),
        )
        return result

    if create_user:
        call(client, "create_user", UserName=name, Path=path)
    elif update_path:
        call(client, "update_user", UserName=name, NewPath=path)
    apply_policies(client, name, params, document, policy_plan)

    access_key = describe_access_key(key_plan["keep"])
    if key_plan["create"]:
        for key_id in key_plan["delete_before"]:
            call(client, "delete_access_key", UserName=name, AccessKeyId=key_id)
        created = call(client, "create_access_key", UserName=name)["AccessKey"]
        access_key = describe_access_key(created, secret=created["SecretAccessKey"])
        try:
            for key_id in key_plan["delete_after"]:
                call(client, "delete_access_key", UserName=name, AccessKeyId=key_id)
            after = read_user(client, name, inline_policy_name)
        except AwsError as e:
            raise KeyCreatedError(e, access_key) from e
    else:
        after = read_user(client, name, inline_policy_name)

    if access_key.get("status") == "Inactive":
        result["warnings"].append(
            "The access key %s of IAM user '%s' is Inactive, so SORACOM Krypton cannot use it. Activate it, "
            "or set replace_access_key=true to create a new one." % (access_key["access_key_id"], name)
        )
    result.update(
        after=diff_view(after),
        user=describe_user(after),
        policies=describe_policies(after, params["policy_mode"]),
        access_key=access_key,
    )
    return result


def ensure_absent(client, params, check_mode):
    """Delete the user with its access keys and policies. Return the result fields."""
    name = params["name"]
    before = read_user(client, name, params["inline_policy_name"])
    result = dict(changed=before is not None, before=diff_view(before), after={}, warnings=[],
                  user={}, policies=describe_policies(None, params["policy_mode"]), access_key={})
    if before is None or check_mode:
        if check_mode and before is not None:
            result.update(user=describe_user(before), policies=describe_policies(before, params["policy_mode"]))
        return result

    for key in before["access_keys"]:
        call(client, "delete_access_key", UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy_arn in before["managed_policy_arns"]:
        call(client, "detach_user_policy", UserName=name, PolicyArn=policy_arn)
    for policy_name in before["inline_policy_names"]:
        call(client, "delete_user_policy", UserName=name, PolicyName=policy_name)
    try:
        call(client, "delete_user", UserName=name)
    except AwsError as e:
        if e.is_not_found:
            return result
        if e.code == "DeleteConflict":
            raise AwsError(
                "%s IAM user '%s' still has other attached entities. Remove its console password, MFA devices, "
                "signing certificates, SSH public keys, service-specific credentials and group memberships, then "
                "run again." % (e.message, name)
            ) from e
        raise
    return result


def validate_params(params):
    """Return an error message for invalid option values, or None."""
    if not USER_NAME_RE.match(params["name"]):
        return "Invalid name '%s': use 1 to 64 letters, digits or the characters _+=,.@-" % params["name"]
    path = params["path"]
    if len(path) > 512 or not PATH_RE.match(path):
        return "Invalid path '%s': it must begin and end with '/', for example '/' or '/soracom/'." % path
    arn = params.get("managed_policy_arn")
    if arn is not None and not re.match(r"^arn:[\w-]+:iam::(aws|\d{12}):policy/", arn):
        return (
            "Invalid managed_policy_arn '%s': expected an IAM policy ARN such as "
            "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration." % arn
        )
    inline_policy_name = params.get("inline_policy_name")
    if inline_policy_name is not None and not INLINE_POLICY_NAME_RE.match(inline_policy_name):
        return (
            "Invalid inline_policy_name '%s': use 1 to 128 letters, digits or the characters _+=,.@-"
            % inline_policy_name
        )
    return validate_thing_name_prefix(params.get("thing_name_prefix"))


def least_privilege_document_for(module, params):
    """Build the least-privilege document for the account of the caller and the region of the task.

    The account ID comes from STS GetCallerIdentity, which needs no IAM permission.
    """
    sts = client_from_module(module, "sts")
    region = sts.meta.region_name
    try:
        account_id = call(sts, "get_caller_identity")["Account"]
        partition = partition_for_region(region)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())
    return least_privilege_document(partition, region, account_id, params["thing_name_prefix"])


def main():
    argument_spec = aws_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        path=dict(type="str", default="/"),
        policy_mode=dict(type="str", default="least_privilege", choices=list(POLICY_MODES)),
        thing_name_prefix=dict(type="str", default=""),
        managed_policy_arn=dict(type="str"),
        inline_policy_name=dict(type="str"),
        replace_access_key=dict(type="bool", default=False, no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = dict(module.params)

    message = validate_params(params)
    if message:
        module.fail_json(msg=message)

    client = client_from_module(module, "iam", require_region=False)
    if params["managed_policy_arn"] is None:
        params["managed_policy_arn"] = hands_on_managed_policy_arn(client.meta.partition)
    if params["inline_policy_name"] is None:
        params["inline_policy_name"] = DEFAULT_INLINE_POLICY_NAMES[params["policy_mode"]]

    try:
        if params["state"] == "absent":
            result = ensure_absent(client, params, module.check_mode)
        elif params["policy_mode"] == "hands_on":
            result = ensure_present(client, params, module.check_mode, HANDS_ON_INLINE_DOCUMENT)
        else:
            result = ensure_present(client, params, module.check_mode, least_privilege_document_for(module, params))
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())

    for warning in result.pop("warnings"):
        module.warn(warning)
    before = result.pop("before")
    after = result.pop("after")
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
