# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import copy
import json

import pytest

from ansible_collections.soracom.krypton.plugins.plugin_utils._fleet_report import (
    FleetReportError,
    build_report,
    decode_json_file,
    thing_names,
)

NOW = "2026-06-01T00:00:00Z"
GROUP_ID = "0b0a4a9e-7d1c-4b9e-9d7e-2c0f1e2d3c4b"
CERT_ID = "c8ea1a75f39b5203d8a51778f0c0f8ed15aae049bc195d86cb5234833414d044"


def slurped(data):
    return {"changed": False, "content": base64.b64encode(json.dumps(data).encode()).decode(), "encoding": "base64"}


def link_ready(address="10.213.0.11"):
    return {
        "changed": False, "ready": True, "problems": [],
        "link": {"interface": "ppp0", "up": True, "ipv4_address": address},
        "invocation": {"module_args": {"interface": "auto"}},
    }


def device(host="pi01", imsi="440103000000001", not_after="2027-06-01T00:00:00Z", **overrides):
    entry = {
        "host": host,
        "imsi": imsi,
        "sim_id": None,
        "link": link_ready(),
        "krypton": slurped({
            "thing_name": "krypton-%s" % imsi, "client_id": "krypton-%s" % imsi, "certificate_id": CERT_ID,
            "certificate_not_after": not_after, "bootstrapped_at": "2026-05-01T00:00:00Z",
            "host": "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com", "region": "ap-northeast-1",
            "endpoint": "https://krypton.soracom.io:8036",
        }),
        "krypton_path": "/etc/soracom/krypton/krypton.json",
        "record": slurped({"format": 1, "result": "ok", "checked_at": "2026-05-31T12:00:00Z", "connect_ms": 64,
                           "publish_ms": 3, "hold_ms": 1000, "published": True, "tls_version": "TLSv1.3"}),
        "record_path": "/var/lib/soracom/krypton/mqtt-check.json",
        "fresh_check": {"changed": False, "skipped": True},
        "fresh_checked_at": None,
    }
    entry.update(overrides)
    return entry


def sims(*imsis, group_id=GROUP_ID):
    return {"changed": False, "sims": [
        {"imsi": imsi, "imsis": [imsi], "sim_id": "89811000000000000" + imsi[-2:], "group_id": group_id,
         "status": "active", "session_status": {"online": True, "ip_address": "10.213.0.11"}}
        for imsi in imsis]}


def groups():
    return {"changed": False, "groups": [{"group_id": GROUP_ID, "name": "krypton-pis", "tags": {"name": "krypton-pis"}}]}


def things(*imsis, status="ACTIVE", certificate_id=CERT_ID):
    return {"changed": False, "things": [
        {"thing_name": "krypton-" + imsi, "certificates": [
            {"certificate_id": certificate_id, "status": status, "not_after": "2027-06-01T00:00:00+00:00"}]}
        for imsi in imsis]}


def report_for(devices, **overrides):
    arguments = dict(sims=sims("440103000000001"), groups=groups(), things=things("440103000000001"),
                     expiry_warning_days=30, group_name="krypton-pis", thing_name_pattern="krypton-$imsi", now=NOW)
    arguments.update(overrides)
    return build_report(devices, **arguments)


def only_row(report):
    assert len(report["pis"]) == 1
    return report["pis"][0]


def test_healthy_pi_is_ok():
    report = report_for([device()])
    row = only_row(report)
    assert row["status"] == "ok", row
    assert row["problems"] == []
    assert row["warnings"] == []
    assert row["sim"]["group_name"] == "krypton-pis"
    assert row["sim"]["sim_id"] == "8981100000000000001"
    assert row["thing_name"] == "krypton-440103000000001"
    assert row["certificate"]["id"] == CERT_ID
    assert row["certificate"]["status"] == "ACTIVE"
    assert row["certificate"]["days_left"] == 365
    assert row["link"]["state"] == "up"
    assert row["mqtt_check"]["source"] == "record"
    assert row["mqtt_check"]["connect_ms"] == 64
    assert report["summary"] == {"pis": 1, "ok": 1, "warning": 0, "failing": 0, "expiring": 0}
    assert report["generated_at"] == NOW


