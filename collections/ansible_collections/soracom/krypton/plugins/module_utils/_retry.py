# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Retry timing and reporting shared by the SORACOM API client and the Krypton client.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import email.utils
import time

# A wait the server requests (Retry-After and the rate-limit headers) is capped
# here, because SORACOM's rate-limit windows last one minute.
SERVER_WAIT_MAX = 60.0
# Up to this many seconds of random jitter are added to a server-requested wait,
# so parallel runs that were throttled together do not retry together.
SERVER_WAIT_JITTER = 1.0


def server_requested_delay(headers, now=None):
    """Return the wait in seconds a response requests, or None when it requests none.

    Reads ``Retry-After`` (seconds or an HTTP date),
    ``X-Soracom-Ratelimit-Seconds-Before-Refresh`` (seconds, the header
    SORACOM documents) and ``X-Soracom-Ratelimit-Reset`` (seconds, or a
    UNIX time in seconds or milliseconds). The longest wait wins, capped at
    SERVER_WAIT_MAX. ``headers`` must have lower-case names.
    """
    if now is None:
        now = time.time()
    waits = []

    retry_after = headers.get("retry-after")
    if retry_after:
        retry_after = retry_after.strip()
        seconds = _parse_number(retry_after)
        if seconds is None:
            try:
                moment = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError, IndexError):
                moment = None
            if moment is not None and moment.tzinfo is not None:
                seconds = moment.timestamp() - now
        if seconds is not None:
            waits.append(seconds)

    refresh = _parse_number(headers.get("x-soracom-ratelimit-seconds-before-refresh"))
    if refresh is not None:
        waits.append(refresh)

    reset = _parse_number(headers.get("x-soracom-ratelimit-reset"))
    if reset is not None:
        if reset > 1e12:
            reset = reset / 1000.0 - now
        elif reset > 1e9:
            reset = reset - now
        waits.append(reset)

    if not waits:
        return None
    return min(SERVER_WAIT_MAX, max(0.0, *waits))


def _parse_number(value):
    if value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


class RetryReporter:
    """Report retries: every one once through ``log``, the first few also through ``warn``.

    ``log`` is AnsibleModule.log, which writes to the journal or syslog of the
    host that runs the module, so every retry leaves one record there. ``warn``
    is AnsibleModule.warn, which shows in the play output. Later retries are
    only logged, so a rate-limited run over many SIMs does not flood the play
    output with warnings. ``subject`` names the retried requests in the notice
    that further retries go to the log only.
    """

    WARN_LIMIT = 3

    def __init__(self, log, warn=None, subject="SORACOM API requests"):
        self._log = log
        self._warn = warn
        self._subject = subject
        self.count = 0

    def __call__(self, message):
        self.count += 1
        self._log(message)
        if self._warn is None:
            return
        if self.count <= self.WARN_LIMIT:
            self._warn(message)
        elif self.count == self.WARN_LIMIT + 1:
            self._warn("More %s are being retried. Further retries are written to the module log only." % self._subject)


def gave_up_sentence(attempts, reason=None):
    """Return the sentence that ends the message of a request that was not tried again."""
    text = "Gave up after %d %s" % (attempts, "attempt" if attempts == 1 else "attempts")
    if reason:
        return "%s because %s." % (text, reason)
    return text + "."
