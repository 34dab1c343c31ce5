# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for iot_policy: parsing and evaluating AWS IoT policies, no network.

Run: .venv/bin/pytest tests/lab/broker/test_iot_policy.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iot_policy import Policy, PolicyError, RequestContext, evaluate  # noqa: E402  (needs the directory on sys.path)

ARN = "arn:aws:iot:ap-northeast-1:123456789012"
THING = "${iot:Connection.Thing.ThingName}"


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def document(*statements, version="2012-10-17") -> dict:
    return {"Version": version, "Statement": list(statements)}


# A device may connect only with its own thing name as client id and use only topics under
# sensors/<thing name>/, as the thing-scoped examples in the AWS IoT Core Developer Guide do.
THING_SCOPED = document(
    allow("iot:Connect", f"{ARN}:client/{THING}"),
    allow("iot:Publish", f"{ARN}:topic/sensors/{THING}/*"),
    allow("iot:Subscribe", f"{ARN}:topicfilter/sensors/{THING}/*"),
    allow("iot:Receive", f"{ARN}:topic/sensors/{THING}/*"),
)

# The collection's default policy: any account, topics under krypton/<thing name>/.
COLLECTION_DEFAULT = document(
    allow("iot:Connect", f"arn:aws:iot:ap-northeast-1:*:client/{THING}"),
    allow(["iot:Publish", "iot:Receive"], f"arn:aws:iot:ap-northeast-1:*:topic/krypton/{THING}/*"),
    allow("iot:Subscribe", f"arn:aws:iot:ap-northeast-1:*:topicfilter/krypton/{THING}/*"),
)

