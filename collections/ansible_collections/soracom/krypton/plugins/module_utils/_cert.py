# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is private to this collection and may change any time.
# Do not use it from other collections or roles.

"""X.509 certificate and private key checks for device certificates.

Works with cryptography 38 (Debian bookworm's python3-cryptography) and later releases.
Error messages never contain key material.
"""

from __future__ import annotations

import datetime
import re
import traceback

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None


_PEM_CERTIFICATE = re.compile(
    rb'-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----', re.DOTALL)


class CertificateError(Exception):
    """A certificate or private key is invalid, or they do not belong together."""


def _to_bytes(data):
    if isinstance(data, str):
        return data.encode('utf-8')
    return data


def load_certificate(pem):
    """Parse the first PEM certificate in ``pem`` (str or bytes) and return it.

    Raises CertificateError when there is no valid PEM certificate.
    """
    data = _to_bytes(pem)
    match = _PEM_CERTIFICATE.search(data or b'')
    if not match:
        raise CertificateError('no PEM certificate (-----BEGIN CERTIFICATE-----) found')
    try:
        return x509.load_pem_x509_certificate(match.group(0))
    except ValueError as exc:
        raise CertificateError('the PEM certificate cannot be parsed: %s' % exc)


def load_certificates(pem):
    """Parse every PEM certificate in a bundle and return them as a list.

    Raises CertificateError when the bundle has no certificate or one of them is invalid.
    """
    data = _to_bytes(pem) or b''
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise CertificateError('no PEM certificate (-----BEGIN CERTIFICATE-----) found')
    certificates = []
    for index, block in enumerate(blocks):
        try:
            certificates.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise CertificateError('PEM certificate number %d cannot be parsed: %s' % (index + 1, exc))
    return certificates


def load_private_key(pem):
    """Parse an unencrypted PEM private key (PKCS#1, SEC1 or PKCS#8) and return it.

    Raises CertificateError with a message that contains none of the key's content.
    """
    data = _to_bytes(pem)
    if not data or b'-----BEGIN' not in data or b'PRIVATE KEY-----' not in data:
        raise CertificateError('no PEM private key (-----BEGIN ... PRIVATE KEY-----) found')
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError('the private key is encrypted with a passphrase, which is not supported')
    except (ValueError, NotImplementedError):
        # The exception text of some cryptography releases quotes parts of the input.
        raise CertificateError('the PEM private key cannot be parsed')


def _public_key_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key_matches(certificate, private_key):
    """Return True when ``private_key`` belongs to the public key in ``certificate``."""
    return _public_key_der(certificate.public_key()) == _public_key_der(private_key.public_key())


def certificate_id(certificate):
    """Return the AWS IoT certificate id: lowercase hex SHA-256 of the DER certificate."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def not_valid_after(certificate):
    """Return the end of the validity period as an aware UTC datetime."""
    value = getattr(certificate, 'not_valid_after_utc', None)
    if value is None:
        # cryptography before 42 has only the naive UTC attribute.
        value = certificate.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def not_valid_before(certificate):
    """Return the start of the validity period as an aware UTC datetime."""
    value = getattr(certificate, 'not_valid_before_utc', None)
    if value is None:
        value = certificate.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    return value


def format_time(value):
    """Format an aware datetime as ISO 8601 in UTC with a Z suffix, to the second."""
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


# Validity states returned by check_validity().
VALID = 'valid'
EXPIRED = 'expired'
EXPIRING = 'expiring'
NOT_YET_VALID = 'not_yet_valid'


def check_validity(certificate, renew_before_days, now=None):
    """Classify ``certificate`` at ``now`` and return (state, days_left).

    ``state`` is EXPIRED after notAfter, EXPIRING when fewer than ``renew_before_days``
    days remain, NOT_YET_VALID before notBefore and VALID otherwise. ``days_left`` is a
    float, negative once expired.
    """
    if now is None:
        now = utc_now()
    end = not_valid_after(certificate)
    days_left = (end - now).total_seconds() / 86400.0
    if now >= end:
        return EXPIRED, days_left
    if now < not_valid_before(certificate):
        return NOT_YET_VALID, days_left
    if days_left < renew_before_days:
        return EXPIRING, days_left
    return VALID, days_left


def describe_certificate(certificate):
    """Return the public facts of a certificate as a dict of strings, safe to log."""
    return {
        'certificate_id': certificate_id(certificate),
        'not_before': format_time(not_valid_before(certificate)),
        'not_after': format_time(not_valid_after(certificate)),
        'subject': certificate.subject.rfc4514_string(),
        'issuer': certificate.issuer.rfc4514_string(),
        'serial_number': '%x' % certificate.serial_number,
    }
