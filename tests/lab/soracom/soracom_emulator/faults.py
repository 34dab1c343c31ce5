# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection for the SORACOM API, Krypton and metadata apps, set up through the admin API.

A fault applies to the next ``count`` requests of one service whose path matches ``path`` (an
exact path, or a glob with ``*``) and, when given, whose method is ``method``. Types:

* ``status``: respond with HTTP ``status`` (default 500) and ``body`` (any JSON value, default a
  ``{"code", "message"}`` error) without running the view.
* ``html``: respond with an HTML page (``body`` or a built-in page) and ``status`` (default 200).
* ``ratelimit``: respond with status 429, the API's rate-limit error body and the headers
  ``X-Soracom-Ratelimit-Limit`` (``limit``, default 60), ``-Remaining`` (0),
  ``-Seconds-Before-Refresh`` and ``Retry-After`` (both ``seconds``, default 1).
* ``delay``: wait ``seconds`` (at most 120), then run the view as usual.
* ``late_response``: run the view, then wait ``seconds`` (at most 120) before sending its
  response. The request takes effect but its response comes late, as when a cellular link drops
  while the response is on its way.
* ``truncate``: run the view, then send only the first half of its body while ``Content-Length``
  announces all of it, and close the connection.
* ``clock_offset``: run the view and shift the ``Date`` header by ``seconds`` (negative: behind).

Faults are kept in memory in the order they were added, and the first match applies.
"""
from __future__ import annotations

import email.utils
import fnmatch
import html
import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from http import HTTPStatus

from flask import Response, jsonify

from .errors import api_error
from .validation import check_field, optional_field, require_field

FAULT_SERVICES = ("api", "krypton", "metadata")
FAULT_TYPES = ("status", "html", "ratelimit", "delay", "late_response", "truncate", "clock_offset")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
COUNT_MAX = 10000
DELAY_MAX_SECONDS = 120
RETRY_AFTER_MAX_SECONDS = 3600
# Ten years, more than any clock-skew test needs.
CLOCK_OFFSET_MAX_SECONDS = 10 * 366 * 86400
# Maximum faults waiting at once, so a runaway test cannot grow the list without bound.
FAULTS_MAX = 1000
# Per-type fields besides the common ones (service, path, method, count, type).
TYPE_FIELDS = {
    "status": ("status", "body", "headers"),
    "html": ("status", "body"),
    "ratelimit": ("seconds", "limit"),
    "delay": ("seconds",),
    "late_response": ("seconds",),
    "truncate": (),
    "clock_offset": ("seconds",),
}
COMMON_FIELDS = ("service", "path", "method", "count", "type")


@dataclass
class Fault:
    """One injected fault and how many more requests it applies to."""

    id: int
    service: str
    path: str
    method: str | None
    type: str
    count: int
    remaining: int
    parameters: dict = field(default_factory=dict)

    @property
    def replaces_view(self) -> bool:
        """True when the fault's response replaces the view."""
        return self.type in ("status", "html", "ratelimit")

    def matches(self, service: str, method: str, path: str) -> bool:
        if service != self.service or (self.method is not None and method != self.method):
            return False
        if "*" in self.path:
            return fnmatch.fnmatchcase(path, self.path)
        return path == self.path

    def view(self) -> dict:
        return asdict(self)


class FaultRegistry:
    """Thread-safe list of faults waiting to apply."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self.applied = 0

    def add(self, specs: list[dict]) -> list[dict]:
        """Check every spec, then add them all. A bad spec adds nothing and raises a 400 ApiError."""
        checked = [parse_fault_spec(spec, f"[{index}]." if len(specs) > 1 else "")
                   for index, spec in enumerate(specs)]
        with self._lock:
            if len(self._faults) + len(checked) > FAULTS_MAX:
                raise api_error("field_value_invalid", field="faults",
                                detail=f"at most {FAULTS_MAX} faults may wait at once; "
                                       "DELETE /_lab/faults clears them")
            added = []
            for values in checked:
                fault = Fault(id=next(self._ids), remaining=values["count"], **values)
                self._faults.append(fault)
                added.append(fault.view())
            return added

    def snapshot(self) -> dict:
        with self._lock:
            return {"faults": [fault.view() for fault in self._faults], "applied": self.applied}

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> int:
        with self._lock:
            removed = len(self._faults)
            self._faults.clear()
            return removed

    def take(self, service: str, method: str, path: str) -> Fault | None:
        """Return the first fault matching the request and use up one of its requests."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(service, method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    self.applied += 1
                    return fault
            return None


