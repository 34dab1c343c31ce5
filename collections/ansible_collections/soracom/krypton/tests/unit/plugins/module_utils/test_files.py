# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import os
import stat

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils import _files


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith('.tmp'))


def test_write_creates_file_with_mode(tmp_path):
    target = tmp_path / 'private.key'
    _files.write_file_atomic(str(target), b'secret\n', mode=0o600)
    assert target.read_bytes() == b'secret\n'
    assert mode_of(target) == 0o600
    assert leftovers(tmp_path) == []


def test_write_replaces_and_sets_wider_mode(tmp_path):
    target = tmp_path / 'certificate.pem'
    target.write_bytes(b'old')
    os.chmod(target, 0o600)
    _files.write_file_atomic(str(target), b'new', mode=0o644)
    assert target.read_bytes() == b'new'
    assert mode_of(target) == 0o644


def test_temp_file_is_created_private(tmp_path, monkeypatch):
    """The temporary file is 0600 while it is written, whatever the final mode."""
    seen = {}
    real_fsync = os.fsync

    def spying_fsync(fd):
        # The first fsync is the temporary file's; a later one flushes the directory.
        seen.setdefault('mode', stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fsync(fd)

    monkeypatch.setattr(_files.os, 'fsync', spying_fsync)
    _files.write_file_atomic(str(tmp_path / 'root-ca.pem'), b'ca', mode=0o644)
    assert seen['mode'] == 0o600


@pytest.mark.parametrize('error_number', [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_error_keeps_old_file(tmp_path, monkeypatch, error_number):
    target = tmp_path / 'private.key'
    target.write_bytes(b'old content')

    def failing_fsync(fd):
        raise OSError(error_number, os.strerror(error_number))

    monkeypatch.setattr(_files.os, 'fsync', failing_fsync)
    with pytest.raises(_files.FileWriteError) as excinfo:
        _files.write_file_atomic(str(target), b'new content')
    assert target.read_bytes() == b'old content'
    assert leftovers(tmp_path) == []
    assert excinfo.value.errno == error_number
    assert str(target) in str(excinfo.value)


def test_enospc_on_write_names_full_disk(tmp_path, monkeypatch):
    target = tmp_path / 'certificate.pem'
    target.write_bytes(b'old')
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self._handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self._handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_files.os, 'fdopen', lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(_files.FileWriteError) as excinfo:
        _files.write_file_atomic(str(target), b'x' * 4096)
    assert 'file system is full' in str(excinfo.value)
    assert target.read_bytes() == b'old'
    assert leftovers(tmp_path) == []


def test_erofs_on_temp_creation(tmp_path, monkeypatch):
    target = tmp_path / 'krypton.json'
    target.write_bytes(b'{}')

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(_files.tempfile, 'mkstemp', read_only)
    with pytest.raises(_files.FileWriteError) as excinfo:
        _files.write_file_atomic(str(target), b'{"host": "x"}')
    assert 'read-only' in str(excinfo.value)
    assert target.read_bytes() == b'{}'
    assert leftovers(tmp_path) == []


def test_staged_files_not_committed_on_error(tmp_path, monkeypatch):
    """A failure while staging the second file leaves the first target untouched."""
    first = tmp_path / 'certificate.pem'
    second = tmp_path / 'private.key'
    first.write_bytes(b'old cert')
    second.write_bytes(b'old key')
    calls = {'count': 0}
    real_fsync = os.fsync

    def fsync_failing_second(fd):
        calls['count'] += 1
        if calls['count'] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(_files.os, 'fsync', fsync_failing_second)
    with pytest.raises(_files.FileWriteError):
        with _files.StagedFiles() as staged:
            staged.stage(str(first), b'new cert', 0o644)
            staged.stage(str(second), b'new key', 0o600)
            staged.commit()
    assert first.read_bytes() == b'old cert'
    assert second.read_bytes() == b'old key'
    assert leftovers(tmp_path) == []


def test_staged_files_commit_in_order(tmp_path, monkeypatch):
    order = []
    real_replace = os.replace

    def recording_replace(source, destination):
        order.append(os.path.basename(destination))
        return real_replace(source, destination)

    monkeypatch.setattr(_files.os, 'replace', recording_replace)
    with _files.StagedFiles() as staged:
        staged.stage(str(tmp_path / 'a'), b'1', 0o644)
        staged.stage(str(tmp_path / 'b'), b'2', 0o600)
        # Nothing is visible under the final names before the commit.
        assert not (tmp_path / 'a').exists()
        assert not (tmp_path / 'b').exists()
        done = staged.commit()
    assert order == ['a', 'b']
    assert done == [str(tmp_path / 'a'), str(tmp_path / 'b')]
    assert mode_of(tmp_path / 'b') == 0o600
    assert leftovers(tmp_path) == []


def test_failed_rename_reports_both_lists(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace_failing_second(source, destination):
        if destination.endswith('b'):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_replace(source, destination)

    monkeypatch.setattr(_files.os, 'replace', replace_failing_second)
    with pytest.raises(_files.FileWriteError) as excinfo:
        with _files.StagedFiles() as staged:
            staged.stage(str(tmp_path / 'a'), b'1', 0o644)
            staged.stage(str(tmp_path / 'b'), b'2', 0o644)
            staged.stage(str(tmp_path / 'c'), b'3', 0o644)
            staged.commit()
    message = str(excinfo.value)
    assert 'Replaced already: %s' % (tmp_path / 'a') in message
    assert str(tmp_path / 'c') in message
    assert leftovers(tmp_path) == []


def test_discard_removes_temp_files(tmp_path):
    staged = _files.StagedFiles()
    temp = staged.stage(str(tmp_path / 'a'), b'1', 0o644)
    assert os.path.exists(temp)
    staged.discard()
    assert not os.path.exists(temp)
    assert not (tmp_path / 'a').exists()


def test_ensure_directory_creates_with_mode(tmp_path):
    target = tmp_path / 'etc' / 'soracom' / 'krypton'
    old_umask = os.umask(0o077)
    try:
        assert _files.ensure_directory(str(target), 0o700) is True
    finally:
        os.umask(old_umask)
    assert target.is_dir()
    assert mode_of(target) == 0o700
    assert _files.ensure_directory(str(target), 0o700) is False


def test_ensure_directory_fixes_mode(tmp_path):
    target = tmp_path / 'krypton'
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    assert _files.ensure_directory(str(target), 0o700) is True
    assert mode_of(target) == 0o700


def test_ensure_directory_rejects_file(tmp_path):
    target = tmp_path / 'krypton'
    target.write_bytes(b'')
    with pytest.raises(_files.FileWriteError):
        _files.ensure_directory(str(target), 0o700)


def test_set_attributes_reports_change(tmp_path):
    target = tmp_path / 'private.key'
    target.write_bytes(b'x')
    os.chmod(target, 0o644)
    assert _files.attributes_differ(str(target), 0o600) is True
    assert _files.set_attributes(str(target), 0o600) is True
    assert mode_of(target) == 0o600
    assert _files.set_attributes(str(target), 0o600) is False


def test_attributes_differ_on_owner(tmp_path):
    target = tmp_path / 'f'
    target.write_bytes(b'x')
    st = os.stat(target)
    assert _files.attributes_differ(str(target), stat.S_IMODE(st.st_mode), uid=st.st_uid + 1) is True
    assert _files.attributes_differ(str(target), stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid) is False


def test_attributes_differ_for_missing_file(tmp_path):
    assert _files.attributes_differ(str(tmp_path / 'missing'), 0o600) is True


def test_resolve_owner_and_group():
    assert _files.resolve_owner(None) is None
    assert _files.resolve_owner('0') == 0
    assert _files.resolve_owner('root') == 0
    assert _files.resolve_group('0') == 0
    assert _files.resolve_group(None) is None
    with pytest.raises(ValueError):
        _files.resolve_owner('no-such-user-krypton')
    with pytest.raises(ValueError):
        _files.resolve_group('no-such-group-krypton')
