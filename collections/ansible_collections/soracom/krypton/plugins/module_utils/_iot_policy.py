# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic for AWS IoT policies: document comparison and version pruning.

Nothing here calls AWS, so unit tests use it without boto3 or AnsibleModule.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

# AWS IoT keeps at most this many versions of a policy. CreatePolicyVersion
# fails with VersionsLimitExceededException when the policy already has them.
MAX_POLICY_VERSIONS = 5

# Policy names allowed by the AWS IoT CreatePolicy API.
POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")

_TARGET_ARN_RE = re.compile(r"^arn:[^:]+:iot:[^:]*:[^:]*:(?P<kind>[a-z]+)/(?P<id>.+)$")
_TARGET_KINDS = {
    "cert": "certificate",
    "cacert": "CA certificate",
    "thinggroup": "thing group",
    "thing": "thing",
    "rolealias": "role alias",
}


class PolicyDocumentError(ValueError):
    """A policy document that is not a JSON object."""


def parse_policy_document(document):
    """Return a policy document (a dict or a JSON string) as a dict.

    Raise PolicyDocumentError when the string is not valid JSON or the
    document is not a JSON object.
    """
    if isinstance(document, (bytes, bytearray)):
        document = document.decode("utf-8")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as e:
            raise PolicyDocumentError("The policy document is not valid JSON: %s" % e) from e
    if not isinstance(document, dict):
        raise PolicyDocumentError(
            "The policy document must be a JSON object, not %s." % type(document).__name__
        )
    return document


def policy_documents_equal(left, right):
    """Compare two policy documents as JSON values.

    Key order and whitespace do not matter. Lists, including Statement and
    Action lists, are compared in order, so the same statements in another
    order count as a different document, and "Action": "iot:Connect" differs
    from "Action": ["iot:Connect"], although AWS evaluates them the same way.
    """
    return parse_policy_document(left) == parse_policy_document(right)


def serialize_policy_document(document):
    """Return the compact JSON string that is sent to AWS for a policy document."""
    return json.dumps(parse_policy_document(document), separators=(",", ":"))


def _create_date_key(version):
    created = version.get("createDate")
    if isinstance(created, datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return created.timestamp()
    if isinstance(created, (int, float)):
        return float(created)
    # A missing or unparsed date sorts first, and the version id breaks the tie.
    return float("-inf")


def _version_number(version):
    version_id = str(version.get("versionId", ""))
    return int(version_id) if version_id.isdigit() else -1


def _oldest_first(versions):
    return sorted(versions, key=lambda version: (_create_date_key(version), _version_number(version)))


def versions_to_prune(versions, limit=MAX_POLICY_VERSIONS):
    """Return the version ids to delete so that one more version fits under limit.

    versions is the policyVersions list of ListPolicyVersions (versionId,
    isDefaultVersion, createDate). The oldest non-default versions go first,
    ordered by creation date and then by version id. The default version is
    never chosen. The result is empty while fewer than limit versions exist.
    """
    excess = len(versions) - limit + 1
    if excess <= 0:
        return []
    candidates = [version for version in _oldest_first(versions) if not version.get("isDefaultVersion")]
    return [str(version["versionId"]) for version in candidates[:excess]]


def version_to_prune(versions, limit=MAX_POLICY_VERSIONS):
    """Return the id of the version to delete before creating a new one, or None when there is room."""
    pruned = versions_to_prune(versions, limit)
    return pruned[0] if pruned else None


def build_delete_plan(policy_name, versions):
    """Return the API calls that delete a policy, in order, as (method, params) pairs.

    DeletePolicy fails while non-default versions exist, so they are deleted
    first, oldest first. The default version goes with the policy itself.
    Detaching targets is not part of the plan: the caller checks
    ListTargetsForPolicy before.
    """
    plan = []
    for version in _oldest_first(versions):
        if version.get("isDefaultVersion"):
            continue
        plan.append(("delete_policy_version", dict(policyName=policy_name, policyVersionId=str(version["versionId"]))))
    plan.append(("delete_policy", dict(policyName=policy_name)))
    return plan


def describe_target(target):
    """Return a readable name for a policy target ARN, such as 'certificate 3f2a...'."""
    match = _TARGET_ARN_RE.match(target or "")
    if not match:
        return target
    kind = _TARGET_KINDS.get(match.group("kind"), match.group("kind"))
    return "%s %s (%s)" % (kind, match.group("id"), target)


def format_versions(versions):
    """Return ListPolicyVersions entries as snake_case dicts, oldest first, with ISO 8601 dates."""
    result = []
    for version in _oldest_first(versions):
        created = version.get("createDate")
        result.append(dict(
            version_id=str(version.get("versionId")),
            is_default_version=bool(version.get("isDefaultVersion")),
            create_date=created.isoformat() if isinstance(created, datetime) else created,
        ))
    return result
