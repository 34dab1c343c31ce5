# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import hashlib

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils import _cert

cryptography = pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_key(kind='ec'):
    if kind == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_certificate(key, not_before, not_after, common_name='AWS IoT Certificate'):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after))
    return builder.sign(key, hashes.SHA256())


def certificate_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key, pkcs8=False):
    key_format = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption())


@pytest.fixture(scope='module')
def pair():
    key = make_key('rsa')
    certificate = make_certificate(key, NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=365))
    return key, certificate


def test_load_certificate_roundtrip(pair):
    key, certificate = pair
    loaded = _cert.load_certificate(certificate_pem(certificate))
    assert loaded.serial_number == certificate.serial_number


def test_load_certificate_from_str_with_text_around(pair):
    key, certificate = pair
    text = 'Bag Attributes\n' + certificate_pem(certificate).decode() + 'trailing\n'
    assert _cert.load_certificate(text).serial_number == certificate.serial_number


@pytest.mark.parametrize('data', [b'', b'not a certificate', None,
                                  b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'])
def test_load_certificate_rejects_invalid(data):
    with pytest.raises(_cert.CertificateError):
        _cert.load_certificate(data)


def test_load_certificates_bundle(pair):
    key, certificate = pair
    other = make_certificate(make_key(), NOW, NOW + datetime.timedelta(days=1), 'Other CA')
    bundle = certificate_pem(certificate) + certificate_pem(other)
    loaded = _cert.load_certificates(bundle)
    assert [c.serial_number for c in loaded] == [certificate.serial_number, other.serial_number]


def test_load_certificates_rejects_bad_member(pair):
    key, certificate = pair
    bundle = certificate_pem(certificate) + b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
    with pytest.raises(_cert.CertificateError) as excinfo:
        _cert.load_certificates(bundle)
    assert 'number 2' in str(excinfo.value)


@pytest.mark.parametrize('pkcs8', [False, True])
def test_load_private_key_formats(pair, pkcs8):
    key, certificate = pair
    loaded = _cert.load_private_key(key_pem(key, pkcs8))
    assert _cert.private_key_matches(certificate, loaded)


def test_load_private_key_error_hides_content():
    body = b'-----BEGIN RSA PRIVATE KEY-----\nTOPSECRETBYTES\n-----END RSA PRIVATE KEY-----\n'
    with pytest.raises(_cert.CertificateError) as excinfo:
        _cert.load_private_key(body)
    assert 'TOPSECRET' not in str(excinfo.value)


def test_load_private_key_rejects_encrypted(pair):
    key, certificate = pair
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b'passphrase'))
    with pytest.raises(_cert.CertificateError) as excinfo:
        _cert.load_private_key(encrypted)
    assert 'encrypted' in str(excinfo.value)


def test_load_private_key_rejects_missing():
    with pytest.raises(_cert.CertificateError):
        _cert.load_private_key(b'')


def test_private_key_mismatch(pair):
    key, certificate = pair
    assert not _cert.private_key_matches(certificate, make_key('rsa'))


def test_private_key_match_ec():
    key = make_key('ec')
    certificate = make_certificate(key, NOW, NOW + datetime.timedelta(days=1))
    assert _cert.private_key_matches(certificate, _cert.load_private_key(key_pem(key)))
    assert not _cert.private_key_matches(certificate, make_key('ec'))


def test_certificate_id_is_sha256_of_der(pair):
    key, certificate = pair
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert _cert.certificate_id(certificate) == hashlib.sha256(der).hexdigest()
    assert len(_cert.certificate_id(certificate)) == 64


def test_not_valid_after_is_aware(pair):
    key, certificate = pair
    value = _cert.not_valid_after(certificate)
    assert value.tzinfo is not None
    assert value == (NOW + datetime.timedelta(days=365)).replace(microsecond=0)


@pytest.mark.parametrize('offset_days,renew_days,expected', [
    (365, 30, _cert.VALID),
    (20, 30, _cert.EXPIRING),
    (20, 0, _cert.VALID),
    (-1, 30, _cert.EXPIRED),
])
def test_check_validity(offset_days, renew_days, expected):
    key = make_key()
    certificate = make_certificate(key, NOW - datetime.timedelta(days=400), NOW + datetime.timedelta(days=offset_days))
    state, days_left = _cert.check_validity(certificate, renew_days, NOW)
    assert state == expected
    assert round(days_left) == offset_days


def test_check_validity_not_yet_valid():
    key = make_key()
    certificate = make_certificate(key, NOW + datetime.timedelta(days=2), NOW + datetime.timedelta(days=400))
    state, dummy = _cert.check_validity(certificate, 30, NOW)
    assert state == _cert.NOT_YET_VALID


def test_format_time():
    assert _cert.format_time(datetime.datetime(2049, 12, 31, 23, 59, 59, 123, tzinfo=UTC)) == '2049-12-31T23:59:59Z'


def test_describe_certificate(pair):
    key, certificate = pair
    facts = _cert.describe_certificate(certificate)
    assert facts['certificate_id'] == _cert.certificate_id(certificate)
    assert facts['subject'] == 'CN=AWS IoT Certificate'
    assert facts['not_after'].endswith('Z')
