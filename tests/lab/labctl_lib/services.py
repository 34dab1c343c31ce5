# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's services in tilab: moto, SORACOM emulator, MQTT broker and the Pis' apt repository.

Each service runs with ``ip netns exec tilab`` (so it uses tilab's /etc/hosts and trusts the lab CA),
has a pid file and a log file under the state directory, and is stopped by its PID. In lab K >= 1
the namespace is tilabK, and the services listen on that lab's gateway 10.213.K.1 instead.
"""
from __future__ import annotations

import dataclasses
import json
import secrets
import string
import time
from pathlib import Path

from . import LabError
from .config import (
    APT_REPO_PORT, AWS_ADMIN_POLICY_ARN, AWS_ADMIN_USER, BROKER_ADMIN_URL, BROKER_PORT, LAB_DIR,
    MOTO_URL, REGION, REPO_ROOT, SORACOM_ADMIN_URL, SORACOM_OPERATOR_ID, VENV_PYTHON, Lab, PiSpec,
    StatePaths, iot_ats_host, iot_data_host, iot_endpoint_prefix,
)
from .sysutil import (
    http_request, live_pid, log, process_alive, read_pid, run, start_detached, stop_process, tail, warn,
    write_file,
)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclasses.dataclass(frozen=True)
class Service:
    """One lab service: how to start it and how to tell that it is ready.

    ``ready_url_template`` and ``listen_template`` contain ``{gateway}`` in place of the lab's
    gateway address.
    """

    name: str
    script: Path | None  # None: not a repository script (the apt repository's http.server)
    ready_url_template: str
    listen_template: str

    def marker(self, apt_repo: Path) -> str:
        """Return a command-line fragment that identifies this service's process."""
        return self.script.name if self.script else str(apt_repo)

    def ready_url(self, lab: Lab) -> str:
        return self.ready_url_template.format(gateway=lab.gateway_ip)

    def listen(self, lab: Lab) -> str:
        return self.listen_template.format(gateway=lab.gateway_ip)


MOTO = Service("moto", LAB_DIR / "aws" / "moto_lab_server.py", f"{MOTO_URL}/moto-api/", "127.0.0.1:5000")
SORACOM = Service("soracom", LAB_DIR / "soracom" / "server.py", f"{SORACOM_ADMIN_URL}/_lab/state",
                  "{gateway}:443,8036,80 admin 127.0.0.1:8099")
BROKER = Service("broker", LAB_DIR / "broker" / "broker.py", f"{BROKER_ADMIN_URL}/_lab/connections",
                 f"{{gateway}}:{BROKER_PORT} admin 127.0.0.1:8098")
APT_REPO = Service("aptrepo", None, f"http://{{gateway}}:{APT_REPO_PORT}/Packages",
                   f"{{gateway}}:{APT_REPO_PORT}")
SERVICES = (MOTO, SORACOM, BROKER, APT_REPO)  # start order; stop in reverse


# SORACOM's OpenAPI spec sits beside the repository in the project's shared reference data and
# is never copied into it. When it is there, the emulator checks every API request and response
# against it; without it the lab still runs, unchecked.
SORACOM_SPEC = REPO_ROOT.parent / "shared" / "reference" / "soracom-api" / "soracom-api.en.yaml"


def spec_validation_args() -> list[str]:
    if SORACOM_SPEC.is_file():
        return ["--validate-spec", str(SORACOM_SPEC)]
    warn(f"SORACOM's OpenAPI spec is not at {SORACOM_SPEC}, so the SORACOM emulator runs without "
         "checking requests and responses against it (put soracom-api.en.yaml there to turn the check on)")
    return []


def new_auth_key() -> dict:
    """Return a random SORACOM auth key in the real format: keyId-<32 hex>, secret-<64 chars>."""
    alphabet = string.ascii_letters + string.digits
    return {
        "auth_key_id": "keyId-" + secrets.token_hex(16),
        "auth_key": "secret-" + "".join(secrets.choice(alphabet) for _ in range(64)),
    }


class ServiceManager:
    """Start, check and stop the services of one lab, with pid and log files in its state directory."""

    def __init__(self, lab: Lab, state: StatePaths, apt_repo: Path):
        self.lab = lab
        self.state = state
        self.apt_repo = apt_repo

    # --- process handling -----------------------------------------------------------------

    def pid(self, service: Service) -> int | None:
        return live_pid(self.state.pid_file(service.name), service.marker(self.apt_repo))

    def command(self, service: Service, admin: dict | None) -> tuple[list[str], dict]:
        """Return the command line and environment of ``service``."""
        pki = self.state.pki
        logs = self.state.logs
        gateway = self.lab.gateway_ip
        python = str(VENV_PYTHON)
        env = {
            "PATH": f"{VENV_PYTHON.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "KRYPTON_LAB_STATE": str(self.state.root),
        }
        if service is MOTO:
            env.update({
                "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
                "MOTO_IOT_CA_CERT": str(pki / "device-ca.crt"),
                "MOTO_IOT_CA_KEY": str(pki / "device-ca.key"),
                "LAB_IOT_ENDPOINT_PREFIX": iot_endpoint_prefix(),
            })
            return [python, str(service.script), "-H", "127.0.0.1", "-p", "5000"], env
        if service is SORACOM:
            env.update({"AWS_ENDPOINT_URL": MOTO_URL, "AWS_DEFAULT_REGION": REGION})
            return [python, str(service.script),
                    "--api", f"{gateway}:443", "--krypton", f"{gateway}:8036",
                    "--metadata", f"{gateway}:80", "--admin", "127.0.0.1:8099",
                    "--cert", str(pki / "soracom.crt"), "--key", str(pki / "soracom.key"),
                    "--root-ca", str(pki / "server-ca.crt"), "--aws-endpoint", MOTO_URL,
                    "--log", str(logs / "soracom.log"), *spec_validation_args()], env
        if service is BROKER:
            if not admin:
                raise LabError("the broker needs the lab admin AWS key, which is missing")
            env.update({"AWS_ACCESS_KEY_ID": admin["access_key_id"],
                        "AWS_SECRET_ACCESS_KEY": admin["secret_access_key"],
                        "AWS_DEFAULT_REGION": REGION})
            return [python, str(service.script),
                    "--listen", f"{gateway}:{BROKER_PORT}",
                    "--cert", str(pki / "broker.crt"), "--key", str(pki / "broker.key"),
                    "--client-ca", str(pki / "device-ca.crt"), "--aws-endpoint", MOTO_URL,
                    "--region", REGION, "--admin", "127.0.0.1:8098",
                    "--log", str(logs / "broker.log")], env
        if service is APT_REPO:
            return [python, "-m", "http.server", str(APT_REPO_PORT), "--bind", gateway,
                    "--directory", str(self.apt_repo)], env
        raise ValueError(service.name)

    def start(self, service: Service, admin: dict | None = None) -> bool:
        """Start ``service`` unless it runs; return True if it was started now.

        A repository script that does not exist yet is skipped with a warning, so the rest
        of the lab can be used while a stand-in is being written.
        """
        if self.pid(service):
            return False
        if service.script and not service.script.exists():
            warn(f"{service.name}: {service.script.relative_to(REPO_ROOT)} not found, service skipped")
            return False
        cmd, env = self.command(service, admin)
        log_file = self.state.log_file(service.name)
        pid = start_detached(["ip", "netns", "exec", self.lab.netns, *cmd], log_file, env=env, cwd=REPO_ROOT)
        write_file(self.state.pid_file(service.name), f"{pid}\n")
        self.wait_ready(service, pid, log_file)
        log(f"{service.name} ready (pid {pid}, {service.listen(self.lab)}, log {log_file})")
        return True

    def wait_ready(self, service: Service, pid: int, log_file: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        ready_url = service.ready_url(self.lab)
        while time.monotonic() < deadline:
            status, _ = http_request(ready_url, timeout=2, netns=self.lab.netns)
            if status == 200:
                return
            # Only liveness is checked, because labctl has just started this PID itself. The
            # command line is empty while `ip netns exec` executes the service's command.
            if not process_alive(pid):
                self.state.pid_file(service.name).unlink(missing_ok=True)
                raise LabError(f"{service.name} exited during start-up; see {log_file}. Last lines:\n"
                               f"{tail(log_file)}")
            time.sleep(0.2)
        self.stop(service)
        raise LabError(f"{service.name} was not ready at {ready_url} within "
                       f"{READY_TIMEOUT:.0f} s and was stopped; see {log_file}. Last lines:\n{tail(log_file)}")

    def stop(self, service: Service) -> None:
        pid_file = self.state.pid_file(service.name)
        pid = self.pid(service)
        if pid:
            stop_process(pid, service.marker(self.apt_repo), service.name, STOP_TIMEOUT)
            log(f"{service.name} stopped (pid {pid})")
        pid_file.unlink(missing_ok=True)

    def stop_all(self) -> None:
        for service in reversed(SERVICES):
            self.stop(service)

    def status(self) -> list[dict]:
        rows = []
        for service in SERVICES:
            pid = self.pid(service)
            rows.append({
                "name": service.name,
                "pid": pid or read_pid(self.state.pid_file(service.name)),
                "alive": bool(pid),
                "listen": service.listen(self.lab),
                "log": str(self.state.log_file(service.name)),
            })
        return rows

    # --- moto: lab admin and IAM enforcement ------------------------------------------------

    def _venv_python(self, code: str, env: dict, timeout: float = 60) -> dict:
        """Run ``code`` with the venv's python inside the lab's namespace; it prints one JSON object."""
        base_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        result = run(["ip", "netns", "exec", self.lab.netns, str(VENV_PYTHON), "-c", code],
                     env={**base_env, **env}, timeout=timeout, check=False)
        if result.returncode != 0:
            raise LabError(f"AWS stand-in check failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return json.loads(result.stdout)

    def bootstrap_admin(self) -> dict:
        """Create IAM user lab-admin with AdministratorAccess and a key, then turn enforcement on."""
        code = f"""
import json, boto3
iam = boto3.client("iam", endpoint_url={MOTO_URL!r}, region_name={REGION!r},
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName={AWS_ADMIN_USER!r})
iam.attach_user_policy(UserName={AWS_ADMIN_USER!r}, PolicyArn={AWS_ADMIN_POLICY_ARN!r})
key = iam.create_access_key(UserName={AWS_ADMIN_USER!r})["AccessKey"]
print(json.dumps({{"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}}))
"""
        keys = self._venv_python(code, {})
        status, body = http_request(f"{MOTO_URL}/moto-api/reset-auth", method="POST", body=b"0",
                                    content_type="text/plain", netns=self.lab.netns)
        if status != 200:
            raise LabError(f"turning on IAM enforcement in moto failed: HTTP {status} {body[:200]!r}")
        log(f"AWS stand-in: IAM user {AWS_ADMIN_USER} created, IAM enforcement on")
        return {"user": AWS_ADMIN_USER, **keys}

    def check_aws(self, admin: dict) -> dict:
        """Check that the admin key works, an unknown key is rejected, and the endpoints are stable.

        Returns a dict with ``ok`` False (and ``error``) when the admin key is not accepted,
        which happens when moto was restarted behind labctl's back.
        """
        code = f"""
import json, boto3, botocore.exceptions
def client(service, key, secret):
    return boto3.client(service, endpoint_url={MOTO_URL!r}, region_name={REGION!r},
                        aws_access_key_id=key, aws_secret_access_key=secret)
out = {{}}
try:
    out["admin_arn"] = client("iam", {admin['access_key_id']!r}, {admin['secret_access_key']!r}).get_user()["User"]["Arn"]
except botocore.exceptions.ClientError as exc:
    out["error"] = str(exc)
    print(json.dumps(out)); raise SystemExit(0)
iot = client("iot", {admin['access_key_id']!r}, {admin['secret_access_key']!r})
out["ats"] = [iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] for _ in range(2)]
out["data"] = iot.describe_endpoint(endpointType="iot:Data")["endpointAddress"]
try:
    client("iam", "AKIAUNKNOWNLABKEY000", "unknown-secret").list_users()
    out["unknown_key"] = "accepted"
except botocore.exceptions.ClientError as exc:
    out["unknown_key"] = exc.response["Error"]["Code"]
print(json.dumps(out))
"""
        result = self._venv_python(code, {})
        if "error" in result:
            return {"ok": False, "error": result["error"]}
        problems = []
        if not result["admin_arn"].endswith(f":user/{AWS_ADMIN_USER}"):
            problems.append(f"admin key belongs to {result['admin_arn']}")
        if result["ats"] != [iot_ats_host()] * 2:
            problems.append(f"describe_endpoint(iot:Data-ATS) returned {result['ats']}, "
                            f"expected {iot_ats_host()} every time")
        if result["data"] != iot_data_host():
            problems.append(f"describe_endpoint(iot:Data) returned {result['data']}, expected {iot_data_host()}")
        if result["unknown_key"] != "InvalidClientTokenId":
            problems.append(f"an unknown access key was not rejected (result: {result['unknown_key']})")
        if problems:
            raise LabError("AWS stand-in check failed: " + "; ".join(problems)
                           + f"; see {self.state.log_file('moto')}")
        return {"ok": True, **result}

    # --- SORACOM emulator seeding -----------------------------------------------------------

    def seed_soracom(self, pis: list[PiSpec], auth: dict | None) -> None:
        """Register SIMs (and the auth key when ``auth`` is given) through the admin API."""
        if auth:
            payload = {"authKeyId": auth["auth_key_id"], "authKey": auth["auth_key"],
                       "operatorId": SORACOM_OPERATOR_ID}
            self._admin_post("/_lab/auth_keys", payload)
        if pis:
            self._admin_post("/_lab/sims", [pi.sim_record() for pi in pis])
            log(f"SORACOM emulator: {len(pis)} SIM(s) registered ({pis[0].name}..{pis[-1].name})")

    def _admin_post(self, path: str, payload) -> None:
        url = SORACOM_ADMIN_URL + path
        status, body = http_request(url, method="POST", body=json.dumps(payload).encode(),
                                    netns=self.lab.netns, timeout=30)
        if not 200 <= status < 300:
            raise LabError(f"POST {url} failed: HTTP {status} {body[:300]!r}; "
                           f"see {self.state.log_file('soracom')}")
