"""Access to a running lab for the end-to-end tests and the demo.

Every address here is inside the lab's own network namespaces: run these
programs through `tests/lab/labctl exec`, which enters the lab's controller
namespace and sets the AWS and SORACOM environment variables.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))

from labctl_lib.config import Lab, OutputPaths, StatePaths  # noqa: E402  (needs the path set above)

# `labctl exec` sets KRYPTON_LAB_ID and KRYPTON_LAB_STATE to the lab it enters. Without them
# this is lab 0 and its default state directory, tests/lab/.state.
STATE = StatePaths.from_env(Lab.from_env()).root
# The inventory and ansible-test configuration `labctl up` wrote for this lab.
OUTPUTS = OutputPaths.for_lab(Lab.from_env(), StatePaths.from_env(Lab.from_env()))
SORACOM_ADMIN = "http://127.0.0.1:8099"
BROKER_ADMIN = "http://127.0.0.1:8098"
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


def load_lab() -> dict:
    """Read the description `labctl up` writes of the running lab."""
    path = STATE / "lab.json"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: start the lab with 'tests/lab/labctl up'")
    lab = json.loads(path.read_text())
    for pi in lab["pis"]:
        # The lab inventory keeps the cloud role's default pattern, krypton-$imsi.
        pi.setdefault("thing_name", f"krypton-{pi['imsi']}")
    return lab


def get_json(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def iot_client():
    import boto3

    return boto3.client("iot")


def run_playbook(*args: str, echo: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ansible-playbook from the repository root and return its output."""
    command = [str(REPO / ".venv" / "bin" / "ansible-playbook"), *args]
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    full_env.update(env or {})
    result = subprocess.run(
        command, cwd=REPO, env=full_env, text=True, capture_output=True, timeout=1800, check=False
    )
    if echo:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    return result


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Return the PLAY RECAP counters per host."""
    recap = {}
    for line in output.splitlines():
        match = RECAP.match(line.strip())
        if match:
            counters = match.groupdict()
            host = counters.pop("host")
            recap[host] = {name: int(value) for name, value in counters.items()}
    return recap


def active_certificates_by_thing() -> dict[str, list[str]]:
    """Map each thing name to the ids of the ACTIVE certificates attached to it."""
    iot = iot_client()
    result = {}
    for thing in iot.list_things()["things"]:
        name = thing["thingName"]
        principals = iot.list_thing_principals(thingName=name)["principals"]
        active = []
        for arn in principals:
            certificate_id = arn.rsplit("/", 1)[-1]
            description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
            if description["status"] == "ACTIVE":
                active.append(certificate_id)
        result[name] = active
    return result


def all_certificates() -> list[dict]:
    return iot_client().list_certificates(pageSize=250)["certificates"]


def krypton_calls() -> int:
    """Count the bootstrap calls the Krypton stand-in has served."""
    counts = get_json(SORACOM_ADMIN + "/_lab/calls")["counts"].get("krypton", {})
    return sum(count for request, count in counts.items() if request.endswith("/provisioning/aws/iot/bootstrap"))


def broker_messages() -> list[dict]:
    return get_json(BROKER_ADMIN + "/_lab/messages")


def link_up(pi: dict) -> None:
    """Bring the Pi's ppp0 up with `labctl link-up` when a test left it down."""
    state = subprocess.run(["ip", "-n", pi["netns"], "-o", "link", "show", "dev", "ppp0"], text=True,
                           capture_output=True, timeout=10, check=False)
    if state.returncode == 0 and ",UP" in state.stdout and "state DOWN" not in state.stdout:
        return
    result = subprocess.run([str(REPO / "tests" / "lab" / "labctl"), "link-up", str(pi["n"])], text=True,
                            capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"labctl link-up {pi['n']} failed: {result.stderr.strip()}")


def ssh(pi: dict, command: str, timeout: int = 60) -> subprocess.CompletedProcess:
    """Run a shell command on a lab Pi as root."""
    lab = load_lab()
    return subprocess.run(
        [
            "ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"root@{pi['ip']}", command,
        ],
        text=True, capture_output=True, timeout=timeout, check=False,
    )


def reset_lab() -> None:
    """Return the stand-ins and the Pis to the state `labctl up` left them in.

    First each Pi: its ppp0 comes up if a test left it down, and its Krypton files and the
    record of the last MQTTS check are removed. A Pi that cannot be reached stops the reset
    there, before anything else is deleted. Then every AWS IoT certificate, thing and policy
    and every IAM user but the lab's administrator are deleted, and the SORACOM emulator's
    groups and credential sets are emptied.
    """
    import boto3

    for pi in load_lab()["pis"]:
        link_up(pi)
        result = ssh(pi, "rm -rf /etc/soracom/krypton /var/lib/soracom/krypton", timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"could not clean {pi['name']} (exit {result.returncode}): {result.stderr.strip()}")

    iot = boto3.client("iot")
    for certificate in iot.list_certificates(pageSize=250)["certificates"]:
        arn, certificate_id = certificate["certificateArn"], certificate["certificateId"]
        for policy in iot.list_attached_policies(target=arn)["policies"]:
            iot.detach_policy(policyName=policy["policyName"], target=arn)
        for thing in iot.list_principal_things(principal=arn)["things"]:
            iot.detach_thing_principal(thingName=thing, principal=arn)
        iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
        iot.delete_certificate(certificateId=certificate_id)
    for thing in iot.list_things()["things"]:
        iot.delete_thing(thingName=thing["thingName"])
    for policy in iot.list_policies()["policies"]:
        name = policy["policyName"]
        for version in iot.list_policy_versions(policyName=name)["policyVersions"]:
            if not version["isDefaultVersion"]:
                iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])
        iot.delete_policy(policyName=name)

    iam = boto3.client("iam")
    admin = iam.get_user()["User"]["UserName"]
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        if name == admin:
            continue
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
        iam.delete_user(UserName=name)

    get_json(SORACOM_ADMIN + "/_lab/reset", method="POST")
    get_json(SORACOM_ADMIN + "/_lab/calls", method="DELETE")
    get_json(BROKER_ADMIN + "/_lab/messages", method="DELETE")
