# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.soracom.krypton.plugins.modules import soracom_auth, soracom_group
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    API_KEY,
    AUTH_KEY,
    ENDPOINT,
    OPERATOR_ID,
    TOKEN,
    api,
    run,
)


def test_auth_returns_session(api, capsys):
    result = run(soracom_auth, capsys)
    assert result["changed"] is False
    assert result["session"] == {"api_key": API_KEY, "token": TOKEN}
    assert result["operator_id"] == OPERATOR_ID
    assert result["endpoint"] == ENDPOINT
    assert result["token_timeout"] == 86400
    assert api.auth_count == 1


def test_auth_runs_in_check_mode(api, capsys):
    result = run(soracom_auth, capsys, check_mode=True)
    assert result["session"]["token"] == TOKEN
    assert api.auth_count == 1


def test_auth_sends_token_timeout(api, capsys):
    result = run(soracom_auth, capsys, token_timeout=3600)
    assert result["token_timeout"] == 3600
    assert api.calls[0][2]["tokenTimeoutSeconds"] == 3600


def test_auth_rejects_token_timeout_out_of_range(api, capsys):
    result = run(soracom_auth, capsys, token_timeout=172801)
    assert result["failed"] is True
    assert "token_timeout" in result["msg"]
    assert api.calls == []


def test_auth_needs_auth_key(api, capsys):
    result = run(soracom_auth, capsys, auth_key_id=None, auth_key=None)
    assert result["failed"] is True
    assert "auth_key_id and auth_key" in result["msg"]
    assert api.calls == []


def test_auth_ignores_given_session(api, capsys):
    result = run(soracom_auth, capsys, session={"api_key": "api-old", "token": "token-old"})
    assert result["session"] == {"api_key": API_KEY, "token": TOKEN}
    assert api.auth_count == 1


def test_auth_key_not_in_result(api, capsys):
    result = run(soracom_auth, capsys)
    assert AUTH_KEY not in str(result)


def test_session_reused_by_other_module(api, capsys):
    session = run(soracom_auth, capsys)["session"]
    result = run(soracom_group, capsys, session=session, name="krypton-pis")
    assert result["changed"] is True
    # One POST /auth for both modules: soracom_group used the session.
    assert api.auth_count == 1


def test_expired_session_renewed_by_other_module(api, capsys):
    result = run(soracom_group, capsys, session={"api_key": "api-expired", "token": "token-expired"},
                 name="krypton-pis")
    assert result["changed"] is True
    assert api.auth_count == 1


def test_session_and_token_exclusive(api, capsys):
    result = run(soracom_group, capsys, auth_key_id=None, auth_key=None, api_key=API_KEY, token=TOKEN,
                 session={"api_key": API_KEY, "token": TOKEN}, name="krypton-pis")
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]
