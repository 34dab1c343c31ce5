#!/usr/bin/env python3
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read or reset the lab's AWS and SORACOM stand-ins for the molecule scenarios.

`state` prints, as JSON, what the cloud role and Krypton created: AWS IoT policies, things and
certificates, IAM users, and the SORACOM emulator's credential sets, groups and SIMs. Secrets
are never printed. For each credential set the output contains the ARN that its stored key
authenticates as, so the verify playbooks can check the secret without seeing it.

`reset` returns the stand-ins and the Pis' Krypton files to the state `labctl up` left them
in, with the same function the end-to-end tests use.

Run it through `tests/lab/labctl exec`, which sets the lab's AWS endpoint and keys.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import labapi  # noqa: E402  (needs the path set above)


def iot_state(iot) -> dict:
    """Return the IoT policies with their versions, and the things with their certificates."""
    policies = {}
    for policy in iot.list_policies()["policies"]:
        name = policy["policyName"]
        versions = iot.list_policy_versions(policyName=name)["policyVersions"]
        default = iot.get_policy(policyName=name)
        policies[name] = {
            "version_count": len(versions),
            "default_version_id": default["defaultVersionId"],
            "document": json.loads(default["policyDocument"]),
        }

    things = {}
    for thing in iot.list_things()["things"]:
        name = thing["thingName"]
        certificates = []
        for arn in iot.list_thing_principals(thingName=name)["principals"]:
            certificate_id = arn.rsplit("/", 1)[-1]
            description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
            attached = iot.list_attached_policies(target=arn)["policies"]
            certificates.append({
                "certificate_id": certificate_id,
                "status": description["status"],
                "policies": sorted(item["policyName"] for item in attached),
            })
        things[name] = {"certificates": certificates}
    return {"iot_policies": policies, "things": things}


def iam_state(iam) -> dict:
    """Return every IAM user but the lab's administrator, with keys and policies (no secrets)."""
    admin = iam.get_user()["User"]["UserName"]
    users = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        if name == admin:
            continue
        keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        inline = {}
        for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
            document = iam.get_user_policy(UserName=name, PolicyName=policy_name)["PolicyDocument"]
            inline[policy_name] = json.loads(document) if isinstance(document, str) else document
        attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
        users[name] = {
            "path": user["Path"],
            "access_keys": [{"access_key_id": key["AccessKeyId"], "status": key["Status"]} for key in keys],
            "inline_policies": inline,
            "attached_policies": sorted(policy["PolicyArn"] for policy in attached),
        }
    return {"iam_users": users}


def authenticated_user(access_key_id: str, secret_access_key: str) -> str:
    """Return the ARN that a key pair authenticates as, or the error code AWS returned.

    STS GetCallerIdentity needs no permission, so a least-privilege user can call it too.
    """
    import boto3
    import botocore.exceptions

    client = boto3.client("sts", aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)
    try:
        return client.get_caller_identity()["Arn"]
    except botocore.exceptions.ClientError as error:
        return "error: " + error.response.get("Error", {}).get("Code", "unknown")


def soracom_state() -> dict:
    """Return the emulator's credential sets (secrets replaced by a check), groups and SIMs."""
    state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    credentials = []
    for record in state["credentials"]:
        secret = record.get("credentials", {})
        entry = {key: value for key, value in record.items() if key != "credentials"}
        entry["access_key_id"] = secret.get("accessKeyId")
        if secret.get("accessKeyId") and secret.get("secretAccessKey"):
            entry["authenticates_as"] = authenticated_user(secret["accessKeyId"], secret["secretAccessKey"])
        else:
            entry["authenticates_as"] = None
        credentials.append(entry)
    return {"credentials": credentials, "groups": state["groups"], "sims": state["sims"]}


def print_state() -> None:
    import boto3

    result = {}
    result.update(iot_state(boto3.client("iot")))
    result.update(iam_state(boto3.client("iam")))
    result.update(soracom_state())
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("state", "reset"),
                        help="state: print the stand-ins' state as JSON; reset: return the lab to "
                             "the state labctl up left it in")
    args = parser.parse_args()
    if args.command == "state":
        print_state()
    else:
        labapi.reset_lab()
    return 0


if __name__ == "__main__":
    sys.exit(main())
