# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""In-memory state shared by the API, Krypton, metadata and admin apps.

One re-entrant lock guards everything, so a group change is visible to Krypton and the
metadata service on the next request. Methods return copies, never live records.
"""
from __future__ import annotations

import copy
import hmac
import ipaddress
import secrets
import threading
import time
import uuid

from .accounting import CallRecorder, RateLimiter, SpecViolationLog
from .errors import api_error
from .faults import FaultRegistry

DEFAULT_OPERATOR_ID = "OP0099000001"
# Certificates kept per SIM for Krypton's light mode (POST /v1/provisioning/aws/iot/certificates/{id}).
LIGHT_CERTIFICATES_PER_SIM = 10
TOKEN_TIMEOUT_DEFAULT_SECONDS = 86400
TOKEN_TIMEOUT_MAX_SECONDS = 172800
# NOTE: SORACOM publishes no request limit for Krypton. The lab assumes one like the API's,
# per operator, and returns 429 with Retry-After above this many requests a second.
KRYPTON_RATE_LIMIT_PER_SECOND = 10

# Enum of CredentialsModel.type in the spec. CreateAndUpdateCredentialsModel lists only four of
# these, but the spec's request examples use the others too, so creation accepts all of them.
CREDENTIAL_TYPES = (
    "api-token-credentials",
    "aws-credentials",
    "aws-iam-role-credentials",
    "azure-credentials",
    "azureIoT-credentials",
    "esrij-credentials",
    "google-service-account-json",
    "googleIoT-credentials",
    "infoteria-platio-credentials",
    "kii-thingif-credentials",
    "landlog-credentials",
    "mmcloud-credentials",
    "motionboard-credentials",
    "optim-cloud-IoT-OS-credentials",
    "private-key-pem",
    "psk",
    "pubnub-credentials",
    "sensorcorpus-credentials",
    "username-password-credentials",
    "x509",
)

# Defaults for a SIM the admin API adds without these fields.
SIM_DEFAULTS = {
    "status": "active",
    "speedClass": "s1.standard",
    "subscription": "plan01s",
    "moduleType": "nano",
    "msisdn": None,
    "imei": None,
    "serialNumber": None,
}
# Admin field name -> field of the stored SIM record.
SIM_ADMIN_FIELDS = {
    "imsi": "imsi",
    "sim_id": "simId",
    "iccid": "iccid",
    "ip": "ip",
    "online": "online",
    "group_id": "groupId",
    "tags": "tags",
    "operator_id": "operatorId",
    "status": "status",
    "speed_class": "speedClass",
    "msisdn": "msisdn",
    "imei": "imei",
    "serial_number": "serialNumber",
}


class LabState:
    """Operators' auth keys, API sessions, groups, credential sets and SIMs."""

    def __init__(self, default_operator_id: str = DEFAULT_OPERATOR_ID, clock=time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.default_operator_id = default_operator_id
        self.calls = CallRecorder(clock)
        self.rate_limiter = RateLimiter()
        # Krypton's limit is on from the start, so a fleet bootstrapping at once meets it.
        self.krypton_rate_limiter = RateLimiter()
        self.krypton_rate_limiter.configure(enabled=True, limit=KRYPTON_RATE_LIMIT_PER_SECOND, window_seconds=1)
        self.faults = FaultRegistry()
        self.spec_violations = SpecViolationLog(clock=clock)
        # imsi -> {certificateId: certificate PEM}, oldest first
        self._light_certificates: dict[str, dict[str, str]] = {}
        self._auth_keys: dict[str, dict] = {}
        self._root_users: dict[str, dict] = {}
        self._sam_users: dict[tuple[str, str], dict] = {}
        self._sessions: dict[str, dict] = {}
        self._groups: dict[str, dict] = {}
        self._credentials: dict[tuple[str, str], dict] = {}
        self._sims: dict[str, dict] = {}
        self._sim_id_by_imsi: dict[str, str] = {}
        self._sim_id_by_ip: dict[str, str] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ authentication

    def add_auth_key(self, auth_key_id: str, auth_key: str, operator_id: str) -> None:
        with self.lock:
            self._auth_keys[auth_key_id] = {
                "authKeyId": auth_key_id, "authKey": auth_key, "operatorId": operator_id,
            }

    def add_root_user(self, email: str, password: str, operator_id: str) -> None:
        with self.lock:
            self._root_users[email] = {"email": email, "password": password, "operatorId": operator_id}

    def add_sam_user(self, operator_id: str, user_name: str, password: str) -> None:
        with self.lock:
            self._sam_users[(operator_id, user_name)] = {
                "operatorId": operator_id, "userName": user_name, "password": password,
            }

    def authenticate(self, form: str, identity: dict, timeout_seconds: int) -> dict:
        """Check one of the three POST /auth forms and open an API session.

        ``form`` is ``auth_key``, ``root`` or ``sam``. Returns the AuthResponse body.
        """
        with self.lock:
            if form == "auth_key":
                record = self._auth_keys.get(identity["authKeyId"])
                if record is None or not _equal(record["authKey"], identity["authKey"]):
                    raise api_error("auth_key_invalid")
            elif form == "root":
                record = self._root_users.get(identity["email"])
                if record is None or not _equal(record["password"], identity["password"]):
                    raise api_error("password_invalid")
            else:
                record = self._sam_users.get((identity["operatorId"], identity["userName"]))
                if record is None or not _equal(record["password"], identity["password"]):
                    raise api_error("password_invalid")
            self._drop_expired_sessions()
            session = {
                "apiKey": f"api-{uuid.uuid4()}",
                "token": secrets.token_urlsafe(48),
                "operatorId": record["operatorId"],
                "expiresAt": self.clock() + timeout_seconds,
            }
            self._sessions[session["apiKey"]] = session
            response = {
                "apiKey": session["apiKey"],
                "operatorId": session["operatorId"],
                "token": session["token"],
            }
            if form == "sam":
                response["userName"] = record["userName"]
            return response

    def resolve_session(self, api_key: str, token: str) -> str:
        """Return the operator id of a live session, or raise 401 for an unknown or expired one."""
        with self.lock:
            session = self._sessions.get(api_key)
            if session is None or not _equal(session["token"], token):
                raise api_error("token_invalid")
            if self.clock() >= session["expiresAt"]:
                del self._sessions[api_key]
                raise api_error("token_invalid")
            return session["operatorId"]

    def revoke_session(self, api_key: str) -> None:
        with self.lock:
            self._sessions.pop(api_key, None)

    def _drop_expired_sessions(self) -> None:
        now = self.clock()
        for api_key in [key for key, session in self._sessions.items() if now >= session["expiresAt"]]:
            del self._sessions[api_key]

    # ------------------------------------------------------------------ credential sets

    def list_credentials(self, operator_id: str) -> list[dict]:
        with self.lock:
            records = [record for (owner, _), record in self._credentials.items() if owner == operator_id]
            return [_credential_view(record) for record in sorted(records, key=lambda r: r["credentialsId"])]

    def create_credential(self, operator_id: str, credentials_id: str, body: dict) -> dict:
        with self.lock:
            if (operator_id, credentials_id) in self._credentials:
                raise api_error("credential_exists", credentials_id=credentials_id)
            now = int(self.clock())
            record = {
                "credentialsId": credentials_id,
                "operatorId": operator_id,
                "type": body["type"],
                "description": body.get("description", ""),
                "credentials": copy.deepcopy(body["credentials"]),
                "createDateTime": now,
                "updateDateTime": now,
                "lastUsedDateTime": None,
            }
            self._credentials[(operator_id, credentials_id)] = record
            return _credential_view(record)

    def update_credential(self, operator_id: str, credentials_id: str, body: dict) -> dict:
        with self.lock:
            record = self._credential_record(operator_id, credentials_id)
            record["type"] = body["type"]
            record["description"] = body.get("description", record["description"])
            record["credentials"] = copy.deepcopy(body["credentials"])
            record["updateDateTime"] = int(self.clock())
            return _credential_view(record)

    def delete_credential(self, operator_id: str, credentials_id: str) -> None:
        with self.lock:
            self._credential_record(operator_id, credentials_id)
            del self._credentials[(operator_id, credentials_id)]

    def use_credential(self, operator_id: str, credentials_id: str) -> dict | None:
        """Return a copy of a credential set including its secrets and stamp ``lastUsedDateTime``."""
        with self.lock:
            record = self._credentials.get((operator_id, credentials_id))
            if record is None:
                return None
            record["lastUsedDateTime"] = int(self.clock())
            return copy.deepcopy(record)

    def _credential_record(self, operator_id: str, credentials_id: str) -> dict:
        record = self._credentials.get((operator_id, credentials_id))
        if record is None:
            raise api_error("credential_not_found", credentials_id=credentials_id)
        return record

    # ------------------------------------------------------------------ groups

    def create_group(self, operator_id: str, tags: dict, configuration: dict) -> dict:
        with self.lock:
            now = self.now_ms()
            group = {
                "groupId": str(uuid.uuid4()),
                "operatorId": operator_id,
                "tags": dict(tags),
                "configuration": copy.deepcopy(configuration),
                "createdTime": now,
                "lastModifiedTime": now,
            }
            self._groups[group["groupId"]] = group
            return _group_view(group)

    def list_groups(self, operator_id: str) -> list[dict]:
        """Return the operator's groups sorted by group id, the key ``last_evaluated_key`` pages on."""
        with self.lock:
            groups = [group for group in self._groups.values() if group["operatorId"] == operator_id]
            return [_group_view(group) for group in sorted(groups, key=lambda g: g["groupId"])]

    def get_group(self, operator_id: str, group_id: str) -> dict:
        with self.lock:
            return _group_view(self._group_record(operator_id, group_id))

    def delete_group(self, operator_id: str, group_id: str) -> None:
        with self.lock:
            self._group_record(operator_id, group_id)
            members = sum(1 for sim in self._sims.values() if sim["groupId"] == group_id)
            if members:
                # NOTE: whether SORACOM rejects deleting a group that still has SIMs is a guess.
                # The lab rejects it, so clients must move the SIMs out first.
                raise api_error("group_has_sims", group_id=group_id, count=members)
            del self._groups[group_id]

    def put_group_tags(self, operator_id: str, group_id: str, tags: list[dict]) -> dict:
        with self.lock:
            group = self._group_record(operator_id, group_id)
            for tag in tags:
                group["tags"][tag["tagName"]] = tag["tagValue"]
            group["lastModifiedTime"] = self.now_ms()
            return _group_view(group)

    def delete_group_tag(self, operator_id: str, group_id: str, tag_name: str) -> None:
        with self.lock:
            group = self._group_record(operator_id, group_id)
            if tag_name not in group["tags"]:
                raise api_error("tag_not_found", tag_name=tag_name)
            del group["tags"][tag_name]
            group["lastModifiedTime"] = self.now_ms()

    def put_group_configuration(self, operator_id: str, group_id: str, namespace: str,
                                parameters: list[dict]) -> dict:
        """Merge ``parameters`` into one namespace: each key is replaced, other keys stay."""
        with self.lock:
            group = self._group_record(operator_id, group_id)
            settings = group["configuration"].setdefault(namespace, {})
            for parameter in parameters:
                settings[parameter["key"]] = copy.deepcopy(parameter["value"])
            group["lastModifiedTime"] = self.now_ms()
            return _group_view(group)

    def delete_group_namespace(self, operator_id: str, group_id: str, namespace: str) -> None:
        with self.lock:
            group = self._group_record(operator_id, group_id)
            if namespace not in group["configuration"]:
                raise api_error("namespace_not_configured", group_id=group_id, namespace=namespace)
            del group["configuration"][namespace]
            group["lastModifiedTime"] = self.now_ms()

    def delete_group_parameter(self, operator_id: str, group_id: str, namespace: str, name: str) -> None:
        with self.lock:
            group = self._group_record(operator_id, group_id)
            settings = group["configuration"].get(namespace, {})
            if name not in settings:
                # The spec documents 404 only for a missing group. The lab also returns 404 for a
                # parameter that is not set.
                raise api_error("config_parameter_not_found", group_id=group_id,
                                namespace=namespace, name=name)
            del settings[name]
            group["lastModifiedTime"] = self.now_ms()

    def _group_record(self, operator_id: str, group_id: str) -> dict:
        group = self._groups.get(group_id)
        if group is None or group["operatorId"] != operator_id:
            raise api_error("group_not_found", group_id=group_id)
        return group

    # ------------------------------------------------------------------ SIMs

    def list_sim_records(self, operator_id: str, group_id: str | None = None) -> list[dict]:
        """Return copies of the operator's SIM records sorted by SIM id."""
        with self.lock:
            records = [
                sim for sim in self._sims.values()
                if sim["operatorId"] == operator_id and (group_id is None or sim["groupId"] == group_id)
            ]
            return [_copy_sim(sim) for sim in sorted(records, key=lambda s: s["simId"])]

    def sim_record(self, operator_id: str, sim_id: str) -> dict:
        with self.lock:
            return _copy_sim(self._sim_by_id(operator_id, sim_id))

    def subscriber_record(self, operator_id: str, imsi: str) -> dict:
        with self.lock:
            return _copy_sim(self._sim_by_imsi(operator_id, imsi))

    def set_sim_group(self, operator_id: str, group_id: str, sim_id: str | None = None,
                      imsi: str | None = None) -> dict:
        with self.lock:
            sim = self._sim_by_imsi(operator_id, imsi) if imsi else self._sim_by_id(operator_id, sim_id)
            self._group_record(operator_id, group_id)
            sim["groupId"] = group_id
            sim["lastModifiedTime"] = self.now_ms()
            return _copy_sim(sim)

    def unset_sim_group(self, operator_id: str, sim_id: str | None = None, imsi: str | None = None) -> dict:
        with self.lock:
            sim = self._sim_by_imsi(operator_id, imsi) if imsi else self._sim_by_id(operator_id, sim_id)
            if sim["groupId"] is None:
                # The spec's 404 for POST /subscribers/{imsi}/unset_group covers "does not belong
                # to a group". The lab returns the same for /sims/{sim_id}/unset_group, whose spec
                # lists only "SIM does not exist".
                raise api_error("not_in_group", resource=imsi or sim_id)
            sim["groupId"] = None
            sim["lastModifiedTime"] = self.now_ms()
            return _copy_sim(sim)

    def put_sim_tags(self, operator_id: str, tags: list[dict], sim_id: str | None = None,
                     imsi: str | None = None) -> dict:
        with self.lock:
            sim = self._sim_by_imsi(operator_id, imsi) if imsi else self._sim_by_id(operator_id, sim_id)
            for tag in tags:
                sim["tags"][tag["tagName"]] = tag["tagValue"]
            sim["lastModifiedTime"] = self.now_ms()
            return _copy_sim(sim)

    def delete_sim_tag(self, operator_id: str, tag_name: str, sim_id: str | None = None,
                       imsi: str | None = None) -> None:
        with self.lock:
            sim = self._sim_by_imsi(operator_id, imsi) if imsi else self._sim_by_id(operator_id, sim_id)
            if tag_name not in sim["tags"]:
                raise api_error("tag_not_found", tag_name=tag_name)
            del sim["tags"][tag_name]
            sim["lastModifiedTime"] = self.now_ms()

    def session_lookup(self, address: str) -> tuple[dict, dict | None] | None:
        """Find the online SIM whose session has ``address`` and return copies of it and its group."""
        with self.lock:
            sim_id = self._sim_id_by_ip.get(address)
            if sim_id is None:
                return None
            sim = self._sims[sim_id]
            if not sim["online"]:
                return None
            group = self._groups.get(sim["groupId"]) if sim["groupId"] else None
            return _copy_sim(sim), copy.deepcopy(group)

    def _sim_by_id(self, operator_id: str, sim_id: str) -> dict:
        sim = self._sims.get(sim_id)
        if sim is None or sim["operatorId"] != operator_id:
            raise api_error("sim_not_found", sim_id=sim_id)
        return sim

    def _sim_by_imsi(self, operator_id: str, imsi: str) -> dict:
        sim = self._sims.get(self._sim_id_by_imsi.get(imsi, ""))
        if sim is None or sim["operatorId"] != operator_id:
            raise api_error("subscriber_not_found", imsi=imsi)
        return sim

    # ------------------------------------------------------------------ admin operations

    def upsert_sims(self, specs: list[dict]) -> list[dict]:
        """Add SIMs or update the given fields of existing ones (matched by ``sim_id``).

        Each spec uses the admin field names (``imsi``, ``sim_id``, ``iccid``, ``ip``, ...).
        All specs are checked before any is applied, so a bad entry changes nothing.
        """
        with self.lock:
            staged = {sim_id: _copy_sim(sim) for sim_id, sim in self._sims.items()}
            results = []
            for index, spec in enumerate(specs):
                record = self._stage_sim(staged, spec, f"[{index}].")
                results.append(record["simId"])
            _check_unique(staged, "imsi")
            _check_unique(staged, "ip")
            self._replace_sims(staged)
            return [sim_admin_view(self._sims[sim_id]) for sim_id in results]

    def seed_sims(self, count: int, prefix: str, online: bool) -> dict:
        """Add ``count`` SIMs with IMSIs ``prefix`` + zero-padded 1..count. Existing ones keep their group."""
        digits = 15 - len(prefix)
        specs = []
        for number in range(1, count + 1):
            imsi = f"{prefix}{number:0{digits}d}"
            spec = {"imsi": imsi, "sim_id": "8981" + imsi, "iccid": "8981" + imsi, "online": online}
            specs.append(spec)
        with self.lock:
            created = sum(1 for spec in specs if spec["sim_id"] not in self._sims)
            self.upsert_sims(specs)
        return {"count": count, "created": created, "first_imsi": specs[0]["imsi"],
                "last_imsi": specs[-1]["imsi"]}

    def reset(self) -> None:
        """Delete all groups, credential sets, light-mode certificates and waiting faults, and take
        every SIM out of its group. Call counts and spec violations stay."""
        with self.lock:
            self._groups.clear()
            self._credentials.clear()
            self._light_certificates.clear()
            for sim in self._sims.values():
                sim["groupId"] = None
            self.rate_limiter.reset_windows()
            self.krypton_rate_limiter.reset_windows()
            self.faults.clear()

    # ------------------------------------------------------------------ Krypton light mode

    def remember_certificate(self, imsi: str, certificate_id: str, certificate_pem: str) -> None:
        """Keep a certificate issued with skipCertificates so the SIM can fetch it later."""
        with self.lock:
            certificates = self._light_certificates.setdefault(imsi, {})
            certificates[certificate_id] = certificate_pem
            while len(certificates) > LIGHT_CERTIFICATES_PER_SIM:
                del certificates[next(iter(certificates))]

    def issued_certificate(self, imsi: str, certificate_id: str) -> str | None:
        with self.lock:
            return self._light_certificates.get(imsi, {}).get(certificate_id)

    def snapshot(self) -> dict:
        """Return the whole state, secrets included, for lab tests (GET /_lab/state)."""
        with self.lock:
            return {
                "default_operator_id": self.default_operator_id,
                "auth_keys": [dict(record) for record in self._auth_keys.values()],
                "sessions": len(self._sessions),
                "groups": [_group_view(group) for group in sorted(self._groups.values(),
                                                                  key=lambda g: g["groupId"])],
                "credentials": [copy.deepcopy(record) for _, record in sorted(self._credentials.items())],
                "sims": [sim_admin_view(sim) for sim in sorted(self._sims.values(),
                                                               key=lambda s: s["simId"])],
                "ratelimit": self.rate_limiter.settings(),
            }

    def _stage_sim(self, staged: dict, spec: dict, where: str) -> dict:
        if not isinstance(spec, dict):
            raise api_error("field_type_invalid", field=where.rstrip("."), expected="an object")
        unknown = sorted(set(spec) - set(SIM_ADMIN_FIELDS))
        if unknown:
            raise api_error("field_value_invalid", field=where + unknown[0],
                            detail=f"unknown field; known fields: {', '.join(SIM_ADMIN_FIELDS)}")
        sim_id = spec.get("sim_id")
        if not isinstance(sim_id, str) or not sim_id:
            raise api_error("field_missing", field=where + "sim_id")
        record = staged.get(sim_id)
        if record is None:
            if not isinstance(spec.get("imsi"), str):
                raise api_error("field_missing", field=where + "imsi")
            now = self.now_ms()
            record = dict(SIM_DEFAULTS, simId=sim_id, iccid=sim_id, ip=None, online=True,
                          operatorId=self.default_operator_id, groupId=None, tags={"name": ""},
                          createdTime=now, lastModifiedTime=now)
            staged[sim_id] = record
        # group_id goes last: its check needs the operator id that the same spec may change.
        for admin_name in sorted(spec, key=lambda name: name == "group_id"):
            value = self._check_sim_value(admin_name, spec[admin_name], where, record)
            record[SIM_ADMIN_FIELDS[admin_name]] = value
        record["lastModifiedTime"] = self.now_ms()
        return record

    def _check_sim_value(self, name: str, value, where: str, record: dict):
        field = where + name
        if name in ("imsi", "sim_id", "iccid", "operator_id", "status", "speed_class"):
            if not isinstance(value, str) or not value:
                raise api_error("field_type_invalid", field=field, expected="a non-empty string")
            if name == "imsi" and not (value.isdigit() and 14 <= len(value) <= 15):
                raise api_error("field_value_invalid", field=field, detail="an IMSI has 14 or 15 digits")
        elif name in ("msisdn", "imei", "serial_number"):
            if value is not None and not isinstance(value, str):
                raise api_error("field_type_invalid", field=field, expected="a string or null")
        elif name == "ip":
            if value is not None:
                try:
                    value = str(ipaddress.IPv4Address(value))
                except (ipaddress.AddressValueError, TypeError):
                    raise api_error("field_value_invalid", field=field,
                                    detail=f"'{value}' is not an IPv4 address") from None
        elif name == "online":
            if not isinstance(value, bool):
                raise api_error("field_type_invalid", field=field, expected="a boolean")
        elif name == "tags":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise api_error("field_type_invalid", field=field, expected="an object of strings")
            value = {"name": "", **value}
        elif name == "group_id":
            operator_id = record["operatorId"]
            if value is not None:
                group = self._groups.get(value) if isinstance(value, str) else None
                if group is None or group["operatorId"] != operator_id:
                    raise api_error("field_value_invalid", field=field,
                                    detail=f"operator {operator_id} has no group '{value}'")
        return value

    def _replace_sims(self, staged: dict) -> None:
        self._sims = staged
        self._sim_id_by_imsi = {sim["imsi"]: sim_id for sim_id, sim in staged.items()}
        self._sim_id_by_ip = {sim["ip"]: sim_id for sim_id, sim in staged.items() if sim["ip"]}


def _copy_sim(sim: dict) -> dict:
    """Copy a SIM record. Only ``tags`` is mutable, so this is cheaper than ``copy.deepcopy``."""
    return {**sim, "tags": dict(sim["tags"])}


def _equal(expected: str, received) -> bool:
    return isinstance(received, str) and hmac.compare_digest(expected.encode(), received.encode())


def _check_unique(staged: dict, field: str) -> None:
    seen: dict[str, str] = {}
    for sim_id, sim in staged.items():
        value = sim[field]
        if value is None:
            continue
        if value in seen:
            raise api_error("field_value_invalid", field=field,
                            detail=f"'{value}' is used by both SIM {seen[value]} and SIM {sim_id}")
        seen[value] = sim_id


# ---------------------------------------------------------------------- response shapes


def _credential_view(record: dict) -> dict:
    """Render a CredentialsModel without secrets.

    NOTE: the spec types ``credentials`` as a free-form object and does not list which fields the
    real API echoes. The lab returns an empty object, so clients cannot rely on reading back
    even the access key id.
    """
    return {
        "credentialsId": record["credentialsId"],
        "type": record["type"],
        "description": record["description"],
        "credentials": {},
        # The spec gives these as int64 without a unit. The lab uses UNIX seconds.
        "createDateTime": record["createDateTime"],
        "updateDateTime": record["updateDateTime"],
        # The spec requires lastUsedDateTime. NOTE: 0 for a set that no service has used yet is a guess.
        "lastUsedDateTime": record["lastUsedDateTime"] or 0,
    }


def _without_none(view: dict) -> dict:
    """Drop the fields whose value is None: the spec marks no field of these schemas nullable."""
    return {name: value for name, value in view.items() if value is not None}


def _group_view(group: dict) -> dict:
    """Render a Group. ``createdAt`` and ``lastModifiedAt`` repeat the times, as the spec's example does."""
    return {
        "groupId": group["groupId"],
        "operatorId": group["operatorId"],
        "tags": dict(group["tags"]),
        "configuration": copy.deepcopy(group["configuration"]),
        "createdTime": group["createdTime"],
        "lastModifiedTime": group["lastModifiedTime"],
        "createdAt": group["createdTime"],
        "lastModifiedAt": group["lastModifiedTime"],
    }


def session_status_view(sim: dict) -> dict:
    """Render the SessionStatus of a SIM: ``ueIpAddress`` is the session address while online."""
    online = bool(sim["online"] and sim["ip"])
    return _without_none({
        "online": online,
        "imsi": sim["imsi"] if online else None,
        "ueIpAddress": sim["ip"] if online else None,
        "imei": sim["imei"] if online else None,
        "subscription": sim["subscription"] if online else None,
        "lastUpdatedAt": sim["lastModifiedTime"],
    })


def sim_view(sim: dict) -> dict:
    """Render the spec's Sim schema: one profile (the ICCID) holding the primary subscriber.

    Fields without a value (a SIM outside any group has no ``groupId``) are left out.
    """
    return _without_none({
        "simId": sim["simId"],
        "operatorId": sim["operatorId"],
        "status": sim["status"],
        "type": "uicc",
        "moduleType": sim["moduleType"],
        "speedClass": sim["speedClass"],
        "groupId": sim["groupId"],
        "tags": dict(sim["tags"]),
        "activeProfileId": sim["iccid"],
        "profiles": {
            sim["iccid"]: {
                "iccid": sim["iccid"],
                "otaSupported": False,
                "primaryImsi": sim["imsi"],
                "subscribers": {
                    sim["imsi"]: _without_none({
                        "imsi": sim["imsi"],
                        "msisdn": sim["msisdn"],
                        "status": sim["status"],
                        "subscription": sim["subscription"],
                        "bundles": [],
                    }),
                },
            },
        },
        "sessionStatus": session_status_view(sim),
        "serialNumber": sim["serialNumber"],
        "terminationEnabled": False,
        "expiryTime": None,
        "expiryAction": None,
        "createdTime": sim["createdTime"],
        "lastModifiedTime": sim["lastModifiedTime"],
    })


def subscriber_view(sim: dict) -> dict:
    """Render the spec's Subscriber schema for the SIM's primary subscription, leaving out fields without a value."""
    return _without_none({
        "imsi": sim["imsi"],
        "iccid": sim["iccid"],
        "simId": sim["simId"],
        "msisdn": sim["msisdn"],
        "ipAddress": sim["ip"],
        "apn": "soracom.io",
        "operatorId": sim["operatorId"],
        "groupId": sim["groupId"],
        "status": sim["status"],
        "speedClass": sim["speedClass"],
        "type": sim["speedClass"],
        "subscription": sim["subscription"],
        "plan": 1,
        "moduleType": sim["moduleType"],
        "serialNumber": sim["serialNumber"],
        "tags": dict(sim["tags"]),
        "sessionStatus": session_status_view(sim),
        "imeiLock": None,
        "terminationEnabled": False,
        "expiryTime": None,
        "expiredAt": None,
        "expiryAction": None,
        "bundles": [],
        "createdTime": sim["createdTime"],
        "createdAt": sim["createdTime"],
        "lastModifiedTime": sim["lastModifiedTime"],
        "lastModifiedAt": sim["lastModifiedTime"],
    })


def sim_admin_view(sim: dict) -> dict:
    """Render a SIM with the admin API's field names."""
    return {admin_name: copy.deepcopy(sim[field]) for admin_name, field in SIM_ADMIN_FIELDS.items()}
