# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run moto's server (moto 5.2.5) with the lab's patches. Arguments are moto_server's.

Patches, each where stock moto differs from AWS in a way the collection depends on:

1. SigV4 with IAM enforcement on: moto re-signs the parsed query dict instead of the empty
   body for REST calls without a body (for example iot ListThings, DescribeEndpoint,
   CreateKeysAndCertificate), so every such call fails with SignatureDoesNotMatch even for
   an administrator. The patch signs an empty body, as the client did.
2. Device certificates: with MOTO_IOT_CA_CERT and MOTO_IOT_CA_KEY set, IoT certificates are
   signed by that CA (with AKI, BasicConstraints and the clientAuth EKU), so a TLS broker can
   verify them. Stock moto signs each certificate with its own key under a made-up issuer.
3. describe_endpoint returns fixed names, as AWS does per account and region:
   ``<prefix>-ats.iot.<region>.amazonaws.com`` (iot:Data-ATS), ``<prefix>.iot.<region>...``
   (iot:Data) and likewise for iot:CredentialProvider and iot:Jobs. The prefix comes from
   env LAB_IOT_ENDPOINT_PREFIX (default a2labkrypton00). Stock moto returns a new random
   name on every call.
4. moto config ``iot.use_valid_cert = True``: certificateId is the SHA-256 of the DER
   certificate, as in AWS, instead of the SHA-256 of the PEM text.
5. IAM resources of AWS IoT calls: stock moto authorizes every IoT call against the resource
   ``*``, so a statement that names thing or certificate ARNs never matches. The patch
   authorizes Krypton's calls against the ARNs AWS uses (see IOT_AUTHORIZED_RESOURCES); all
   other IoT calls keep ``*``.
6. Certificate validity: stock moto's DescribeCertificate reports every certificate as valid
   from one day before to one day after its registration. The patch reports the certificate's
   own notBefore and notAfter, as AWS does.
7. Call counts (lab only, no AWS counterpart): every API call is counted per service and
   action. ``GET /moto-api/lab/calls`` returns the counts, split into reads (actions named
   Describe*, Get* or List*) and writes (every other action), and ``DELETE`` clears them.

These patches use private moto APIs, so requirements-dev.txt pins moto to 5.2.5.

Usage: MOTO_IAM_LOAD_MANAGED_POLICIES=true python moto_lab_server.py -H 127.0.0.1 -p 5000
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import threading
from collections import Counter

import moto
from botocore.awsrequest import AWSRequest
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.config import default_user_config
from moto.core.responses import BaseResponse
from moto.iam import access_control
from moto.iot import models as iot_models
from moto.iot.responses import IoTResponse
from moto.utilities.utils import get_partition

PINNED_MOTO = "5.2.5"
DEFAULT_ENDPOINT_PREFIX = "a2labkrypton00"


def _create_aws_request(self) -> AWSRequest:
    """Rebuild the signed request; replaces moto.iam.access_control.IAMRequestBase's method."""
    signed_headers = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed_headers, self._headers)
    if self._body:
        body = self._body
    elif "x-www-form-urlencoded" in self._headers.get("Content-Type", ""):
        body = self._data  # query protocol (IAM, STS): the form is the body, as upstream does
    else:
        body = b""  # REST call without a body: upstream signs the parsed query dict here
    request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


def _make_certificate_signer(ca_cert_path: str, ca_key_path: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with open(ca_cert_path, "rb") as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(ca_key_path, "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), password=None)

    def _generate_certificate_pem(self, domain_name, subject, key=None) -> str:
        """Issue a device certificate signed by the lab's device CA; replaces IoTBackend's method."""
        key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    return _generate_certificate_pem


def _make_certificate_init(original):
    """Wrap FakeCertificate.__init__ so that the validity comes from the certificate itself."""
    from cryptography import x509

    def __init__(self, certificate_pem, *args, **kwargs):
        original(self, certificate_pem, *args, **kwargs)
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode("utf-8"))
        except ValueError:
            return  # not a certificate: keep moto's dates
        # moto keeps naive datetimes in UTC.
        self.validity_not_before = certificate.not_valid_before_utc.replace(tzinfo=None)
        self.validity_not_after = certificate.not_valid_after_utc.replace(tzinfo=None)

    return __init__


def _make_describe_endpoint(prefix: str):
    templates = {
        "iot:Data": "{prefix}.iot.{region}.amazonaws.com",
        "iot:Data-ATS": "{prefix}-ats.iot.{region}.amazonaws.com",
        "iot:CredentialProvider": "{prefix}.credentials.iot.{region}.amazonaws.com",
        "iot:Jobs": "{prefix}.jobs.iot.{region}.amazonaws.com",
    }

    def describe_endpoint(self, endpoint_type: str):
        """Return the fixed endpoint of this type; replaces IoTBackend.describe_endpoint."""
        # FakeEndpoint validates the type and raises InvalidRequestException for unknown ones.
        endpoint = iot_models.FakeEndpoint(endpoint_type, self.region_name)
        endpoint.endpoint = templates[endpoint_type].format(prefix=prefix, region=self.region_name)
        self.endpoint = endpoint
        return endpoint

    return describe_endpoint


# What each IoT call is authorized against, after the Service Authorization Reference for AWS
# IoT: the thing for CreateThing and DescribeThing, the target certificate for AttachPolicy
# and AttachPrincipalPolicy. AttachThingPrincipal must be allowed on both the thing and the
# certificate, the stricter reading of AWS's inconsistent documentation for it.
IOT_AUTHORIZED_RESOURCES = {
    "CreateThing": ("thing",),
    "DescribeThing": ("thing",),
    "AttachPolicy": ("target",),
    "AttachPrincipalPolicy": ("principal_policy_target",),
    "AttachThingPrincipal": ("thing", "thing_principal"),
}


def _iot_request_resources(response: IoTResponse) -> list[str]:
    """Return the ARNs an IoT request is authorized against, or ["*"] for calls not in the table."""
    kinds = IOT_AUTHORIZED_RESOURCES.get(response._get_action())
    if not kinds:
        return ["*"]
    iot_arn = f"arn:{get_partition(response.region)}:iot:{response.region}:{response.current_account}"
    values = {
        "thing": lambda: f"{iot_arn}:thing/{response._get_param('thingName')}",
        "target": lambda: response._get_param("target"),
        "principal_policy_target": lambda: response.headers.get("x-amzn-iot-principal"),
        "thing_principal": lambda: response.headers.get("x-amzn-principal"),
    }
    return [values[kind]() or "*" for kind in kinds]


def _authorize_iot_action(self, resource: str = "*") -> None:
    """Authorize an IoT request against each of its resources; replaces the IoTResponse method."""
    enforcing = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
    first, *others = _iot_request_resources(self)
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, first)
    # Before enforcement starts every call only counts towards the free requests, so the
    # extra resources are checked only once it has started.
    if enforcing:
        for other in others:
            ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, other)


