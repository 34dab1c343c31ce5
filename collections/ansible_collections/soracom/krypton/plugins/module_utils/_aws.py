# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Thin boto3 layer shared by the AWS modules of soracom.krypton.

It contains the shared connection options, a client factory, region validation
against botocore's partition data and one exception type for failed AWS calls.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import difflib
import html
import os
import re
import traceback
from datetime import datetime

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import boto3
    import botocore
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        DataNotFoundError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None


# Retry and timeout settings of every client. botocore's adaptive mode retries
# throttling and transient errors with exponential backoff and also slows the
# client down when AWS throttles it. The attempt count includes the first try,
# and the timeouts are in seconds.
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60

USER_AGENT_EXTRA = "soracom.krypton"

# Error codes AWS uses when the credentials are valid but lack a permission,
# or when the credentials themselves are rejected.
ACCESS_DENIED_CODES = frozenset((
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
))
AUTH_FAILURE_CODES = frozenset((
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
))
NOT_FOUND_CODES = frozenset((
    "ResourceNotFoundException",
    "NoSuchEntity",
))

REGION_HELP = (
    "Check the spelling, or list the regions enabled for the account with "
    "'aws account list-regions' (the AWS regions page: "
    "https://docs.aws.amazon.com/general/latest/gr/rande.html). "
    "If the region is newer than the installed botocore, upgrade botocore."
)

_SECRET_OPTIONS = ("access_key", "secret_key", "session_token")


