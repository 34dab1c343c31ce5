# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SORACOM Krypton's AWS IoT provisioning: bootstrap, and light mode's certificate and CA downloads.

Krypton identifies the calling SIM by its SORACOM Air session, so the lab looks the SIM up by the
request's source address. It reads the SIM group's ``SoracomKrypton`` configuration and the
credential set it names, then makes the AWS IoT calls with those keys. A missing IAM permission
therefore fails here as it would for real.

Endpoints (all POST, as Krypton's clients send them):

* ``/v1/provisioning/aws/iot/bootstrap``: creates the thing unless it exists, a key pair and an
  active certificate, attaches the group's policy and returns ``certificate``, ``privateKey``,
  ``rootCaCertificate``, ``host``, ``clientId`` and ``region``.
  With ``{"requestParameters": {"skipCertificates": true}}`` ("light mode", for devices with
  small buffers) it returns ``privateKey``, ``certificateId``, ``host``, ``clientId`` and
  ``region``, without the certificate and the root CA.
* ``/v1/provisioning/aws/iot/certificates/{certificateId}``: ``{"certificate": PEM}`` of a
  certificate that a light-mode bootstrap issued to the calling SIM.
* ``/v1/provisioning/aws/iot/ca_certificate``: ``{"rootCaCertificate": PEM}``.

NOTE: the light-mode shapes follow a public nRF9160 Krypton client sample (Nordic Semiconductor,
2020), which reads ``privateKey``, ``clientId``, ``host`` and ``certificateId`` from the light
bootstrap, ``certificate`` from the certificate download and ``rootCaCertificate`` from the CA
download. That the private key comes only with the bootstrap (Krypton cannot return it later,
as AWS IoT keeps no private keys) is read from that sample, not from a SORACOM reference.

Rate limit: at most ``KRYPTON_RATE_LIMIT_PER_SECOND`` requests per operator and second (all
three endpoints together); more get 429 with ``Retry-After`` and the ``X-Soracom-Ratelimit-*``
headers. ``/_lab/krypton_ratelimit`` on the admin API reads and changes the limit.

Known differences from the real service:

* Krypton's SIM authentication off the cellular network (``keyId`` and signed requests) is not
  modelled: a request from an unknown address is rejected.
* NOTE: when a later AWS call fails, the certificate made by CreateKeysAndCertificate stays in
  AWS IoT. What the real service cleans up is unknown.
* NOTE: the lab keeps light-mode certificates in memory (the last 10 per SIM), so a download
  after an emulator restart returns 404. Where the real service looks them up is unknown.
"""
from __future__ import annotations

import logging
import re
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError
from flask import Flask, g, jsonify, request

from .errors import ApiError, api_error
from .groupconfig import KRYPTON_AWS_IOT_FIELDS
from .state import LabState
from .validation import check_field, parse_json_body
from .webapp import create_app

BOOTSTRAP_PATH = "/v1/provisioning/aws/iot/bootstrap"
CERTIFICATE_PATH = "/v1/provisioning/aws/iot/certificates/<certificate_id>"
CA_CERTIFICATE_PATH = "/v1/provisioning/aws/iot/ca_certificate"
# CreateThing's thingName constraint (AWS IoT API reference).
THING_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
# moto returns IAM's AccessDenied for rest-json IoT calls as an XML body, which botocore cannot
# parse, so the code and message end up inside Error.Message.
_XML_CODE = re.compile(r"<Code>(.*?)</Code>", re.S)
_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


class AwsIotProvisioner:
    """Makes Krypton's AWS IoT calls for one device: thing, key pair and certificate, attachments."""

    def __init__(self, endpoint_url: str, logger: logging.Logger) -> None:
        self.endpoint_url = endpoint_url
        self.logger = logger
        self._thing_locks: dict[tuple[str, str], threading.Lock] = {}
        self._thing_locks_guard = threading.Lock()
        self._client_config = Config(retries={"max_attempts": 2, "mode": "standard"},
                                     connect_timeout=5, read_timeout=30)

    def bootstrap(self, region: str, access_key_id: str, secret_access_key: str,
                  thing_name: str, policy_name: str) -> dict:
        """Create the thing unless it exists, mint an active certificate and attach it.

        Returns ``certificateArn``, ``certificateId``, ``certificatePem`` and ``privateKey``.
        Raises :class:`ApiError` carrying AWS's error code and message when a call fails.
        """
        client = self._client(region, access_key_id, secret_access_key)
        # moto 5.2.5's CreateThing is not idempotent (a second call returns a new thingId), so
        # look the thing up first, one request per thing name at a time.
        with self._thing_lock(region, thing_name):
            try:
                self._call("DescribeThing", client.describe_thing, thingName=thing_name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise _aws_error("DescribeThing", exc) from None
                self._call("CreateThing", client.create_thing, thingName=thing_name)
        created = self._call("CreateKeysAndCertificate", client.create_keys_and_certificate, setAsActive=True)
        certificate_arn = created["certificateArn"]
        self._call("AttachPolicy", client.attach_policy, policyName=policy_name, target=certificate_arn)
        self._call("AttachThingPrincipal", client.attach_thing_principal, thingName=thing_name,
                   principal=certificate_arn)
        return {
            "certificateArn": certificate_arn,
            "certificateId": created["certificateId"],
            "certificatePem": created["certificatePem"],
            "privateKey": created["keyPair"]["PrivateKey"],
        }

    def _client(self, region: str, access_key_id: str, secret_access_key: str):
        session = boto3.session.Session(aws_access_key_id=access_key_id,
                                        aws_secret_access_key=secret_access_key, region_name=region)
        return session.client("iot", endpoint_url=self.endpoint_url, config=self._client_config)

    def _thing_lock(self, region: str, thing_name: str) -> threading.Lock:
        with self._thing_locks_guard:
            return self._thing_locks.setdefault((region, thing_name), threading.Lock())

    @staticmethod
    def _call(operation: str, method, **kwargs):
        """Call one AWS IoT API and convert its errors. A ClientError of ``DescribeThing`` passes through unchanged."""
        try:
            return method(**kwargs)
        except ClientError as exc:
            if operation == "DescribeThing":
                raise
            raise _aws_error(operation, exc) from None
        except BotoCoreError as exc:
            raise api_error("krypton_aws_unreachable", operation=operation, detail=str(exc)) from None


def _aws_error(operation: str, exc: ClientError):
    """Turn an AWS ClientError into a Krypton error with AWS's status (4xx) or 502 (5xx)."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = error.get("Message", "")
    if code.isdigit() and "<Code>" in message:
        xml_code = _XML_CODE.search(message)
        xml_message = _XML_MESSAGE.search(message)
        code = xml_code.group(1) if xml_code else code
        message = xml_message.group(1) if xml_message else message
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 502
    if not 400 <= status < 500:
        status = 502
    return api_error("krypton_aws_error", status=status, operation=operation, aws_code=code,
                     aws_message=message)


def _request_parameters() -> dict:
    """Read the optional ``{"requestParameters": {...}}`` body, whatever its Content-Type."""
    body = parse_json_body(request.get_data(), request.content_type, dict, required=False,
                           check_content_type=False)
    if body is None or body.get("requestParameters") is None:
        return {}
    parameters = check_field(body["requestParameters"], "requestParameters", dict)
    if "thingName" in parameters:
        check_field(parameters["thingName"], "requestParameters.thingName", str)
    if "skipCertificates" in parameters:
        check_field(parameters["skipCertificates"], "requestParameters.skipCertificates", bool)
    return parameters


def _aws_iot_settings(sim: dict, group: dict | None) -> dict:
    """Return the group's SoracomKrypton.AwsIot settings, or raise naming what is missing."""
    imsi = sim["imsi"]
    if group is None:
        raise api_error("krypton_no_group", imsi=imsi)
    group_id = group["groupId"]
    krypton = group["configuration"].get("SoracomKrypton")
    if krypton is None:
        raise api_error("krypton_not_enabled", imsi=imsi, group_id=group_id,
                        detail="the group has no SoracomKrypton configuration")
    if krypton.get("enabled") is not True:
        raise api_error("krypton_not_enabled", imsi=imsi, group_id=group_id,
                        detail="SoracomKrypton.enabled is not true")
    aws_iot = krypton.get("AwsIot")
    if not isinstance(aws_iot, dict):
        raise api_error("krypton_config_incomplete", group_id=group_id,
                        detail="SoracomKrypton.AwsIot is missing")
    return aws_iot


def _calling_sim(state: LabState) -> tuple[dict, dict | None]:
    """Return the active SIM whose session sent the request, and its group; raise 403 otherwise."""
    found = state.session_lookup(request.remote_addr)
    if found is None:
        raise api_error("krypton_no_session", address=request.remote_addr)
    sim, group = found
    g.imsi = sim["imsi"]
    g.operator_id = sim["operatorId"]
    if sim["status"] != "active":
        raise api_error("krypton_sim_inactive", imsi=sim["imsi"], sim_status=sim["status"])
    return sim, group


def _thing_name(sim: dict, group_id: str, settings: dict, requested_name: str | None) -> str:
    """Check the AwsIot settings Krypton needs and return the thing name to provision."""
    required = [name for name in KRYPTON_AWS_IOT_FIELDS
                if not (name == "thingNamePattern" and requested_name is not None)]
    missing = [f"SoracomKrypton.AwsIot.{name}" for name in required
               if not isinstance(settings.get(name), str) or not settings[name]]
    if missing:
        raise api_error("krypton_config_incomplete", group_id=group_id, detail="missing " + ", ".join(missing))
    thing_name = requested_name if requested_name is not None else \
        settings["thingNamePattern"].replace("$imsi", sim["imsi"])
    if not THING_NAME_PATTERN.match(thing_name):
        raise api_error("krypton_aws_error", status=400, operation="CreateThing",
                        aws_code="InvalidRequestException",
                        aws_message=f"thingName '{thing_name}' must match [a-zA-Z0-9:_-]{{1,128}}")
    return thing_name


def _aws_keys(state: LabState, sim: dict, group_id: str, credentials_id: str) -> dict:
    """Return the access key pair of the group's credential set, or raise 400 naming the problem."""
    credential = state.use_credential(sim["operatorId"], credentials_id)
    if credential is None:
        raise api_error("krypton_credential_invalid", credentials_id=credentials_id, group_id=group_id,
                        detail="does not exist.")
    if credential["type"] != "aws-credentials":
        raise api_error("krypton_credential_invalid", credentials_id=credentials_id, group_id=group_id,
                        detail=f"has type {credential['type']}, not aws-credentials.")
    return credential["credentials"]


def create_krypton_app(state: LabState, logger: logging.Logger, provisioner: AwsIotProvisioner,
                       root_ca_pem: str) -> Flask:
    """Create the Krypton app, which returns ``root_ca_pem`` as ``rootCaCertificate`` (Amazon Root CA 1)."""
    app = create_app("krypton", state, logger)

    @app.before_request
    def limit_rate() -> None:
        """Return 429 with Retry-After when the calling SIM's operator is over Krypton's rate limit."""
        if request.url_rule is None:
            return
        found = state.session_lookup(request.remote_addr)
        if found is None:
            return  # the view rejects a request from outside any SIM's session
        sim = found[0]
        verdict = state.krypton_rate_limiter.hit(f"operator:{sim['operatorId']}", "krypton")
        if verdict is None or verdict["allowed"]:
            return
        g.imsi = sim["imsi"]
        g.operator_id = sim["operatorId"]
        seconds = verdict["seconds_before_refresh"]
        headers = {
            "Retry-After": str(seconds),
            "X-Soracom-Ratelimit-Limit": str(verdict["limit"]),
            "X-Soracom-Ratelimit-Remaining": "0",
            "X-Soracom-Ratelimit-Seconds-Before-Refresh": str(seconds),
        }
        raise api_error("rate_limited", headers=headers, path=request.path, seconds=seconds)

    @app.post(BOOTSTRAP_PATH)
    def bootstrap_aws_iot():
        sim, group = _calling_sim(state)
        parameters = _request_parameters()
        settings = _aws_iot_settings(sim, group)
        group_id = group["groupId"]
        thing_name = _thing_name(sim, group_id, settings, parameters.get("thingName"))
        credentials_id = settings["credentialsId"]
        keys = _aws_keys(state, sim, group_id, credentials_id)

        try:
            result = provisioner.bootstrap(settings["region"], keys.get("accessKeyId", ""),
                                           keys.get("secretAccessKey", ""), thing_name,
                                           settings["policyName"])
        except InvalidRegionError:
            raise api_error("krypton_config_incomplete", group_id=group_id,
                            detail=f"SoracomKrypton.AwsIot.region '{settings['region']}' is not a valid "
                                   "region name") from None
        except ApiError as exc:
            logger.warning("krypton: bootstrap of thing %s for imsi %s failed: %s", thing_name, sim["imsi"], exc)
            if exc.key == "krypton_aws_error" and exc.status == 403:
                raise api_error("krypton_aws_access_denied", status=403, credentials_id=credentials_id,
                                operation=exc.params["operation"], aws_code=exc.params["aws_code"],
                                aws_message=exc.params["aws_message"].rstrip(".")) from None
            raise
        except Exception as exc:
            logger.warning("krypton: bootstrap of thing %s for imsi %s failed: %s", thing_name, sim["imsi"], exc)
            raise
        light = parameters.get("skipCertificates") is True
        logger.info("krypton: imsi %s got certificate %s for thing %s in %s%s", sim["imsi"],
                    result["certificateId"], thing_name, settings["region"], " (light mode)" if light else "")
        if light:
            state.remember_certificate(sim["imsi"], result["certificateId"], result["certificatePem"])
            return jsonify({
                "privateKey": result["privateKey"],
                "certificateId": result["certificateId"],
                "host": settings["host"],
                "clientId": thing_name,
                "region": settings["region"],
            })
        return jsonify({
            "certificate": result["certificatePem"],
            "privateKey": result["privateKey"],
            "rootCaCertificate": root_ca_pem,
            "host": settings["host"],
            "clientId": thing_name,
            "region": settings["region"],
        })

    @app.post(CERTIFICATE_PATH)
    def download_certificate(certificate_id: str):
        # NOTE: that these downloads need the SIM's Krypton-enabled group, as the bootstrap does,
        # is a guess.
        sim, group = _calling_sim(state)
        _aws_iot_settings(sim, group)
        certificate_pem = state.issued_certificate(sim["imsi"], certificate_id)
        if certificate_pem is None:
            raise api_error("krypton_certificate_not_found", certificate_id=certificate_id, imsi=sim["imsi"])
        return jsonify({"certificate": certificate_pem})

    @app.post(CA_CERTIFICATE_PATH)
    def download_ca_certificate():
        sim, group = _calling_sim(state)
        _aws_iot_settings(sim, group)
        return jsonify({"rootCaCertificate": root_ca_pem})

    return app
