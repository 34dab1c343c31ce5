# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic for AWS IoT things and certificates: IDs and ARNs, attributes, delete plans and diffs.

Nothing here calls AWS, so unit tests use it without boto3 or AnsibleModule.
A plan is a list of (client method, parameters) pairs that a caller runs in order.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import re

from ansible_collections.soracom.krypton.plugins.module_utils._aws import iso_date

# The ID of an AWS IoT certificate is the SHA-256 of its DER encoding, as 64 hexadecimal digits.
CERTIFICATE_ID_RE = re.compile(r"^[0-9a-fA-F]{64}$")
CERTIFICATE_ARN_RE = re.compile(
    r"^arn:(?P<partition>[a-z0-9-]+):iot:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):cert/(?P<id>[0-9a-fA-F]{64})$"
)

# Name and value rules of the AWS IoT registry API (botocore's iot service model,
# shapes ThingName, AttributeName and AttributeValue).
THING_NAME_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
ATTRIBUTE_NAME_RE = re.compile(r"^[a-zA-Z0-9_.,@/:#-]{1,128}$")
ATTRIBUTE_VALUE_RE = re.compile(r"^[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}$")

# Certificate status values of the AWS IoT API.
ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
REVOKED = "REVOKED"


class CertificateReferenceError(ValueError):
    """A certificate_id option value that is neither a certificate ID nor a certificate ARN."""


class ThingAttributeError(ValueError):
    """An attribute name or value that the AWS IoT registry would reject."""


def parse_certificate_reference(value):
    """Return (certificate ID, region or None) for a certificate ID or certificate ARN.

    The ID is returned in lower case, the form AWS IoT uses. The region is
    None when value is a bare ID. Raise CertificateReferenceError otherwise.
    """
    text = (value or "").strip()
    if CERTIFICATE_ID_RE.match(text):
        return text.lower(), None
    match = CERTIFICATE_ARN_RE.match(text)
    if match:
        return match.group("id").lower(), match.group("region")
    raise CertificateReferenceError(
        "Invalid certificate_id '%s': expected the 64 hexadecimal digits of an AWS IoT certificate ID, or a "
        "certificate ARN such as arn:aws:iot:ap-northeast-1:123456789012:cert/<certificate ID>." % value
    )


def certificate_id_from_arn(arn):
    """Return the certificate ID of a certificate ARN, or None for any other principal."""
    match = CERTIFICATE_ARN_RE.match(arn or "")
    return match.group("id").lower() if match else None


def _attribute_text(name, value):
    # Booleans first, because bool is a subclass of int.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise ThingAttributeError(
        "Invalid value for attribute '%s': expected a string, number or boolean, not %s." % (name, type(value).__name__)
    )


def normalize_attributes(attributes):
    """Return the requested thing attributes as a dict of strings.

    None stays None, which means "leave the attributes alone". Numbers and
    booleans become strings ("42", "true"), and a null value becomes "", which
    removes the attribute. Raise ThingAttributeError on names or values that
    AWS IoT rejects.
    """
    if attributes is None:
        return None
    result = {}
    for name, value in attributes.items():
        name = str(name)
        if not ATTRIBUTE_NAME_RE.match(name):
            raise ThingAttributeError(
                "Invalid attribute name '%s': use 1 to 128 letters, digits or the characters _.,@/:#-" % name
            )
        text = _attribute_text(name, value)
        if not ATTRIBUTE_VALUE_RE.match(text):
            raise ThingAttributeError(
                "Invalid value '%s' for attribute '%s': use up to 800 letters, digits or the characters "
                "_.,@/:#=[]-" % (text, name)
            )
        result[name] = text
    return result


def plan_attribute_update(current, requested, purge):
    """Return the attributes to send to UpdateThing with merge on, or {} when nothing changes.

    current is the thing's attributes and requested the normalized option
    value (None leaves everything alone, even with purge). An empty value in
    the result removes that attribute, which is how UpdateThing deletes one.
    With purge, attributes that are not requested are removed too.
    """
    if requested is None:
        return {}
    current = current or {}
    update = {}
    for name, value in requested.items():
        if value == "":
            if name in current:
                update[name] = ""
        elif current.get(name) != value:
            update[name] = value
    if purge:
        for name in current:
            if name not in requested:
                update[name] = ""
    return update


