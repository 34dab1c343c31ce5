# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWS IoT policy checks for the lab broker.

The broker calls an authorizer before each iot:Connect, iot:Publish, iot:Subscribe and
iot:Receive. PolicyAuthorizer evaluates the policies attached to the client certificate in the
AWS stand-in (ListAttachedPolicies, then GetPolicy for the default version's document) with
the things attached to it (ListPrincipalThings), as AWS IoT Core does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from iot_policy import Decision, Policy, PolicyError, RequestContext, evaluate

LOG = logging.getLogger("krypton_lab_broker")

POLICY_CACHE_SECONDS = 1.0
# Upper bound on the pages read from one paginated list call, so a faulty marker cannot loop.
MAX_LIST_PAGES = 100
MAX_CACHED_CERTIFICATES = 1024


class PolicyLookupError(Exception):
    """Failed call to the AWS stand-in while reading a certificate's policies or things."""

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        # AWS error code such as ResourceNotFoundException, None for a connection failure.
        self.error_code = error_code


@dataclass(frozen=True)
class AuthorizationContext:
    client_id: str
    certificate_id: str
    certificate_arn: str
    peer_address: str

    @property
    def arn_prefix(self) -> str:
        """Return "arn:<partition>:iot:<region>:<account>", taken from the certificate ARN."""
        return self.certificate_arn.rsplit(":", 1)[0]

    def resource_arn(self, resource_type: str, name: str) -> str:
        return f"{self.arn_prefix}:{resource_type}/{name}"


@dataclass(frozen=True)
class PrincipalPolicies:
    """Policies and things attached to one certificate."""

    policies: tuple[Policy, ...]
    # One message per attached policy whose document the lab cannot evaluate.
    invalid_policies: tuple[str, ...]
    thing_names: frozenset[str]


class PolicyRegistry:
    """Policies and things of a certificate from the AWS stand-in, cached for at most cache_seconds."""

    def __init__(self, iot_client, cache_seconds: float = POLICY_CACHE_SECONDS) -> None:
        self._client = iot_client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, PrincipalPolicies]] = {}

    async def lookup(self, certificate_arn: str) -> PrincipalPolicies:
        cached = self._cache.get(certificate_arn)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        # A cached response's age counts from before its requests, so it never exceeds cache_seconds.
        requested_at = time.monotonic()
        record = await asyncio.to_thread(self._fetch, certificate_arn)
        if len(self._cache) >= MAX_CACHED_CERTIFICATES:
            expired = [key for key, (stored_at, _) in self._cache.items() if requested_at - stored_at >= self._cache_seconds]
            for key in expired:
                del self._cache[key]
        self._cache[certificate_arn] = (requested_at, record)
        return record

    def _fetch(self, certificate_arn: str) -> PrincipalPolicies:
        policies = []
        invalid = []
        for policy_name in self._list_attached_policy_names(certificate_arn):
            document = self._get_policy_document(policy_name)
            if document is None:
                continue
            try:
                policies.append(Policy.parse(policy_name, document))
            except PolicyError as exc:
                invalid.append(str(exc))
        return PrincipalPolicies(tuple(policies), tuple(invalid), frozenset(self._list_principal_things(certificate_arn)))

    def _list_attached_policy_names(self, certificate_arn: str) -> list[str]:
        # NOTE: AWS IoT also applies policies attached to the thing groups of the connecting
        # thing. The lab evaluates only the policies attached to the certificate.
        names = []
        arguments = {"target": certificate_arn, "pageSize": 250}
        for _ in range(MAX_LIST_PAGES):
            response = self._call("ListAttachedPolicies", self._client.list_attached_policies, **arguments)
            names.extend(policy["policyName"] for policy in response.get("policies", []))
            if not response.get("nextMarker"):
                return names
            arguments["marker"] = response["nextMarker"]
        raise PolicyLookupError(f"ListAttachedPolicies for {certificate_arn} returned more than {MAX_LIST_PAGES} pages")

    def _get_policy_document(self, policy_name: str) -> str | None:
        """Return the default version's document, or None when the policy was deleted meanwhile."""
        try:
            response = self._call("GetPolicy", self._client.get_policy, policyName=policy_name)
        except PolicyLookupError as exc:
            if exc.error_code == "ResourceNotFoundException":
                return None
            raise
        return response["policyDocument"]

    def _list_principal_things(self, certificate_arn: str) -> list[str]:
        names = []
        arguments = {"principal": certificate_arn, "maxResults": 250}
        for _ in range(MAX_LIST_PAGES):
            response = self._call("ListPrincipalThings", self._client.list_principal_things, **arguments)
            names.extend(response.get("things", []))
            if not response.get("nextToken"):
                return names
            arguments["nextToken"] = response["nextToken"]
        raise PolicyLookupError(f"ListPrincipalThings for {certificate_arn} returned more than {MAX_LIST_PAGES} pages")

    @staticmethod
    def _call(operation: str, method, **arguments) -> dict:
        try:
            return method(**arguments)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise PolicyLookupError(f"{operation} failed: {error.get('Code')}: {error.get('Message')}", error.get("Code")) from exc
        except BotoCoreError as exc:
            raise PolicyLookupError(f"{operation} failed: {exc}") from exc


class PolicyAuthorizer:
    """Evaluate the AWS IoT policies attached to a connection's certificate."""

    def __init__(self, registry: PolicyRegistry) -> None:
        self.registry = registry
        # Last error logged per certificate, so that a lasting failure is logged once.
        self._logged_errors: dict[str, str] = {}

    async def authorize(self, action: str, resource: str, context: AuthorizationContext) -> Decision:
        try:
            principal = await self.registry.lookup(context.certificate_arn)
        except PolicyLookupError as exc:
            self._log_error_once(context, f"policy lookup failed: {exc}")
            return Decision(False, f"policy lookup failed: {exc}")
        if principal.invalid_policies:
            # AWS IoT rejects such documents in CreatePolicy, but moto 5.2.5 stores any text,
            # so the lab denies rather than guess what the author meant.
            reason = "attached policy cannot be evaluated: " + "; ".join(principal.invalid_policies)
            self._log_error_once(context, reason)
            return Decision(False, reason)
        self._logged_errors.pop(context.certificate_id, None)
        request = RequestContext.for_connection(context.client_id, principal.thing_names)
        return evaluate(principal.policies, action, resource, request)

    def _log_error_once(self, context: AuthorizationContext, message: str) -> None:
        if self._logged_errors.get(context.certificate_id) == message:
            return
        if len(self._logged_errors) >= MAX_CACHED_CERTIFICATES:
            self._logged_errors.clear()
        self._logged_errors[context.certificate_id] = message
        LOG.error("authorization error for client_id=%r certificate_id=%s: %s", context.client_id, context.certificate_id, message)


class AllowAllAuthorizer:
    """Allow every action, for broker runs with --no-authorization."""

    async def authorize(self, action: str, resource: str, context: AuthorizationContext) -> Decision:
        return Decision(True, "authorization is off (--no-authorization)")
