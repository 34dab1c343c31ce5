"""provision.yml and the device modules under faults on the lab, and the run that converges afterwards.

Each test causes one fault on the lab. The faults are a cellular link that is down, a clock
years behind, a key directory that cannot be written, an IAM user without
iot:CreateKeysAndCertificate, a SORACOM API that returns 429 and 500, and a second MQTT
connection with the device's client id. Each test checks the message the operator sees, that
the Pi's files and the AWS and SORACOM state are as expected, and that provision.yml converges
once the cause is gone.

The module fixture resets the lab and runs provision.yml once. Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_faults.py
"""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import boto3
import pytest

import labapi

KRYPTON_DIR = "/etc/soracom/krypton"
# The cloud role's defaults for the IAM user and the SORACOM credential set Krypton uses.
IAM_USER = "soracom-krypton"
CREDENTIAL_ID = "krypton-aws-iot"
# The SORACOM API client's default number of retries, so a request is sent at most 6 times.
SORACOM_RETRIES = 5
# Debian bookworm's libfaketime package installs the library here on amd64, the lab Pis' architecture.
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
# "pi02 | FAILED! => {...}" from the default callback with the JSON result format.
ADHOC_RESULT = re.compile(r"^(?P<host>\S+) \| (?P<state>[A-Z]+)!? => (?P<json>\{.*?^\})", re.M | re.S)
# "fatal: [pi02]: FAILED! => {...}" for a failed task in a playbook run, up to the start of the JSON.
FATAL_RESULT = re.compile(r"^fatal: \[(?P<host>[^\]]+)\]: FAILED! => (?=\{)", re.M)
JSON_OUTPUT = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


# --- helpers ------------------------------------------------------------------------------------

def pi_by_name(lab: dict, name: str) -> dict:
    return next(pi for pi in lab["pis"] if pi["name"] == name)


def labctl(*arguments: str) -> subprocess.CompletedProcess:
    """Run tests/lab/labctl for the lab this test runs in (KRYPTON_LAB_ID is set by labctl exec)."""
    return subprocess.run([str(labapi.REPO / "tests" / "lab" / "labctl"), *arguments], text=True,
                          capture_output=True, timeout=60, check=False)