def apply_attribute_update(current, update):
    """Return the attributes a thing has after UpdateThing merges update into current."""
    result = dict(current or {})
    for name, value in update.items():
        if value == "":
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _deactivation_step(certificate_id, status):
    if status != ACTIVE:
        return []
    return [("update_certificate", dict(certificateId=certificate_id, newStatus=INACTIVE))]


def _detach_and_delete_steps(certificate_id, certificate_arn, policy_names, thing_names):
    plan = [("detach_policy", dict(policyName=name, target=certificate_arn)) for name in sorted(policy_names)]
    plan.extend(
        ("detach_thing_principal", dict(thingName=name, principal=certificate_arn)) for name in sorted(thing_names)
    )
    plan.append(("delete_certificate", dict(certificateId=certificate_id)))
    return plan


def build_certificate_delete_plan(certificate_id, certificate_arn, status, policy_names, thing_names):
    """Return the calls that delete a certificate, in order.

    DeleteCertificate fails while the certificate is ACTIVE or attached to a
    policy or thing. An ACTIVE certificate is set INACTIVE first, so a run cut
    off after a detachment never leaves an ACTIVE certificate that no thing
    lists. Then every policy and thing is detached. REVOKED and INACTIVE
    certificates keep their status.
    """
    return (
        _deactivation_step(certificate_id, status)
        + _detach_and_delete_steps(certificate_id, certificate_arn, policy_names, thing_names)
    )


def split_certificates_by_use(thing_name, principal_things):
    """Split a thing's certificates into those only it uses and those other things use too.

    principal_things maps each certificate ARN to the names of all things it
    is attached to. Return (ARNs used only by thing_name, {ARN: other thing
    names}), both sorted.
    """
    unused = []
    shared = {}
    for arn in sorted(principal_things):
        others = sorted(name for name in principal_things[arn] if name != thing_name)
        if others:
            shared[arn] = others
        else:
            unused.append(arn)
    return unused, shared


def build_thing_delete_plan(thing_name, principals, certificates):
    """Return the calls that delete a thing and, optionally, some of its certificates.

    principals are the ARNs attached to the thing. certificates are the
    certificate states to delete (dicts with certificate_id, certificate_arn,
    status and policies), each attached to no other thing. They are all set
    INACTIVE first, then each is detached from its policies and the thing and
    deleted, and the remaining principals are detached last. A run cut off
    part way thus leaves every certificate either still attached to the thing,
    where the next run finds it, or INACTIVE.
    """
    plan = []
    for certificate in certificates:
        plan.extend(_deactivation_step(certificate["certificate_id"], certificate["status"]))
    deleted_arns = set()
    for certificate in certificates:
        arn = certificate["certificate_arn"]
        things = [thing_name] if arn in principals else []
        plan.extend(_detach_and_delete_steps(certificate["certificate_id"], arn, certificate["policies"], things))
        deleted_arns.add(arn)
    plan.extend(
        ("detach_thing_principal", dict(thingName=thing_name, principal=arn))
        for arn in sorted(principals)
        if arn not in deleted_arns
    )
    plan.append(("delete_thing", dict(thingName=thing_name)))
    return plan


def describe_step(method, params):
    """Return a readable description of one plan step, such as "delete certificate 3f2a..."."""
    certificate = params.get("certificateId")
    for key in ("target", "principal"):
        if certificate is None and params.get(key):
            certificate = certificate_id_from_arn(params[key]) or params[key]
    if method == "detach_policy":
        return "detach policy '%s' from certificate %s" % (params["policyName"], certificate)
    if method == "detach_thing_principal":
        return "detach principal %s from thing '%s'" % (certificate, params["thingName"])
    if method == "update_certificate":
        return "set certificate %s to %s" % (certificate, params["newStatus"])
    if method == "delete_certificate":
        return "delete certificate %s" % certificate
    if method == "delete_thing":
        return "delete thing '%s'" % params["thingName"]
    if method == "create_thing":
        return "create thing '%s'" % params["thingName"]
    if method == "update_thing":
        return "update the attributes of thing '%s'" % params["thingName"]
    return "%s %s" % (method, params)


