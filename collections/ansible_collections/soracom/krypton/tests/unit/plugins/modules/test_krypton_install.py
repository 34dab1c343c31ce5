# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests of krypton_install and krypton_certificate_info, on sets of files written here."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _krypton
from ansible_collections.soracom.krypton.plugins.modules import krypton_certificate_info, krypton_install

pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

UTC = datetime.timezone.utc
HOST = 'a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com'


def write_set(directory, days_valid=365, thing_name='krypton-440103000000001'):
    """Write a usable set of the four files to ``directory`` and return its certificate ID."""
    now = datetime.datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'AWS IoT Certificate')])
    certificate = (x509.CertificateBuilder()
                   .subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=days_valid))
                   .sign(key, hashes.SHA256()))
    certificate_id = _cert.certificate_id(certificate)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'certificate.pem').write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / 'private.key').write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    (directory / 'root-ca.pem').write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    stored = dict((field, None) for field in _krypton.STATE_FIELDS)
    stored.update(host=HOST, client_id=thing_name, thing_name=thing_name, certificate_id=certificate_id,
                  certificate_not_after=_cert.format_time(_cert.not_valid_after(certificate)))
    (directory / 'krypton.json').write_text(json.dumps(stored))
    return certificate_id


def snapshot(directory):
    return dict((name, (directory / name).read_bytes()) for name in _krypton.WRITE_ORDER
                if (directory / name).exists())


def run(module, capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            module.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = excinfo.value.code
    return result


def test_install_replaces_working_set(capsys, tmp_path):
    old_id = write_set(tmp_path / 'work')
    new_id = write_set(tmp_path / 'stage')
    staged = snapshot(tmp_path / 'stage')

    result = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'), _ansible_diff=True)

    assert result['rc'] == 0, result
    assert result['changed'] is True
    assert result['certificate_id'] == new_id
    assert result['previous_certificate_id'] == old_id
    assert result['diff']['before']['certificate_id'] == old_id
    assert result['diff']['after']['certificate_id'] == new_id
    assert snapshot(tmp_path / 'work') == staged
    assert stat.S_IMODE(os.stat(tmp_path / 'work' / 'private.key').st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / 'work' / 'certificate.pem').st_mode) == 0o644
    assert [name for name in os.listdir(tmp_path / 'work') if name.endswith('.tmp')] == []


def test_install_second_run_unchanged(capsys, tmp_path):
    write_set(tmp_path / 'work')
    write_set(tmp_path / 'stage')
    first = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'))
    assert first['changed'] is True

    second = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'))
    assert second['rc'] == 0
    assert second['changed'] is False


def test_install_check_mode_writes_nothing(capsys, tmp_path):
    write_set(tmp_path / 'work')
    write_set(tmp_path / 'stage')
    before = snapshot(tmp_path / 'work')

    result = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'),
                 _ansible_check_mode=True)

    assert result['rc'] == 0
    assert result['changed'] is True
    assert snapshot(tmp_path / 'work') == before


def test_install_creates_missing_dest(capsys, tmp_path):
    new_id = write_set(tmp_path / 'stage')
    result = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'))
    assert result['rc'] == 0
    assert result['previous_certificate_id'] is None
    assert result['certificate_id'] == new_id
    assert stat.S_IMODE(os.stat(tmp_path / 'work').st_mode) == 0o700


@pytest.mark.parametrize('broken', ['missing-key', 'foreign-key', 'stale-json'])
def test_install_rejects_unusable_set(capsys, tmp_path, broken):
    write_set(tmp_path / 'work')
    write_set(tmp_path / 'stage')
    if broken == 'missing-key':
        (tmp_path / 'stage' / 'private.key').unlink()
    elif broken == 'foreign-key':
        write_set(tmp_path / 'other')
        (tmp_path / 'stage' / 'private.key').write_bytes((tmp_path / 'other' / 'private.key').read_bytes())
    else:
        (tmp_path / 'stage' / 'krypton.json').write_bytes((tmp_path / 'work' / 'krypton.json').read_bytes())
    before = snapshot(tmp_path / 'work')

    result = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'))

    assert result['rc'] == 1
    assert 'are not a usable set' in result['msg']
    assert 'Nothing in %s was changed.' % (tmp_path / 'work') in result['msg']
    assert snapshot(tmp_path / 'work') == before


def test_install_missing_staging_directory(capsys, tmp_path):
    write_set(tmp_path / 'work')
    result = run(krypton_install, capsys, src=str(tmp_path / 'stage'), dest=str(tmp_path / 'work'))
    assert result['rc'] == 1
    assert 'The staging directory %s does not exist.' % (tmp_path / 'stage') in result['msg']


def test_install_same_directory_rejected(capsys, tmp_path):
    write_set(tmp_path / 'work')
    result = run(krypton_install, capsys, src=str(tmp_path / 'work'), dest=str(tmp_path / 'work'))
    assert result['rc'] == 1
    assert 'src and dest are the same directory' in result['msg']


def test_info_reads_certificate(capsys, tmp_path):
    certificate_id = write_set(tmp_path / 'work', days_valid=20)
    result = run(krypton_certificate_info, capsys, src=str(tmp_path / 'work'))
    assert result['rc'] == 0
    assert result['changed'] is False
    assert result['exists'] is True
    assert result['usable'] is True
    assert result['certificate_id'] == certificate_id
    assert 19.9 < result['days_left'] <= 20
    assert result['thing_name'] == 'krypton-440103000000001'
    assert result['host'] == HOST
    assert 'Krypton' not in result['reason']


def test_info_expiry_from_certificate_not_json(capsys, tmp_path):
    write_set(tmp_path / 'work', days_valid=20)
    stored = json.loads((tmp_path / 'work' / 'krypton.json').read_text())
    stored['certificate_not_after'] = '2099-01-01T00:00:00Z'
    (tmp_path / 'work' / 'krypton.json').write_text(json.dumps(stored))
    result = run(krypton_certificate_info, capsys, src=str(tmp_path / 'work'))
    assert result['days_left'] < 21
    assert result['not_after'] != '2099-01-01T00:00:00Z'


def test_info_missing_directory(capsys, tmp_path):
    result = run(krypton_certificate_info, capsys, src=str(tmp_path / 'none'))
    assert result['rc'] == 0
    assert result['exists'] is False
    assert result['usable'] is False
    assert 'Missing in' in result['reason']
    assert 'certificate_id' not in result


def test_info_mismatched_key_not_usable(capsys, tmp_path):
    certificate_id = write_set(tmp_path / 'work')
    write_set(tmp_path / 'other')
    (tmp_path / 'work' / 'private.key').write_bytes((tmp_path / 'other' / 'private.key').read_bytes())
    result = run(krypton_certificate_info, capsys, src=str(tmp_path / 'work'))
    assert result['exists'] is True
    assert result['usable'] is False
    assert result['certificate_id'] == certificate_id
    assert 'does not belong to' in result['reason']
