# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of SORACOM API requests and responses against SORACOM's OpenAPI spec, with openapi-core.

``server.py --validate-spec PATH`` loads the spec once at startup. The API app then checks each
request before its view runs and rejects a request that does not fit the spec with a 400
``{"code", "message"}`` error. It also checks each response it sends and records a mismatch in
the state's :class:`~soracom_emulator.accounting.SpecViolationLog` (``GET /_lab/spec_violations``),
so tests can assert that the emulator and the collection both stay within the spec.

Parsing the 1 MB YAML spec takes about 0.4 s and openapi-spec-validator's check of the spec
itself about 1.2 s (measured on a 2-vCPU VM). Both results are cached as JSON keyed by the
SHA-256 of the file, so later starts only read the JSON. server.py imports this module only
with ``--validate-spec``, so the emulator runs without openapi-core otherwise.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import (
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.response.exceptions import HeaderValidationError
from openapi_spec_validator import OpenAPIV30SpecValidator

# The spec's first server is https://api.soracom.io/v1. Requests are matched against it whatever
# Host header they carry, so tests on 127.0.0.1 find the same operations as the lab.
SPEC_HOST_URL = "https://api.soracom.io"
# Bump when the layout of the cache file changes.
CACHE_FORMAT = 1
# Maximum schema errors reported per request or response.
SCHEMA_ERRORS_MAX = 5
# Operations whose response bodies contain secrets (API key and token): their errors never quote values.
SECRET_RESPONSE_OPERATIONS = frozenset({"auth"})


class SpecRequest(WerkzeugOpenAPIRequest):
    """openapi-core's view of a werkzeug request, placed on the spec's server."""

    @property
    def host_url(self) -> str:
        return SPEC_HOST_URL

    @property
    def full_url(self) -> str:
        return SPEC_HOST_URL + self.path


def default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/soracom-krypton-lab/openapi`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "soracom-krypton-lab" / "openapi"


class OpenApiSpec:
    """The parsed SORACOM OpenAPI spec and openapi-core's validators for it."""

    def __init__(self, path: str, spec: dict, spec_errors: list[str], load_seconds: float,
                 cache_hit: bool) -> None:
        self.path = path
        self.spec_errors = spec_errors
        self.load_seconds = load_seconds
        self.cache_hit = cache_hit
        self.path_count = len(spec["paths"])
        schema = SchemaPath.from_dict(spec)
        # load() has already checked the spec itself and cached the result, so openapi-core skips
        # its own check. That check raises on this spec (two /query operations have a default
        # outside their enum), although no operation the emulator serves is affected.
        self.openapi = OpenAPI(schema, config=Config(spec_validator_cls=None))
        self._finder = APICallPathFinder(schema)

    @classmethod
    def load(cls, path: str, cache_dir: Path | None = None,
             logger: logging.Logger | None = None) -> "OpenApiSpec":
        """Read the spec at ``path``, from the JSON cache in ``cache_dir`` when it has this file's SHA-256."""
        logger = logger or logging.getLogger(__name__)
        started = time.monotonic()
        raw = Path(path).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        cache_file = cache_dir / f"soracom-api-{digest[:16]}.json" if cache_dir else None
        cached = _read_cache(cache_file, digest) if cache_file else None
        if cached is not None:
            spec, spec_errors = cached["spec"], cached["spec_errors"]
        else:
            spec = _parse_spec(raw)
            spec_errors = _check_spec(spec)
            if cache_file:
                _write_cache(cache_file, {"format": CACHE_FORMAT, "sha256": digest, "spec": spec,
                                          "spec_errors": spec_errors}, logger)
        return cls(str(path), spec, spec_errors, time.monotonic() - started, cached is not None)

    def check_request(self, request) -> tuple[str | None, str | None]:
        """Validate a werkzeug request. Return ``(operationId, error)``, with ``error`` None when it fits.

        A path or method that the spec lacks is not checked, because the app's routing rejects it.
        Missing API key headers are not checked either, because the app rejects them with 401 first.
        """
        spec_request = SpecRequest(request)
        try:
            operation = self._operation_id(spec_request)
        except PathError:
            return None, None
        try:
            self.openapi.validate_request(spec_request)
        except SecurityValidationError:
            return operation, None
        except OpenAPIError as exc:
            return operation, describe_error(exc, redact=False)
        return operation, None

    def check_response(self, request, response) -> tuple[str | None, list[str]]:
        """Validate the werkzeug ``response`` to ``request``. Return ``(operationId, errors)``.

        An error status (4xx, 5xx) that the operation does not declare is accepted, because the
        spec lists few of the errors the API returns. An undeclared success status is an error.
        """
        spec_request = SpecRequest(request)
        try:
            operation = self._operation_id(spec_request)
        except PathError:
            return None, []
        try:
            self.openapi.validate_response(spec_request, WerkzeugOpenAPIResponse(response))
        except ResponseNotFound:
            if response.status_code >= 400:
                return operation, []
            return operation, [f"status {response.status_code} is not declared for this operation"]
        except OpenAPIError as exc:
            return operation, [describe_error(exc, redact=operation in SECRET_RESPONSE_OPERATIONS)]
        return operation, []

    def _operation_id(self, spec_request: SpecRequest) -> str | None:
        """Find the operation of a request, or raise openapi-core's PathError."""
        found = self._finder.find(spec_request.method, spec_request.full_url)
        return (found.operation / "operationId").read_str(None)


def describe_error(exc: OpenAPIError, redact: bool) -> str:
    """Describe an openapi-core error and the JSON Schema errors behind it.

    With ``redact`` the text names the field and the failed check but never quotes a value.
    """
    cause = exc.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or [])
    if not schema_errors:
        detail = str(exc)
        if cause is not None and not redact and str(cause) and str(cause) not in detail:
            detail += f" ({cause})"
        return _shorten(detail, 500)
    parts = []
    for error in schema_errors[:SCHEMA_ERRORS_MAX]:
        field = ".".join(str(part) for part in error.absolute_path)
        prefix = f"{field}: " if field else ""
        if redact:
            parts.append(f"{prefix}fails the '{error.validator}' check")
        else:
            parts.append(prefix + _shorten(error.message, 200))
    if len(schema_errors) > SCHEMA_ERRORS_MAX:
        parts.append(f"and {len(schema_errors) - SCHEMA_ERRORS_MAX} more")
    return _shorten(f"{_error_place(exc)}: " + "; ".join(parts), 1000)


def _error_place(exc: OpenAPIError) -> str:
    """Name the part of the message that failed: a parameter, a header, or the body."""
    if isinstance(exc, ParameterValidationError):
        # For example "Invalid path parameter: namespace". These texts never contain a value.
        return str(exc)
    if isinstance(exc, HeaderValidationError):
        return f"response header {getattr(exc, 'name', '')}".rstrip()
    if isinstance(exc, RequestBodyValidationError):
        return "request body"
    return "response body"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_cache(cache_file: Path, digest: str) -> dict | None:
    try:
        with open(cache_file, encoding="utf-8") as handle:
            cached = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("format") != CACHE_FORMAT or cached.get("sha256") != digest:
        return None
    return cached


def _write_cache(cache_file: Path, content: dict, logger: logging.Logger) -> None:
    """Write the cache atomically. A cache that cannot be written only costs time on the next start."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=cache_file.parent, prefix=".spec-", suffix=".json")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
        os.replace(temporary, cache_file)
    except OSError as exc:
        logger.warning("cannot write the OpenAPI spec cache %s: %s", cache_file, exc)


def _parse_spec(raw: bytes) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(raw, Loader=loader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        raise ValueError(f"the file is not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise ValueError("the file is not an OpenAPI document: it has no 'paths' object")
    return spec


def _check_spec(spec: dict) -> list[str]:
    """Validate the spec itself with openapi-spec-validator and return its error messages."""
    validator = OpenAPIV30SpecValidator(SchemaPath.from_dict(spec))
    return [_shorten(error.message, 300) for error in validator.iter_errors()]
