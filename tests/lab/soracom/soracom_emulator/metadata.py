# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SORACOM Air metadata service (http://metadata.soracom.io/v1/...).

A device reads its own subscriber over the cellular link without credentials. SORACOM maps
``/v1/subscriber`` to ``/v1/subscribers/{its IMSI}`` and serves it only when the SIM's group has
``SoracomAir.metadata.enabled`` set (developers.soracom.io, "Metadata Service").

Served here:

* ``GET /v1/subscriber``: the Subscriber JSON.
* ``GET /v1/subscriber.<field>[.<field>...]``: one field, as plain text for a string and as
  JSON otherwise.
  NOTE: this dotted form is recalled from SORACOM's metadata documentation, not checked
  against the service.
* ``GET /v1/userdata``: ``SoracomAir.userdata`` of the group as plain text.

Writes (tags, speed class) are not modelled: they return 403 while the group's metadata is
read-only, else 405.
"""
from __future__ import annotations

import json
import logging

from flask import Flask, Response, g, jsonify, request

from .errors import api_error
from .state import LabState, subscriber_view
from .webapp import create_app


def _calling_sim(state: LabState) -> tuple[dict, dict, dict]:
    """Return the calling SIM, its group and the group's SoracomAir.metadata settings."""
    found = state.session_lookup(request.remote_addr)
    if found is None:
        raise api_error("metadata_no_session", address=request.remote_addr)
    sim, group = found
    g.imsi = sim["imsi"]
    g.operator_id = sim["operatorId"]
    # NOTE: the lab returns 403 for a SIM whose group does not enable the metadata service. The
    # status and body of the real service's rejection are a guess.
    if group is None:
        raise api_error("metadata_disabled", imsi=sim["imsi"], detail="the SIM does not belong to a group")
    settings = group["configuration"].get("SoracomAir", {}).get("metadata")
    if not isinstance(settings, dict) or settings.get("enabled") is not True:
        raise api_error("metadata_disabled", imsi=sim["imsi"],
                        detail=f"SoracomAir.metadata.enabled is not true in group '{group['groupId']}'")
    return sim, group, settings


def _field_value(subscriber: dict, dotted: str):
    value = subscriber
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise api_error("metadata_field_not_found", field=dotted)
        value = value[part]
    return value


def _text(value: str) -> Response:
    return Response(value, mimetype="text/plain")


def create_metadata_app(state: LabState, logger: logging.Logger) -> Flask:
    """Create the metadata service app (plain HTTP, metadata.soracom.io in the lab)."""
    app = create_app("metadata", state, logger)

    @app.route("/v1/<path:resource>", methods=["GET", "POST", "PUT", "DELETE"])
    def metadata(resource: str):
        sim, group, settings = _calling_sim(state)
        is_known = resource in ("subscriber", "userdata") or resource.startswith(("subscriber.", "subscriber/"))
        if not is_known:
            raise api_error("route_not_found", method=request.method, path=request.path)
        if request.method != "GET":
            # A group without "readonly" is treated as read-only, the console's default.
            if settings.get("readonly", True):
                raise api_error("metadata_read_only", group_id=group["groupId"])
            raise api_error("method_not_allowed", method=request.method, path=request.path)

        if resource == "userdata":
            response = _text(str(group["configuration"]["SoracomAir"].get("userdata", "")))
        elif resource == "subscriber":
            response = jsonify(subscriber_view(sim))
        elif resource.startswith("subscriber."):
            value = _field_value(subscriber_view(sim), resource[len("subscriber."):])
            if isinstance(value, str):
                response = _text(value)
            else:
                response = Response(json.dumps(value), mimetype="application/json")
        else:
            raise api_error("route_not_found", method=request.method, path=request.path)

        allow_origin = settings.get("allowOrigin")
        if allow_origin:
            response.headers["Access-Control-Allow-Origin"] = allow_origin
        return response

    return app
