"""provision.yml at -vvv shows no secret and leaves none behind.

The secrets are each Pi's private key, the Krypton IAM user's secret access key, the SORACOM
auth key and the SORACOM API keys the emulator issued. The tests make two runs on a reset lab:
the first bootstraps every Pi, and the second changes nothing. Both are checked the same way.
The checks cover their stdout, stderr and Ansible log, every file on the controller under the
repository, /tmp and /root, and every file on each Pi outside /etc/soracom/krypton.

These tests run inside the lab (`make e2e`, which uses `labctl exec`). No assertion message
contains a secret: a finding names the secret and the place, never the value.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import labapi

KRYPTON_DIR = "/etc/soracom/krypton"
# Mode and owner of everything krypton_bootstrap writes (its documentation of `dest`).
EXPECTED_MODES = {
    "certificate.pem": "644",
    "private.key": "600",
    "root-ca.pem": "644",
    "krypton.json": "644",
}
# A SORACOM API key as the emulator issues it (`api-` and a UUID). The emulator's state reports
# only the number of sessions, so API keys and tokens cannot be matched by value, and an API key
# is found by this form instead. NOTE: a leaked token alone (64 URL-safe characters) is not
# detected.
API_KEY_FORM = re.compile(r"api-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A base64 line shorter than this (the last line of a PEM body) could match by chance.
MIN_KEY_LINE = 32
SEARCH_TIMEOUT = 900


def controller_exclusions() -> list[Path]:
    """List the controller paths that contain a secret by design or are not this lab's to read.

    Each entry is a file or a directory, and everything under a directory is left out. The
    SORACOM emulator and moto keep their state (credential sets, auth keys, sessions, IAM keys)
    in memory only, and their logs under logs/ are searched like every other file.
    """
    state = labapi.STATE
    repository_labs = sorted(
        path for path in (labapi.REPO / "tests" / "lab").glob(".state*") if path.resolve() != state.resolve()
    )
    return [
        # lab.json is where the lab keeps the auth key (and the lab-admin AWS key) for labctl exec.
        state / "lab.json",
        # The lab inventory passes the auth key to the playbook, as an operator's vault would.
        labapi.OUTPUTS.inventory / "group_vars" / "all" / "lab.yml",
        # The same auth key for ansible-test integration targets.
        labapi.OUTPUTS.integration_config,
        # ansible-test's results of the integration targets, whose JUnit reports record the
        # arguments of the tasks they ran, among them the lab auth key of the configuration above.
        labapi.REPO / "collections" / "ansible_collections" / "soracom" / "krypton" / "tests" / "output",
        # Each Pi's disk (its overlay upper layer) contains its private key under etc/soracom/krypton.
        # The rest of each Pi is searched over SSH by test_pi_files_outside_key_dir.
        state / "pis",
        # The state directories of other labs belong to labs that may run beside this one,
        # and nothing in this lab writes to them.
        *repository_labs,
        # The tool that runs this session keeps its own job output here.
        *sorted(Path("/tmp").glob("bash_jobs.*")),
        *sorted(Path("/tmp").glob("bash_tool_*")),
    ]


def find_in_text(secrets: dict[str, str], text: str) -> list[str]:
    """Return the names of the secrets, and of API keys by their form, that occur in text."""
    found = [name for name, value in secrets.items() if value in text]
    if API_KEY_FORM.search(text):
        found.append("a SORACOM API key")
    return found


def collect_secrets(lab: dict) -> dict[str, str]:
    """Read every secret of the lab, keyed by a name that a finding may show."""
    secrets = {}
    for pi in lab["pis"]:
        result = labapi.ssh(pi, f"cat {KRYPTON_DIR}/private.key")
        assert result.returncode == 0, f"{pi['name']}: {result.stderr}"
        lines = [line.strip() for line in result.stdout.splitlines()]
        body = [line for line in lines if line and not line.startswith("-----")]
        assert body, f"{pi['name']}: {KRYPTON_DIR}/private.key has no PEM body"
        for number, line in enumerate(body, start=1):
            if len(line) >= MIN_KEY_LINE:
                secrets[f"{pi['name']} private key, base64 line {number}"] = line

    state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    secret_keys = []

    def find_secret_keys(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "secretAccessKey" and isinstance(item, str):
                    secret_keys.append(item)
                else:
                    find_secret_keys(item)
        elif isinstance(value, list):
            for item in value:
                find_secret_keys(item)

    find_secret_keys(state["credentials"])
    assert secret_keys, "the SORACOM emulator holds no credential set with a secretAccessKey"
    for number, value in enumerate(secret_keys, start=1):
        secrets[f"IAM secret access key {number}"] = value

    secrets["SORACOM auth key"] = lab["soracom"]["auth_key"]
    return secrets


def _grep_pattern(value: str) -> str:
    """Escape a literal for grep -E, because the secrets contain `+` (base64)."""
    return "".join("\\" + char if char in ".[]{}()*+?^$|\\" else char for char in value)


def list_controller_files(newer_than: float | None = None) -> list[str]:
    """List the regular files under the repository, /tmp and /root, without the exclusions."""
    command = ["find", str(labapi.REPO), "/tmp", "/root", "-xdev"]
    for path in controller_exclusions():
        command += ["-path", str(path), "-prune", "-o"]
    command += ["-type", "f"]
    if newer_than is not None:
        command += ["-newermt", f"@{newer_than:.0f}"]
    command += ["-print0"]
    listing = subprocess.run(command, capture_output=True, timeout=SEARCH_TIMEOUT, check=False)
    return [name for name in listing.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def grep_files(files: list[str], patterns: str) -> list[tuple[str, str]]:
    """Return (path, matched text) for each match of the grep -E patterns in files."""
    matches = []
    for start in range(0, len(files), 500):
        # grep reads the patterns from stdin, so no secret is on a command line or in a file.
        # -a reads binary files as text, -H and -Z print each file name ended by NUL, -o prints
        # each matched string. Exit code 1 means no match, and 2 includes files that vanished.
        result = subprocess.run(
            ["grep", "-aHoZE", "-f", "-", "--", *files[start:start + 500]],
            input=patterns.encode(), capture_output=True, timeout=SEARCH_TIMEOUT, check=False,
        )
        for line in result.stdout.split(b"\n"):
            if b"\0" in line:
                path, match = line.split(b"\0", 1)
                matches.append((path.decode("utf-8", "replace"), match.decode("utf-8", "replace")))
    return matches


def search_controller(secrets: dict[str, str], runs_started: float) -> list[str]:
    """Search the controller's files and return `path: secret name` per finding.

    Every file is searched for the secrets' values. Files changed since the runs started are
    also searched for the form of an API key, because older files may hold other labs' keys.
    """
    by_value = {value: name for name, value in secrets.items()}
    files = list_controller_files()
    assert len(files) > 1000, f"find listed only {len(files)} files"

    patterns = "".join(_grep_pattern(value) + "\n" for value in by_value)
    findings = [f"{path}: {by_value.get(text, 'a secret')}" for path, text in grep_files(files, patterns)]
    recent = list_controller_files(newer_than=runs_started - 1)
    findings += [f"{path}: a SORACOM API key" for path, _ in grep_files(recent, API_KEY_FORM.pattern + "\n")]
    return sorted(set(findings))


# Runs on a Pi with python3 -c. It reads {"name": value} as JSON on stdin and prints
# `path<TAB>name` for each file that contains a value. It walks / on the root file system and
# /tmp, /var/tmp and /root whatever file system they are on.
PI_SEARCH = r"""
import json, os, sys
secrets = {name: value.encode() for name, value in json.load(sys.stdin).items()}
skip = {"/proc", "/sys", "/dev", "/run", "/etc/soracom/krypton"}
seen = set()
for top in ("/", "/tmp", "/var/tmp", "/root"):
    top_device = os.lstat(top).st_dev
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = [
            name for name in subdirectories
            if os.path.join(directory, name) not in skip
            and os.lstat(os.path.join(directory, name)).st_dev == top_device
        ]
        for name in names:
            path = os.path.join(directory, name)
            try:
                status = os.lstat(path)
                if not os.path.stat.S_ISREG(status.st_mode) or (status.st_dev, status.st_ino) in seen:
                    continue
                seen.add((status.st_dev, status.st_ino))
                with open(path, "rb") as handle:
                    content = handle.read()
            except OSError:
                continue
            for secret_name, value in secrets.items():
                if value in content:
                    print(path + "\t" + secret_name)
