# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of request bodies and query parameters. Each failure raises a 400 :class:`ApiError`."""
from __future__ import annotations

import json

from .errors import api_error

_JSON_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
}


def json_type_name(expected: type) -> str:
    """Return the JSON name of a Python type, with its article ("an object")."""
    return _JSON_TYPE_NAMES[expected]


def is_json_type(value, expected: type) -> bool:
    """Check ``value`` against a JSON type. ``True`` and ``False`` are not integers in JSON."""
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def parse_json_body(raw: bytes, content_type: str | None, expected: type | None, required: bool = True,
                    check_content_type: bool = True):
    """Decode a JSON request body and check that its top level is ``expected`` (dict or list).

    ``expected=None`` accepts any JSON value. Returns ``None`` when the body is empty and not
    ``required``.
    """
    if not raw or not raw.strip():
        if required:
            raise api_error("body_required")
        return None
    if check_content_type:
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise api_error("content_type_invalid", content_type=content_type or "")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise api_error("json_invalid", detail=str(exc)) from None
    if expected is not None and not is_json_type(value, expected):
        raise api_error("body_type_invalid", expected=json_type_name(expected).split(" ", 1)[1])
    return value


def require_field(obj: dict, name: str, expected: type, prefix: str = "", non_empty: bool = False):
    """Return ``obj[name]``, or raise 400 when it is absent, of the wrong type or (``non_empty``) empty."""
    field = prefix + name
    if name not in obj:
        raise api_error("field_missing", field=field)
    return check_field(obj[name], field, expected, non_empty)


def optional_field(obj: dict, name: str, expected: type, prefix: str = "", default=None):
    """Return the type-checked ``obj[name]`` when present, else ``default``."""
    if name not in obj:
        return default
    return check_field(obj[name], prefix + name, expected)


def check_field(value, field: str, expected: type, non_empty: bool = False):
    """Type-check one value named ``field`` in error messages."""
    if expected is not None and not is_json_type(value, expected):
        raise api_error("field_type_invalid", field=field, expected=json_type_name(expected))
    if non_empty and expected is str and not value:
        raise api_error("field_value_invalid", field=field, detail="must not be empty")
    return value


def check_string_map(value, field: str) -> dict[str, str]:
    """Check a TagSet-like object whose values are all strings."""
    check_field(value, field, dict)
    for key, item in value.items():
        check_field(item, f"{field}.{key}", str)
    return value


def parse_limit(raw: str | None, default: int, maximum: int | None = None) -> int:
    """Parse the ``limit`` query parameter: an integer from 1 to ``maximum`` (when given)."""
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise api_error("query_invalid", name="limit", detail=f"'{raw}' is not an integer") from None
    if limit < 1:
        raise api_error("query_invalid", name="limit", detail="must be 1 or more")
    if maximum is not None and limit > maximum:
        raise api_error("query_invalid", name="limit", detail=f"must be {maximum} or less")
    return limit
