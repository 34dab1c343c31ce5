# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Flask plumbing shared by the four apps: JSON errors, request log lines and call counts."""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .errors import ApiError, api_error
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
    """
    app = Flask(f"soracom_emulator.{service}")
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    @app.before_request
    def start_request() -> None:
        g.started = time.monotonic()
        g.operator_id = None
        g.imsi = None

    @app.after_request
    def finish_request(response: Response) -> Response:
        elapsed_ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
        operator_id = g.get("operator_id")
        imsi = g.get("imsi")
        # The path without its query string: nothing secret travels in these URLs, but the log
        # stays free of anything a client might put there by mistake.
        logger.info("%s %s %s %s %d operator=%s imsi=%s %.1fms", service, request.remote_addr,
                    request.method, request.path, response.status_code, operator_id or "-",
                    imsi or "-", elapsed_ms)
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