print("searched", len(seen), "files")
"""


def search_pi(pi: dict, secrets: dict[str, str]) -> tuple[list[str], int]:
    """Search a Pi outside /etc/soracom/krypton and return its findings and the number of files read."""
    lab = labapi.load_lab()
    result = subprocess.run(
        [
            "ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            f"root@{pi['ip']}", "python3 -c " + _shell_quote(PI_SEARCH),
        ],
        input=json.dumps(secrets), text=True, capture_output=True, timeout=SEARCH_TIMEOUT, check=False,
    )
    assert result.returncode == 0, f"{pi['name']}: search failed: {result.stderr[-2000:]}"
    lines = result.stdout.splitlines()
    assert lines and lines[-1].startswith("searched "), f"{pi['name']}: search output ended early"
    findings = [f"{pi['name']}:{line.replace(chr(9), ': ')}" for line in lines[:-1]]
    return findings, int(lines[-1].split()[1])


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def run_verbose(log_path: Path) -> subprocess.CompletedProcess:
    return labapi.run_playbook(
        "playbooks/provision.yml", "-vvv", echo=False, env={"ANSIBLE_LOG_PATH": str(log_path)}
    )


@pytest.fixture(scope="module")
def runs(lab, tmp_path_factory):
    """Reset the lab, then run provision.yml twice at -vvv, each with its own log file."""
    labapi.reset_lab()
    directory = tmp_path_factory.mktemp("secrets")
    results = {"started": time.time()}
    for run in ("first", "second"):
        log_path = directory / f"{run}.log"
        results[run] = {"result": run_verbose(log_path), "log": log_path}
    return results


@pytest.fixture(scope="module")
def secrets(lab, runs):
    # Read after both runs. The second run changes nothing (test_run_succeeds), so the keys are
    # the ones the first run created.
    return collect_secrets(lab)


RUNS = ["first", "second"]


@pytest.mark.parametrize("run", RUNS)
def test_run_succeeds(lab, runs, run):
    result = runs[run]["result"]
    assert result.returncode == 0, f"{run} run failed, see its recap: {labapi.parse_recap(result.stdout)}"
    recap = labapi.parse_recap(result.stdout)
    assert set(recap) == {"localhost", *(pi["name"] for pi in lab["pis"])}
    if run == "second":
        assert all(counters["changed"] == 0 for counters in recap.values()), recap


def test_searches_find_probe(lab):
    """Check that both searches find a known string, so an empty result means something."""
    readme = str(labapi.REPO / "README.md")
    assert (readme, "soracom.krypton") in grep_files([readme], _grep_pattern("soracom.krypton") + "\n")
    findings, count = search_pi(lab["pis"][0], {"probe": "VERSION_CODENAME=bookworm"})
    assert f"{lab['pis'][0]['name']}:/usr/lib/os-release: probe" in findings
    assert count > 1000


def test_secrets_collected(lab, secrets):
    names = set(secrets)
    for pi in lab["pis"]:
        assert any(name.startswith(f"{pi['name']} private key") for name in names), pi["name"]
    assert "IAM secret access key 1" in names
    assert "SORACOM auth key" in names


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_shows_no_secret(runs, secrets, run, stream):
    text = getattr(runs[run]["result"], stream)
    assert find_in_text(secrets, text) == [], f"{run} run {stream}"


@pytest.mark.parametrize("run", RUNS)
def test_log_file_shows_no_secret(runs, secrets, run):
    log_path = runs[run]["log"]
    assert log_path.exists(), f"ANSIBLE_LOG_PATH={log_path} was not written"
    text = log_path.read_text(errors="replace")
    assert "TASK [" in text
    assert find_in_text(secrets, text) == [], str(log_path)


def test_controller_files_hold_no_secret(runs, secrets):
    assert search_controller(secrets, runs["started"]) == []


def test_pi_files_outside_key_dir(lab, runs, secrets):
    for pi in lab["pis"]:
        findings, count = search_pi(pi, secrets)
        # A Debian minbase image has several thousand files. Fewer means the walk stopped early.
        assert count > 1000, f"{pi['name']}: only {count} files searched"
        assert findings == []


def test_key_directory_modes(lab, runs):
    for pi in lab["pis"]:
        # find lists hidden files too: krypton_bootstrap stages each file as .<name>.<random>.tmp.
        result = labapi.ssh(pi, f"find {KRYPTON_DIR} -maxdepth 1 -printf '%m %u %g %y %p\\n'")
        assert result.returncode == 0, f"{pi['name']}: {result.stderr}"
        entries = {}
        for line in result.stdout.splitlines():
            mode, owner, group, kind, path = line.split(" ", 4)
            entries[path] = (mode, owner, group, kind)

        assert entries.pop(KRYPTON_DIR) == ("700", "root", "root", "d"), pi["name"]
        names = sorted(os.path.basename(path) for path in entries)
        assert names == sorted(EXPECTED_MODES), f"{pi['name']}: unexpected files in {KRYPTON_DIR}: {names}"
        for path, attributes in entries.items():
            expected = (EXPECTED_MODES[os.path.basename(path)], "root", "root", "f")
            assert attributes == expected, f"{pi['name']}: {path}"
