# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab-only admin API (plain HTTP on 127.0.0.1): seed SIMs and auth keys, inspect and reset state,
inject faults and read OpenAPI spec violations.

``GET /_lab/state`` includes secrets (auth keys, AWS secret keys of credential sets) so tests can
check state without the modules under test. Never expose this port outside the lab.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request

from .errors import api_error
from .state import LabState
from .validation import (
    check_field,
    optional_field,
    parse_json_body,
    require_field,
)
from .webapp import create_app

SEED_MAX_COUNT = 100000


def _body(expected: type | None = dict):
    """Parse an admin request body as JSON, whatever its Content-Type header."""
    return parse_json_body(request.get_data(), request.content_type, expected, check_content_type=False)


def _object_or_array() -> list:
    """Parse a body that is one object or an array of objects, and return it as a list."""
    value = _body(None)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise api_error("body_type_invalid", expected="object or array")


def _register_login(state: LabState, entry, where: str) -> None:
    """Register one of the three /auth forms: auth key, root email/password or SAM user."""
    check_field(entry, where.rstrip("."), dict)
    operator_id = optional_field(entry, "operatorId", str, prefix=where, default=state.default_operator_id)
    if "authKeyId" in entry or "authKey" in entry:
        state.add_auth_key(require_field(entry, "authKeyId", str, prefix=where, non_empty=True),
                           require_field(entry, "authKey", str, prefix=where, non_empty=True), operator_id)
    elif "email" in entry:
        state.add_root_user(require_field(entry, "email", str, prefix=where, non_empty=True),
                            require_field(entry, "password", str, prefix=where, non_empty=True), operator_id)
    elif "userName" in entry:
        state.add_sam_user(operator_id, require_field(entry, "userName", str, prefix=where, non_empty=True),
                           require_field(entry, "password", str, prefix=where, non_empty=True))
    else:
        raise api_error("field_missing", field=where + "authKeyId")


def create_admin_app(state: LabState, logger: logging.Logger) -> Flask:
    """Create the admin app. Its requests are logged but not counted in /_lab/calls."""
    app = create_app("admin", state, logger, record_calls=False)

    @app.post("/_lab/sims")
    def upsert_sims():
        specs = _object_or_array()
        return jsonify({"sims": state.upsert_sims(specs)})

    @app.post("/_lab/auth_keys")
    def register_auth_keys():
        entries = _object_or_array()
        for index, entry in enumerate(entries):
            _register_login(state, entry, f"[{index}]." if len(entries) > 1 else "")
        return jsonify({"registered": len(entries)})

    @app.get("/_lab/state")
    def get_state():
        return jsonify(state.snapshot())

    @app.get("/_lab/calls")
    def get_calls():
        return jsonify(state.calls.snapshot())

    @app.delete("/_lab/calls")
    def clear_calls():
        state.calls.clear()
        return "", 204

    @app.post("/_lab/reset")
    def reset():
        state.reset()
        return "", 204

    @app.post("/_lab/seed_sims")
    def seed_sims():
        body = _body(dict)
        count = require_field(body, "count", int)
        prefix = optional_field(body, "prefix", str, default="44010399")
        online = optional_field(body, "online", bool, default=False)
        if not prefix.isdigit() or not 5 <= len(prefix) <= 14:
            raise api_error("field_value_invalid", field="prefix", detail="must be 5 to 14 digits")
        capacity = min(SEED_MAX_COUNT, 10 ** (15 - len(prefix)) - 1)
        if not 1 <= count <= capacity:
            raise api_error("field_value_invalid", field="count",
                            detail=f"must be from 1 to {capacity} for prefix '{prefix}'")
        return jsonify(state.seed_sims(count, prefix, online))

    @app.get("/_lab/faults")
    def list_faults():
        return jsonify(state.faults.snapshot())

    @app.post("/_lab/faults")
    def add_faults():
        added = state.faults.add(_object_or_array())
        for fault in added:
            logger.info("admin: fault %d added: %s %s %s, type %s, count %d", fault["id"], fault["service"],
                        fault["method"] or "*", fault["path"], fault["type"], fault["count"])
        return jsonify({"faults": added})

    @app.delete("/_lab/faults")
    def clear_faults():
        logger.info("admin: %d fault(s) cleared", state.faults.clear())
        return "", 204

    @app.delete("/_lab/faults/<int:fault_id>")
    def delete_fault(fault_id: int):
        if not state.faults.remove(fault_id):
            raise api_error("fault_not_found", fault_id=fault_id)
        return "", 204

    @app.get("/_lab/spec_violations")
    def get_spec_violations():
        return jsonify(state.spec_violations.snapshot())

    @app.delete("/_lab/spec_violations")
    def clear_spec_violations():
        state.spec_violations.clear()
        return "", 204

    @app.get("/_lab/ratelimit")
    def get_ratelimit():
        return jsonify(state.rate_limiter.settings())

    @app.post("/_lab/ratelimit")
    def configure_ratelimit():
        body = _body(dict)
        enabled = optional_field(body, "enabled", bool)
        limit = optional_field(body, "limit", int)
        window_seconds = optional_field(body, "window_seconds", int)
        path_limits = optional_field(body, "path_limits", dict)
        for name, value in (("limit", limit), ("window_seconds", window_seconds)):
            if value is not None and value < 1:
                raise api_error("field_value_invalid", field=name, detail="must be 1 or more")
        for api, value in (path_limits or {}).items():
            check_field(value, f"path_limits.{api}", int)
        return jsonify(state.rate_limiter.configure(enabled=enabled, limit=limit,
                                                    window_seconds=window_seconds,
                                                    path_limits=path_limits))

    @app.get("/_lab/krypton_ratelimit")
    def get_krypton_ratelimit():
        return jsonify(state.krypton_rate_limiter.settings())

    @app.post("/_lab/krypton_ratelimit")
    def configure_krypton_ratelimit():
        body = _body(dict)
        enabled = optional_field(body, "enabled", bool)
        limit = optional_field(body, "limit", int)
        if limit is not None and limit < 1:
            raise api_error("field_value_invalid", field="limit", detail="must be 1 or more")
        # The window stays one second: the limit is per operator and second.
        return jsonify(state.krypton_rate_limiter.configure(enabled=enabled, limit=limit))

    return app