CLIENT_ID_SCOPED = document(
    allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"),
    allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/devices/${{iot:ClientId}}/*"),
)

ALLOW_ALL = document(allow("iot:*", "*"))
DENY_SECRET = document(deny("iot:Publish", f"{ARN}:topic/secret/*"))
ALLOW_ALL_BUT_SECRET = document(allow("iot:*", "*"), deny(["iot:Publish", "iot:Receive"], f"{ARN}:topic/secret/*"))

ATTACHED = RequestContext.for_connection("pi-0001", ["pi-0001"])
ATTACHED_AMONG_OTHERS = RequestContext.for_connection("pi-0001", ["pi-0002", "pi-0001"])
OTHER_CLIENT_ID = RequestContext.for_connection("tool-7", ["pi-0001"])
NO_THING = RequestContext.for_connection("pi-0001", [])


def client(name: str) -> str:
    return f"{ARN}:client/{name}"


def topic(name: str) -> str:
    return f"{ARN}:topic/{name}"


def topic_filter(name: str) -> str:
    return f"{ARN}:topicfilter/{name}"


# (case id, policy documents, action, resource, context, expected decision)
CASES = [
    # Thing-scoped policy: the client id must be a thing attached to the certificate.
    ("thing connects as itself", [THING_SCOPED], "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("thing among several attached", [THING_SCOPED], "iot:Connect", client("pi-0001"), ATTACHED_AMONG_OTHERS, True),
    ("client id not an attached thing", [THING_SCOPED], "iot:Connect", client("tool-7"), OTHER_CLIENT_ID, False),
    ("certificate with no thing", [THING_SCOPED], "iot:Connect", client("pi-0001"), NO_THING, False),
    ("publish under own prefix", [THING_SCOPED], "iot:Publish", topic("sensors/pi-0001/temp"), ATTACHED, True),
    ("publish deeper under own prefix", [THING_SCOPED], "iot:Publish", topic("sensors/pi-0001/a/b/c"), ATTACHED, True),
    ("publish to the prefix itself", [THING_SCOPED], "iot:Publish", topic("sensors/pi-0001"), ATTACHED, False),
    ("publish under another thing", [THING_SCOPED], "iot:Publish", topic("sensors/pi-0002/temp"), ATTACHED, False),
    ("publish outside sensors/", [THING_SCOPED], "iot:Publish", topic("alerts/pi-0001/temp"), ATTACHED, False),
    ("publish without attached thing", [THING_SCOPED], "iot:Publish", topic("sensors/pi-0001/temp"), NO_THING, False),
    ("subscribe own filter with #", [THING_SCOPED], "iot:Subscribe", topic_filter("sensors/pi-0001/#"), ATTACHED, True),
    ("subscribe own filter with +", [THING_SCOPED], "iot:Subscribe", topic_filter("sensors/pi-0001/+/x"), ATTACHED, True),
    ("subscribe across things", [THING_SCOPED], "iot:Subscribe", topic_filter("sensors/#"), ATTACHED, False),
    ("subscribe needs topicfilter ARN", [THING_SCOPED], "iot:Subscribe", topic("sensors/pi-0001/x"), ATTACHED, False),
    ("receive own topic", [THING_SCOPED], "iot:Receive", topic("sensors/pi-0001/cmd"), ATTACHED, True),
    ("receive other thing's topic", [THING_SCOPED], "iot:Receive", topic("sensors/pi-0002/cmd"), ATTACHED, False),
    ("action not in any statement", [THING_SCOPED], "iot:RetainPublish", topic("sensors/pi-0001/x"), ATTACHED, False),
    # The collection's default policy, with * for the account.
    ("default policy connect", [COLLECTION_DEFAULT], "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("default policy publish", [COLLECTION_DEFAULT], "iot:Publish", topic("krypton/pi-0001/check"), ATTACHED, True),
    ("default policy other region", [COLLECTION_DEFAULT], "iot:Publish",
     "arn:aws:iot:us-east-1:123456789012:topic/krypton/pi-0001/check", ATTACHED, False),
    ("default policy wrong client id", [COLLECTION_DEFAULT], "iot:Connect", client("tool-7"), OTHER_CLIENT_ID, False),
    # ${iot:ClientId} resolves whether or not a thing is attached.
    ("client id policy connect", [CLIENT_ID_SCOPED], "iot:Connect", client("tool-7"), OTHER_CLIENT_ID, True),
    ("client id policy publish", [CLIENT_ID_SCOPED], "iot:Publish", topic("devices/tool-7/x"), OTHER_CLIENT_ID, True),
    ("client id policy other topic", [CLIENT_ID_SCOPED], "iot:Publish", topic("devices/pi-0001/x"), OTHER_CLIENT_ID, False),
    ("client id value is literal", [CLIENT_ID_SCOPED], "iot:Publish", topic("devices/abc/x"),
     RequestContext("a*"), False),
    ("client id with * matches itself", [CLIENT_ID_SCOPED], "iot:Publish", topic("devices/a*/x"), RequestContext("a*"), True),
    # An explicit Deny wins over any Allow, in the same policy or another one.
    ("deny in same policy", [ALLOW_ALL_BUT_SECRET], "iot:Publish", topic("secret/x"), ATTACHED, False),
    ("deny does not spread", [ALLOW_ALL_BUT_SECRET], "iot:Publish", topic("public/x"), ATTACHED, True),
    ("deny in other policy", [ALLOW_ALL, DENY_SECRET], "iot:Publish", topic("secret/x"), ATTACHED, False),
    ("deny listed first", [DENY_SECRET, ALLOW_ALL], "iot:Publish", topic("secret/x"), ATTACHED, False),
    ("deny only for its action", [ALLOW_ALL, DENY_SECRET], "iot:Subscribe", topic_filter("secret/x"), ATTACHED, True),
    ("deny alone allows nothing", [DENY_SECRET], "iot:Publish", topic("public/x"), ATTACHED, False),
    ("no policy", [], "iot:Connect", client("pi-0001"), ATTACHED, False),
    # A Deny whose variable is unresolved does not match.
    ("unresolved deny skipped", [document(allow("iot:*", "*"), deny("iot:Publish", f"{ARN}:topic/{THING}/blocked"))],
     "iot:Publish", topic("pi-0001/blocked"), NO_THING, True),
    ("resolved deny applies", [document(allow("iot:*", "*"), deny("iot:Publish", f"{ARN}:topic/{THING}/blocked"))],
     "iot:Publish", topic("pi-0001/blocked"), ATTACHED, False),
    # Action wildcards, case-insensitive action names.
    ("iot:* matches", [document(allow("iot:*", f"{ARN}:*"))], "iot:Receive", topic("x"), ATTACHED, True),
    ("* matches any action", [document(allow("*", "*"))], "iot:Connect", client("x"), ATTACHED, True),
    ("prefix wildcard", [document(allow("iot:Pub*", "*"))], "iot:Publish", topic("x"), ATTACHED, True),
    ("prefix wildcard misses", [document(allow("iot:Pub*", "*"))], "iot:Subscribe", topic_filter("x"), ATTACHED, False),
    ("? in action", [document(allow("iot:?eceive", "*"))], "iot:Receive", topic("x"), ATTACHED, True),
    ("action case-insensitive", [document(allow("IOT:PUBLISH", "*"))], "iot:Publish", topic("x"), ATTACHED, True),
    ("action list", [document(allow(["iot:Connect", "iot:Publish"], "*"))], "iot:Publish", topic("x"), ATTACHED, True),
    ("other service", [document(allow("greengrass:*", "*"))], "iot:Publish", topic("x"), ATTACHED, False),
    # Resource wildcards match case-sensitively over the whole ARN.
    ("resource case-sensitive", [document(allow("iot:Publish", f"{ARN}:topic/Sensors/*"))],
     "iot:Publish", topic("sensors/x"), ATTACHED, False),
    ("? matches one character", [document(allow("iot:Publish", f"{ARN}:topic/room?/temp"))],
     "iot:Publish", topic("room1/temp"), ATTACHED, True),
    ("? not two characters", [document(allow("iot:Publish", f"{ARN}:topic/room?/temp"))],
     "iot:Publish", topic("room10/temp"), ATTACHED, False),
    ("whole ARN must match", [document(allow("iot:Publish", "topic/x"))], "iot:Publish", topic("x"), ATTACHED, False),
    ("* spans slashes", [document(allow("iot:Publish", f"{ARN}:topic/a*z"))], "iot:Publish", topic("a/b/c/z"), ATTACHED, True),
    ("resource list", [document(allow("iot:Publish", [f"{ARN}:topic/a", f"{ARN}:topic/b"]))],
     "iot:Publish", topic("b"), ATTACHED, True),
    ("list entry unresolved, other matches", [document(allow("iot:Publish", [f"{ARN}:topic/{THING}", f"{ARN}:topic/b"]))],
     "iot:Publish", topic("b"), NO_THING, True),
    ("MQTT + is literal in policy", [document(allow("iot:Subscribe", f"{ARN}:topicfilter/a/+"))],
     "iot:Subscribe", topic_filter("a/b"), ATTACHED, False),
    ("MQTT + filter allowed literally", [document(allow("iot:Subscribe", f"{ARN}:topicfilter/a/+"))],
     "iot:Subscribe", topic_filter("a/+"), ATTACHED, True),
    ("escape ${*} is a literal star", [document(allow("iot:Publish", f"{ARN}:topic/a${{*}}"))],
     "iot:Publish", topic("a*"), ATTACHED, True),
    ("escape ${*} is no wildcard", [document(allow("iot:Publish", f"{ARN}:topic/a${{*}}"))],
     "iot:Publish", topic("abc"), ATTACHED, False),
    # NotAction and NotResource.
    ("NotAction allows others", [{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}}],
     "iot:Connect", client("x"), ATTACHED, True),
    ("NotAction excludes listed", [{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}}],
     "iot:Publish", topic("x"), ATTACHED, False),
    ("NotResource allows others", [document({"Effect": "Allow", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/admin/*"})],
     "iot:Publish", topic("user/x"), ATTACHED, True),
    ("NotResource excludes listed", [document({"Effect": "Allow", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/admin/*"})],
     "iot:Publish", topic("admin/x"), ATTACHED, False),
    ("NotResource unresolved", [document({"Effect": "Allow", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/{THING}/*"})],
     "iot:Publish", topic("user/x"), NO_THING, False),
    # Version 2008-10-17 and a missing Version treat "${...}" as text.
    ("2008-10-17 keeps ${} literal", [document(allow("iot:Connect", f"{ARN}:client/{THING}"), version="2008-10-17")],
     "iot:Connect", client("pi-0001"), ATTACHED, False),
    ("2008-10-17 matches the text", [document(allow("iot:Connect", f"{ARN}:client/{THING}"), version="2008-10-17")],
     "iot:Connect", client(THING), ATTACHED, True),
    ("missing Version keeps ${} literal", [{"Statement": [allow("iot:Connect", f"{ARN}:client/{THING}")]}],
     "iot:Connect", client("pi-0001"), ATTACHED, False),
    # Conditions, starting with the AWS documentation's IsAttached example.
    ("IsAttached true", [document(allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("IsAttached false", [document(allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}}))],
     "iot:Connect", client("tool-7"), OTHER_CLIENT_ID, False),
    ("IsAttached JSON boolean", [document(allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": True}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("StringEquals client id", [document(allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": ["a", "pi-0001"]}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("StringEquals is exact", [document(allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": "PI-0001"}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, False),
    ("StringEqualsIgnoreCase", [document(allow("iot:Connect", "*", Condition={"StringEqualsIgnoreCase": {"iot:ClientId": "PI-0001"}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("StringLike wildcard", [document(allow("iot:Connect", "*", Condition={"StringLike": {"iot:ClientId": "pi-*"}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("StringNotLike", [document(allow("iot:Connect", "*", Condition={"StringNotLike": {"iot:ClientId": "pi-*"}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, False),
    ("condition with variable", [document(allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": THING}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, True),
    ("condition variable unresolved", [document(allow("iot:Connect", "*", Condition={"StringNotEquals": {"iot:ClientId": THING}}))],
     "iot:Connect", client("pi-0001"), NO_THING, False),
    ("missing key fails StringEquals", [document(allow("iot:Connect", "*", Condition={"StringEquals": {"iot:Connection.Thing.ThingName": "pi-0001"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, False),
    ("missing key passes StringNotEquals", [document(allow("iot:Connect", "*", Condition={"StringNotEquals": {"iot:Connection.Thing.ThingName": "x"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, True),
    ("missing key passes IfExists", [document(allow("iot:Connect", "*", Condition={"StringEqualsIfExists": {"iot:Connection.Thing.ThingName": "x"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, True),
    ("IfExists checks present key", [document(allow("iot:Connect", "*", Condition={"StringEqualsIfExists": {"iot:Connection.Thing.ThingName": "x"}}))],
     "iot:Connect", client("pi-0001"), ATTACHED, False),
    ("Null true for missing key", [document(allow("iot:Connect", "*", Condition={"Null": {"iot:Connection.Thing.ThingName": "true"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, True),
    ("Null false for missing key", [document(allow("iot:Connect", "*", Condition={"Null": {"iot:Connection.Thing.ThingName": "false"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, False),
    ("all operators must hold", [document(allow("iot:Connect", "*", Condition={
        "StringLike": {"iot:ClientId": "pi-*"}, "Bool": {"iot:Connection.Thing.IsAttached": "true"}}))],
     "iot:Connect", client("pi-0001"), NO_THING, False),
    ("condition on a Deny", [document(allow("iot:*", "*"), deny("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": "false"}}))],
     "iot:Connect", client("tool-7"), OTHER_CLIENT_ID, False),
]


@pytest.mark.parametrize(
    ("documents", "action", "resource", "context", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_evaluate(documents, action, resource, context, expected):
    policies = [Policy.parse(f"policy{index}", json.dumps(doc)) for index, doc in enumerate(documents)]
    decision = evaluate(policies, action, resource, context)
    assert decision.allowed is expected, decision.reason


def test_deny_reason_names_statement():
    policies = [Policy.parse("allow-all", ALLOW_ALL), Policy.parse("deny-secret", DENY_SECRET)]
    decision = evaluate(policies, "iot:Publish", topic("secret/x"), ATTACHED)
    assert decision.reason == "explicitly denied by policy 'deny-secret' Statement[0]"


def test_allow_reason_names_statement_and_sid():
    policy = Policy.parse("p", document(allow("iot:Connect", "*", Sid="ConnectAnywhere")))
    decision = evaluate([policy], "iot:Connect", client("x"), ATTACHED)
    assert decision.reason == "allowed by policy 'p' Statement[0] (Sid 'ConnectAnywhere')"


def test_unresolved_thing_name_explained():
    decision = evaluate([Policy.parse("things", THING_SCOPED)], "iot:Connect", client("tool-7"), OTHER_CLIENT_ID)
    assert "no statement allows it in the attached policies ('things')" in decision.reason
    assert "no thing named 'tool-7' is attached to the certificate" in decision.reason


def test_no_policy_reason():
    assert evaluate([], "iot:Connect", client("x"), ATTACHED).reason == "no policy is attached to the certificate"


def test_single_statement_object():
    policy = Policy.parse("single", {"Version": "2012-10-17", "Statement": allow("iot:Connect", "*")})
    assert len(policy.statements) == 1


def test_unknown_variable_unresolved():
    policy = Policy.parse("p", document(allow("iot:Connect", f"{ARN}:client/${{iot:Certificate.Subject.CommonName}}")))
    decision = evaluate([policy], "iot:Connect", client("AWS IoT Certificate"), ATTACHED)
    assert not decision.allowed
    assert "not a policy variable that the lab resolves" in decision.reason


@pytest.mark.parametrize(
    ("document_text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"Version": "2012-10-17"}), "has no Statement"),
        (json.dumps({"Version": "2012-10-17", "Statement": []}), "non-empty list"),
        (json.dumps({"Version": "2021-01-01", "Statement": [allow("iot:*", "*")]}), "has Version '2021-01-01'"),
        (json.dumps({"Version": "2012-10-17", "Statement": [allow("iot:*", "*")], "Extra": 1}), "unknown top-level keys ['Extra']"),
        (json.dumps(document({"Effect": "allow", "Action": "iot:*", "Resource": "*"})), "Effect must be \"Allow\" or \"Deny\""),
        (json.dumps(document({"Effect": "Allow", "Action": "iot:*", "NotAction": "iot:Publish", "Resource": "*"})),
         "exactly one of Action and NotAction"),
        (json.dumps(document({"Effect": "Allow", "Action": "iot:*"})), "exactly one of Resource and NotResource"),
        (json.dumps(document(allow("iot:*", "*", Principal="*"))), "unknown keys ['Principal']"),
        (json.dumps(document(allow("Publish", "*"))), "invalid action 'Publish'"),
        (json.dumps(document(allow("iot:*", []))), "must not be an empty list"),
        (json.dumps(document(allow("iot:*", ""))), "non-empty string"),
        (json.dumps(document(allow("iot:*", "*", Condition={"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["LastWill"]}}))),
         "condition operator 'ForAllValues:StringEquals' is not supported"),
        (json.dumps(document(allow("iot:*", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": "yes"}}))),
         "takes \"true\" or \"false\""),
        (json.dumps(document(allow("iot:*", "*", Condition="x"))), "Condition must be an object"),
    ],
)
def test_invalid_document_rejected(document_text, message):
    with pytest.raises(PolicyError) as error:
        Policy.parse("bad", document_text)
    assert message in str(error.value)
    assert "'bad'" in str(error.value)
