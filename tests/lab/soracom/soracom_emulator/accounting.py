# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Request accounting: per-path call counts, the SORACOM API rate limit and OpenAPI spec violations."""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque

# Maximum entries in the call log. Older entries are dropped and counted in "dropped".
CALL_LOG_MAX_ENTRIES = 10000
# Maximum spec violations kept. Older ones are dropped but stay in "count".
VIOLATION_LOG_MAX_ENTRIES = 1000
# Violations logged one by one. Later ones are only counted, so one broken view cannot flood the log.
VIOLATION_LOG_LINES_MAX = 100


class CallRecorder:
    """Thread-safe counts of requests per service and ``METHOD path``, plus a bounded log."""

    def __init__(self, clock=time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._counts: dict[str, Counter] = {}
        self._log: deque = deque(maxlen=CALL_LOG_MAX_ENTRIES)
        self._dropped = 0

    def record(self, service: str, method: str, path: str, status: int,
               operator_id: str | None = None, imsi: str | None = None) -> None:
        entry = {
            "time": self._clock(),
            "service": service,
            "method": method,
            "path": path,
            "status": status,
        }
        if operator_id:
            entry["operatorId"] = operator_id
        if imsi:
            entry["imsi"] = imsi
        with self._lock:
            self._counts.setdefault(service, Counter())[f"{method} {path}"] += 1
            if len(self._log) == self._log.maxlen:
                self._dropped += 1
            self._log.append(entry)

    def snapshot(self) -> dict:
        """Return counts per service, totals, the log (oldest first) and how many entries it dropped."""
        with self._lock:
            counts = {service: dict(counter) for service, counter in self._counts.items()}
            return {
                "counts": counts,
                "totals": {service: sum(counter.values()) for service, counter in counts.items()},
                "log": list(self._log),
                "dropped": self._dropped,
            }

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._dropped = 0


class RateLimiter:
    """Fixed one-window request limit per key, as the SORACOM API applies per operator and API.

    SORACOM limits requests per minute for each operator and API path, and ``/auth`` per
    caller IP address (users.soracom.io "API limitations" page). Every response then carries
    ``X-Soracom-Ratelimit-Limit``, ``-Remaining`` and ``-Seconds-Before-Refresh``
    (changelog.soracom.io, "Soracom API now returns rate limit information").
    The limiter is off by default so ordinary tests never see a 429.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.enabled = False
        self.limit = 60
        self.window_seconds = 60
        self.path_limits: dict[str, int] = {}
        self._windows: dict[tuple, list] = {}

    def configure(self, enabled: bool | None = None, limit: int | None = None,
                  window_seconds: int | None = None, path_limits: dict[str, int] | None = None) -> dict:
        """Change the settings and restart every window. A ``None`` argument keeps that setting."""
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            if limit is not None:
                self.limit = limit
            if window_seconds is not None:
                self.window_seconds = window_seconds
            if path_limits is not None:
                self.path_limits = dict(path_limits)
            self._windows.clear()
            return self._settings()

    def settings(self) -> dict:
        with self._lock:
            return self._settings()

    def _settings(self) -> dict:
        return {
            "enabled": self.enabled,
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "path_limits": dict(self.path_limits),
        }

    def reset_windows(self) -> None:
        with self._lock:
            self._windows.clear()

    def hit(self, caller: str, api: str) -> dict | None:
        """Count one request of ``caller`` to ``api`` (``METHOD /path/template``).

        Returns ``None`` while the limiter is off, else ``allowed`` and the values of the three
        rate-limit headers.
        """
        with self._lock:
            if not self.enabled:
                return None
            limit = self.path_limits.get(api, self.limit)
            now = self._clock()
            window = self._windows.get((caller, api))
            if window is None or now >= window[0] + self.window_seconds:
                window = [now, 0]
                self._windows[(caller, api)] = window
            allowed = window[1] < limit
            if allowed:
                window[1] += 1
            seconds_left = max(1, math.ceil(window[0] + self.window_seconds - now))
            return {
                "allowed": allowed,
                "limit": limit,
                "remaining": limit - window[1],
                "seconds_before_refresh": seconds_left,
            }


class SpecViolationLog:
    """Thread-safe record of API responses that did not match the OpenAPI spec.

    ``spec_path`` is None while spec validation is off.
    """

    def __init__(self, logger: logging.Logger | None = None, clock=time.time) -> None:
        self._lock = threading.Lock()
        self._logger = logger or logging.getLogger(__name__)
        self._clock = clock
        self._entries: deque = deque(maxlen=VIOLATION_LOG_MAX_ENTRIES)
        self._count = 0
        self._rejected: deque = deque(maxlen=VIOLATION_LOG_MAX_ENTRIES)
        self._rejected_count = 0
        self.spec_path: str | None = None

    def record(self, method: str, path: str, status: int, operation: str | None, errors: list[str]) -> None:
        entry = {
            "time": self._clock(),
            "method": method,
            "path": path,
            "status": status,
            "operation": operation,
            "errors": errors,
        }
        with self._lock:
            self._count += 1
            count = self._count
            self._entries.append(entry)
        if count <= VIOLATION_LOG_LINES_MAX:
            self._logger.warning("spec violation %d: response %d to %s %s (%s) does not match the spec: %s",
                                 count, status, method, path, operation or "-", "; ".join(errors))
        elif count == VIOLATION_LOG_LINES_MAX + 1:
            self._logger.warning("spec violation %d: further violations are only counted, see "
                                 "GET /_lab/spec_violations", count)

    def record_rejected_request(self, method: str, path: str, operation: str | None, error: str) -> None:
        """Record a request rejected with 400 because it does not fit the spec (not a violation)."""
        entry = {"time": self._clock(), "method": method, "path": path, "operation": operation, "error": error}
        with self._lock:
            self._rejected_count += 1
            self._rejected.append(entry)

    def snapshot(self) -> dict:
        """Return whether validation is on, the spec path, the response violations and the rejected requests."""
        with self._lock:
            return {
                "enabled": self.spec_path is not None,
                "spec": self.spec_path,
                "count": self._count,
                "violations": list(self._entries),
                "rejected_request_count": self._rejected_count,
                "rejected_requests": list(self._rejected),
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._count = 0
            self._rejected.clear()
            self._rejected_count = 0
