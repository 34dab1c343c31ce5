# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fleet report: merge what each Pi, SORACOM and AWS IoT return into one row per Pi.

The filters in plugins/filter/fleet_report.py call these functions, and
_fleet_report_render.py turns the result into HTML and Markdown. Only fields
named here reach the report, so nothing else that a module returned (such as
module arguments) can leak into it.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json

REPORT_FORMAT = 1

STATUS_OK = "ok"
STATUS_WARNING = "warning"
STATUS_FAILING = "failing"

# Fields of krypton.json (written by krypton_bootstrap) and of the MQTTS check record
# (written by the device role) that the report copies. Neither file contains key material.
KRYPTON_FIELDS = ("thing_name", "client_id", "host", "region", "certificate_id", "certificate_not_after",
                  "bootstrapped_at")
CHECK_FIELDS = ("result", "checked_at", "host", "port", "client_id", "topic", "published", "connect_ms",
                "publish_ms", "hold_ms", "tls_version", "step", "message")


class FleetReportError(Exception):
    """Input that the report cannot be built from."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def format_time(moment):
    """Return ``moment`` (an aware datetime) as ISO 8601 in UTC with a Z suffix, to the second."""
    return moment.astimezone(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """Return an aware datetime for an ISO 8601 string, or None when it is missing or invalid.

    A time without an offset counts as UTC.
    """
    if not isinstance(text, str) or not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _result(value):
    """Return ``value`` when it is a dict (a registered task result), and an empty dict otherwise."""
    return value if isinstance(value, dict) else {}


def _text(value):
    """Return ``value`` as a string, or None when it is None or empty."""
    if value is None:
        return None
    text = str(value)
    return text if text else None


def _int_or_none(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(round(value))
    return None


def _one_line(text):
    return " ".join(str(text).split())


def decode_json_file(slurp_result, label):
    """Decode the content of an ansible.builtin.slurp result as a JSON object.

    Returns ``(data, error)``. ``data`` is None when the file is missing or
    unreadable, and ``error`` then gives the reason. Both are None when the
    task was skipped, because the Pi was not read.
    """
    result = _result(slurp_result)
    if not result or result.get("skipped"):
        return None, None
    if result.get("failed") or "content" not in result:
        message = _one_line(result.get("msg") or "no content returned")
        if "not found" in message or "No such file" in message:
            return None, "%s does not exist" % label
        return None, "%s cannot be read: %s" % (label, message)
    try:
        raw = base64.b64decode(result["content"], validate=True)
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
        return None, "%s is not valid JSON" % label
    if not isinstance(data, dict):
        return None, "%s does not contain a JSON object" % label
    return data, None


def thing_name_from_pattern(pattern, imsi):
    """Return the thing name a SoracomKrypton thing name pattern gives for ``imsi``, or None."""
    if not pattern or not imsi or "$imsi" not in pattern:
        return None
    return pattern.replace("$imsi", imsi)


# ---------------------------------------------------------------------------
# Per-Pi data from the device play
# ---------------------------------------------------------------------------

def read_device(device):
    """Normalise one Pi's entry from the report's device play.

    ``device`` contains the host name, the inventory's IMSI and SIM ID, and the
    registered results of lte_link_info (``link``), of slurp for krypton.json
    (``krypton``) and for the check record (``record``), and of mqtt_check
    (``fresh_check``, run at ``fresh_checked_at``), each possibly missing.
    """
    if not isinstance(device, dict) or not device.get("host"):
        raise FleetReportError("Each device entry must be a dict with a host, got %r." % (device,))
    link_result = _result(device.get("link"))
    unreachable = bool(link_result.get("unreachable"))
    krypton, krypton_error = decode_json_file(device.get("krypton"), device.get("krypton_path") or "krypton.json")
    record, record_error = decode_json_file(device.get("record"), device.get("record_path") or "the check record")
    subscriber = link_result.get("subscriber") if isinstance(link_result.get("subscriber"), dict) else {}
    return {
        "host": str(device["host"]),
        "inventory_imsi": _text(device.get("imsi")),
        "inventory_sim_id": _text(device.get("sim_id")),
        "subscriber_imsi": _text(subscriber.get("imsi")),
        "subscriber_sim_id": _text(subscriber.get("sim_id")),
        "unreachable": unreachable,
        "unreachable_reason": _one_line(link_result.get("msg") or "no reason given") if unreachable else None,
        "link": link_result,
        "krypton": {key: krypton.get(key) for key in KRYPTON_FIELDS} if krypton else None,
        "krypton_error": krypton_error,
        "record": record,
        "record_error": record_error,
        "fresh_check": _result(device.get("fresh_check")),
        "fresh_checked_at": _text(device.get("fresh_checked_at")),
    }


def thing_names(devices, sims=None, pattern=None):
    """Return the sorted thing names to look up in AWS IoT for these Pis.

    A Pi's thing name is the one in its krypton.json, or else the thing name
    pattern applied to its IMSI (from the inventory, the metadata service or
    the SIM record in ``sims``, the registered result of soracom_sim_info).
    """
    sims_by_id = _index_sims(_result(sims).get("sims"))
    names = set()
    for device in devices or []:
        read = read_device(device)
        sim = _find_sim(read, sims_by_id)
        name = _thing_name(read, sim, pattern)
        if name:
            names.add(name)
    return sorted(names)


def _index_sims(sims):
    index = {"imsi": {}, "sim_id": {}}
    for sim in sims or []:
        if not isinstance(sim, dict):
            continue
        for imsi in sim.get("imsis") or [sim.get("imsi")]:
            if imsi:
                index["imsi"][str(imsi)] = sim
        if sim.get("sim_id"):
            index["sim_id"][str(sim["sim_id"])] = sim
    return index


def _find_sim(read, sims_by_id):
    for key, value in (("imsi", read["inventory_imsi"]), ("sim_id", read["inventory_sim_id"]),
                       ("imsi", read["subscriber_imsi"]), ("sim_id", read["subscriber_sim_id"])):
        if value and value in sims_by_id[key]:
            return sims_by_id[key][value]
    return None


def _imsi(read, sim):
    return read["inventory_imsi"] or (sim or {}).get("imsi") or read["subscriber_imsi"]


def _thing_name(read, sim, pattern):
    if read["krypton"] and read["krypton"].get("thing_name"):
        return str(read["krypton"]["thing_name"])
    return thing_name_from_pattern(pattern, _imsi(read, sim))


# ---------------------------------------------------------------------------
# Sections of a row
# ---------------------------------------------------------------------------

def _lookup_error(lookup):
    """Return the message of a failed cloud lookup, or None when it worked or did not run."""
    result = _result(lookup)
    if result.get("failed"):
        return _one_line(result.get("msg") or "the lookup failed without a message")
    return None


def _link_section(read, row):
    result = read["link"]
    link = result.get("link") if isinstance(result.get("link"), dict) else {}
    section = {
        "interface": link.get("interface"),
        "up": link.get("up"),
        "ipv4_address": link.get("ipv4_address"),
        "ready": result.get("ready") if isinstance(result.get("ready"), bool) else None,
        "problems": [_one_line(problem) for problem in result.get("problems") or []],
    }
    if read["unreachable"]:
        section["state"] = "unknown"
    elif result.get("failed") or section["ready"] is None:
        section["state"] = "unknown"
        row["problems"].append("Reading the link state failed: %s" % _one_line(result.get("msg") or "no result"))
    elif section["ready"]:
        section["state"] = "up"
    else:
        section["state"] = "down" if not section["up"] else "not ready"
        row["problems"].append("Cellular link not ready: %s" % " ".join(section["problems"] or ["no details"]))
    return section


def _sim_section(read, sim, groups_by_id, lookups, group_name, row):
    imsi = _imsi(read, sim)
    section = {
        "imsi": imsi,
        "sim_id": read["inventory_sim_id"] or (sim or {}).get("sim_id") or read["subscriber_sim_id"],
        "status": None,
        "online": None,
        "group_id": None,
        "group_name": None,
        "found": None,
    }
    if lookups["sims"]:
        row["warnings"].append("SIM data unavailable: %s" % lookups["sims"])
        return section
    if not (section["imsi"] or section["sim_id"]):
        row["warnings"].append("The inventory names no SIM for this Pi (set soracom_imsi or soracom_sim_id).")
        return section
    if sim is None:
        section["found"] = False
        row["problems"].append("SORACOM has no SIM %s." % (section["imsi"] or section["sim_id"]))
        return section

    section["found"] = True
    section["status"] = sim.get("status")
    session = sim.get("session_status") if isinstance(sim.get("session_status"), dict) else {}
    section["online"] = session.get("online")
    section["group_id"] = sim.get("group_id")
    group = groups_by_id.get(section["group_id"]) if section["group_id"] else None
    section["group_name"] = (group or {}).get("name")

    if not section["group_id"]:
        row["warnings"].append("The SIM is in no group, so Krypton has no configuration for it.")
    elif group_name and not lookups["groups"] and section["group_name"] != group_name:
        actual = section["group_name"] or section["group_id"]
        row["warnings"].append("The SIM is in group %s, not in %s." % (actual, group_name))
    return section


def _certificate_section(read, thing, things_error, now, expiry_warning_days, row):
    """Describe the certificate the Pi holds, or the thing's only ACTIVE one when the Pi was not read."""
    krypton = read["krypton"] or {}
    thing_certificates = [cert for cert in (thing or {}).get("certificates") or [] if isinstance(cert, dict)]
    section = {
        "id": _text(krypton.get("certificate_id")),
        "source": "device" if krypton.get("certificate_id") else None,
        "status": None,
        "attached": None,
        "not_after": None,
        "days_left": None,
        "expiring": False,
        "expired": False,
        "bootstrapped_at": _text(krypton.get("bootstrapped_at")),
    }
    if section["id"] is None and read["unreachable"]:
        active = [cert for cert in thing_certificates if cert.get("status") == "ACTIVE"]
        if len(active) == 1:
            section["id"] = _text(active[0].get("certificate_id"))
            section["source"] = "aws"
    if read["krypton_error"] and not read["unreachable"]:
        row["problems"].append("No certificate on the Pi: %s." % read["krypton_error"])

    described = next((cert for cert in thing_certificates if cert.get("certificate_id") == section["id"]), None)
    # krypton_bootstrap read the expiry from the certificate the Pi holds. AWS IoT's copy
    # of it is used only when the Pi was not read.
    not_after = _text(krypton.get("certificate_not_after"))
    if described is not None:
        section["attached"] = True
        section["status"] = described.get("status")
        not_after = not_after or _text(described.get("not_after"))
    elif section["id"] and thing is not None:
        section["attached"] = False

    if section["id"] and not things_error and thing is not None:
        if section["attached"] is False:
            row["problems"].append("Certificate %s is not attached to thing %s." % (section["id"], thing["thing_name"]))
        elif section["status"] and section["status"] != "ACTIVE":
            row["problems"].append("Certificate %s is %s in AWS IoT, so the broker rejects it."
                                   % (section["id"], section["status"]))

    moment = parse_time(not_after)
    if moment is not None:
        section["not_after"] = format_time(moment)
        seconds_left = (moment - now).total_seconds()
        section["days_left"] = int(seconds_left // 86400)
        if seconds_left <= 0:
            section["expired"] = True
            row["problems"].append("Certificate %s expired at %s." % (section["id"], section["not_after"]))
        elif seconds_left < expiry_warning_days * 86400:
            section["expiring"] = True
            row["warnings"].append("Certificate %s expires at %s, within %d days."
                                   % (section["id"], section["not_after"], expiry_warning_days))
    return section


def _check_section(read, row):
    """Describe the fresh MQTTS check when one ran, or else the Pi's record of the last check."""
    fresh = read["fresh_check"]
    if fresh and not fresh.get("skipped") and not fresh.get("unreachable"):
        failed = bool(fresh.get("failed"))
        section = {key: fresh.get(key) for key in CHECK_FIELDS}
        section.update(source="fresh", result="failed" if failed else "ok",
                       checked_at=read["fresh_checked_at"], message=fresh.get("msg") if failed else None)
    elif read["record"] is not None:
        section = {key: read["record"].get(key) for key in CHECK_FIELDS}
        section["source"] = "record"
    else:
        section = {key: None for key in CHECK_FIELDS}
        section["source"] = None
        if not read["unreachable"]:
            row["warnings"].append("No MQTTS check is recorded on the Pi%s."
                                   % (" (%s)" % read["record_error"] if read["record_error"] else ""))
        return section

    for key in ("connect_ms", "publish_ms", "hold_ms", "port"):
        section[key] = _int_or_none(section.get(key))
    for key in ("checked_at", "message", "step", "result"):
        section[key] = _one_line(section[key]) if section.get(key) is not None else None
    moment = parse_time(section["checked_at"])
    section["checked_at"] = format_time(moment) if moment else section["checked_at"]
    if section["result"] not in ("ok", "failed"):
        row["warnings"].append("The record of the last MQTTS check has no valid result.")
    elif section["result"] == "failed":
        row["problems"].append("%s MQTTS check failed%s: %s" % (
            "The" if section["source"] == "fresh" else "The last",
            " at step %s" % section["step"] if section["step"] else "",
            section["message"] or "no message"))
    return section


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

def build_row(device, sims_by_id, groups_by_id, things_by_name, lookups, options):
    read = read_device(device)
    row = {"host": read["host"], "status": None, "problems": [], "warnings": [],
           "reachable": not read["unreachable"], "unreachable_reason": read["unreachable_reason"]}
    if read["unreachable"]:
        row["problems"].append("Unreachable: %s" % read["unreachable_reason"])

    sim = _find_sim(read, sims_by_id)
    row["sim"] = _sim_section(read, sim, groups_by_id, lookups, options["group_name"], row)
    row["thing_name"] = _thing_name(read, sim, options["thing_name_pattern"])
    thing = things_by_name.get(row["thing_name"]) if row["thing_name"] else None
    row["thing_found"] = None
    if lookups["things"]:
        row["warnings"].append("AWS IoT data unavailable: %s" % lookups["things"])
    elif row["thing_name"]:
        row["thing_found"] = thing is not None
        if thing is None:
            row["problems"].append("AWS IoT has no thing %s." % row["thing_name"])

    row["certificate"] = _certificate_section(read, thing, lookups["things"], options["now"],
                                              options["expiry_warning_days"], row)
    row["link"] = _link_section(read, row)
    row["mqtt_check"] = _check_section(read, row)
    if row["problems"]:
        row["status"] = STATUS_FAILING
    elif row["warnings"]:
        row["status"] = STATUS_WARNING
    else:
        row["status"] = STATUS_OK
    return row


def build_report(devices, sims=None, groups=None, things=None, expiry_warning_days=30, group_name=None,
                 thing_name_pattern=None, now=None):
    """Return the fleet report: one row per Pi, sorted by host name, and a summary.

    ``sims``, ``groups`` and ``things`` are the registered results of
    soracom_sim_info, soracom_group_info and aws_iot_thing_info. A failed lookup
    turns into a warning on every row and an entry in ``errors``.
    """
    if not isinstance(expiry_warning_days, int) or isinstance(expiry_warning_days, bool) or expiry_warning_days < 0:
        raise FleetReportError("expiry_warning_days must be an integer of 0 or more, got %r." % (expiry_warning_days,))
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif isinstance(now, str):
        parsed = parse_time(now)
        if parsed is None:
            raise FleetReportError("now must be an ISO 8601 time, got %r." % now)
        now = parsed

    lookups = {"sims": _lookup_error(sims), "groups": _lookup_error(groups), "things": _lookup_error(things)}
    sims_by_id = _index_sims(_result(sims).get("sims"))
    groups_by_id = {group.get("group_id"): group for group in _result(groups).get("groups") or []
                    if isinstance(group, dict)}
    things_by_name = {thing.get("thing_name"): thing for thing in _result(things).get("things") or []
                      if isinstance(thing, dict)}
    options = {"now": now, "expiry_warning_days": expiry_warning_days, "group_name": group_name or None,
               "thing_name_pattern": thing_name_pattern}

    rows = [build_row(device, sims_by_id, groups_by_id, things_by_name, lookups, options) for device in devices or []]
    rows.sort(key=lambda row: row["host"])
    summary = {"pis": len(rows)}
    for status in (STATUS_OK, STATUS_WARNING, STATUS_FAILING):
        summary[status] = sum(1 for row in rows if row["status"] == status)
    summary["expiring"] = sum(1 for row in rows if row["certificate"]["expiring"])
    errors = []
    for label, key in (("SORACOM SIMs", "sims"), ("SORACOM groups", "groups"), ("AWS IoT things", "things")):
        if lookups[key]:
            errors.append("Reading %s failed: %s" % (label, lookups[key]))
    return {
        "format": REPORT_FORMAT,
        "generated_at": format_time(now),
        "expiry_warning_days": expiry_warning_days,
        "group_name": group_name or None,
        "summary": summary,
        "errors": errors,
        "pis": rows,
    }