def parse_fault_spec(spec, where: str) -> dict:
    """Check one fault spec from ``POST /_lab/faults`` and return the Fault fields without ``id``."""
    check_field(spec, where.rstrip(".") or "body", dict)
    fault_type = require_field(spec, "type", str, prefix=where)
    if fault_type not in FAULT_TYPES:
        raise api_error("field_value_invalid", field=where + "type",
                        detail=f"'{fault_type}' is not one of {', '.join(FAULT_TYPES)}")
    unknown = sorted(set(spec) - set(COMMON_FIELDS) - set(TYPE_FIELDS[fault_type]))
    if unknown:
        allowed = ", ".join(COMMON_FIELDS + TYPE_FIELDS[fault_type])
        raise api_error("field_value_invalid", field=where + unknown[0],
                        detail=f"unknown field for type {fault_type}. Known fields: {allowed}")

    service = require_field(spec, "service", str, prefix=where)
    if service not in FAULT_SERVICES:
        raise api_error("field_value_invalid", field=where + "service",
                        detail=f"'{service}' is not one of {', '.join(FAULT_SERVICES)}")
    path = require_field(spec, "path", str, prefix=where)
    if not path.startswith("/"):
        raise api_error("field_value_invalid", field=where + "path", detail="must start with /")
    method = optional_field(spec, "method", str, prefix=where)
    if method is not None:
        method = method.upper()
        if method not in HTTP_METHODS:
            raise api_error("field_value_invalid", field=where + "method",
                            detail=f"'{method}' is not one of {', '.join(HTTP_METHODS)}")
    count = optional_field(spec, "count", int, prefix=where, default=1)
    _check_range(count, where + "count", 1, COUNT_MAX)

    return {
        "service": service,
        "path": path,
        "method": method,
        "type": fault_type,
        "count": count,
        "parameters": _type_parameters(fault_type, spec, where),
    }


def _type_parameters(fault_type: str, spec: dict, where: str) -> dict:
    if fault_type in ("status", "html"):
        status = optional_field(spec, "status", int, prefix=where, default=500 if fault_type == "status" else 200)
        _check_range(status, where + "status", 200, 599)
        parameters = {"status": status}
        if "body" in spec:
            parameters["body"] = spec["body"] if fault_type == "status" else check_field(
                spec["body"], where + "body", str)
        if fault_type == "status" and "headers" in spec:
            headers = check_field(spec["headers"], where + "headers", dict)
            for name, value in headers.items():
                check_field(value, f"{where}headers.{name}", str)
            parameters["headers"] = dict(headers)
        return parameters
    if fault_type == "ratelimit":
        seconds = optional_field(spec, "seconds", int, prefix=where, default=1)
        _check_range(seconds, where + "seconds", 0, RETRY_AFTER_MAX_SECONDS)
        limit = optional_field(spec, "limit", int, prefix=where, default=60)
        _check_range(limit, where + "limit", 1, 1_000_000)
        return {"seconds": seconds, "limit": limit}
    if fault_type in ("delay", "late_response"):
        if "seconds" not in spec:
            raise api_error("field_missing", field=where + "seconds")
        seconds = spec["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise api_error("field_type_invalid", field=where + "seconds", expected="a number")
        _check_range(seconds, where + "seconds", 0, DELAY_MAX_SECONDS)
        return {"seconds": seconds}
    if fault_type == "clock_offset":
        seconds = require_field(spec, "seconds", int, prefix=where)
        _check_range(seconds, where + "seconds", -CLOCK_OFFSET_MAX_SECONDS, CLOCK_OFFSET_MAX_SECONDS)
        return {"seconds": seconds}
    return {}


def _check_range(value, field_name: str, minimum, maximum) -> None:
    if not minimum <= value <= maximum:
        raise api_error("field_value_invalid", field=field_name, detail=f"must be from {minimum} to {maximum}")


# ---------------------------------------------------------------------- applying a fault


def response_before_view(fault: Fault, path: str, language: str) -> Response | None:
    """Apply the part of ``fault`` that comes before the view.

    Returns the response that replaces the view, or None when the view should run.
    """
    parameters = fault.parameters
    if fault.type == "delay":
        time.sleep(parameters["seconds"])
        return None
    if fault.type == "status":
        status = parameters["status"]
        body = parameters.get("body", api_error("fault_injected", status=status, http_status=status).body(language))
        response = jsonify(body)
        response.status_code = status
        for name, value in parameters.get("headers", {}).items():
            response.headers[name] = value
        return response
    if fault.type == "html":
        status = parameters["status"]
        page = parameters.get("body") or _html_page(status)
        return Response(page, status=status, mimetype="text/html")
    if fault.type == "ratelimit":
        seconds = parameters["seconds"]
        response = jsonify(api_error("rate_limited", path=path, seconds=seconds).body(language))
        response.status_code = 429
        response.headers["X-Soracom-Ratelimit-Limit"] = str(parameters["limit"])
        response.headers["X-Soracom-Ratelimit-Remaining"] = "0"
        response.headers["X-Soracom-Ratelimit-Seconds-Before-Refresh"] = str(seconds)
        response.headers["Retry-After"] = str(seconds)
        return response
    return None


def response_after_view(fault: Fault, response: Response) -> Response:
    """Apply the part of ``fault`` that comes after the view (late_response, truncate, clock_offset)."""
    if fault.type == "late_response":
        time.sleep(fault.parameters["seconds"])
    elif fault.type == "truncate":
        body = response.get_data()
        # werkzeug keeps an explicit Content-Length, sends the shorter body and then closes the
        # connection (its server closes every connection), so the client reads too few bytes.
        response.response = [body[:len(body) // 2]]
        response.headers["Content-Length"] = str(len(body))
    elif fault.type == "clock_offset":
        response.headers["Date"] = email.utils.formatdate(time.time() + fault.parameters["seconds"], usegmt=True)
    return response


def _html_page(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown Status"
    title = html.escape(f"{status} {reason}")
    return (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1><p>This page stands in for a proxy or gateway error page.</p></body></html>\n")
