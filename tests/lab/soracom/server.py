#!/usr/bin/env python3
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the lab's SORACOM stand-in: SORACOM API, Krypton, metadata service and admin API.

One process with one shared in-memory state serves four listeners: the API and Krypton over
HTTPS with --cert/--key, the metadata service and the lab admin API over plain HTTP. Every
request is logged to --log (method, path, status, operator or IMSI, duration), never with
secrets. SIGTERM or SIGINT stops the servers and exits 0.

With --validate-spec PATH (SORACOM's OpenAPI spec, soracom-api.en.yaml), requests to the API that
do not fit the spec get a 400 error and responses that do not fit it are counted at
GET /_lab/spec_violations on the admin API.

Example (outside the lab, on loopback):

    .venv/bin/python tests/lab/soracom/server.py --api 127.0.0.1:8443 --krypton 127.0.0.1:8036 \\
        --metadata 127.0.0.1:8080 --admin 127.0.0.1:8099 --cert soracom.crt --key soracom.key \\
        --root-ca server-ca.crt --aws-endpoint http://127.0.0.1:5000 --log soracom.log
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from soracom_emulator.admin import create_admin_app
from soracom_emulator.api import create_api_app
from soracom_emulator.krypton import AwsIotProvisioner, create_krypton_app
from soracom_emulator.metadata import create_metadata_app
from soracom_emulator.serving import LabWSGIServer, ServerSet, server_ssl_context
from soracom_emulator.state import DEFAULT_OPERATOR_ID, LabState

# The only networks the lab may send traffic to: loopback and the lab bridge in namespace tilab.
ALLOWED_AWS_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.213.0.0/24"))

logger = logging.getLogger("soracom_emulator")


def host_port(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (IPv4 address or name) for argparse."""
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got '{value}'")
    return host, int(port)


def lab_aws_endpoint(value: str) -> str:
    """Accept only an http(s) URL on loopback or the lab network, so nothing reaches real AWS."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL, got '{value}'")
    if parts.hostname == "localhost":
        return value
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the AWS endpoint host must be an IP address on 127.0.0.0/8 or 10.213.0.0/24 or "
            f"localhost, got '{parts.hostname}'") from None
    if not any(address in network for network in ALLOWED_AWS_NETWORKS):
        raise argparse.ArgumentTypeError(
            f"the AWS endpoint {address} is outside 127.0.0.0/8 and 10.213.0.0/24")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--api", type=host_port, required=True, metavar="HOST:PORT",
                        help="listen address of the SORACOM API (HTTPS)")
    parser.add_argument("--krypton", type=host_port, required=True, metavar="HOST:PORT",
                        help="listen address of SORACOM Krypton (HTTPS)")
    parser.add_argument("--metadata", type=host_port, required=True, metavar="HOST:PORT",
                        help="listen address of the Air metadata service (HTTP)")
    parser.add_argument("--admin", type=host_port, required=True, metavar="HOST:PORT",
                        help="listen address of the lab admin API (HTTP, keep it on 127.0.0.1)")
    parser.add_argument("--cert", required=True, help="PEM server certificate (chain) for the API and Krypton")
    parser.add_argument("--key", required=True, help="PEM private key of --cert")
    parser.add_argument("--root-ca", required=True,
                        help="PEM CA certificate that Krypton returns as rootCaCertificate")
    # argparse runs a string default through type= too, so $AWS_ENDPOINT_URL is checked as well.
    parser.add_argument("--aws-endpoint", type=lab_aws_endpoint, default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="AWS endpoint URL for Krypton's AWS IoT calls (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--log", required=True, help="log file, one line per request")
    parser.add_argument("--operator-id", default=DEFAULT_OPERATOR_ID,
                        help=f"operator owning SIMs added without one (default: {DEFAULT_OPERATOR_ID})")
    parser.add_argument("--validate-spec", metavar="PATH",
                        help="OpenAPI spec (YAML) to validate API requests and responses against; "
                             "off when not given")
    parser.add_argument("--spec-cache", metavar="DIR",
                        help="directory for the parsed spec cache (default: "
                             "$XDG_CACHE_HOME/soracom-krypton-lab/openapi, ~/.cache when XDG_CACHE_HOME is unset)")
    args = parser.parse_args(argv)
    if not args.aws_endpoint:
        parser.error("--aws-endpoint is required when AWS_ENDPOINT_URL is not set")
    return args


def configure_logging(path: str) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # werkzeug logs every request itself and botocore logs request details at DEBUG: keep only
    # their warnings, the emulator writes its own request lines.
    for name in ("werkzeug", "botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def read_root_ca(path: str) -> str:
    with open(path, encoding="ascii") as handle:
        pem = handle.read()
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(f"{path} contains no PEM certificate")
    return pem


def load_spec(args: argparse.Namespace):
    """Load the OpenAPI spec of --validate-spec, or return None without that option."""
    if not args.validate_spec:
        return None
    started = time.monotonic()
    # Imported only here, so the emulator starts without openapi-core when validation is off.
    from soracom_emulator.specvalidation import OpenApiSpec, default_cache_dir

    cache_dir = Path(args.spec_cache) if args.spec_cache else default_cache_dir()
    spec = OpenApiSpec.load(args.validate_spec, cache_dir, logger)
    logger.info("OpenAPI spec %s loaded in %.2f s, imports included (%s), %d paths", spec.path,
                time.monotonic() - started,
                f"from the cache in {cache_dir}" if spec.cache_hit else f"parsed and cached in {cache_dir}",
                spec.path_count)
    if spec.spec_errors:
        logger.warning("the OpenAPI spec itself has %d error(s) that openapi-spec-validator reports, "
                       "first: %s", len(spec.spec_errors), spec.spec_errors[0])
    return spec


def build_servers(args: argparse.Namespace, state: LabState, spec=None) -> ServerSet:
    """Create the four apps and bind their listeners (not yet serving)."""
    tls = server_ssl_context(args.cert, args.key)
    provisioner = AwsIotProvisioner(args.aws_endpoint, logger)
    apps = (
        ("api", args.api, create_api_app(state, logger, spec), tls),
        ("krypton", args.krypton, create_krypton_app(state, logger, provisioner, read_root_ca(args.root_ca)), tls),
        ("metadata", args.metadata, create_metadata_app(state, logger), None),
        ("admin", args.admin, create_admin_app(state, logger), None),
    )
    servers = ServerSet(logger)
    for name, (host, port), app, context in apps:
        try:
            servers.add(LabWSGIServer(name, host, port, app, logger, ssl_context=context))
        except SystemExit:
            # werkzeug exits when it cannot bind, so name the listener that failed.
            logger.error("%s: cannot listen on %s:%d", name, host, port)
            servers.stop()
            raise
    return servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log)
    state = LabState(default_operator_id=args.operator_id)
    try:
        spec = load_spec(args)
        servers = build_servers(args, state, spec)
    except (OSError, ssl.SSLError, ValueError, ImportError) as exc:
        logger.error("startup failed: %s", exc)
        print(f"server.py: startup failed: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, frame: stop.set())
    servers.start()
    logger.info("SORACOM emulator started (pid %d, AWS endpoint %s, spec validation %s)", os.getpid(),
                args.aws_endpoint, "on" if spec else "off")
    stop.wait()
    logger.info("SORACOM emulator stopping")
    servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
