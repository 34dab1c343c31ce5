# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's PKI and SSH key, made once with openssl and ssh-keygen under the state directory.

server-ca plays Amazon Root CA 1 and the public CA behind api.soracom.io. It signs the
SORACOM emulator's certificate and the MQTT broker's certificate. device-ca signs the device
certificates that the patched moto issues, and the broker trusts it for client certificates.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .config import REGION, SORACOM_HOSTNAMES, StatePaths, iot_ats_host
from .sysutil import log, run

SERVER_CA_SUBJECT = "/O=soracom.krypton lab/CN=SORACOM Krypton Lab Root CA"
DEVICE_CA_SUBJECT = "/O=soracom.krypton lab/CN=Lab AWS IoT Device CA"
CA_DAYS = 3650
# Leaf certificates live as long as the CAs: a lab's PKI is made once and then reused.
LEAF_DAYS = 3650

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
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
           "-keyout", str(key), "-out", str(cert), "-days", str(CA_DAYS), "-subj", subject]
    for extension in CA_EXTENSIONS:
        cmd += ["-addext", extension]
    run(cmd)
    key.chmod(0o600)


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
        ext = Path(tmp) / "leaf.ext"
        ext.write_text(extensions)
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", f"/O=soracom.krypton lab/CN={common_name}"])
        key.chmod(0o600)
        run(["openssl", "x509", "-req", "-sha256", "-in", str(csr), "-CA", str(ca_cert),
             "-CAkey", str(ca_key), "-set_serial", "0x" + _random_serial(), "-days", str(LEAF_DAYS),
             "-extfile", str(ext), "-out", str(cert)])


def _random_serial() -> str:
    return run(["openssl", "rand", "-hex", "16"]).stdout.strip()


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
