# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SORACOM API under /v1: auth, credential sets, groups, SIMs and subscribers.

Shapes, paths and status codes follow the SORACOM OpenAPI spec (soracom-cli's
soracom-api.en.yaml). Where the spec is silent the lab picks the stricter behaviour and marks
it with a NOTE.
"""
from __future__ import annotations

import bisect
import logging
import re
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from .errors import api_error
from .groupconfig import PARAMETER_DELETE_NAMESPACES, check_configuration, check_namespace, check_parameter
from .state import (
    CREDENTIAL_TYPES,
    TOKEN_TIMEOUT_DEFAULT_SECONDS,
    TOKEN_TIMEOUT_MAX_SECONDS,
    LabState,
    sim_view,
    subscriber_view,
)
from .validation import (
    check_field,
    check_string_map,
    optional_field,
    parse_json_body,
    parse_limit,
    require_field,
)
from .webapp import create_app

# NOTE: the spec gives no default page size. The lab pages every list at 100 items, so
# clients that ignore x-soracom-next-key fail in the lab too.
DEFAULT_PAGE_SIZE = 100
# listSubscribers documents limit as 1..100.
SUBSCRIBERS_MAX_LIMIT = 100

_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def create_api_app(state: LabState, logger: logging.Logger, spec=None) -> Flask:
    """Create the SORACOM API app (served over HTTPS as api.soracom.io in the lab).

    ``spec`` is an :class:`~soracom_emulator.specvalidation.OpenApiSpec` or None. With a spec, a
    request that does not fit it gets a 400 error before its view runs, and every response is
    checked against it, a mismatch being recorded in ``state.spec_violations``.
    """
    app = create_app("api", state, logger)

    @app.before_request
    def authenticate_and_limit() -> None:
        rule = request.url_rule
        if rule is None:
            return
        if rule.endpoint == "auth":
            # SORACOM limits /auth per caller IP address, everything else per operator.
            caller = f"ip:{request.remote_addr}"
        else:
            api_key = request.headers.get("X-Soracom-API-Key", "")
            token = request.headers.get("X-Soracom-Token", "")
            if not api_key or not token:
                raise api_error("token_required")
            g.operator_id = state.resolve_session(api_key, token)
            caller = f"operator:{g.operator_id}"
        # One window per operation: the method plus the path template, e.g. "POST /v1/sims/{sim_id}/set_group".
        api_path = _RULE_VARIABLE.sub(r"{\1}", rule.rule)
        verdict = state.rate_limiter.hit(caller, f"{request.method} {api_path}")
        if verdict is None:
            return
        g.ratelimit_headers = {
            "X-Soracom-Ratelimit-Limit": str(verdict["limit"]),
            "X-Soracom-Ratelimit-Remaining": str(verdict["remaining"]),
            "X-Soracom-Ratelimit-Seconds-Before-Refresh": str(verdict["seconds_before_refresh"]),
        }
        if not verdict["allowed"]:
            raise api_error("rate_limited", headers=g.ratelimit_headers, path=api_path,
                            seconds=verdict["seconds_before_refresh"])

    @app.after_request
    def add_ratelimit_headers(response: Response) -> Response:
        for name, value in g.get("ratelimit_headers", {}).items():
            response.headers[name] = value
        return response

    if spec is not None:
        _add_spec_validation(app, state, spec)
    _add_auth_routes(app, state)
    _add_credential_routes(app, state)
    _add_group_routes(app, state)
    _add_sim_routes(app, state)
    _add_subscriber_routes(app, state)
    return app


def _add_spec_validation(app: Flask, state: LabState, spec) -> None:
    """Check requests and responses against the OpenAPI spec (registered after authentication)."""
    state.spec_violations.spec_path = spec.path

    @app.before_request
    def check_request_against_spec() -> None:
        if request.url_rule is None:
            return
        operation, error = spec.check_request(request)
        if error is not None:
            g.spec_rejected = True
            state.spec_violations.record_rejected_request(request.method, request.path, operation, error)
            raise api_error("spec_request_invalid", operation=operation, detail=error)

    @app.after_request
    def check_response_against_spec(response: Response) -> Response:
        fault = g.get("fault")
        if request.url_rule is None or g.get("spec_rejected") or (fault is not None and fault.replaces_view):
            return response
        operation, errors = spec.check_response(request, response)
        if errors:
            state.spec_violations.record(request.method, request.path, response.status_code, operation, errors)
        return response


# ---------------------------------------------------------------------- helpers


def _json_body(expected: type, required: bool = True):
    return parse_json_body(request.get_data(), request.content_type, expected, required=required)


def _paginate(items: list, key, limit: int) -> tuple[list, str | None]:
    """Return the page after ``last_evaluated_key`` and the key to send for the next page, if any.

    ``items`` must be sorted by ``key``. A ``last_evaluated_key`` that no longer exists still
    resumes at the right place.
    """
    last_key = request.args.get("last_evaluated_key")
    keys = [key(item) for item in items]
    start = bisect.bisect_right(keys, last_key) if last_key else 0
    page = items[start:start + limit]
    next_key = key(page[-1]) if page and start + limit < len(items) else None
    return page, next_key


def _page_response(page: list, next_key: str | None, link: bool = False) -> Response:
    response = jsonify(page)
    if next_key is not None:
        response.headers["X-Soracom-Next-Key"] = next_key
        if link:
            # listSims and listSubscribers also announce the next page in a Link header.
            query = {name: value for name, value in request.args.items() if name != "last_evaluated_key"}
            query["last_evaluated_key"] = next_key
            response.headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
    return response


def _tag_filter() -> tuple[str, str, str] | None:
    tag_name = request.args.get("tag_name")
    tag_value = request.args.get("tag_value")
    mode = request.args.get("tag_value_match_mode", "exact")
    if mode not in ("exact", "prefix"):
        raise api_error("query_invalid", name="tag_value_match_mode", detail="must be exact or prefix")
    if tag_name is None:
        return None
    if tag_value is None:
        raise api_error("query_invalid", name="tag_value", detail="required when tag_name is specified")
    return tag_name, tag_value, mode


def _matches_tag(tags: dict, tag_filter: tuple[str, str, str] | None) -> bool:
    if tag_filter is None:
        return True
    tag_name, tag_value, mode = tag_filter
    if tag_name not in tags:
        return False
    if mode == "prefix":
        return tags[tag_name].startswith(tag_value)
    return tags[tag_name] == tag_value


def _tag_updates() -> list[dict]:
    """Parse a TagUpdateRequest array: ``[{"tagName": ..., "tagValue": ...}]``."""
    tags = _json_body(list)
    for index, tag in enumerate(tags):
        prefix = f"[{index}]."
        check_field(tag, f"[{index}]", dict)
        require_field(tag, "tagName", str, prefix=prefix, non_empty=True)
        require_field(tag, "tagValue", str, prefix=prefix)
    return tags


def _group_id_from_body() -> str:
    body = _json_body(dict)
    return require_field(body, "groupId", str, non_empty=True)


# ---------------------------------------------------------------------- /auth


def _add_auth_routes(app: Flask, state: LabState) -> None:
    @app.post("/v1/auth", endpoint="auth")
    def auth():
        body = _json_body(dict)
        timeout = optional_field(body, "tokenTimeoutSeconds", int, default=TOKEN_TIMEOUT_DEFAULT_SECONDS)
        if not 1 <= timeout <= TOKEN_TIMEOUT_MAX_SECONDS:
            raise api_error("field_value_invalid", field="tokenTimeoutSeconds",
                            detail=f"must be from 1 to {TOKEN_TIMEOUT_MAX_SECONDS}")
        if "authKeyId" in body or "authKey" in body:
            form = "auth_key"
            names = ("authKeyId", "authKey")
        elif "email" in body:
            form = "root"
            names = ("email", "password")
        elif "userName" in body or "operatorId" in body:
            form = "sam"
            names = ("operatorId", "userName", "password")
        else:
            raise api_error("field_value_invalid", field="body",
                            detail="send authKeyId and authKey, email and password, "
                                   "or operatorId, userName and password")
        identity = {name: require_field(body, name, str) for name in names}
        result = state.authenticate(form, identity, timeout)
        g.operator_id = result["operatorId"]
        return jsonify(result)

    @app.post("/v1/auth/logout")
    def logout():
        state.revoke_session(request.headers.get("X-Soracom-API-Key", ""))
        return "", 204


# ---------------------------------------------------------------------- /credentials


def _credential_body() -> dict:
    body = _json_body(dict)
    credential_type = require_field(body, "type", str)
    if credential_type not in CREDENTIAL_TYPES:
        raise api_error("field_value_invalid", field="type",
                        detail=f"'{credential_type}' is not one of {', '.join(CREDENTIAL_TYPES)}")
    credentials = require_field(body, "credentials", dict)
    optional_field(body, "description", str)
    if credential_type == "aws-credentials":
        for name in ("accessKeyId", "secretAccessKey"):
            require_field(credentials, name, str, prefix="credentials.", non_empty=True)
    return body


def _add_credential_routes(app: Flask, state: LabState) -> None:
    @app.get("/v1/credentials")
    def list_credentials():
        return jsonify(state.list_credentials(g.operator_id))

    @app.post("/v1/credentials/<credentials_id>")
    def create_credential(credentials_id: str):
        # NOTE: the spec lists only 201 here. Creating an id that exists returns 400, a guess at
        # the real service, which has a separate PUT for updates.
        return jsonify(state.create_credential(g.operator_id, credentials_id, _credential_body())), 201

    @app.put("/v1/credentials/<credentials_id>")
    def update_credential(credentials_id: str):
        return jsonify(state.update_credential(g.operator_id, credentials_id, _credential_body()))

    @app.delete("/v1/credentials/<credentials_id>")
    def delete_credential(credentials_id: str):
        state.delete_credential(g.operator_id, credentials_id)
        return "", 204


# ---------------------------------------------------------------------- /groups


def _add_group_routes(app: Flask, state: LabState) -> None:
    @app.post("/v1/groups")
    def create_group():
        body = _json_body(dict)
        tags = check_string_map(body["tags"], "tags") if "tags" in body else {}
        configuration = check_configuration(body["configuration"]) if "configuration" in body else {}
        return jsonify(state.create_group(g.operator_id, tags, configuration)), 201

    @app.get("/v1/groups")
    def list_groups():
        tag_filter = _tag_filter()
        limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE)
        groups = [group for group in state.list_groups(g.operator_id) if _matches_tag(group["tags"], tag_filter)]
        page, next_key = _paginate(groups, lambda group: group["groupId"], limit)
        return _page_response(page, next_key)

    @app.get("/v1/groups/<group_id>")
    def get_group(group_id: str):
        return jsonify(state.get_group(g.operator_id, group_id))

    @app.delete("/v1/groups/<group_id>")
    def delete_group(group_id: str):
        state.delete_group(g.operator_id, group_id)
        return "", 204

    @app.put("/v1/groups/<group_id>/tags")
    def put_group_tags(group_id: str):
        return jsonify(state.put_group_tags(g.operator_id, group_id, _tag_updates()))

    @app.delete("/v1/groups/<group_id>/tags/<path:tag_name>")
    def delete_group_tag(group_id: str, tag_name: str):
        state.delete_group_tag(g.operator_id, group_id, tag_name)
        return "", 204

    @app.put("/v1/groups/<group_id>/configuration/<namespace>")
    def put_group_configuration(group_id: str, namespace: str):
        check_namespace(namespace)
        parameters = _json_body(list)
        for index, parameter in enumerate(parameters):
            check_field(parameter, f"[{index}]", dict)
            key = require_field(parameter, "key", str, prefix=f"[{index}].", non_empty=True)
            if "value" not in parameter:
                raise api_error("field_missing", field=f"[{index}].value")
            check_parameter(namespace, key, parameter["value"])
        return jsonify(state.put_group_configuration(g.operator_id, group_id, namespace, parameters))

    @app.delete("/v1/groups/<group_id>/configuration/<namespace>")
    def delete_group_namespace(group_id: str, namespace: str):
        check_namespace(namespace)
        state.delete_group_namespace(g.operator_id, group_id, namespace)
        return "", 204

    @app.delete("/v1/groups/<group_id>/configuration/<namespace>/<path:name>")
    def delete_group_parameter(group_id: str, namespace: str, name: str):
        check_namespace(namespace, PARAMETER_DELETE_NAMESPACES)
        state.delete_group_parameter(g.operator_id, group_id, namespace, name)
        return "", 204

    @app.get("/v1/groups/<group_id>/subscribers")
    def list_group_subscribers(group_id: str):
        # The spec returns Sim objects here but pages them by IMSI.
        state.get_group(g.operator_id, group_id)
        limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE)
        sims = sorted(state.list_sim_records(g.operator_id, group_id=group_id), key=lambda sim: sim["imsi"])
        page, next_key = _paginate(sims, lambda sim: sim["imsi"], limit)
        return _page_response([sim_view(sim) for sim in page], next_key)


# ---------------------------------------------------------------------- /sims


def _add_sim_routes(app: Flask, state: LabState) -> None:
    @app.get("/v1/sims")
    def list_sims():
        limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE)
        page, next_key = _paginate(state.list_sim_records(g.operator_id), lambda sim: sim["simId"], limit)
        return _page_response([sim_view(sim) for sim in page], next_key, link=True)

    @app.get("/v1/sims/<sim_id>")
    def get_sim(sim_id: str):
        return _sim_response(state.sim_record(g.operator_id, sim_id))

    @app.post("/v1/sims/<sim_id>/set_group")
    def set_sim_group(sim_id: str):
        group_id = _group_id_from_body()
        return _sim_response(state.set_sim_group(g.operator_id, group_id, sim_id=sim_id))

    @app.post("/v1/sims/<sim_id>/unset_group")
    def unset_sim_group(sim_id: str):
        return _sim_response(state.unset_sim_group(g.operator_id, sim_id=sim_id))

    @app.put("/v1/sims/<sim_id>/tags")
    def put_sim_tags(sim_id: str):
        return _sim_response(state.put_sim_tags(g.operator_id, _tag_updates(), sim_id=sim_id))

    @app.delete("/v1/sims/<sim_id>/tags/<path:tag_name>")
    def delete_sim_tag(sim_id: str, tag_name: str):
        state.delete_sim_tag(g.operator_id, tag_name, sim_id=sim_id)
        return "", 204


def _sim_response(sim: dict) -> Response:
    g.imsi = sim["imsi"]
    return jsonify(sim_view(sim))


# ---------------------------------------------------------------------- /subscribers


def _pipe_separated(name: str) -> set[str] | None:
    raw = request.args.get(name)
    return set(raw.split("|")) if raw else None


def _add_subscriber_routes(app: Flask, state: LabState) -> None:
    @app.get("/v1/subscribers")
    def list_subscribers():
        tag_filter = _tag_filter()
        statuses = _pipe_separated("status_filter")
        speed_classes = _pipe_separated("speed_class_filter")
        serial_prefixes = _pipe_separated("serial_number_filter")
        limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE, maximum=SUBSCRIBERS_MAX_LIMIT)
        sims = [
            sim for sim in state.list_sim_records(g.operator_id)
            if _matches_tag(sim["tags"], tag_filter)
            and (statuses is None or sim["status"] in statuses)
            and (speed_classes is None or sim["speedClass"] in speed_classes)
            and (serial_prefixes is None
                 or any((sim["serialNumber"] or "").startswith(prefix) for prefix in serial_prefixes))
        ]
        sims.sort(key=lambda sim: sim["imsi"])
        page, next_key = _paginate(sims, lambda sim: sim["imsi"], limit)
        return _page_response([subscriber_view(sim) for sim in page], next_key, link=True)

    @app.get("/v1/subscribers/<imsi>")
    def get_subscriber(imsi: str):
        return _subscriber_response(state.subscriber_record(g.operator_id, imsi))

    @app.post("/v1/subscribers/<imsi>/set_group")
    def set_subscriber_group(imsi: str):
        group_id = _group_id_from_body()
        return _subscriber_response(state.set_sim_group(g.operator_id, group_id, imsi=imsi))

    @app.post("/v1/subscribers/<imsi>/unset_group")
    def unset_subscriber_group(imsi: str):
        return _subscriber_response(state.unset_sim_group(g.operator_id, imsi=imsi))

    @app.put("/v1/subscribers/<imsi>/tags")
    def put_subscriber_tags(imsi: str):
        return _subscriber_response(state.put_sim_tags(g.operator_id, _tag_updates(), imsi=imsi))

    @app.delete("/v1/subscribers/<imsi>/tags/<path:tag_name>")
    def delete_subscriber_tag(imsi: str, tag_name: str):
        state.delete_sim_tag(g.operator_id, tag_name, imsi=imsi)
        return "", 204


def _subscriber_response(sim: dict) -> Response:
    g.imsi = sim["imsi"]
    return jsonify(subscriber_view(sim))
