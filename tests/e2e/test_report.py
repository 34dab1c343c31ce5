"""playbooks/report.yml on the lab: the report's content per Pi, the HTML page in Chromium, and no changes.

The module fixture resets the lab, provisions it, gives pi02 a certificate that expires in
10 days and takes pi03's cellular link down, which also cuts SSH to it (ppp0 is a lab Pi's
only interface). Then it runs report.yml once. The HTML page is opened in headless Chromium
(Debian's package chromium) through its DevTools pipe, with the page's own file:// URL only.
The screenshot goes to $KRYPTON_TEST_OUTPUT/report/ (default tests/output/report/).

Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_report.py
"""
from __future__ import annotations

import base64
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import boto3
import pytest

import labapi

EXPIRING_DAYS = 10
OUTPUT_DIR = Path(os.environ.get("KRYPTON_TEST_OUTPUT", labapi.REPO / "tests" / "output")) / "report"
# Debian's /usr/bin/chromium is a wrapper script that adds flags from /etc/chromium.d, among
# them --enable-remote-extensions; the binary itself takes only the flags given here.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium")
# Flags that keep Chromium from contacting anything: no background requests, updates, sync or
# default apps, no DNS (every name maps to NOTFOUND) and a proxy on a closed loopback port.
CHROMIUM_OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--no-pings", "--metrics-recording-only", "--disable-dev-shm-usage",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
)
CHROMIUM_TIMEOUT = 60


# --- lab helpers ----------------------------------------------------------------------------------

def labctl(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(labapi.REPO / "tests" / "lab" / "labctl"), *arguments], text=True,
                          capture_output=True, timeout=60, check=False)


def pi_by_name(lab: dict, name: str) -> dict:
    return next(pi for pi in lab["pis"] if pi["name"] == name)


