# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IAM policy documents for the IAM user whose access key SORACOM Krypton uses.

Krypton's bootstrap makes these AWS IoT calls with the key: DescribeThing, CreateThing
when the thing does not exist, CreateKeysAndCertificate, AttachPolicy with the group's
IoT policy on the new certificate, and AttachThingPrincipal of the certificate to the
thing. The least-privilege document allows those calls, and AttachPrincipalPolicy, the
older API with the effect of AttachPolicy on a certificate, and nothing else.

Nothing here calls AWS, so unit tests use it without boto3 or AnsibleModule.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import re

POLICY_MODES = ("least_privilege", "hands_on")

# The AWS managed policy that the SORACOM hands-on attaches. It allows many more
# AWS IoT actions than Krypton uses. Note the service-role/ path.
HANDS_ON_MANAGED_POLICY_RESOURCE = "iam::aws:policy/service-role/AWSIoTThingsRegistration"

# Default inline policy name of each mode. Each mode deletes the other mode's
# inline policy when it finds it under its default name.
DEFAULT_INLINE_POLICY_NAMES = {
    "least_privilege": "KryptonProvisioning",
    "hands_on": "KryptonCreateKeysAndCertificate",
}

# The hands-on's inline policy: the one action that AWSIoTThingsRegistration lacks.
HANDS_ON_INLINE_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:CreateKeysAndCertificate",
            "Resource": "*",
        }
    ],
}

# The AWS IoT actions of Krypton's bootstrap, as the least-privilege document allows them.
KRYPTON_ACTIONS = (
    "iot:AttachPolicy",
    "iot:AttachPrincipalPolicy",
    "iot:AttachThingPrincipal",
    "iot:CreateKeysAndCertificate",
    "iot:CreateThing",
    "iot:DescribeThing",
)

# A thing name prefix contains only characters of thing names (CreateThing allows
# [a-zA-Z0-9:_-], 1 to 128 characters). Neither IAM wildcard (* or ?) can occur in it.
THING_NAME_PREFIX_RE = re.compile(r"^[a-zA-Z0-9:_-]{0,127}$")


def thing_name_prefix_from_pattern(pattern):
    """Return the fixed part of a Krypton thing name pattern before its first ``$`` variable.

    ``krypton-$imsi`` gives ``krypton-``, and ``$imsi`` alone gives an empty prefix.
    """
    return (pattern or "").split("$", 1)[0]


def validate_thing_name_prefix(prefix):
    """Return an error message for a thing name prefix that cannot be used, or None."""
    if THING_NAME_PREFIX_RE.match(prefix or ""):
        return None
    return (
        "Invalid thing_name_prefix '%s': use up to 127 of the characters that thing names allow "
        "(letters, digits, ':', '_' and '-'), or an empty string for all things." % prefix
    )


def least_privilege_document(partition, region, account_id, thing_name_prefix=""):
    """Build the inline policy document that allows only the calls of Krypton's bootstrap.

    ``thing_name_prefix`` narrows the thing ARNs to things whose names start with it.
    The resources follow the Service Authorization Reference for AWS IoT: CreateThing
    and DescribeThing take a thing ARN, AttachPolicy and AttachPrincipalPolicy the ARN
    of the target certificate, and CreateKeysAndCertificate no resource (so ``*``).
    """
    iot_arn = "arn:%s:iot:%s:%s" % (partition, region, account_id)
    thing_arns = "%s:thing/%s*" % (iot_arn, thing_name_prefix or "")
    certificate_arns = "%s:cert/*" % iot_arn
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAndCreateThings",
                "Effect": "Allow",
                "Action": ["iot:CreateThing", "iot:DescribeThing"],
                "Resource": thing_arns,
            },
            {
                # CreateKeysAndCertificate supports no resource-level permissions.
                "Sid": "CreateCertificates",
                "Effect": "Allow",
                "Action": "iot:CreateKeysAndCertificate",
                "Resource": "*",
            },
            {
                # NOTE: AWS authorizes AttachPolicy against the target (the certificate), not
                # against the IoT policy, and IAM has no condition key for the policy name.
                # So this statement also lets the key attach any other IoT policy of the
                # account to a certificate. AttachPrincipalPolicy is the older API with the
                # same effect on certificates. Which of the two Krypton calls is not
                # documented, so both are allowed.
                "Sid": "AttachPolicyToCertificates",
                "Effect": "Allow",
                "Action": ["iot:AttachPolicy", "iot:AttachPrincipalPolicy"],
                "Resource": certificate_arns,
            },
            {
                # NOTE: which resource AWS authorizes AttachThingPrincipal against is uncertain.
                # A 2020 edition of the Service Authorization Reference listed no resource type
                # for it, so only "*" would match, while policies in use (one for AWS DeepLens)
                # grant it on thing and certificate ARNs. Both are named here. If AWS denies
                # the call, Resource "*" for this statement is the fallback.
                "Sid": "AttachCertificatesToThings",
                "Effect": "Allow",
                "Action": "iot:AttachThingPrincipal",
                "Resource": [thing_arns, certificate_arns],
            },
        ],
    }


def hands_on_managed_policy_arn(partition):
    """Return the ARN of the managed policy the hands-on attaches, in ``partition``."""
    return "arn:%s:%s" % (partition, HANDS_ON_MANAGED_POLICY_RESOURCE)


def hands_on_warning(managed_policy_arn):
    """Return the warning that hands_on mode grants more than Krypton needs."""
    return (
        "policy_mode=hands_on attaches %s, which allows many more AWS IoT actions than Krypton uses "
        "(among them CreatePolicy, UpdateCertificate and RegisterCertificate on every resource of the account). "
        "policy_mode=least_privilege allows only %s."
        % (managed_policy_arn, ", ".join(action.split(":", 1)[1] for action in KRYPTON_ACTIONS))
    )