def test_report_leaves_out_other_fields():
    text = json.dumps(report_for([device()]))
    assert "module_args" not in text
    assert "krypton.soracom.io:8036" not in text


def test_unreachable_pi_keeps_cloud_view():
    entry = device(link={"unreachable": True, "msg": "ssh: connect to host 10.213.0.13 port 22: Connection timed out",
                         "changed": False},
                   krypton={"skipped": True}, record={"skipped": True})
    row = only_row(report_for([entry]))
    assert row["status"] == "failing"
    assert row["reachable"] is False
    assert row["problems"] == ["Unreachable: ssh: connect to host 10.213.0.13 port 22: Connection timed out"]
    assert row["certificate"]["source"] == "aws"
    assert row["certificate"]["id"] == CERT_ID
    assert row["certificate"]["not_after"] == "2027-06-01T00:00:00Z"
    assert row["link"]["state"] == "unknown"
    assert row["mqtt_check"]["source"] is None
    assert row["warnings"] == []


def test_link_down_fails():
    link = link_ready()
    link.update(ready=False, problems=["Interface ppp0 is down."])
    link["link"]["up"] = False
    row = only_row(report_for([device(link=link)]))
    assert row["status"] == "failing"
    assert row["link"]["state"] == "down"
    assert row["problems"] == ["Cellular link not ready: Interface ppp0 is down."]


@pytest.mark.parametrize(("not_after", "status", "expiring", "expired", "days_left"), [
    ("2026-06-20T00:00:00Z", "warning", True, False, 19),
    ("2026-07-01T00:00:01Z", "ok", False, False, 30),
    ("2026-05-31T00:00:00Z", "failing", False, True, -1),
])
def test_certificate_expiry(not_after, status, expiring, expired, days_left):
    report = report_for([device(not_after=not_after)])
    row = only_row(report)
    assert row["status"] == status, row
    assert row["certificate"]["expiring"] is expiring
    assert row["certificate"]["expired"] is expired
    assert row["certificate"]["days_left"] == days_left
    assert report["summary"]["expiring"] == (1 if expiring else 0)


def test_expiry_threshold_is_configurable():
    row = only_row(report_for([device(not_after="2026-06-20T00:00:00Z")], expiry_warning_days=10))
    assert row["certificate"]["expiring"] is False


@pytest.mark.parametrize(("thing_result", "message"), [
    (things("440103000000001", status="INACTIVE"), "is INACTIVE in AWS IoT"),
    (things("440103000000001", certificate_id="f" * 64), "is not attached to thing krypton-440103000000001"),
    ({"changed": False, "things": []}, "AWS IoT has no thing krypton-440103000000001."),
])
def test_cloud_mismatch_fails(thing_result, message):
    row = only_row(report_for([device()], things=thing_result))
    assert row["status"] == "failing"
    assert any(message in problem for problem in row["problems"]), row["problems"]


def test_missing_krypton_json_fails():
    entry = device(krypton={"failed": True, "msg": "file not found: /etc/soracom/krypton/krypton.json"})
    row = only_row(report_for([entry]))
    assert row["status"] == "failing"
    assert "No certificate on the Pi: /etc/soracom/krypton/krypton.json does not exist." in row["problems"]
    assert row["certificate"]["id"] is None


def test_failed_check_record_fails():
    entry = device(record=slurped({"result": "failed", "step": "TLS", "checked_at": "2026-05-31T12:00:00Z",
                                   "message": "MQTT check failed at step TLS: the handshake failed."}))
    row = only_row(report_for([entry]))
    assert row["status"] == "failing"
    assert row["problems"] == ["The last MQTTS check failed at step TLS: MQTT check failed at step TLS: the "
                               "handshake failed."]


def test_missing_record_warns():
    entry = device(record={"failed": True, "msg": "file not found: /var/lib/soracom/krypton/mqtt-check.json"})
    row = only_row(report_for([entry]))
    assert row["status"] == "warning"
    assert row["warnings"] == ["No MQTTS check is recorded on the Pi (/var/lib/soracom/krypton/mqtt-check.json "
                               "does not exist)."]


