# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils import _aws
from ansible_collections.soracom.krypton.plugins.module_utils._aws import (
    AwsApiError,
    AwsConfigError,
    AwsError,
    aws_argument_spec,
    call,
    connection_params,
    create_client,
    known_regions,
    paginate,
    partition_for_region,
    translate_botocore_error,
    translate_client_error,
    validate_region,
)

botocore_exceptions = pytest.importorskip("botocore.exceptions")
moto = pytest.importorskip("moto")

# What moto 5.2.5 sends for an IoT call denied by IAM: an XML body on a
# rest-json API, which botocore turns into code '403' with the XML as message.
MOTO_IOT_ACCESS_DENIED = (
    '<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error><Code>AccessDenied</Code>'
    "<Message>User: arn:aws:iam::123456789012:user/nobody is not authorized to perform: iot:CreatePolicy</Message>"
    "<Type>Sender</Type></Error></Errors></ErrorResponse>"
)


@pytest.fixture
def aws_env(monkeypatch):
    """Environment with dummy credentials that can only reach moto's in-process mock."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL_IAM", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def client_error(code, message, status, operation="CreatePolicy"):
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"},
    }
    return botocore_exceptions.ClientError(response, operation)


def test_argument_spec_options():
    spec = aws_argument_spec()

    assert sorted(spec) == ["access_key", "endpoint_url", "profile", "region", "secret_key", "session_token"]


def test_argument_spec_secrets_no_log():
    spec = aws_argument_spec()

    assert spec["secret_key"]["no_log"] is True
    assert spec["session_token"]["no_log"] is True
    assert spec["access_key"]["no_log"] is False


@pytest.mark.parametrize(
    "option, variables",
    [
        ("region", ["AWS_REGION", "AWS_DEFAULT_REGION"]),
        ("profile", ["AWS_PROFILE"]),
        ("access_key", ["AWS_ACCESS_KEY_ID"]),
        ("secret_key", ["AWS_SECRET_ACCESS_KEY"]),
        ("session_token", ["AWS_SESSION_TOKEN"]),
        ("endpoint_url", ["AWS_ENDPOINT_URL"]),
    ],
)
def test_argument_spec_env_fallbacks(option, variables):
    assert aws_argument_spec()[option]["fallback"][1] == variables


def test_argument_spec_key_aliases():
    spec = aws_argument_spec()

    assert spec["access_key"]["aliases"] == ["aws_access_key_id", "aws_access_key"]
    assert spec["secret_key"]["aliases"] == ["aws_secret_access_key", "aws_secret_key"]


@pytest.mark.parametrize(
    "region, partition",
    [
        ("ap-northeast-1", "aws"),
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
    ],
)
def test_validate_region_known(region, partition):
    assert validate_region(region) == partition


def test_unknown_region_message():
    with pytest.raises(AwsConfigError) as excinfo:
        validate_region("ap-northest-1")

    message = excinfo.value.message
    assert "Unknown AWS region 'ap-northest-1'" in message
    assert "Did you mean 'ap-northeast-1'" in message
    assert "aws account list-regions" in message
    assert "ap-northeast-1, " in message


@pytest.mark.parametrize("region", ["aws-global", "tokyo", "", "AP-NORTHEAST-1"])
def test_validate_region_rejects_non_regions(region):
    with pytest.raises(AwsConfigError, match="Unknown AWS region"):
        validate_region(region)


def test_known_regions_skip_global():
    regions = known_regions()

    assert "ap-northeast-1" in regions
    assert not [name for name in regions if name.endswith("-global")]


def test_partition_without_region_is_aws():
    assert partition_for_region(None) == "aws"


def test_connection_params_empty_strings_unset():
    settings, ignored = connection_params(dict(region="", profile=" ", endpoint_url="", access_key=None), environ={})

    assert settings["region"] is None
    assert settings["profile"] is None
    assert settings["endpoint_url"] is None
    assert ignored == []


def test_connection_params_profile_drops_env_keys():
    environ = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    params = dict(profile="lab", access_key="AKIAENV", secret_key="env-secret")

    settings, ignored = connection_params(params, environ=environ)

    assert settings["access_key"] is None
    assert settings["secret_key"] is None
    assert ignored == []


def test_connection_params_profile_reports_task_keys():
    params = dict(profile="lab", access_key="AKIATASK", secret_key="task-secret")

    settings, ignored = connection_params(params, environ={})

    assert settings["profile"] == "lab"
    assert ignored == ["access_key", "secret_key"]


def test_unknown_region_no_client(aws_env, monkeypatch):
    def fail_client(*args, **kwargs):
        raise AssertionError("no client may be created for an unknown region")

    monkeypatch.setattr(_aws.boto3.session.Session, "client", fail_client)

    with pytest.raises(AwsConfigError, match="Unknown AWS region 'mars-north-1'"):
        create_client("iot", region="mars-north-1")


def test_create_client_requires_region(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    with pytest.raises(AwsConfigError, match="No AWS region set for iot"):
        create_client("iot")


def test_create_client_iam_without_region(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    client = create_client("iam", require_region=False)

    assert client.meta.partition == "aws"


def test_create_client_config_retries_and_timeouts(aws_env):
    client = create_client("iot", region="ap-northeast-1")

    config = client.meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": _aws.DEFAULT_MAX_ATTEMPTS}
    assert config.connect_timeout == _aws.DEFAULT_CONNECT_TIMEOUT
    assert config.read_timeout == _aws.DEFAULT_READ_TIMEOUT


def test_create_client_endpoint_url_option(aws_env):
    client = create_client("iot", region="ap-northeast-1", endpoint_url="http://127.0.0.1:5000")

    assert client.meta.endpoint_url == "http://127.0.0.1:5000"


def test_create_client_endpoint_url_environment(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5001")

    client = create_client("iot", region="ap-northeast-1")

    assert client.meta.endpoint_url == "http://127.0.0.1:5001"


def test_create_client_rejects_bad_endpoint_url(aws_env):
    with pytest.raises(AwsConfigError, match="Invalid endpoint_url '127.0.0.1:5000'"):
        create_client("iot", region="ap-northeast-1", endpoint_url="127.0.0.1:5000")


def test_create_client_unknown_profile(aws_env):
    with pytest.raises(AwsConfigError, match="AWS profile 'missing' was not found"):
        create_client("iot", region="ap-northeast-1", profile="missing")


def test_create_client_access_key_without_secret(aws_env):
    with pytest.raises(AwsConfigError, match="secret_key is missing"):
        create_client("iot", region="ap-northeast-1", access_key="AKIAONLY")


def test_require_boto3_missing(monkeypatch):
    monkeypatch.setattr(_aws, "HAS_BOTO3", False)

    with pytest.raises(AwsError, match="boto3"):
        _aws.require_boto3()


def test_translate_moto_xml_access_denied():
    error = translate_client_error(client_error("403", MOTO_IOT_ACCESS_DENIED, 403), service="IoT")

    assert error.code == "AccessDenied"
    assert error.http_status == 403
    assert error.error_message.startswith("User: arn:aws:iam::123456789012:user/nobody is not authorized")
    assert error.is_access_denied
    assert "<" not in error.message
    assert error.message.startswith("AWS IoT CreatePolicy was denied (AccessDenied, HTTP 403)")
    assert "Grant that IAM permission" in error.message


def test_translate_json_error():
    error = translate_client_error(
        client_error("VersionsLimitExceededException", "The policy p already has the maximum number of versions (5)", 409,
                     operation="CreatePolicyVersion"),
        service="IoT",
    )

    assert error.operation == "CreatePolicyVersion"
    assert error.code == "VersionsLimitExceededException"
    assert error.http_status == 409
    assert error.request_id == "req-1"
    assert not error.is_access_denied
    assert error.message == (
        "AWS IoT CreatePolicyVersion failed (VersionsLimitExceededException, HTTP 409): "
        "The policy p already has the maximum number of versions (5)"
    )


def test_translate_auth_failure_hint():
    error = translate_client_error(client_error("InvalidClientTokenId", "The security token is invalid.", 403))

    assert error.is_auth_failure
    assert "Check the access key" in error.message


def test_fail_kwargs_structure():
    error = translate_client_error(client_error("ResourceNotFoundException", "gone", 404, operation="GetPolicy"))

    kwargs = error.fail_kwargs()

    assert kwargs["msg"] == error.message
    assert kwargs["error"] == {
        "operation": "GetPolicy",
        "code": "ResourceNotFoundException",
        "message": "gone",
        "http_status": 404,
        "request_id": "req-1",
    }
    assert error.is_not_found


def test_translate_no_credentials():
    error = translate_botocore_error(botocore_exceptions.NoCredentialsError(), "IoT GetPolicy")

    assert isinstance(error, AwsConfigError)
    assert "No AWS credentials found for IoT GetPolicy" in error.message


def test_translate_timeout():
    error = translate_botocore_error(
        botocore_exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"), "IoT GetPolicy"
    )

    assert error.message.startswith("AWS IoT GetPolicy failed: Connect timeout")


def test_call_not_found_against_moto(aws_env):
    with moto.mock_aws():
        client = create_client("iot", region="ap-northeast-1")

        with pytest.raises(AwsApiError) as excinfo:
            call(client, "get_policy", policyName="missing")

    error = excinfo.value
    assert error.is_not_found
    assert error.operation == "GetPolicy"
    assert error.service == "IoT"
    assert error.http_status == 404


def test_call_drops_response_metadata(aws_env):
    with moto.mock_aws():
        client = create_client("iot", region="ap-northeast-1")

        response = call(client, "create_policy", policyName="p", policyDocument=json.dumps({"Statement": []}))

    assert "ResponseMetadata" not in response
    assert response["policyName"] == "p"


def test_paginate_collects_targets(aws_env):
    with moto.mock_aws():
        client = create_client("iot", region="ap-northeast-1")
        call(client, "create_policy", policyName="p", policyDocument="{}")
        arns = []
        for _index in range(3):
            certificate = call(client, "create_keys_and_certificate", setAsActive=True)
            call(client, "attach_policy", policyName="p", target=certificate["certificateArn"])
            arns.append(certificate["certificateArn"])

        targets = paginate(client, "list_targets_for_policy", "targets", policyName="p", PaginationConfig={"PageSize": 2})

    assert sorted(targets) == sorted(arns)
