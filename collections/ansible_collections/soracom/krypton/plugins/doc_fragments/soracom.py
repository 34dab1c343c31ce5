# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection and authentication options shared by every SORACOM module."""

    DOCUMENTATION = r"""
options:
  auth_key_id:
    description:
      - ID of the SORACOM auth key (SAM user or root user key) used to start an API session, such as V(keyId-xxxx).
      - Without O(session), the module authenticates once with C(POST /auth) and reuses that session for every later
        request of the task.
      - If not set, the environment variable E(SORACOM_AUTH_KEY_ID) is used.
      - Mutually exclusive with O(api_key) and O(token), also when the value comes from the environment.
    type: str
  auth_key:
    description:
      - Secret of the auth key O(auth_key_id).
      - If not set, the environment variable E(SORACOM_AUTH_KEY) is used.
    type: str
  api_key:
    description:
      - API key of an existing SORACOM API session, sent as C(X-Soracom-API-Key).
      - With O(token), the module uses this session and does not call C(POST /auth).
    type: str
  token:
    description:
      - API token of the existing session O(api_key), sent as C(X-Soracom-Token).
      - A token expires, after 24 hours by default. The module then fails with HTTP 401.
    type: str
  session:
    description:
      - Existing SORACOM API session to use instead of a new C(POST /auth), as RV(soracom.krypton.soracom_auth#module:session)
        returns it. Set it once for every SORACOM task of a play with C(module_defaults) for
        C(group/soracom.krypton.soracom), so the play authenticates once.
      - Unlike O(api_key) and O(token), it may be given together with O(auth_key_id) and O(auth_key). When the API
        rejects the session with HTTP 401, for example because the token expired, the module then starts a new
        session with the auth key once and sends the request again.
      - Mutually exclusive with O(api_key) and O(token).
    type: dict
    suboptions:
      api_key:
        description:
          - API key of the session, sent as C(X-Soracom-API-Key).
        type: str
        required: true
      token:
        description:
          - API token of the session, sent as C(X-Soracom-Token).
        type: str
        required: true
  coverage_type:
    description:
      - SORACOM coverage whose API the module calls.
      - V(jp) selects Japan coverage at U(https://api.soracom.io/v1), V(g) global coverage at U(https://g.api.soracom.io/v1).
      - Ignored when O(endpoint) is set.
      - If not set, the environment variable E(SORACOM_COVERAGE_TYPE) is used.
    type: str
    choices: [jp, g]
    default: jp
  endpoint:
    description:
      - Base URL of the SORACOM API, including the C(/v1) path, for example V(https://api.soracom.io/v1).
      - Overrides O(coverage_type). Meant for test servers and API proxies.
      - If not set, the environment variable E(SORACOM_ENDPOINT) is used.
    type: str
  timeout:
    description:
      - Seconds to wait for the server on each request before the attempt counts as failed.
    type: int
    default: 30
  retries:
    description:
      - How many times a failed request is sent again, so a request is sent at most O(retries) + 1 times.
      - Requests are retried after HTTP 429 (rate limit), HTTP 5xx other than 501, and connection failures.
        A request that creates something (such as a new group) is retried only when the server cannot
        have acted on it, that is after HTTP 429 or when no connection was made.
      - The wait before each retry is what the server asks for in C(Retry-After) or the
        C(X-Soracom-Ratelimit-*) headers (at most 60 seconds). Without such a header it is an exponential
        backoff with jitter, 1 to 2 seconds before the first retry, doubling for each later retry up to
        16 to 32 seconds.
      - Retrying stops earlier when the time since the first attempt would pass 300 seconds.
      - Each retry is written to the module log, and the first three also appear as warnings.
    type: int
    default: 5
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API server.
      - Set to V(false) only for a test server with a self-signed certificate.
    type: bool
    default: true
  language:
    description:
      - Language of error messages from the API, sent as C(X-Soracom-Lang).
    type: str
    choices: [en, ja]
    default: en
notes:
  - The SORACOM API limits the request rate per operator and API path. To keep the number of requests low,
    the modules read lists in pages of up to 100 items and write only what differs.
"""
