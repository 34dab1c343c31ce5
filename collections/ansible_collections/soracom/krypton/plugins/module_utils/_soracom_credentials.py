# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SORACOM credential sets: the logic of soracom_credential and soracom_credential_info.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    SoracomApiError,
    SoracomError,
)


# ---------------------------------------------------------------------------
# Credential sets
# ---------------------------------------------------------------------------

def describe_credential(credential):
    """Return the documented ``credential`` result, without secret fields."""
    secrets = credential.get("credentials") or {}
    described = dict(
        credentials_id=credential.get("credentialsId"),
        type=credential.get("type"),
        description=credential.get("description"),
        create_date_time=credential.get("createDateTime"),
        update_date_time=credential.get("updateDateTime"),
        last_used_date_time=credential.get("lastUsedDateTime"),
    )
    # The access key ID is an identifier, not a secret; the API may or may not return it.
    if isinstance(secrets, dict) and secrets.get("accessKeyId"):
        described["access_key_id"] = secrets["accessKeyId"]
    return described


def _fetch_credentials(client, credential_id=None):
    """Return the API's credential set objects, or only the one with ``credential_id``."""
    credentials = client.get("/credentials") or []
    if not isinstance(credentials, list):
        raise SoracomApiError("SORACOM API GET /credentials returned a JSON %s where a list was expected."
                              % type(credentials).__name__, method="GET", path="/credentials")
    if credential_id is not None:
        credentials = [item for item in credentials if item.get("credentialsId") == credential_id]
    return credentials


def list_credentials(client, credential_id=None):
    """Return the credential sets, or only the one with ``credential_id``, described without secrets."""
    return [describe_credential(item) for item in _fetch_credentials(client, credential_id)]


def manage_credential_info(client, params, context):
    return dict(changed=False, credentials=list_credentials(client, params.get("credential_id")))


def _credential_diff_view(described, replaced_secret=False):
    if described is None:
        return {}
    view = dict((key, described.get(key)) for key in ("credentials_id", "type", "description", "access_key_id")
                if described.get(key) is not None)
    if replaced_secret:
        view["secret_access_key"] = "(replaced)"
    return view


def manage_credential(client, params, context):
    """Create, replace or delete a credential set.

    A secret cannot be read back, so an existing set is written only with
    ``overwrite=always``. That mode writes on every run and always reports
    a change.
    """
    credential_id = params["credential_id"]
    credential_type = params.get("type") or "aws-credentials"
    description = params.get("description")
    access_key_id = params.get("access_key_id")
    secret_access_key = params.get("secret_access_key")
    overwrite = params.get("overwrite") or "on_create"
    state = params.get("state") or "present"

    if not credential_id:
        raise SoracomError("credential_id must not be empty.")
    has_secret = bool(access_key_id and secret_access_key)
    if state == "present" and overwrite == "always" and not has_secret:
        raise SoracomError(
            "overwrite=always replaces the secret of credential set %r, so access_key_id and "
            "secret_access_key are required." % credential_id
        )

    path = "/credentials/" + quote(credential_id, safe="")
    matches = _fetch_credentials(client, credential_id)
    current = describe_credential(matches[0]) if matches else None
    result = dict(changed=False)

    if state == "absent":
        if current is not None:
            result["changed"] = True
            if not context.check_mode:
                try:
                    client.delete(path)
                except SoracomApiError as exc:
                    if exc.status != 404:
                        raise
        if context.diff:
            result["diff"] = dict(before=_credential_diff_view(current), after={})
        return result

    body = None
    if has_secret:
        body = {
            "type": credential_type,
            "credentials": {"accessKeyId": access_key_id, "secretAccessKey": secret_access_key},
        }
        if description is not None:
            body["description"] = description

    if current is None:
        if not has_secret:
            raise SoracomError(
                "Credential set %r does not exist, and creating it needs access_key_id and "
                "secret_access_key. Nothing was written." % credential_id
            )
        result["changed"] = True
        after = dict(credentials_id=credential_id, type=credential_type, description=description,
                     access_key_id=access_key_id)
        if context.check_mode:
            result["credential"] = dict(after, create_date_time=None, update_date_time=None,
                                        last_used_date_time=None)
        else:
            created = client.post(path, body=body)
            result["credential"] = describe_credential(created or {"credentialsId": credential_id})
            result["credential"].setdefault("access_key_id", access_key_id)
        if context.diff:
            result["diff"] = dict(before={}, after=_credential_diff_view(after, replaced_secret=True))
        return result

    if overwrite == "always":
        result["changed"] = True
        after = dict(current, type=credential_type, access_key_id=access_key_id)
        if description is not None:
            after["description"] = description
        if context.check_mode:
            result["credential"] = after
        else:
            updated = client.put(path, body=body)
            result["credential"] = describe_credential(updated or {"credentialsId": credential_id})
            result["credential"].setdefault("access_key_id", access_key_id)
        if context.diff:
            result["diff"] = dict(before=_credential_diff_view(current),
                                  after=_credential_diff_view(after, replaced_secret=True))
        return result

    differences = []
    if current.get("type") != credential_type:
        differences.append("type is %r, not %r" % (current.get("type"), credential_type))
    if description is not None and current.get("description") != description:
        differences.append("description differs")
    if access_key_id and current.get("access_key_id") and current["access_key_id"] != access_key_id:
        differences.append("access key ID is %s, not %s" % (current["access_key_id"], access_key_id))
    if differences:
        context.warn(
            "Credential set %r exists and was left unchanged because overwrite=on_create (%s). "
            "Set overwrite=always with access_key_id and secret_access_key to replace it."
            % (credential_id, "; ".join(differences))
        )
    result["credential"] = current
    if context.diff:
        view = _credential_diff_view(current)
        result["diff"] = dict(before=view, after=view)
    return result
