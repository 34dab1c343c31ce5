# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""AWS IoT registry calls shared by the thing and certificate modules.

Every function takes a boto3 IoT client and raises AwsError. Reads return None
for a thing or certificate that does not exist, and run_plan() runs the plans
that _iot_things builds.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import time

from ansible_collections.soracom.krypton.plugins.module_utils._aws import AwsError, call, paginate
from ansible_collections.soracom.krypton.plugins.module_utils._iot_things import (
    format_certificate,
    format_thing,
    step_failure_message,
)

# DetachThingPrincipal is asynchronous in AWS IoT: its API reference states that
# the detachment can take several seconds to propagate. A delete that follows a
# detach can therefore fail as "still attached" and is retried.
# NOTE: 10 attempts 3 seconds apart is an estimate, not a value measured on AWS.
DELETE_ATTEMPTS = 10
DELETE_RETRY_DELAY = 3.0

# A delete that AWS IoT rejects because of a remaining attachment fails with
# DeleteConflictException (DeleteCertificate) or with InvalidRequestException
# and a message about the attachment (DeleteThing). InvalidRequestException
# alone also covers invalid input, which a retry does not fix.
_ATTACHMENT_WORDS = ("attached", "detached")


class IotOperationError(AwsError):
    """A failed AWS IoT call, with a message that names the thing or certificate and the next step."""

    def __init__(self, message, cause):
        self.cause = cause
        super().__init__(message)

    def fail_kwargs(self):
        kwargs = self.cause.fail_kwargs()
        kwargs["msg"] = self.message
        return kwargs


def _is_still_attached(error):
    if error.code == "DeleteConflictException":
        return True
    message = (getattr(error, "error_message", None) or "").lower()
    return error.code == "InvalidRequestException" and any(word in message for word in _ATTACHMENT_WORDS)


def read_certificate_description(client, certificate_id):
    """Return the DescribeCertificate description of a certificate, or None when it does not exist."""
    try:
        return call(client, "describe_certificate", certificateId=certificate_id)["certificateDescription"]
    except AwsError as e:
        if e.is_not_found:
            return None
        raise


def read_certificate(client, certificate_id):
    """Return a certificate with its attached policy and thing names, or None when it does not exist."""
    description = read_certificate_description(client, certificate_id)
    if description is None:
        return None
    arn = description["certificateArn"]
    try:
        policies = paginate(client, "list_attached_policies", "policies", target=arn)
        things = paginate(client, "list_principal_things", "things", principal=arn)
    except AwsError as e:
        # Deleted by another client between the calls.
        if e.is_not_found:
            return None
        raise
    return format_certificate(description, [policy["policyName"] for policy in policies], things)


def read_thing(client, name):
    """Return a thing with its principal ARNs, or None when it does not exist."""
    try:
        description = call(client, "describe_thing", thingName=name)
        principals = paginate(client, "list_thing_principals", "principals", thingName=name)
    except AwsError as e:
        if e.is_not_found:
            return None
        raise
    return format_thing(description, principals)


def run_plan(client, plan, sleep=None, attempts=DELETE_ATTEMPTS, delay=DELETE_RETRY_DELAY):
    """Run the calls of a plan in order.

    A call whose resource is already gone is skipped, because another client
    reached the same end state. A delete that fails because a detachment has
    not taken effect yet is retried up to attempts times, delay seconds apart.
    Any other failure raises IotOperationError naming the step. sleep
    defaults to time.sleep, looked up at call time so tests can replace it.
    """
    sleep = sleep or time.sleep
    for index, (method, params) in enumerate(plan):
        for attempt in range(1, attempts + 1):
            try:
                call(client, method, **params)
            except AwsError as e:
                if e.is_not_found:
                    break
                retryable = method.startswith("delete_") and _is_still_attached(e)
                if retryable and attempt < attempts:
                    sleep(delay)
                    continue
                message = step_failure_message(method, params, e, still_attached=retryable, steps_done=index)
                raise IotOperationError(message, e) from e
            break