def test_fresh_check_replaces_record():
    entry = device(fresh_check={"changed": False, "connect_ms": 12, "publish_ms": None, "published": False,
                                "hold_ms": 1000, "tls_version": "TLSv1.3"},
                   fresh_checked_at="2026-06-01T00:00:00Z")
    check = only_row(report_for([entry]))["mqtt_check"]
    assert check["source"] == "fresh"
    assert check["result"] == "ok"
    assert check["connect_ms"] == 12
    assert check["checked_at"] == "2026-06-01T00:00:00Z"


def test_failed_fresh_check_fails():
    entry = device(fresh_check={"failed": True, "step": "CONNACK", "msg": "MQTT check failed at step CONNACK: x."},
                   fresh_checked_at=NOW)
    row = only_row(report_for([entry]))
    assert row["status"] == "failing"
    assert row["problems"] == ["The MQTTS check failed at step CONNACK: MQTT check failed at step CONNACK: x."]


def test_sim_problems():
    other_group = only_row(report_for([device()], sims=sims("440103000000001", group_id="other-id"),
                                      groups={"changed": False, "groups": [{"group_id": "other-id", "name": "lab"}]}))
    assert other_group["status"] == "warning"
    assert other_group["warnings"] == ["The SIM is in group lab, not in krypton-pis."]
    missing = only_row(report_for([device()], sims={"changed": False, "sims": []}))
    assert missing["status"] == "failing"
    assert missing["problems"] == ["SORACOM has no SIM 440103000000001."]


def test_failed_lookups_warn_every_row():
    report = report_for([device(), device(host="pi02", imsi="440103000000002")],
                        sims={"failed": True, "msg": "SORACOM authentication failed (HTTP 401)."},
                        things={"failed": True, "msg": "AccessDenied"})
    assert report["errors"] == ["Reading SORACOM SIMs failed: SORACOM authentication failed (HTTP 401).",
                                "Reading AWS IoT things failed: AccessDenied"]
    for row in report["pis"]:
        assert row["status"] == "warning", row
        assert "SIM data unavailable: SORACOM authentication failed (HTTP 401)." in row["warnings"]
        assert "AWS IoT data unavailable: AccessDenied" in row["warnings"]


def test_rows_sorted_and_counted():
    report = report_for([device(host="pi03"), device(host="pi01", link={"unreachable": True, "msg": "down"}),
                         device(host="pi02", not_after="2026-06-10T00:00:00Z")])
    assert [row["host"] for row in report["pis"]] == ["pi01", "pi02", "pi03"]
    assert report["summary"] == {"pis": 3, "ok": 1, "warning": 1, "failing": 1, "expiring": 1}


def test_thing_names_from_file_then_pattern():
    without_file = device(host="pi02", imsi=None, sim_id="8981100000000000002", krypton={"skipped": True})
    names = thing_names([device(), without_file, device(host="pi03", imsi=None, krypton={"skipped": True})],
                        sims=sims("440103000000002"), pattern="krypton-$imsi")
    assert names == ["krypton-440103000000001", "krypton-440103000000002"]


def test_decode_json_file_errors():
    assert decode_json_file({"skipped": True}, "x") == (None, None)
    assert decode_json_file({"failed": True, "msg": "file not found: /x"}, "/x") == (None, "/x does not exist")
    assert decode_json_file({"content": base64.b64encode(b"[1]").decode()}, "/x") == (
        None, "/x does not contain a JSON object")
    assert decode_json_file({"content": "not base64!"}, "/x") == (None, "/x is not valid JSON")


def test_invalid_input_rejected():
    with pytest.raises(FleetReportError, match="expiry_warning_days"):
        report_for([device()], expiry_warning_days=-1)
    with pytest.raises(FleetReportError, match="host"):
        report_for([{"imsi": "1"}])


def test_input_not_modified():
    entry = device()
    before = copy.deepcopy(entry)
    report_for([entry])
    assert entry == before
