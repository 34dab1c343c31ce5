# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is private to this collection and may change any time.
# Do not use it from other collections or roles.

"""Atomic file writes for the device modules.

Every file is first written to a temporary file in the target directory, created with
mode 0600 by ``tempfile.mkstemp``, flushed with ``fsync`` and given its final mode and
owner. Only then does ``os.replace`` move it over the target. Readers see either the old
file or the complete new one. On any error the old file stays untouched and the
temporary file is removed.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import tempfile


class FileWriteError(Exception):
    """A file or directory could not be written. The message names the path and the OS error."""

    def __init__(self, message, path=None, os_errno=None):
        super().__init__(message)
        self.path = path
        self.errno = os_errno


_ERRNO_HINTS = {
    errno.ENOSPC: 'the file system is full',
    errno.EROFS: 'the file system is mounted read-only',
    errno.EACCES: 'permission denied (run the task with become: true)',
    errno.EPERM: 'operation not permitted (run the task with become: true)',
    errno.EDQUOT: 'the disk quota is exceeded',
}


def _describe_os_error(exc):
    hint = _ERRNO_HINTS.get(exc.errno)
    if hint:
        return '%s: %s' % (exc.strerror or os.strerror(exc.errno), hint)
    return exc.strerror or str(exc)


def resolve_owner(owner):
    """Return the uid for a user name or numeric id, or None when ``owner`` is None.

    Raises ValueError when the user does not exist.
    """
    if owner is None or owner == '':
        return None
    owner = str(owner)
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ValueError('user %r does not exist on this host' % owner)


def resolve_group(group):
    """Return the gid for a group name or numeric id, or None when ``group`` is None.

    Raises ValueError when the group does not exist.
    """
    if group is None or group == '':
        return None
    group = str(group)
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError('group %r does not exist on this host' % group)


def attributes_differ(path, mode, uid=None, gid=None):
    """Return True when the permission bits, owner or group of ``path`` differ from the expected ones.

    ``uid`` and ``gid`` of None are not compared. A missing file counts as different.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    if stat.S_IMODE(st.st_mode) != mode:
        return True
    if uid is not None and st.st_uid != uid:
        return True
    if gid is not None and st.st_gid != gid:
        return True
    return False


def set_attributes(path, mode, uid=None, gid=None):
    """Set mode, owner and group of ``path`` where they differ and return True if anything changed."""
    if not attributes_differ(path, mode, uid, gid):
        return False
    try:
        st = os.stat(path)
        if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise FileWriteError('Failed to set mode %04o or owner of %s: %s' % (mode, path, _describe_os_error(exc)),
                             path=path, os_errno=exc.errno)
    return True


def ensure_directory(path, mode, uid=None, gid=None):
    """Create directory ``path`` (and missing parents) with ``mode`` and return True if it changed.

    Parents that have to be created get mode 0755. An existing directory gets ``mode``,
    owner and group set where they differ.
    """
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            raise FileWriteError('%s exists and is not a directory' % path, path=path)
        parent = os.path.dirname(os.path.abspath(path))
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            # mkdir applies the umask, so the mode is set again below.
            os.mkdir(path, mode)
        except OSError as exc:
            raise FileWriteError('Failed to create directory %s: %s' % (path, _describe_os_error(exc)),
                                 path=path, os_errno=exc.errno)
        changed = True
    return set_attributes(path, mode, uid, gid) or changed


def _fsync_directory(path):
    """Flush a directory entry to disk so a rename survives a power cut.

    Some file systems reject fsync on a directory, which is harmless here.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StagedFiles:
    """A set of files written to temporary files first and moved into place together.

    ``stage()`` writes each file completely to a temporary file next to its target.
    ``commit()`` then renames all of them, so no target is replaced unless every file
    was written. ``discard()`` removes the temporary files. Use the object as a context
    manager to discard whatever was not committed.
    """

    def __init__(self):
        self._staged = []  # list of (temporary path, final path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.discard()
        return False

    def stage(self, path, content, mode, uid=None, gid=None):
        """Write ``content`` (bytes) to a temporary file beside ``path`` with its final mode and owner."""
        directory = os.path.dirname(os.path.abspath(path))
        base = os.path.basename(path)
        try:
            fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % base, suffix='.tmp', dir=directory)
        except OSError as exc:
            raise FileWriteError('Failed to create a temporary file in %s for %s: %s'
                                 % (directory, base, _describe_os_error(exc)), path=path, os_errno=exc.errno)

        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
                if uid is not None or gid is not None:
                    os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
                os.fchmod(handle.fileno(), mode)
        except OSError as exc:
            _remove_quietly(tmp_path)
            raise FileWriteError('Failed to write %s: %s' % (path, _describe_os_error(exc)),
                                 path=path, os_errno=exc.errno)
        except BaseException:
            _remove_quietly(tmp_path)
            raise

        self._staged.append((tmp_path, path))
        return tmp_path

    def commit(self):
        """Move every staged file over its target, in the order staged, and return the final paths.

        A rename inside one directory does not fail for lack of space. If one fails anyway,
        the files renamed before it stay replaced, the rest keep their old content, and
        the error names both lists.
        """
        done = []
        directories = set()
        while self._staged:
            tmp_path, path = self._staged[0]
            try:
                os.replace(tmp_path, path)
            except OSError as exc:
                pending = [final for dummy, final in self._staged]
                self.discard()
                raise FileWriteError(
                    'Failed to move the new %s into place: %s. Replaced already: %s. Unchanged: %s.'
                    % (path, _describe_os_error(exc), ', '.join(done) or 'none', ', '.join(pending)),
                    path=path, os_errno=exc.errno)
            self._staged.pop(0)
            done.append(path)
            directories.add(os.path.dirname(os.path.abspath(path)))
        for directory in sorted(directories):
            _fsync_directory(directory)
        return done

    def discard(self):
        """Remove every temporary file that was staged but not committed."""
        while self._staged:
            tmp_path, dummy = self._staged.pop()
            _remove_quietly(tmp_path)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_file_atomic(path, content, mode=0o600, uid=None, gid=None):
    """Replace ``path`` with ``content`` (bytes) atomically, with the given mode and owner."""
    with StagedFiles() as staged:
        staged.stage(path, content, mode, uid, gid)
        staged.commit()
