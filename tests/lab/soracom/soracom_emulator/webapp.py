# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Flask plumbing shared by the four apps: JSON errors, request log lines, call counts and faults."""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .errors import ApiError, api_error
from .faults import FAULT_SERVICES, response_after_view, response_before_view
from .state import LabState


def request_language() -> str:
    """Return ``ja`` when ``X-Soracom-Lang: ja`` was sent, else ``en``."""
    return "ja" if request.headers.get("X-Soracom-Lang", "").strip().lower() == "ja" else "en"


def error_response(error: ApiError) -> Response:
    response = jsonify(error.body(request_language()))
    response.status_code = error.status
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


def create_app(service: str, state: LabState, logger: logging.Logger, record_calls: bool = True) -> Flask:
    """Create a Flask app that logs every request and counts it under ``service`` in ``state.calls``.

    Views set ``g.operator_id`` or ``g.imsi`` so the log line and the call log name the caller.
    The API, Krypton and metadata apps also apply the faults waiting in ``state.faults``, before
    any other request hook runs. ``g.fault`` is the fault applied to the request, or None.
    """
    app = Flask(f"soracom_emulator.{service}")
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    applies_faults = service in FAULT_SERVICES

    @app.before_request
    def start_request() -> Response | None:
        g.started = time.monotonic()
        g.operator_id = None
        g.imsi = None
        g.fault = None
        if not applies_faults:
            return None
        fault = state.faults.take(service, request.method, request.path)
        if fault is None:
            return None
        g.fault = fault
        logger.info("%s: fault %d (%s) applies to %s %s, %d request(s) left", service, fault.id, fault.type,
                    request.method, request.path, fault.remaining)
        return response_before_view(fault, request.path, request_language())

    # Registered before finish_request, so it runs after it: Flask runs after_request hooks in
    # reverse order. A truncated body is cut after everything else has seen the full response.
    @app.after_request
    def apply_response_fault(response: Response) -> Response:
        fault = g.get("fault")
        return response_after_view(fault, response) if fault is not None else response

    @app.after_request
    def finish_request(response: Response) -> Response:
        elapsed_ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
        operator_id = g.get("operator_id")
        imsi = g.get("imsi")
        fault = g.get("fault")
        # The path without its query string: nothing secret travels in these URLs, but the log
        # stays free of anything a client might put there by mistake.
        logger.info("%s %s %s %s %d operator=%s imsi=%s %.1fms%s", service, request.remote_addr,
                    request.method, request.path, response.status_code, operator_id or "-",
                    imsi or "-", elapsed_ms, f" fault={fault.type}" if fault is not None else "")
        if record_calls:
            state.calls.record(service, request.method, request.path, response.status_code,
                               operator_id=operator_id, imsi=imsi)
        return response

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        if isinstance(error, NotFound):
            api = api_error("route_not_found", method=request.method, path=request.path)
        elif isinstance(error, MethodNotAllowed):
            api = api_error("method_not_allowed", method=request.method, path=request.path)
            api.headers = {"Allow": ", ".join(error.valid_methods or [])}
        else:
            api = api_error("http_error", status=error.code or 500,
                            description=error.description or error.name)
        return error_response(api)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        logger.exception("%s: unhandled error in %s %s", service, request.method, request.path)
        return error_response(api_error("internal_error"))

    return app
