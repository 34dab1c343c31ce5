"""Run playbooks/provision.yml twice on the lab and check the outcome.

Exits 0 only when the first run provisioned every Pi and each one's MQTTS
publish reached the broker, the second run reported changed=0 on every host
and made no Krypton call, and the AWS stand-in contains exactly one ACTIVE
certificate per Pi. It first returns the lab to the state `labctl up` left
it in, so it can run again on the same lab. Run it through
`tests/lab/labctl exec`.
"""
from __future__ import annotations

import sys

import labapi


def check_first_run(lab: dict, result) -> list[str]:
    problems = []
    recap = labapi.parse_recap(result.stdout)
    if result.returncode != 0:
        problems.append(f"first run exited with {result.returncode}")
    for pi in lab["pis"]:
        counters = recap.get(pi["name"])
        if counters is None:
            problems.append(f"{pi['name']}: missing from the first run's recap")
        elif counters["failed"] or counters["unreachable"]:
            problems.append(f"{pi['name']}: failed or unreachable in the first run: {counters}")
    # reset_lab() emptied the broker's message list before the first run.
    published = {message["client_id"] for message in labapi.broker_messages()}
    for pi in lab["pis"]:
        thing = pi["thing_name"]
        if thing not in published:
            problems.append(f"{pi['name']}: no MQTTS publish from client id {thing} reached the broker")
    return problems


def check_second_run(lab: dict, result, krypton_calls_before: int) -> list[str]:
    problems = []
    recap = labapi.parse_recap(result.stdout)
    if result.returncode != 0:
        problems.append(f"second run exited with {result.returncode}")
    for host in ["localhost"] + [pi["name"] for pi in lab["pis"]]:
        counters = recap.get(host)
        if counters is None:
            problems.append(f"{host}: missing from the second run's recap")
        elif counters["changed"] != 0:
            problems.append(f"{host}: second run reported changed={counters['changed']}, expected 0")
    extra_calls = labapi.krypton_calls() - krypton_calls_before
    if extra_calls:
        problems.append(f"second run called Krypton {extra_calls} times, expected 0")
    return problems


def check_certificates(lab: dict) -> list[str]:
    problems = []
    by_thing = labapi.active_certificates_by_thing()
    for pi in lab["pis"]:
        active = by_thing.get(pi["thing_name"], [])
        if len(active) != 1:
            problems.append(f"{pi['name']}: thing {pi['thing_name']} has {len(active)} ACTIVE certificates, expected 1")
    total = len(labapi.all_certificates())
    if total != len(lab["pis"]):
        problems.append(f"the AWS stand-in holds {total} certificates for {len(lab['pis'])} Pis")
    return problems


def main() -> int:
    lab = labapi.load_lab()
    labapi.reset_lab()
    names = ", ".join(pi["name"] for pi in lab["pis"])
    print(f"== First run of playbooks/provision.yml on {names}", flush=True)
    first = labapi.run_playbook("playbooks/provision.yml")
    problems = check_first_run(lab, first)

    print("== Second run: expect changed=0 everywhere and no Krypton call", flush=True)
    krypton_calls_before = labapi.krypton_calls()
    second = labapi.run_playbook("playbooks/provision.yml")
    problems += check_second_run(lab, second, krypton_calls_before)
    problems += check_certificates(lab)

    if problems:
        print("\nDemo FAILED:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"\nDemo passed: {len(lab['pis'])} Pis provisioned and verified over MQTTS; "
          "the second run changed nothing; one ACTIVE certificate per Pi.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