def ssh_read(pi: dict, path: str) -> str:
    result = labapi.ssh(pi, f"cat {path}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def give_expiring_certificate(lab: dict, pi: dict) -> str:
    """Replace the Pi's certificate with one for the same key that expires in EXPIRING_DAYS days.

    The lab's device CA signs it, as it signs every certificate Krypton mints in the lab, and it is
    registered ACTIVE in AWS IoT and attached to the thing and policy. krypton.json is updated as
    krypton_bootstrap writes it. Returns the new certificate ID.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    current = x509.load_pem_x509_certificate(ssh_read(pi, "/etc/soracom/krypton/certificate.pem").encode())
    ca_certificate = x509.load_pem_x509_certificate(Path(lab["pki"]["device-ca.crt"]).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(lab["pki"]["device-ca.key"]).read_bytes(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(current.subject)
        .issuer_name(ca_certificate.subject)
        .public_key(current.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=EXPIRING_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    certificate_id = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    iot = boto3.client("iot")
    registered = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert registered["certificateId"] == certificate_id
    iot.attach_policy(policyName="SoracomKryptonDevicePolicy", target=registered["certificateArn"])
    iot.attach_thing_principal(thingName=pi["thing_name"], principal=registered["certificateArn"])

    state = json.loads(ssh_read(pi, "/etc/soracom/krypton/krypton.json"))
    state.update(certificate_id=certificate_id,
                 certificate_not_after=certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
    script = (f"cat > /etc/soracom/krypton/certificate.pem <<'EOF'\n{pem}EOF\n"
              f"cat > /etc/soracom/krypton/krypton.json <<'EOF'\n{json.dumps(state, indent=2)}\nEOF\n")
    result = labapi.ssh(pi, script)
    assert result.returncode == 0, result.stderr
    return certificate_id


def fleet_state(lab: dict, reachable: list[dict]) -> dict:
    """What report.yml must leave as it is: the Pis' files, AWS IoT, SORACOM and the broker's messages."""
    iot = boto3.client("iot")
    certificates = sorted((c["certificateId"], c["status"]) for c in iot.list_certificates(pageSize=250)["certificates"])
    soracom = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    files = {}
    for pi in reachable:
        result = labapi.ssh(pi, "cd / && find /etc/soracom/krypton /var/lib/soracom/krypton -type f -print0 "
                                "| sort -z | xargs -0 sha256sum")
        assert result.returncode == 0, result.stderr
        files[pi["name"]] = result.stdout
    return {"certificates": certificates, "groups": soracom["groups"], "sims": soracom["sims"],
            "credentials": soracom["credentials"], "messages": len(labapi.broker_messages()), "files": files}


def write_output(name: str, data: bytes) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def reported(lab):
    labapi.reset_lab()
    provision = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert provision.returncode == 0, provision.stdout[-4000:]

    pi01, pi02, pi03 = (pi_by_name(lab, name) for name in ("pi01", "pi02", "pi03"))
    expiring_id = give_expiring_certificate(lab, pi02)
    active = labapi.active_certificates_by_thing()
    records = {pi["name"]: json.loads(ssh_read(pi, "/var/lib/soracom/krypton/mqtt-check.json")) for pi in (pi01, pi02)}
    secrets = [lab["aws"]["secret_access_key"], lab["soracom"]["auth_key"], ssh_read(pi01, "/etc/soracom/krypton/private.key")]
    before = fleet_state(lab, [pi01, pi02])

    down = labctl("link-down", str(pi03["n"]))
    assert down.returncode == 0, down.stderr
    directory = tempfile.mkdtemp(prefix="krypton-report-")
    try:
        started = time.monotonic()
        result = labapi.run_playbook("playbooks/report.yml", "-e", json.dumps({"report_dir": directory}), echo=False)
        duration = time.monotonic() - started
    finally:
        up = labctl("link-up", str(pi03["n"]))
    assert up.returncode == 0, up.stderr
    after = fleet_state(lab, [pi01, pi02])

    outputs = {extension: (Path(directory) / f"fleet-report.{extension}").read_text() for extension in ("json", "html", "md")}
    write_output("fleet-report.html", outputs["html"].encode())
    yield {"result": result, "duration": duration, "directory": directory, "outputs": outputs,
           "report": json.loads(outputs["json"]), "expiring_id": expiring_id, "active": active, "records": records,
           "secrets": secrets, "before": before, "after": after}
    shutil.rmtree(directory, ignore_errors=True)


def rows_by_host(report: dict) -> dict:
    return {row["host"]: row for row in report["pis"]}


# --- the run --------------------------------------------------------------------------------------

def test_report_run_changes_nothing(lab, reported):
    result = reported["result"]
    print(f"report.yml took {reported['duration']:.1f} s")
    assert result.returncode == 0, result.stdout[-4000:]
    recap = labapi.parse_recap(result.stdout)
    assert set(recap) == {"localhost"} | {pi["name"] for pi in lab["pis"]}
    for host, counters in recap.items():
        assert counters["changed"] == 0, (host, counters)
        assert counters["failed"] == 0, (host, counters)
    assert reported["after"] == reported["before"]


def test_report_files_hold_no_secrets(reported):
    for extension, text in reported["outputs"].items():
        for secret in reported["secrets"]:
            assert secret.strip() not in text, extension
        assert "PRIVATE KEY" not in text, extension


# --- JSON content -----------------------------------------------------------------------------------

def test_json_has_every_pi(lab, reported):
    report = reported["report"]
    assert [row["host"] for row in report["pis"]] == sorted(pi["name"] for pi in lab["pis"])
    assert report["summary"] == {"pis": 3, "ok": 1, "warning": 1, "failing": 1, "expiring": 1}
    assert report["errors"] == []
    assert report["expiry_warning_days"] == 30


def test_json_sim_and_thing_per_pi(lab, reported):
    groups = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")["groups"]
    group_ids = [group["groupId"] for group in groups if group["tags"].get("name") == "krypton-pis"]
    assert len(group_ids) == 1
    rows = rows_by_host(reported["report"])
    for pi in lab["pis"]:
        row = rows[pi["name"]]
        assert row["sim"]["imsi"] == pi["imsi"]
        assert row["sim"]["sim_id"] == pi["sim_id"]
        assert row["sim"]["group_name"] == "krypton-pis"
        assert row["sim"]["group_id"] == group_ids[0]
        assert row["thing_name"] == pi["thing_name"]
        assert row["thing_found"] is True


def test_json_healthy_pi(lab, reported):
    pi = pi_by_name(lab, "pi01")
    row = rows_by_host(reported["report"])["pi01"]
    assert row["status"] == "ok", row
    assert row["problems"] == []
    assert row["warnings"] == []
    certificate_id = reported["active"][pi["thing_name"]][0]
    description = boto3.client("iot").describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert row["certificate"]["id"] == certificate_id
    assert row["certificate"]["status"] == "ACTIVE"
    assert row["certificate"]["not_after"] == description["validity"]["notAfter"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 360 <= row["certificate"]["days_left"] <= 365
    assert row["link"] == {"interface": "ppp0", "up": True, "ipv4_address": pi["ip"], "ready": True, "problems": [],
                           "state": "up"}
    record = reported["records"]["pi01"]
    check = row["mqtt_check"]
    assert check["source"] == "record"
    assert check["result"] == "ok"
    assert check["checked_at"] == record["checked_at"]
    assert check["connect_ms"] == record["connect_ms"]
    assert check["publish_ms"] == record["publish_ms"]
    assert check["client_id"] == pi["thing_name"]


def test_json_expiring_certificate(reported):
    row = rows_by_host(reported["report"])["pi02"]
    assert row["status"] == "warning", row
    assert row["certificate"]["id"] == reported["expiring_id"]
    assert row["certificate"]["status"] == "ACTIVE"
    assert row["certificate"]["expiring"] is True
    assert row["certificate"]["days_left"] in (EXPIRING_DAYS - 1, EXPIRING_DAYS)
    assert len(row["warnings"]) == 1
    assert f"expires at {row['certificate']['not_after']}, within 30 days" in row["warnings"][0]


def test_json_unreachable_pi(lab, reported):
    pi = pi_by_name(lab, "pi03")
    row = rows_by_host(reported["report"])["pi03"]
    assert row["status"] == "failing"
    assert row["reachable"] is False
    assert row["problems"][0].startswith("Unreachable: ")
    assert pi["ip"] in row["unreachable_reason"]
    assert row["link"]["state"] == "unknown"
    # The row still shows the certificate that AWS IoT has for the thing.
    assert row["certificate"]["source"] == "aws"
    assert row["certificate"]["id"] == reported["active"][pi["thing_name"]][0]
    assert row["certificate"]["expiring"] is False


def test_check_mode_fresh_check_bad_key(lab, reported):
    """--check with report_mqtt_check and a wrong SORACOM auth key.

    The Pi connects again without publishing, the failed SORACOM lookup shows in the report
    without its key, and --limit narrows the rows.
    """
    pi01 = pi_by_name(lab, "pi01")
    before = fleet_state(lab, lab["pis"])
    extra_vars = {"report_mqtt_check": True, "cloud_soracom_auth_key": "secret-wrong"}
    with tempfile.TemporaryDirectory() as directory:
        extra_vars["report_dir"] = directory
        result = labapi.run_playbook("playbooks/report.yml", "--check", "--limit", "pi01,localhost", "-e",
                                     json.dumps(extra_vars), echo=False)
        assert result.returncode == 0, result.stdout[-4000:]
        outputs = {path.suffix: path.read_text() for path in Path(directory).iterdir()}
    report = json.loads(outputs[".json"])
    assert set(outputs) == {".json", ".html", ".md"}
    recap = labapi.parse_recap(result.stdout)
    assert set(recap) == {"localhost", "pi01"}
    assert all(counters["changed"] == 0 for counters in recap.values()), recap
    assert [row["host"] for row in report["pis"]] == ["pi01"]
    check = report["pis"][0]["mqtt_check"]
    assert check["source"] == "fresh"
    assert check["result"] == "ok"
    assert check["published"] is False
    assert check["client_id"] == pi01["thing_name"]
    assert isinstance(check["connect_ms"], int)
    assert check["checked_at"] > reported["report"]["generated_at"]
    assert "ok (fresh, connect only)" in outputs[".md"]
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith("Reading SORACOM SIMs failed: SORACOM authentication failed")
    assert report["pis"][0]["status"] == "warning"
    assert report["pis"][0]["sim"]["imsi"] == pi01["imsi"]
    assert report["pis"][0]["thing_found"] is True
    for text in [result.stdout, *outputs.values()]:
        assert "secret-wrong" not in text
    assert fleet_state(lab, lab["pis"]) == before


# --- HTML and Markdown ------------------------------------------------------------------------------

class ResourceCollector(HTMLParser):
    """Collects the attributes that load or link a resource, every attribute value with a URL, and the style text."""

    def __init__(self):
        super().__init__()
        self.references = []
        self.urls = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data", "srcset", "formaction"):
                self.references.append((tag, name, value))
            if value and "//" in value:
                self.urls.append((tag, name, value))

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def test_html_references_nothing_outside(reported):
    page = reported["outputs"]["html"]
    parser = ResourceCollector()
    parser.feed(page)
    assert parser.references == []
    assert parser.urls == []
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page, re.I)
    assert "url(" not in parser.style
    assert "@import" not in parser.style


def test_markdown_lists_every_pi(lab, reported):
    text = reported["outputs"]["md"]
    for pi in lab["pis"]:
        assert re.search(rf"^\| {pi['name']} \| ", text, re.M), pi["name"]
    assert re.search(r"^\| pi03 \| FAILING \| ", text, re.M)
    assert "(expiring)" in text


class DevToolsPipe:
    """Headless Chromium driven through --remote-debugging-pipe (requests on fd 3, replies on fd 4)."""

    def __init__(self, url: str, profile: str):
        binary = next((path for path in (shutil.which(name) for name in CHROMIUM_CANDIDATES) if path), None)
        if binary is None:
            pytest.fail("Chromium is missing: install Debian's package chromium (make setup does)")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def connect_pipe():
            # Move both ends above fd 9 first, so that placing one on 3 or 4 cannot close the other.
            reader = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            writer = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(reader, 3)
            os.dup2(writer, 4)

        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = OUTPUT_DIR / "chromium.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary, *CHROMIUM_OFFLINE_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                 "--window-size=2200,700", url],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=connect_pipe, close_fds=False)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + CHROMIUM_TIMEOUT
        while time.monotonic() < deadline:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {CHROMIUM_TIMEOUT} s")

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium sent no complete message")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe; its log is {self.log_path}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        os.close(self._to_browser)
        os.close(self._from_browser)


def wait_for(condition, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met within %.0f s" % timeout)


ROWS = "Array.from(document.querySelectorAll('#fleet tbody tr'))"


def column_values(browser, session, header: str) -> list[str]:
    return browser.evaluate(session, f"""(() => {{
        const index = Array.from(document.querySelectorAll('#fleet thead th')).findIndex(th => th.textContent === {json.dumps(header)});
        return {ROWS}.map(row => row.cells[index].textContent.trim());
    }})()""")


def click_header(browser, session, header: str) -> list[str]:
    browser.evaluate(session, f"""Array.from(document.querySelectorAll('#fleet thead th'))
        .find(th => th.textContent === {json.dumps(header)}).click()""")
    return browser.evaluate(session, f"{ROWS}.map(row => row.dataset.host)")


@pytest.fixture(scope="module")
def browser_page(reported):
    path = Path(reported["directory"]) / "fleet-report.html"
    url = path.resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="krypton-chromium-")
    browser = DevToolsPipe(url, profile)
    try:
        page = wait_for(lambda: next((target for target in browser.call("Target.getTargets")["targetInfos"]
                                      if target["type"] == "page" and target["url"] == url), None))
        session = browser.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        browser.call("Network.enable", {}, session)
        browser.call("Page.enable", {}, session)
        # Load the page again with the network domain watching, to see every request it makes.
        browser.call("Page.reload", {}, session)
        wait_for(lambda: browser.evaluate(session, "document.readyState") == "complete")
        yield browser, session, url
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_browser_requests_only_the_file(browser_page):
    browser, session, url = browser_page
    requested = [event["params"]["request"]["url"] for event in browser.events
                 if event.get("method") == "Network.requestWillBeSent"]
    assert requested, "the network domain saw no request at all"
    assert set(requested) == {url}


def test_browser_shows_every_pi(lab, browser_page):
    browser, session, dummy = browser_page
    assert browser.evaluate(session, f"{ROWS}.map(row => row.dataset.host)") == [pi["name"] for pi in lab["pis"]]
    assert column_values(browser, session, "IMSI") == [pi["imsi"] for pi in lab["pis"]]
    assert browser.evaluate(session, "document.querySelector('#summary [data-key=failing] strong').textContent") == "1"


def test_browser_highlights_failing_and_expiring(browser_page):
    browser, session, dummy = browser_page
    classes = browser.evaluate(session, f"Object.fromEntries({ROWS}.map(row => [row.dataset.host, row.className]))")
    assert classes == {"pi01": "status-ok", "pi02": "status-warning", "pi03": "status-failing"}
    expiring = browser.evaluate(session, f"""{ROWS}.filter(row => row.querySelector('td.cert-expiring'))
        .map(row => row.dataset.host)""")
    assert expiring == ["pi02"]
    # The highlight is visible, not only a class name: the computed background differs.
    backgrounds = browser.evaluate(session, f"""Object.fromEntries({ROWS}.map(row =>
        [row.dataset.host, getComputedStyle(row.cells[0]).backgroundColor]))""")
    assert len(set(backgrounds.values())) == 3, backgrounds
    expiring_cell = browser.evaluate(session, """getComputedStyle(
        document.querySelector('tr[data-host=pi02] td.cert-expiring')).backgroundColor""")
    assert expiring_cell != backgrounds["pi02"]


def test_browser_sorts_by_column(browser_page):
    browser, session, dummy = browser_page
    # Days left: pi02 (9 or 10) before pi01 (364). pi03's unreachable row shows AWS IoT's value, also 364.
    assert click_header(browser, session, "Days left")[0] == "pi02"
    assert click_header(browser, session, "Days left")[-1] == "pi02"
    assert browser.evaluate(session, """document.querySelector('#fleet th[data-column=days_left]')
        .getAttribute('aria-sort')""") == "descending"
    assert click_header(browser, session, "Status") == ["pi03", "pi02", "pi01"]
    assert click_header(browser, session, "Pi") == ["pi01", "pi02", "pi03"]
    assert click_header(browser, session, "Pi") == ["pi03", "pi02", "pi01"]


def test_browser_screenshot(browser_page):
    browser, session, dummy = browser_page
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": 2200, "height": 700, "deviceScaleFactor": 1, "mobile": False}, session)
    data = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, session)["data"])
    path = write_output("fleet-report.png", data)
    print(f"screenshot: {path}")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