# Actions with these prefixes only read; every other action counts as a write.
READ_ACTION_PREFIXES = ("Describe", "Get", "List")
CALLS_PATH = "/moto-api/lab/calls"


class CallCounter:
    """Thread-safe counts of AWS API calls per ``service Action`` (moto's server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def record(self, service: str, action: str) -> None:
        with self._lock:
            self._counts[f"{service} {action}"] += 1

    def snapshot(self) -> dict:
        with self._lock:
            counts = dict(self._counts)
        reads = {name: count for name, count in counts.items()
                 if name.split(" ", 1)[-1].startswith(READ_ACTION_PREFIXES)}
        writes = {name: count for name, count in counts.items() if name not in reads}
        return {"reads": reads, "writes": writes,
                "read_total": sum(reads.values()), "write_total": sum(writes.values())}

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


CALLS = CallCounter()


def _make_counting_call_action(original):
    def call_action(self):
        """Count the call, then run it; replaces BaseResponse.call_action."""
        try:
            action = self._get_action()
        except Exception:  # pylint: disable=broad-except  # an unparsable request still runs and fails as before
            action = "Unknown"
        CALLS.record(getattr(self, "service_name", None) or type(self).__name__, action or "Unknown")
        return original(self)

    return call_action


def _make_calls_endpoint(original):
    def __call__(self, environ, start_response):
        """Serve GET and DELETE on CALLS_PATH; pass every other request to moto."""
        if environ.get("PATH_INFO") != CALLS_PATH:
            return original(self, environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            body = json.dumps(CALLS.snapshot(), sort_keys=True).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if method == "DELETE":
            CALLS.clear()
            start_response("204 No Content", [])
            return [b""]
        start_response("405 Method Not Allowed", [("Allow", "GET, DELETE")])
        return [b""]

    return __call__


def apply_patches(environ=os.environ) -> None:
    """Patch moto in this process; fails when moto is not the pinned version."""
    if moto.__version__ != PINNED_MOTO:
        raise SystemExit(f"moto_lab_server.py patches moto {PINNED_MOTO}, found {moto.__version__}; "
                         "install the version pinned in requirements-dev.txt")
    access_control.IAMRequestBase._create_aws_request = _create_aws_request

    ca_cert, ca_key = environ.get("MOTO_IOT_CA_CERT"), environ.get("MOTO_IOT_CA_KEY")
    if ca_cert and ca_key:
        iot_models.IoTBackend._generate_certificate_pem = _make_certificate_signer(ca_cert, ca_key)

    prefix = environ.get("LAB_IOT_ENDPOINT_PREFIX") or DEFAULT_ENDPOINT_PREFIX
    iot_models.IoTBackend.describe_endpoint = _make_describe_endpoint(prefix)

    default_user_config["iot"]["use_valid_cert"] = True
    iot_models.FakeCertificate.__init__ = _make_certificate_init(iot_models.FakeCertificate.__init__)

    IoTResponse._authenticate_and_authorize_normal_action = _authorize_iot_action

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    BaseResponse.call_action = _make_counting_call_action(BaseResponse.call_action)
    DomainDispatcherApplication.__call__ = _make_calls_endpoint(DomainDispatcherApplication.__call__)


def main() -> int:
    apply_patches()
    from moto.server import main as moto_main

    return moto_main()


if __name__ == "__main__":
    sys.exit(main())
