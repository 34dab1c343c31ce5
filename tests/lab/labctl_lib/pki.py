# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's PKI and SSH key, made once with openssl and ssh-keygen under the state directory.

server-ca plays Amazon Root CA 1 and the public CA behind api.soracom.io. It signs the
SORACOM emulator's certificate and the MQTT broker's certificate. device-ca signs the device
certificates that the patched moto issues, and the broker trusts it for client certificates.
"""
from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from .config import REGION, SORACOM_HOSTNAMES, StatePaths, iot_ats_host
from .sysutil import log, run

SERVER_CA_SUBJECT = "/O=soracom.krypton lab/CN=SORACOM Krypton Lab Root CA"
DEVICE_CA_SUBJECT = "/O=soracom.krypton lab/CN=Lab AWS IoT Device CA"
CA_DAYS = 3650
# Leaf certificates live as long as the CAs: a lab's PKI is made once and then reused.
LEAF_DAYS = 3650
# Every certificate starts this many days before it is made, as the certificates of real services
# were issued well before a device connects. A Pi whose clock is somewhat behind then still
# trusts the lab's servers, as it would trust SORACOM's and AWS's.
BACKDATE_DAYS = 30

CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
)


def broker_dns_names(region: str = REGION) -> list[str]:
    return [f"*.iot.{region}.amazonaws.com", iot_ats_host(region=region)]


def soracom_dns_names() -> list[str]:
    return list(SORACOM_HOSTNAMES)


def _make_ca(cert: Path, key: Path, subject: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csr = Path(tmp) / "ca.csr"
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", str(key),
             "-out", str(csr), "-subj", subject])
        key.chmod(0o600)
        _sign(Path(tmp), csr, cert, key, "\n".join(CA_EXTENSIONS) + "\n", CA_DAYS, self_signed=True)


def _make_leaf(cert: Path, key: Path, common_name: str, dns_names: list[str],
               ca_cert: Path, ca_key: Path) -> None:
    extensions = "\n".join([
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid,issuer",
        "subjectAltName=" + ",".join(f"DNS:{name}" for name in dns_names),
    ]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        csr = Path(tmp) / "leaf.csr"
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", f"/O=soracom.krypton lab/CN={common_name}"])
        key.chmod(0o600)
        _sign(Path(tmp), csr, cert, ca_key, extensions, LEAF_DAYS, ca_cert=ca_cert)


# The configuration ``openssl ca`` needs; the database lives in a temporary directory because the
# lab keeps no record of what it issued.
CA_CONFIG = """\
[ca]
default_ca = lab
[lab]
database = {directory}/index.txt
new_certs_dir = {directory}
serial = {directory}/serial
default_md = sha256
policy = any_subject
unique_subject = no
[any_subject]
organizationName = optional
commonName = supplied
"""


def _sign(directory: Path, csr: Path, cert: Path, signing_key: Path, extensions: str, days: int,
          ca_cert: Path | None = None, self_signed: bool = False) -> None:
    """Issue ``cert`` for ``csr``, valid from BACKDATE_DAYS ago, with ``openssl ca``.

    ``openssl req -x509`` and ``openssl x509 -req`` in OpenSSL 3.0 always start the validity now;
    only ``openssl ca`` takes a start date.
    """
    (directory / "index.txt").write_text("")
    config = directory / "ca.cnf"
    config.write_text(CA_CONFIG.format(directory=directory))
    ext = directory / "extensions.cnf"
    ext.write_text(extensions)
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=BACKDATE_DAYS)
    end = start + datetime.timedelta(days=BACKDATE_DAYS + days)
    cmd = ["openssl", "ca", "-batch", "-notext", "-config", str(config), "-in", str(csr), "-out", str(cert),
           "-keyfile", str(signing_key), "-extfile", str(ext), "-preserveDN",
           "-startdate", start.strftime("%Y%m%d%H%M%SZ"), "-enddate", end.strftime("%Y%m%d%H%M%SZ"),
           "-create_serial"]
    cmd += ["-selfsign"] if self_signed else ["-cert", str(ca_cert)]
    run(cmd)


def _verifies(cert: Path, ca_cert: Path) -> bool:
    if not (cert.exists() and ca_cert.exists()):
        return False
    result = run(["openssl", "verify", "-CAfile", str(ca_cert), str(cert)], check=False)
    return result.returncode == 0


def _has_names(cert: Path, dns_names: list[str]) -> bool:
    text = run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)]).stdout
    return all(f"DNS:{name}" in text for name in dns_names)


def ensure_pki(state: StatePaths) -> None:
    """Create missing CAs and certificates; re-issue a leaf that no longer matches its CA or names."""
    pki = state.pki
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    cas = {"server-ca": SERVER_CA_SUBJECT, "device-ca": DEVICE_CA_SUBJECT}
    for name, subject in cas.items():
        cert, key = pki / f"{name}.crt", pki / f"{name}.key"
        if not (cert.exists() and key.exists()):
            log(f"creating {cert}")
            _make_ca(cert, key, subject)
    leaves = {
        "soracom": ("api.soracom.io", soracom_dns_names()),
        "broker": (iot_ats_host(), broker_dns_names()),
    }
    ca_cert, ca_key = pki / "server-ca.crt", pki / "server-ca.key"
    for name, (common_name, dns_names) in leaves.items():
        cert, key = pki / f"{name}.crt", pki / f"{name}.key"
        if key.exists() and _verifies(cert, ca_cert) and _has_names(cert, dns_names):
            continue
        log(f"creating {cert}")
        _make_leaf(cert, key, common_name, dns_names, ca_cert, ca_key)


def ensure_ssh_key(state: StatePaths) -> None:
    key = state.ssh_key
    if key.exists() and key.with_suffix(".pub").exists():
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    key.parent.chmod(0o700)
    key.unlink(missing_ok=True)
    key.with_suffix(".pub").unlink(missing_ok=True)
    log(f"creating SSH key {key}")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "soracom-krypton-lab", "-f", str(key)])


def subject_hash(cert: Path) -> str:
    """Return OpenSSL's subject hash, the file name (``<hash>.0``) used in a CApath directory."""
    return run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert)]).stdout.strip()