def step_failure_message(method, params, error, still_attached=False, steps_done=0):
    """Return the error message for a failed plan step, with what the user can do next.

    error is the AwsError of the call. still_attached marks a delete that kept
    failing because AWS IoT still listed an attachment after the retries.
    steps_done is the number of plan steps that succeeded before this one.
    """
    message = "Failed to %s: %s." % (describe_step(method, params), error.message.rstrip("."))
    if steps_done:
        message += " The %d step(s) before it were done." % steps_done
    if still_attached:
        advice = (
            "AWS IoT applies detachments asynchronously and still reported an attachment after the retries. "
            "Run the task again in a minute."
        )
    elif error.code == "CertificateStateException":
        advice = (
            "The certificate's status does not allow this. A certificate in PENDING_TRANSFER needs its transfer "
            "cancelled or rejected first, and the status of a REVOKED certificate cannot be changed."
        )
    elif error.is_access_denied or error.is_auth_failure:
        # AwsApiError's message already names the permission or credentials to fix.
        return message
    else:
        advice = "Fix the cause and run the task again."
    return "%s %s" % (message, advice)


def summarize_certificate(description):
    """Return ID, ARN, status, creation date and validity end of a DescribeCertificate description."""
    result = dict(
        certificate_id=description.get("certificateId"),
        certificate_arn=description.get("certificateArn"),
        status=description.get("status"),
        creation_date=iso_date(description.get("creationDate")),
    )
    not_after = (description.get("validity") or {}).get("notAfter")
    if not_after is not None:
        result["not_after"] = iso_date(not_after)
    return result


def format_certificate(description, policies, things):
    """Return the certificate result for a DescribeCertificate description and its attachments."""
    result = summarize_certificate(description)
    result.update(policies=sorted(policies), things=sorted(things))
    return result


def format_thing(description, principals):
    """Return the thing result for a DescribeThing or ListThings entry and its principals."""
    result = dict(
        thing_name=description.get("thingName"),
        thing_arn=description.get("thingArn"),
        attributes=dict(description.get("attributes") or {}),
        version=description.get("version"),
        principals=sorted(principals),
    )
    if description.get("thingId"):
        result["thing_id"] = description["thingId"]
    if description.get("thingTypeName"):
        result["thing_type_name"] = description["thingTypeName"]
    return result


def certificate_diff_view(certificate):
    """Return the part of a certificate result that the diff shows, or {} for no certificate."""
    if not certificate:
        return {}
    return dict(
        certificate_id=certificate["certificate_id"],
        status=certificate["status"],
        policies=list(certificate["policies"]),
        things=list(certificate["things"]),
    )


def predict_certificate_view(before_view, state):
    """Return the diff view of a certificate after the requested state is applied."""
    if not before_view or state == "absent":
        return {}
    after = dict(before_view)
    after["status"] = ACTIVE if state == "active" else INACTIVE
    return after


def thing_diff_view(thing):
    """Return the part of a thing result that the diff shows, or {} for no thing."""
    if not thing:
        return {}
    return dict(thing_name=thing["thing_name"], attributes=dict(thing["attributes"]), principals=list(thing["principals"]))


def predict_thing_view(name, before_view, attribute_update):
    """Return the diff view of a thing after a present run creates it or merges attribute_update."""
    if before_view:
        after = dict(before_view)
        after["attributes"] = apply_attribute_update(before_view["attributes"], attribute_update)
        return after
    return dict(thing_name=name, attributes=apply_attribute_update({}, attribute_update), principals=[])