def soracom_admin(method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(labapi.SORACOM_ADMIN + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def directory_digests(pi: dict) -> str:
    """List every entry of the Pi's key directory, hidden ones too, with the SHA-256 of each file."""
    result = labapi.ssh(pi, f"cd {KRYPTON_DIR} && find . -mindepth 1 | sort "
                            "&& find . -type f -print0 | sort -z | xargs -0 sha256sum")
    assert result.returncode == 0, result.stderr
    return result.stdout


def fold(text: str) -> str:
    """Fold white space, so a message that the callback wrapped compares as one line."""
    return " ".join(text.split())


def failed_results(output: str) -> dict[str, dict]:
    """Map each host to the JSON result of its failed task in a playbook's output."""
    decoder = json.JSONDecoder()
    return {match["host"]: decoder.raw_decode(output, match.end())[0] for match in FATAL_RESULT.finditer(output)}


def run_module(host: str, module: str, arguments: str) -> dict:
    """Run one collection module ad hoc on a lab host and return its state and result."""
    command = [str(labapi.REPO / ".venv" / "bin" / "ansible"), host, "-m", module, "-a", arguments]
    env = dict(os.environ, ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", **JSON_OUTPUT)
    completed = subprocess.run(command, cwd=labapi.REPO, env=env, text=True, capture_output=True,
                               timeout=600, check=False)
    output = completed.stdout + completed.stderr
    match = ADHOC_RESULT.search(completed.stdout)
    assert match, f"no result for {host} in the output:\n{output[-4000:]}"
    return {"returncode": completed.returncode, "state": match["state"], "result": json.loads(match["json"]),
            "output": output}


def without_last_used(value):
    """Return ``value`` without its lastUsedDateTime fields, which Krypton updates on every call."""
    if isinstance(value, dict):
        return {key: without_last_used(item) for key, item in value.items() if key != "lastUsedDateTime"}
    if isinstance(value, list):
        return [without_last_used(item) for item in value]
    return value


def cloud_state() -> dict:
    """Return what provision.yml writes in the SORACOM emulator and the AWS stand-in."""
    full_state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    iam = boto3.client("iam")
    iot = boto3.client("iot")
    return {
        "soracom": without_last_used({key: full_state[key] for key in ("groups", "credentials", "sims")}),
        "iot_policies": sorted(policy["policyName"] for policy in iot.list_policies()["policies"]),
        "certificates": sorted((c["certificateId"], c["status"]) for c in labapi.all_certificates()),
        "iam_keys": sorted(key["AccessKeyId"] for key in
                           iam.list_access_keys(UserName=IAM_USER)["AccessKeyMetadata"]),
        "iam_inline_policies": {
            name: iam.get_user_policy(UserName=IAM_USER, PolicyName=name)["PolicyDocument"]
            for name in iam.list_user_policies(UserName=IAM_USER)["PolicyNames"]
        },
    }


def assert_converges(lab: dict) -> None:
    """Run provision.yml until it converges: every Pi provisioned, then changed=0, one ACTIVE certificate each."""
    first = labapi.run_playbook("playbooks/provision.yml", echo=False)
    recap = labapi.parse_recap(first.stdout)
    assert first.returncode == 0, first.stdout[-4000:]
    for pi in lab["pis"]:
        assert recap[pi["name"]]["failed"] == 0, first.stdout[-4000:]
        assert recap[pi["name"]]["unreachable"] == 0, first.stdout[-4000:]

    second = labapi.run_playbook("playbooks/provision.yml", echo=False)
    recap = labapi.parse_recap(second.stdout)
    assert second.returncode == 0, second.stdout[-4000:]
    for host, counters in recap.items():
        assert counters["changed"] == 0, f"{host} changed on the second run:\n{second.stdout[-4000:]}"

    active = labapi.active_certificates_by_thing()
    for pi in lab["pis"]:
        assert len(active[pi["thing_name"]]) == 1, active


@pytest.fixture(scope="module")
def provisioned(lab):
    labapi.reset_lab()
    result = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    return result


# --- 1. cellular link down ----------------------------------------------------------------------

# Copies standard input to sshd on 127.0.0.1:22 and sshd's output to standard output, for an SSH
# ProxyCommand that runs inside a Pi's network namespace.
SSH_RELAY = """\
import os, socket, threading
connection = socket.create_connection(("127.0.0.1", 22))
def forward_input():
    while True:
        data = os.read(0, 65536)
        if not data:
            connection.shutdown(socket.SHUT_WR)
            return
        connection.sendall(data)
threading.Thread(target=forward_input, daemon=True).start()
while True:
    data = connection.recv(65536)
    if not data:
        break
    os.write(1, data)
"""


def inventory_over_loopback(directory: str, pi: dict) -> list[str]:
    """Write an inventory that reaches ``pi`` over its loopback, and return the -i options that use it.

    ppp0 is a lab Pi's only interface, so SSH over the Pi's address stops with the link. The
    ProxyCommand enters the Pi's network namespace and connects to sshd there instead.
    """
    relay = os.path.join(directory, "ssh_relay.py")
    with open(relay, "w") as handle:
        handle.write(SSH_RELAY)
    proxy = f"nsenter --net=/run/netns/{pi['netns']} {labapi.REPO / '.venv' / 'bin' / 'python'} {relay}"
    # No ControlPersist: a control master left from an earlier run would still use the Pi's address.
    override = {"all": {"hosts": {pi["name"]: {
        "ansible_ssh_args": "-C -o ControlMaster=no",
        "ansible_ssh_common_args": f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                   f"-o ProxyCommand='{proxy}'",
    }}}}
    path = os.path.join(directory, "over-loopback.yml")
    with open(path, "w") as handle:
        json.dump(override, handle)
    return ["-i", str(labapi.OUTPUTS.inventory), "-i", path]


def test_link_down_fails_that_pi_only(lab, provisioned):
    pi = pi_by_name(lab, "pi02")
    others = [other for other in lab["pis"] if other is not pi]
    digests = directory_digests(pi)

    with tempfile.TemporaryDirectory() as directory:
        inventory = inventory_over_loopback(directory, pi)
        down = labctl("link-down", str(pi["n"]))
        assert down.returncode == 0, down.stderr
        try:
            result = labapi.run_playbook(*inventory, "playbooks/provision.yml", echo=False, env=JSON_OUTPUT)
        finally:
            up = labctl("link-up", str(pi["n"]))
    assert up.returncode == 0, up.stderr

    recap = labapi.parse_recap(result.stdout)
    assert result.returncode != 0
    assert recap[pi["name"]]["failed"] == 1, result.stdout[-4000:]
    failures = failed_results(result.stdout)
    assert set(failures) == {pi["name"]}, result.stdout[-4000:]
    message = fold(failures[pi["name"]]["msg"])
    print("operator message:", message)
    assert f"Cellular link check failed on {pi['name']} (interface ppp0)" in message
    assert "Interface ppp0 is down" in message
    assert "TASK [soracom.krypton.device : Stop when the cellular link is not ready]" in result.stdout
    for other in others:
        assert recap[other["name"]]["failed"] == 0, result.stdout[-4000:]
        assert recap[other["name"]]["unreachable"] == 0, result.stdout[-4000:]

    assert directory_digests(pi) == digests
    assert_converges(lab)


# --- 1b. cellular link flapping during the Krypton call -------------------------------------------

# Each request to Krypton gives up after this many seconds, and Krypton's first response comes later.
FLAP_KRYPTON_TIMEOUT = 4
FLAP_LATE_RESPONSE = 8
FLAP_RETRIES = 8
# Down and up periods in seconds after Krypton has made the first certificate: the response to
# the first call is lost, and the retries meet the link down. The first retry comes at least
# FLAP_KRYPTON_TIMEOUT + 1 s after the first call, so the link is down by then. No period
# follows the last up, because a bootstrap that succeeds in an up period is followed at once
# by the MQTT check, which a later down period would fail.
FLAP_PATTERN = ((7, 0),)


def flap_link_after_new_certificate(pi: dict, known: set[str], events: list[str]) -> None:
    """Wait until a certificate not in ``known`` exists, then take the Pi's link down and up per FLAP_PATTERN."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if {c["certificateId"] for c in labapi.all_certificates()} - known:
            break
        time.sleep(0.3)
    else:
        events.append("no new certificate within 300 s")
        return
    for down, up in FLAP_PATTERN:
        result = labctl("link-down", str(pi["n"]))
        events.append(f"down rc={result.returncode}")
        time.sleep(down)
        result = labctl("link-up", str(pi["n"]))
        events.append(f"up rc={result.returncode}")
        time.sleep(up)


def test_link_flapping_during_krypton_call(lab, provisioned):
    pi = pi_by_name(lab, "pi01")
    certificates_before = {c["certificateId"] for c in labapi.all_certificates()}
    old_certificate = labapi.active_certificates_by_thing()[pi["thing_name"]]
    calls_before = labapi.krypton_calls()
    fault = soracom_admin("POST", "/_lab/faults", {
        "service": "krypton", "path": "/v1/provisioning/aws/iot/bootstrap", "type": "late_response",
        "seconds": FLAP_LATE_RESPONSE, "count": 1})
    events: list[str] = []
    flapper = threading.Thread(target=flap_link_after_new_certificate, args=(pi, certificates_before, events))
    try:
        with tempfile.TemporaryDirectory() as directory:
            inventory = inventory_over_loopback(directory, pi)
            flapper.start()
            run = labapi.run_playbook(*inventory, "--limit", f"localhost,{pi['name']}", "playbooks/provision.yml",
                                      "-e", "device_force_bootstrap=true",
                                      "-e", f"device_krypton_timeout={FLAP_KRYPTON_TIMEOUT}",
                                      "-e", f"device_krypton_retries={FLAP_RETRIES}", echo=False)
            flapper.join(timeout=60)
    finally:
        soracom_admin("DELETE", "/_lab/faults")
        up = labctl("link-up", str(pi["n"]))
    assert up.returncode == 0, up.stderr
    assert not flapper.is_alive()
    print("link events:", events)
    assert events == ["down rc=0", "up rc=0"], events
    assert fault

    output = fold(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:]
    # The lost response and the retries while the link was down are each reported.
    retries = re.findall(r"Request to https://krypton\.soracom\.io:8036\S* failed: .*? Retry (\d+) of "
                         f"{FLAP_RETRIES}", output)
    print("retries reported:", len(retries))
    assert retries and retries[0] == "1", output[-4000:]
    assert "timed out" in output
    assert labapi.krypton_calls() - calls_before >= 2

    # Krypton made certificates whose responses were lost; the run's last play deactivated them
    # and the Pi's old certificate, reporting each one.
    minted = {c["certificateId"] for c in labapi.all_certificates()} - certificates_before
    assert len(minted) >= 2, minted
    active = labapi.active_certificates_by_thing()[pi["thing_name"]]
    assert len(active) == 1, active
    assert active[0] in minted, active
    for certificate_id in (minted - set(active)) | set(old_certificate):
        assert f"Deactivated certificate {certificate_id} of thing {pi['thing_name']}" in output

    calls_before_converge = labapi.krypton_calls()
    assert_converges(lab)
    assert labapi.krypton_calls() == calls_before_converge
    assert labapi.active_certificates_by_thing()[pi["thing_name"]] == active


# --- 2. clock years behind ----------------------------------------------------------------------

FAKED_CLOCK_PLAYBOOK = """\
- name: Run the device modules with the clock {offset} off
  hosts: {host}
  gather_facts: false
  vars:
    faked_clock:
      LD_PRELOAD: {library}
      FAKETIME: "{offset}"
      # Only the wall clock is faked, because a monotonic clock years back would break the modules' timeouts.
      DONT_FAKE_MONOTONIC: "1"
  tasks:
    - name: Bootstrap with force under the faked clock
      soracom.krypton.krypton_bootstrap:
        force: true
      environment: "{{{{ faked_clock }}}}"
      register: faked_bootstrap
      ignore_errors: true

    - name: Read the link state under the faked clock
      soracom.krypton.lte_link_info:
      environment: "{{{{ faked_clock }}}}"
      register: faked_link

    - name: Save both results on the controller
      ansible.builtin.copy:
        content: "{{{{ {{'bootstrap': faked_bootstrap, 'link': faked_link}} | to_json }}}}"
        dest: {results}
        mode: "0600"
      delegate_to: localhost
"""


def install_libfaketime(pi: dict) -> None:
    """Install Debian's libfaketime on the Pi from the lab's apt repository."""
    install = labapi.ssh(pi, "test -f {0} || {{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                             "apt-get install -y -qq libfaketime && test -f {0}; }}".format(LIBFAKETIME), timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr


def test_clock_years_behind_stops_before_krypton(lab, provisioned):
    pi = pi_by_name(lab, "pi01")
    install_libfaketime(pi)
    digests = directory_digests(pi)
    calls_before = labapi.krypton_calls()
    certificates_before = labapi.all_certificates()

    with tempfile.TemporaryDirectory() as directory:
        results = os.path.join(directory, "results.json")
        playbook = os.path.join(directory, "faked-clock.yml")
        with open(playbook, "w") as handle:
            handle.write(FAKED_CLOCK_PLAYBOOK.format(host=pi["name"], library=LIBFAKETIME, offset="-5y",
                                                     results=results))
        run = labapi.run_playbook(playbook, echo=False, env=JSON_OUTPUT)
        assert run.returncode == 0, run.stdout[-4000:]
        with open(results) as handle:
            saved = json.load(handle)

    bootstrap, link = saved["bootstrap"], saved["link"]
    message = fold(bootstrap["msg"])
    print("operator message:", message)
    assert bootstrap["failed"] is True
    assert bootstrap["bootstrapped"] is False
    assert "The device clock reads 20" in message
    assert "which is before 2025-01-01" in message
    assert "enable NTP with timedatectl set-ntp true" in message
    assert "Krypton was not called." in message
    assert "so Krypton was called" not in message
    assert labapi.krypton_calls() == calls_before
    assert labapi.all_certificates() == certificates_before
    assert directory_digests(pi) == digests

    assert link["ready"] is False
    assert link["clock"]["plausible"] is False
    problems = fold(" ".join(link["problems"]))
    print("operator message:", problems)
    assert "is before 2025-01-01, so TLS certificate checks will fail" in problems
    assert "Enable NTP (timedatectl set-ntp true)" in problems

    assert_converges(lab)


# --- 2b. clock an hour behind, after 2025 ----------------------------------------------------------

# The Python that runs the modules on the Pi, with the wall clock shifted by libfaketime. The
# monotonic clock stays real, so timeouts keep working.
FAKED_CLOCK_PYTHON = """\
#!/bin/sh
LD_PRELOAD={library} FAKETIME={offset} DONT_FAKE_MONOTONIC=1 exec /usr/bin/python3 "$@"
"""
FAKED_CLOCK_PYTHON_PATH = "/usr/local/bin/python3-clock-behind"
# The skew the test sets: more than max_clock_skew (300 s), and the clock still reads after 2025.
CLOCK_BEHIND_SECONDS = 3600


def inventory_with_python(directory: str, pi: dict, interpreter: str) -> list[str]:
    """Return -i options that make Ansible run the modules on ``pi`` with ``interpreter``.

    No SSH connection sharing, so every task starts a new session.
    """
    override = {"all": {"hosts": {pi["name"]: {"ansible_python_interpreter": interpreter,
                                                "ansible_ssh_args": "-C -o ControlMaster=no"}}}}
    path = os.path.join(directory, "faked-clock.yml")
    with open(path, "w") as handle:
        json.dump(override, handle)
    return ["-i", str(labapi.OUTPUTS.inventory), "-i", path]


def test_clock_an_hour_behind(lab, provisioned):
    pi = pi_by_name(lab, "pi03")
    install_libfaketime(pi)
    wrapper = FAKED_CLOCK_PYTHON.format(library=LIBFAKETIME, offset=f"-{CLOCK_BEHIND_SECONDS}")
    written = labapi.ssh(pi, f"cat > {FAKED_CLOCK_PYTHON_PATH} <<'EOF'\n{wrapper}EOF\n"
                             f"chmod 0755 {FAKED_CLOCK_PYTHON_PATH} && {FAKED_CLOCK_PYTHON_PATH} -c "
                             "'import time; print(int(time.time()))'")
    assert written.returncode == 0, written.stderr
    assert abs(time.time() - CLOCK_BEHIND_SECONDS - int(written.stdout)) < 120, written.stdout
    digests = directory_digests(pi)
    old_certificate = labapi.active_certificates_by_thing()[pi["thing_name"]]
    limit = ["--limit", f"localhost,{pi['name']}"]

    try:
        with tempfile.TemporaryDirectory() as directory:
            inventory = inventory_with_python(directory, pi, FAKED_CLOCK_PYTHON_PATH)
            calls_before = labapi.krypton_calls()
            link_run = labapi.run_playbook(*inventory, *limit, "playbooks/provision.yml", echo=False, env=JSON_OUTPUT)
            calls_after_link_run = labapi.krypton_calls()
            # With the link check off, the bootstrap itself compares the clock with Krypton's Date.
            bootstrap_run = labapi.run_playbook(*inventory, *limit, "playbooks/provision.yml",
                                                "-e", "device_link_required=false", "-e", "device_force_bootstrap=true",
                                                echo=False, env=JSON_OUTPUT)
    finally:
        removed = labapi.ssh(pi, f"rm -f {FAKED_CLOCK_PYTHON_PATH}")
    assert removed.returncode == 0, removed.stderr

    # The link check names the skew and stops before Krypton.
    assert link_run.returncode != 0
    failures = failed_results(link_run.stdout)
    assert set(failures) == {pi["name"]}, link_run.stdout[-4000:]
    message = fold(failures[pi["name"]]["msg"])
    print("operator message:", message)
    assert f"Cellular link check failed on {pi['name']} (interface ppp0)" in message
    match = re.search(r"The system clock is (\d+) seconds behind the clock of (\S+?)\.? ", message)
    assert match, message
    assert abs(int(match[1]) - CLOCK_BEHIND_SECONDS) < 60, message
    assert calls_after_link_run == calls_before

    # The bootstrap stores what Krypton returned, then fails on the skew.
    assert bootstrap_run.returncode != 0
    failures = failed_results(bootstrap_run.stdout)
    assert set(failures) == {pi["name"]}, bootstrap_run.stdout[-4000:]
    message = fold(failures[pi["name"]]["msg"])
    print("operator message:", message)
    match = re.search(r"The device clock \(.+?\) is (\d+) seconds behind the Date header of (\S+) \(.+?\), "
                      r"more than max_clock_skew \(300 s\)", message)
    assert match, message
    assert abs(int(match[1]) - CLOCK_BEHIND_SECONDS) < 60, message
    assert labapi.krypton_calls() == calls_after_link_run + 1
    assert directory_digests(pi) != digests
    # The Pi reported the new certificate, so the run's last play deactivated the old one.
    active = labapi.active_certificates_by_thing()[pi["thing_name"]]
    assert len(active) == 1, active
    assert active != old_certificate, active
    assert f"Deactivated certificate {old_certificate[0]} of thing {pi['thing_name']}" in fold(bootstrap_run.stdout)

    # With the clock right, the stored certificate is kept and works.
    calls_before_converge = labapi.krypton_calls()
    kept = directory_digests(pi)
    assert_converges(lab)
    assert labapi.krypton_calls() == calls_before_converge
    assert directory_digests(pi) == kept
    assert labapi.active_certificates_by_thing()[pi["thing_name"]] == active


# --- 2c. timedatectl that does not respond --------------------------------------------------------

# Replaces timedatectl with a script that records its PID and sleeps, like timedatectl waiting for a
# systemd-timedated that cannot start. /usr/local/bin comes before /usr/bin in Ansible's SSH sessions.
HANGING_TIMEDATECTL = "/usr/local/bin/timedatectl"
HANGING_TIMEDATECTL_PID = "/run/hanging-timedatectl.pid"
HANGING_TIMEDATECTL_SCRIPT = "#!/bin/sh\necho $$ > {pid}\nexec sleep 600\n"

LINK_CHECK_PLAYBOOK = """\
- name: Read the link state
  hosts: {host}
  gather_facts: false
  tasks:
    - name: Read the link state
      soracom.krypton.lte_link_info:
      register: link

    - name: Save the result on the controller
      ansible.builtin.copy:
        content: "{{{{ link | to_json }}}}"
        dest: {results}
        mode: "0600"
      delegate_to: localhost
"""


def test_unresponsive_timedatectl_skipped(lab, provisioned):
    pi = pi_by_name(lab, "pi02")
    script = HANGING_TIMEDATECTL_SCRIPT.format(pid=HANGING_TIMEDATECTL_PID)
    install = labapi.ssh(pi, f"printf '%s' {shlex.quote(script)} > {HANGING_TIMEDATECTL} && chmod 755 {HANGING_TIMEDATECTL}")
    assert install.returncode == 0, install.stderr
    try:
        with tempfile.TemporaryDirectory() as directory:
            results = os.path.join(directory, "link.json")
            playbook = os.path.join(directory, "link.yml")
            with open(playbook, "w") as handle:
                handle.write(LINK_CHECK_PLAYBOOK.format(host=pi["name"], results=results))
            started = time.monotonic()
            run = labapi.run_playbook(playbook, echo=False, env=JSON_OUTPUT)
            seconds = time.monotonic() - started
            assert run.returncode == 0, run.stdout[-4000:]
            with open(results) as handle:
                link = json.load(handle)
        # The stand-in ran and was stopped: its PID no longer exists.
        pid = labapi.ssh(pi, f"cat {HANGING_TIMEDATECTL_PID}").stdout.strip()
        assert pid.isdigit(), pid
        assert labapi.ssh(pi, f"kill -0 {pid}").returncode != 0
    finally:
        labapi.ssh(pi, f"rm -f {HANGING_TIMEDATECTL} {HANGING_TIMEDATECTL_PID}")

    # The module returned long before the stand-in's 600 s.
    assert seconds < 120, seconds
    assert link["clock"]["sync_source"] != "timedatectl"
    assert link["ready"] is True, link["problems"]
    warnings = fold(" ".join(link.get("warnings", [])))
    print("operator message:", warnings)
    assert "timedatectl did not respond within 3 seconds" in warnings


# --- 3. key directory that cannot be written ----------------------------------------------------

def mount_full_tmpfs(pi: dict) -> None:
    """Mount a 64 KiB tmpfs over the Pi's key directory and copy the files onto it.

    The lab Pis' containers allow mounts. A failed copy unmounts the tmpfs again.
    """
    script = (f"set -e; staging=$(mktemp -d); cp -a {KRYPTON_DIR}/. $staging/; "
              f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {KRYPTON_DIR}; "
              f"if ! cp -a $staging/. {KRYPTON_DIR}/; then umount {KRYPTON_DIR}; rm -rf $staging; exit 1; fi; "
              f"rm -rf $staging")
    result = labapi.ssh(pi, script)
    assert result.returncode == 0, result.stderr


def test_full_key_directory_keeps_old_files(lab, provisioned):
    pi = pi_by_name(lab, "pi03")
    digests = directory_digests(pi)
    mount_full_tmpfs(pi)
    try:
        # Fill what is left of the tmpfs, so the new files cannot be written.
        filler = labapi.ssh(pi, f"dd if=/dev/zero of={KRYPTON_DIR}/.filler bs=1k 2>/dev/null; df -k {KRYPTON_DIR}")
        run = run_module(pi["name"], "soracom.krypton.krypton_bootstrap", "force=true")
        labapi.ssh(pi, f"rm -f {KRYPTON_DIR}/.filler")
        digests_during = directory_digests(pi)
    finally:
        unmounted = labapi.ssh(pi, f"umount {KRYPTON_DIR}")
    assert unmounted.returncode == 0, unmounted.stderr

    message = fold(run["result"]["msg"])
    print("operator message:", message)
    assert run["state"] == "FAILED", f"{filler.stdout}\n{run['output'][-4000:]}"
    assert "Krypton returned a new certificate, but it could not be stored" in message
    assert "the file system is full" in message
    # The old files are intact and no temporary file is left, on the tmpfs and under it.
    assert digests_during == digests
    assert directory_digests(pi) == digests

    assert_converges(lab)


@pytest.fixture(scope="module")
def read_only_run(lab, provisioned) -> dict:
    """Force a bootstrap on pi03 while its key directory is bind-mounted read-only, then converge."""
    pi = pi_by_name(lab, "pi03")
    digests = directory_digests(pi)
    calls_before = labapi.krypton_calls()
    mounted = labapi.ssh(pi, f"mount --bind {KRYPTON_DIR} {KRYPTON_DIR} && mount -o remount,bind,ro {KRYPTON_DIR}")
    assert mounted.returncode == 0, mounted.stderr
    try:
        run = run_module(pi["name"], "soracom.krypton.krypton_bootstrap", "force=true")
    finally:
        unmounted = labapi.ssh(pi, f"umount {KRYPTON_DIR}")
    assert unmounted.returncode == 0, unmounted.stderr
    run.update(pi=pi, digests_before=digests, digests_after=directory_digests(pi),
               new_krypton_calls=labapi.krypton_calls() - calls_before)
    return run


def test_read_only_directory_stops_early(lab, read_only_run):
    run = read_only_run
    message = fold(run["result"]["msg"])
    print("operator message:", message)
    assert run["state"] == "FAILED", run["output"][-4000:]
    assert KRYPTON_DIR in message
    assert run["new_krypton_calls"] == 0
    assert run["digests_after"] == run["digests_before"]

    assert_converges(lab)


def test_read_only_directory_message(read_only_run):
    message = fold(read_only_run["result"]["msg"])
    print("operator message:", message)
    assert "is on a read-only file system" in message, message
    assert "become" not in message, message


# --- 4. IAM user without iot:CreateKeysAndCertificate -------------------------------------------

def without_action(document: dict, action: str) -> dict:
    """Return a copy of an IAM policy document with ``action`` removed from every statement, dropping statements left without actions."""
    changed = copy.deepcopy(document)
    statements = []
    for statement in changed["Statement"]:
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else list(actions or [])
        if action in actions:
            actions.remove(action)
            if not actions:
                continue
            statement["Action"] = actions
        statements.append(statement)
    changed["Statement"] = statements
    return changed


def test_iam_without_create_keys_named(lab, provisioned):
    pi = pi_by_name(lab, "pi01")
    iam = boto3.client("iam")
    names = iam.list_user_policies(UserName=IAM_USER)["PolicyNames"]
    assert iam.list_attached_user_policies(UserName=IAM_USER)["AttachedPolicies"] == []
    assert len(names) == 1, names
    policy_name = names[0]
    original = iam.get_user_policy(UserName=IAM_USER, PolicyName=policy_name)["PolicyDocument"]
    assert "iot:CreateKeysAndCertificate" in json.dumps(original)
    reduced = without_action(original, "iot:CreateKeysAndCertificate")
    assert "iot:CreateKeysAndCertificate" not in json.dumps(reduced)

    digests = directory_digests(pi)
    iam.put_user_policy(UserName=IAM_USER, PolicyName=policy_name, PolicyDocument=json.dumps(reduced))
    before = cloud_state()
    run = run_module(pi["name"], "soracom.krypton.krypton_bootstrap", "force=true")

    message = fold(run["result"]["msg"])
    print("operator message:", message)
    assert run["state"] == "FAILED", run["output"][-4000:]
    assert run["result"]["status"] == 403
    assert run["result"]["code"] == "LAB2009"
    assert "CreateKeysAndCertificate was denied" in message
    assert f"credential set '{CREDENTIAL_ID}'" in message
    assert "lacks a permission Krypton needs" in message
    assert "Check that the SIM is in a group" not in message
    assert directory_digests(pi) == digests
    assert cloud_state() == before

    # provision.yml puts the role's inline policy back.
    assert_converges(lab)
    restored = iam.get_user_policy(UserName=IAM_USER, PolicyName=policy_name)["PolicyDocument"]
    assert restored == original


# --- 5. SORACOM API 429 and 500 -----------------------------------------------------------------

def test_soracom_429_then_success(lab, provisioned):
    fault = soracom_admin("POST", "/_lab/faults", {"service": "api", "path": "/v1/groups", "method": "GET",
                                                   "type": "ratelimit", "seconds": 1})["faults"][0]
    try:
        result = labapi.run_playbook("playbooks/provision.yml", echo=False, env=JSON_OUTPUT)
    finally:
        waiting = {entry["id"] for entry in soracom_admin("GET", "/_lab/faults")["faults"]}
        if fault["id"] in waiting:
            soracom_admin("DELETE", f"/_lab/faults/{fault['id']}")

    output = fold(result.stdout + result.stderr)
    assert fault["id"] not in waiting, "the 429 fault was never applied"
    assert result.returncode == 0, result.stdout[-4000:]
    assert "SORACOM API GET /groups failed (HTTP 429" in output
    assert f"Retrying in" in output
    assert f"(attempt 2 of {SORACOM_RETRIES + 1})" in output

    assert_converges(lab)


def test_soracom_500_gives_up_unchanged(lab, provisioned):
    attempts = SORACOM_RETRIES + 1
    before = cloud_state()
    calls_before = labapi.krypton_calls()
    fault = soracom_admin("POST", "/_lab/faults", {"service": "api", "path": "/v1/groups", "method": "GET",
                                                   "type": "status", "status": 500, "count": attempts})["faults"][0]
    try:
        result = labapi.run_playbook("playbooks/provision.yml", echo=False, env=JSON_OUTPUT)
    finally:
        waiting = {entry["id"] for entry in soracom_admin("GET", "/_lab/faults")["faults"]}
        if fault["id"] in waiting:
            soracom_admin("DELETE", f"/_lab/faults/{fault['id']}")

    assert result.returncode != 0
    assert fault["id"] not in waiting, "the 500 fault had requests left"
    failures = failed_results(result.stdout)
    assert "localhost" in failures, result.stdout[-4000:]
    message = fold(failures["localhost"]["msg"])
    print("operator message:", message)
    assert "GET /groups" in message
    assert "HTTP 500" in message
    assert f"Gave up after {attempts} attempts" in message
    # The cloud play failed, so no Pi was touched.
    assert "PLAY [Bootstrap and verify every Pi]" not in result.stdout
    assert labapi.krypton_calls() == calls_before
    assert cloud_state() == before

    assert_converges(lab)


@pytest.mark.parametrize("fault_spec, expected", [
    ({"type": "html", "status": 200},
     ["SORACOM API GET /groups returned HTTP 200 with a body that is not valid JSON",
      "Content-Type text/html", "may not be a SORACOM API endpoint"]),
    ({"type": "truncate", "count": SORACOM_RETRIES + 1},
     ["SORACOM API request GET /groups failed: the response body was cut off after",
      f"Gave up after {SORACOM_RETRIES + 1} attempts"]),
], ids=["html", "cut-off"])
def test_soracom_bad_body_stops_unchanged(lab, provisioned, fault_spec, expected):
    before = cloud_state()
    calls_before = labapi.krypton_calls()
    fault = soracom_admin("POST", "/_lab/faults", {"service": "api", "path": "/v1/groups", "method": "GET",
                                                   **fault_spec})["faults"][0]
    try:
        result = labapi.run_playbook("playbooks/provision.yml", echo=False, env=JSON_OUTPUT)
    finally:
        waiting = {entry["id"] for entry in soracom_admin("GET", "/_lab/faults")["faults"]}
        if fault["id"] in waiting:
            soracom_admin("DELETE", f"/_lab/faults/{fault['id']}")

    assert result.returncode != 0
    assert fault["id"] not in waiting, "the fault had requests left"
    failures = failed_results(result.stdout)
    assert set(failures) == {"localhost"}, result.stdout[-4000:]
    message = fold(failures["localhost"]["msg"])
    print("operator message:", message)
    for text in expected:
        assert text in message
    assert "PLAY [Bootstrap and verify every Pi]" not in result.stdout
    assert labapi.krypton_calls() == calls_before
    assert cloud_state() == before

    assert_converges(lab)


def test_wrong_aws_secret_key_stops_before_changes(lab, provisioned):
    before = cloud_state()
    calls_before = labapi.krypton_calls()
    wrong = {**JSON_OUTPUT, "AWS_SECRET_ACCESS_KEY": "x" * 40}
    result = labapi.run_playbook("playbooks/provision.yml", echo=False, env=wrong)

    assert result.returncode != 0
    failures = failed_results(result.stdout)
    assert set(failures) == {"localhost"}, result.stdout[-4000:]
    message = fold(failures["localhost"]["msg"])
    print("operator message:", message)
    assert "AWS IoT DescribeEndpoint failed (SignatureDoesNotMatch, HTTP 403)" in message
    assert "Check the access key, secret key, session token or profile." in message
    assert "x" * 40 not in fold(result.stdout + result.stderr)
    assert labapi.krypton_calls() == calls_before
    assert cloud_state() == before

    assert_converges(lab)


# --- 5b. root CA that does not match the ATS endpoint --------------------------------------------

def test_root_ca_mismatch_named(lab, provisioned):
    pi = pi_by_name(lab, "pi02")
    root_ca = f"{KRYPTON_DIR}/root-ca.pem"
    saved = labapi.ssh(pi, f"cat {root_ca}")
    assert saved.returncode == 0, saved.stderr
    # The lab's device CA signs device certificates, not the broker's server certificate.
    wrong_ca = open(lab["pki"]["device-ca.crt"]).read()
    replaced = subprocess.run(
        ["ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{pi['ip']}", f"cat > {root_ca}"],
        input=wrong_ca, text=True, capture_output=True, timeout=60, check=False)
    assert replaced.returncode == 0, replaced.stderr
    calls_before = labapi.krypton_calls()
    certificates_before = labapi.all_certificates()

    first = labapi.run_playbook("--limit", f"localhost,{pi['name']}", "playbooks/provision.yml", echo=False,
                                env=JSON_OUTPUT)
    second = labapi.run_playbook("--limit", f"localhost,{pi['name']}", "playbooks/provision.yml", echo=False,
                                 env=JSON_OUTPUT)
    for run in (first, second):
        assert run.returncode != 0
        failures = failed_results(run.stdout)
        assert set(failures) == {pi["name"]}, run.stdout[-4000:]
        message = fold(failures[pi["name"]]["msg"])
        print("operator message:", message)
        assert "MQTT check failed at step TLS: the server certificate of" in message
        assert "Likely cause: the root CA file does not match the endpoint." in message
    # The certificate and key are good, so no new certificate was made.
    assert labapi.krypton_calls() == calls_before
    assert labapi.all_certificates() == certificates_before

    restored = subprocess.run(
        ["ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{pi['ip']}", f"cat > {root_ca}"],
        input=saved.stdout, text=True, capture_output=True, timeout=60, check=False)
    assert restored.returncode == 0, restored.stderr
    assert_converges(lab)
    assert labapi.krypton_calls() == calls_before


# --- 5c. inventory that names the wrong SIM -----------------------------------------------------

def inventory_with_imsis(directory: str, imsis: dict[str, str]) -> list[str]:
    """Return -i options that give the named hosts other soracom_imsi values."""
    override = {"all": {"hosts": {name: {"soracom_imsi": imsi} for name, imsi in imsis.items()}}}
    path = os.path.join(directory, "imsis.yml")
    with open(path, "w") as handle:
        json.dump(override, handle)
    return ["-i", str(labapi.OUTPUTS.inventory), "-i", path]


def soracom_api(lab: dict, method: str, path: str, body=None, headers: dict | None = None):
    """Call the lab's SORACOM API over TLS, as the collection does."""
    context = ssl.create_default_context(cafile=lab["pki"]["server-ca.crt"])
    request = urllib.request.Request(lab["soracom"]["endpoint"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def enable_metadata_service(lab: dict) -> None:
    """Turn on the metadata service (read only) in the Krypton group, so a Pi can read its SIM's identity."""
    login = soracom_api(lab, "POST", "/auth", {"authKeyId": lab["soracom"]["auth_key_id"],
                                               "authKey": lab["soracom"]["auth_key"]})
    headers = {"X-Soracom-API-Key": login["apiKey"], "X-Soracom-Token": login["token"]}
    groups = soracom_api(lab, "GET", "/groups", headers=headers)
    assert len(groups) == 1, groups
    soracom_api(lab, "PUT", f"/groups/{groups[0]['groupId']}/configuration/SoracomAir",
                [{"key": "metadata", "value": {"enabled": True, "readonly": True}}], headers=headers)


@pytest.mark.parametrize("case", ["swapped", "duplicate"])
def test_inventory_naming_wrong_sim_stops_those_pis(lab, provisioned, case):
    pi02, pi03 = pi_by_name(lab, "pi02"), pi_by_name(lab, "pi03")
    # The SIM check reads the SIM's identity from the metadata service, which is off by default.
    enable_metadata_service(lab)
    if case == "swapped":
        imsis = {"pi02": pi03["imsi"], "pi03": pi02["imsi"]}
    else:
        imsis = {"pi02": pi03["imsi"]}
    digests = {pi["name"]: directory_digests(pi) for pi in (pi02, pi03)}
    calls_before = labapi.krypton_calls()
    with tempfile.TemporaryDirectory() as directory:
        result = labapi.run_playbook(*inventory_with_imsis(directory, imsis), "playbooks/provision.yml",
                                     echo=False, env=JSON_OUTPUT)

    assert result.returncode != 0
    failures = failed_results(result.stdout)
    assert set(failures) == {"pi02", "pi03"}, result.stdout[-4000:]
    for name, failure in failures.items():
        message = fold(failure["msg"])
        print("operator message:", message)
        if case == "swapped":
            own = pi_by_name(lab, name)
            assert f"{name} has SIM IMSI {own['imsi']}" in message
            assert f"but the inventory names IMSI {imsis[name]}" in message
            assert "Krypton was not called." in message
        else:
            other = "pi03" if name == "pi02" else "pi02"
            assert f"{name} and {other} name the same SIM (IMSI {pi03['imsi']})" in message
    recap = labapi.parse_recap(result.stdout)
    assert recap["pi01"]["failed"] == 0
    assert labapi.krypton_calls() == calls_before
    for pi in (pi02, pi03):
        assert directory_digests(pi) == digests[pi["name"]]

    assert_converges(lab)


# --- 6. duplicate client id ---------------------------------------------------------------------

def broker_connections() -> list[dict]:
    return labapi.get_json(labapi.BROKER_ADMIN + "/_lab/connections")


def test_duplicate_client_id_named(lab, provisioned):
    pi = pi_by_name(lab, "pi02")
    thing = pi["thing_name"]
    digests = directory_digests(pi)
    archive = labapi.ssh(pi, f"tar -C {KRYPTON_DIR} -cf - certificate.pem private.key root-ca.pem | base64 -w0")
    assert archive.returncode == 0, archive.stderr

    hold_seconds = 8
    command = [str(labapi.REPO / ".venv" / "bin" / "ansible"), pi["name"], "-m", "soracom.krypton.mqtt_check",
               "-a", f"hold={hold_seconds}"]
    env = dict(os.environ, ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", **JSON_OUTPUT)
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(["tar", "-C", directory, "-xf", "-"], input=base64.b64decode(archive.stdout), check=True,
                       timeout=30)
        check = subprocess.Popen(command, cwd=labapi.REPO, env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            # The takeover is deterministic: the second connection starts only once the broker
            # lists mqtt_check's connection, and mqtt_check then keeps it open for hold_seconds.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(entry["client_id"] == thing and entry["peer_address"] == pi["ip"]
                       for entry in broker_connections()):
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"mqtt_check on {pi['name']} did not connect as {thing} within 30 s")
            takeover = subprocess.run(
                ["mosquitto_sub", "-h", lab["iot"]["ats_host"], "-p", "8883",
                 "--cafile", os.path.join(directory, "root-ca.pem"),
                 "--cert", os.path.join(directory, "certificate.pem"),
                 "--key", os.path.join(directory, "private.key"),
                 "-i", thing, "-t", f"krypton/{thing}/check", "-C", "1", "-W", "3"],
                text=True, capture_output=True, timeout=30, check=False)
            stdout, stderr = check.communicate(timeout=120)
        finally:
            if check.poll() is None:
                check.kill()
                check.wait(timeout=10)

    match = ADHOC_RESULT.search(stdout)
    assert match, stdout[-4000:] + stderr[-4000:]
    result = json.loads(match["json"])
    message = fold(result["msg"])
    print("operator message:", message)
    assert match["state"] == "FAILED", f"{stdout[-4000:]}\nmosquitto_sub: {takeover.stderr}"
    assert result["step"] == "HOLD"
    assert "MQTT check failed at step HOLD" in message
    assert f"client id {thing} is in use by another connection" in message
    assert directory_digests(pi) == digests

    assert_converges(lab)