def aws_argument_spec():
    """Return the argument spec of the AWS connection options shared by the AWS modules."""
    return dict(
        region=dict(type="str", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        profile=dict(type="str", fallback=(env_fallback, ["AWS_PROFILE"])),
        access_key=dict(
            type="str",
            aliases=["aws_access_key_id", "aws_access_key"],
            no_log=False,
            fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"]),
        ),
        secret_key=dict(
            type="str",
            aliases=["aws_secret_access_key", "aws_secret_key"],
            no_log=True,
            fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"]),
        ),
        session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
        endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
    )


class AwsError(Exception):
    """Failure in the AWS layer: missing library, bad connection settings or a failed call."""

    # Only AwsApiError sets an error code. These defaults let callers test any AwsError.
    code = None
    is_access_denied = False
    is_auth_failure = False
    is_not_found = False

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def fail_kwargs(self):
        """Return the keyword arguments for AnsibleModule.fail_json()."""
        return dict(msg=self.message)


class AwsConfigError(AwsError):
    """Invalid or missing connection settings, detected before any request is sent."""


class AwsApiError(AwsError):
    """An AWS API call that failed, with the operation, error code, message and HTTP status."""

    def __init__(self, operation, code, message, http_status=None, request_id=None, service=None):
        self.operation = operation
        self.code = code
        self.error_message = message
        self.http_status = http_status
        self.request_id = request_id
        self.service = service
        super().__init__(self._format())

    @property
    def is_access_denied(self):
        return self.code in ACCESS_DENIED_CODES

    @property
    def is_auth_failure(self):
        return self.code in AUTH_FAILURE_CODES

    @property
    def is_not_found(self):
        return self.code in NOT_FOUND_CODES

    def _format(self):
        where = "%s %s" % (self.service, self.operation) if self.service else self.operation
        reason = "%s, HTTP %s" % (self.code, self.http_status) if self.http_status else self.code
        detail = (self.error_message or "").rstrip(".")
        if self.is_access_denied:
            return (
                "AWS %s was denied (%s): %s. Grant that IAM permission to the caller or use other credentials."
                % (where, reason, detail)
            )
        if self.is_auth_failure:
            return (
                "AWS %s failed (%s): %s. Check the access key, secret key, session token or profile."
                % (where, reason, detail)
            )
        return "AWS %s failed (%s): %s" % (where, reason, self.error_message)

    def fail_kwargs(self):
        return dict(
            msg=self.message,
            error=dict(
                operation=self.operation,
                code=self.code,
                message=self.error_message,
                http_status=self.http_status,
                request_id=self.request_id,
            ),
        )


# moto 5.2.5 returns an XML error body for some rest-json calls (IoT with IAM
# enforcement on), which botocore reports as code '403' with the XML as the message.
_XML_CODE_RE = re.compile(r"<Code>(.*?)</Code>", re.DOTALL)
_XML_MESSAGE_RE = re.compile(r"<Message>(.*?)</Message>", re.DOTALL)


def _unwrap_xml_error(code, message):
    if not message or "<Code>" not in message:
        return code, message
    code_match = _XML_CODE_RE.search(message)
    message_match = _XML_MESSAGE_RE.search(message)
    if code_match:
        code = html.unescape(code_match.group(1).strip())
    if message_match:
        message = html.unescape(message_match.group(1).strip())
    return code, message


def translate_client_error(error, operation=None, service=None):
    """Turn a botocore ClientError into an AwsApiError."""
    response = getattr(error, "response", None) or {}
    details = response.get("Error") or {}
    metadata = response.get("ResponseMetadata") or {}
    code = str(details.get("Code") or "Unknown")
    message = details.get("Message") or details.get("message") or str(error)
    code, message = _unwrap_xml_error(code, message)
    http_status = metadata.get("HTTPStatusCode")
    if code.isdigit() and http_status is None:
        http_status = int(code)
    return AwsApiError(
        operation=operation or getattr(error, "operation_name", None) or "request",
        code=code,
        message=message,
        http_status=http_status,
        request_id=metadata.get("RequestId"),
        service=service,
    )


def translate_botocore_error(error, operation):
    """Turn a botocore error raised before an HTTP response (no credentials, timeout, ...) into an AwsError."""
    if isinstance(error, NoCredentialsError):
        return AwsConfigError(
            "No AWS credentials found for %s: set access_key and secret_key, profile, "
            "or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables." % operation
        )
    if isinstance(error, NoRegionError):
        return AwsConfigError("No AWS region set for %s: set region or the AWS_REGION environment variable." % operation)
    return AwsError("AWS %s failed: %s" % (operation, error))


def call(client, method, **params):
    """Call one client method, translate botocore errors into AwsError and drop ResponseMetadata."""
    operation = client.meta.method_to_api_mapping.get(method, method)
    service = client.meta.service_model.service_id
    try:
        response = getattr(client, method)(**params)
    except ClientError as e:
        raise translate_client_error(e, operation, service) from e
    except BotoCoreError as e:
        raise translate_botocore_error(e, "%s %s" % (service, operation)) from e
    response.pop("ResponseMetadata", None)
    return response


def paginate(client, method, result_key, **params):
    """Call a pageable client method until the last page and return the items under result_key."""
    operation = client.meta.method_to_api_mapping.get(method, method)
    service = client.meta.service_model.service_id
    items = []
    try:
        for page in client.get_paginator(method).paginate(**params):
            items.extend(page.get(result_key) or [])
    except ClientError as e:
        raise translate_client_error(e, operation, service) from e
    except BotoCoreError as e:
        raise translate_botocore_error(e, "%s %s" % (service, operation)) from e
    return items


def require_boto3():
    """Raise AwsError with installation advice when boto3 or botocore cannot be imported."""
    if not HAS_BOTO3:
        raise AwsError(missing_required_lib("boto3 and botocore"))


def _load_partitions():
    loader = botocore.session.get_session().get_component("data_loader")
    try:
        data = loader.load_data("partitions")
    except DataNotFoundError:
        # botocore releases before partitions.json carry the same lists in endpoints.json.
        data = loader.load_data("endpoints")
    return data.get("partitions") or []


def known_regions():
    """Return {region name: partition id} for every region in botocore's partition data.

    Pseudo-regions such as aws-global, which name a partition's global endpoint,
    are left out because they do not match the partition's region pattern.
    """
    require_boto3()
    regions = {}
    for partition in _load_partitions():
        partition_id = partition.get("id") or partition.get("partition")
        pattern = partition.get("regionRegex")
        for name in partition.get("regions") or {}:
            if pattern and not re.match(pattern, name):
                continue
            regions[name] = partition_id
    return regions


def validate_region(region):
    """Return the partition id of region, or raise AwsConfigError naming the unknown value."""
    regions = known_regions()
    if region in regions:
        return regions[region]
    close = difflib.get_close_matches(region or "", list(regions), n=3)
    hint = " Did you mean %s?" % " or ".join("'%s'" % name for name in close) if close else ""
    raise AwsConfigError(
        "Unknown AWS region '%s': botocore %s does not list it.%s %s Regions in botocore's data: %s."
        % (region, botocore.__version__, hint, REGION_HELP, ", ".join(sorted(regions)))
    )


def partition_for_region(region):
    """Return the partition id (aws, aws-cn, aws-us-gov, ...) of region, or 'aws' when region is None."""
    if not region:
        return "aws"
    return validate_region(region)


def _empty_to_none(value):
    if isinstance(value, str) and not value.strip():
        return None
    return value


def connection_params(params, environ=None):
    """Pick the connection settings out of module params.

    Empty strings count as unset, so a role can pass "" to mean "use the
    environment". A profile takes precedence over keys: when both are set the
    keys are dropped, and the second item of the returned pair lists the
    options that were given in the task (not only in the environment) and
    are therefore ignored.
    """
    environ = os.environ if environ is None else environ
    settings = dict(
        region=_empty_to_none(params.get("region")),
        profile=_empty_to_none(params.get("profile")),
        access_key=_empty_to_none(params.get("access_key")),
        secret_key=_empty_to_none(params.get("secret_key")),
        session_token=_empty_to_none(params.get("session_token")),
        endpoint_url=_empty_to_none(params.get("endpoint_url")),
    )
    ignored = []
    if settings["profile"]:
        env_names = dict(access_key="AWS_ACCESS_KEY_ID", secret_key="AWS_SECRET_ACCESS_KEY", session_token="AWS_SESSION_TOKEN")
        for option in _SECRET_OPTIONS:
            if settings[option] is not None and settings[option] != environ.get(env_names[option]):
                ignored.append(option)
            settings[option] = None
    return settings, ignored


def _validate_endpoint_url(endpoint_url):
    if not re.match(r"^https?://[^/\s]+", endpoint_url):
        raise AwsConfigError(
            "Invalid endpoint_url '%s': it must be an http:// or https:// URL such as http://127.0.0.1:5000." % endpoint_url
        )


def create_client(
    service,
    region=None,
    profile=None,
    access_key=None,
    secret_key=None,
    session_token=None,
    endpoint_url=None,
    require_region=True,
    max_attempts=DEFAULT_MAX_ATTEMPTS,
    connect_timeout=DEFAULT_CONNECT_TIMEOUT,
    read_timeout=DEFAULT_READ_TIMEOUT,
):
    """Create a boto3 client for service after checking the connection settings.

    The region, from the argument or from the profile's configuration, is
    checked against botocore's partition data before any request is sent.
    Without endpoint_url, botocore still honours AWS_ENDPOINT_URL and
    AWS_ENDPOINT_URL_<SERVICE> from the environment.
    """
    require_boto3()
    if profile and (access_key or secret_key or session_token):
        raise AwsConfigError("Set either profile or access_key/secret_key/session_token, not both.")
    if bool(access_key) != bool(secret_key):
        missing = "secret_key" if access_key else "access_key"
        raise AwsConfigError("Incomplete AWS credentials: %s is missing. Set access_key and secret_key together." % missing)
    if endpoint_url:
        _validate_endpoint_url(endpoint_url)

    try:
        session = boto3.session.Session(
            profile_name=profile or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            aws_session_token=session_token or None,
            region_name=region or None,
        )
    except ProfileNotFound as e:
        raise AwsConfigError("AWS profile '%s' was not found in the shared configuration files: %s" % (profile, e)) from e

    region = region or session.region_name
    if region:
        validate_region(region)
    elif require_region:
        raise AwsConfigError(
            "No AWS region set for %s: set region, the AWS_REGION environment variable or a region in the profile." % service
        )

    config = Config(
        retries=dict(mode="adaptive", total_max_attempts=max_attempts),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra=USER_AGENT_EXTRA,
    )
    try:
        return session.client(service, region_name=region or None, endpoint_url=endpoint_url or None, config=config)
    except BotoCoreError as e:
        raise AwsConfigError("Could not create the AWS %s client: %s" % (service, e)) from e


def client_from_module(module, service, require_region=True):
    """Create a client from an AnsibleModule's connection options, failing the module on errors."""
    try:
        require_boto3()
    except AwsError as e:
        module.fail_json(msg=e.message, exception=BOTO3_IMPORT_ERROR)
    settings, ignored = connection_params(module.params)
    if ignored:
        module.warn("%s ignored because profile is set, so the profile's credentials are used." % ", ".join(ignored))
    try:
        return create_client(service, require_region=require_region, **settings)
    except AwsError as e:
        module.fail_json(**e.fail_kwargs())


def iso_date(value):
    """Return a datetime as an ISO 8601 string and any other value unchanged."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value
