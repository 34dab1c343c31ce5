"""Benchmark playbooks/provision.yml on the lab for several fleet sizes and write docs/benchmarks.md.

For each fleet size N (ascending) it starts the lab with N Pis (`labctl up --pis N`, after a
`labctl down` so the smallest size starts from a new lab), runs tests/bench/measure.py inside
the lab and keeps its JSON. Then it writes the table, the machine it ran on, the targets and
an SVG plot of time against N. Run it as root from the repository root, or with `make bench`:

    KRYPTON_LAB_ID=5 .venv/bin/python tests/bench/bench.py --pis 1 5 20

It stops the lab when it is done. Each N's raw JSON goes to tests/bench/results/ (not in git).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABCTL = REPO / "tests" / "lab" / "labctl"
PYTHON = REPO / ".venv" / "bin" / "python"
RESULTS = REPO / "tests" / "bench" / "results"
STEP_TIMEOUT = 3600

# The targets at the largest benchmarked fleet: a re-run at most RERUN_RATIO_TARGET times the
# ping floor, a first run at most FIRST_RATIO_TARGET times, and a re-run that writes nothing.
TARGET_PIS = 20
RERUN_RATIO_TARGET = 2.0
FIRST_RATIO_TARGET = 4.0
AUTH_PER_PLAY_TARGET = 1
# Plays of provision.yml that call the SORACOM API: only the cloud play.
SORACOM_PLAYS = 1


def run(command: list, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess:
    print("+ " + " ".join(str(part) for part in command), file=sys.stderr, flush=True)
    return subprocess.run([str(part) for part in command], cwd=REPO, text=True, capture_output=True,
                          timeout=timeout, check=False)


def measure(pis: int, log_dir: Path) -> dict:
    up = run([LABCTL, "up", "--pis", pis])
    if up.returncode != 0:
        raise RuntimeError(f"labctl up --pis {pis} failed:\n{up.stdout[-3000:]}{up.stderr[-3000:]}")
    log_dir.mkdir(parents=True, exist_ok=True)
    result = run([LABCTL, "exec", "--", PYTHON, REPO / "tests" / "bench" / "measure.py", "--log-dir", log_dir])
    sys.stderr.write(result.stderr[-2000:])
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"measure.py returned no result (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}") from None


def read_first_line(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict:
    with open("/proc/meminfo", encoding="ascii") as handle:
        total_kib = int(next(line for line in handle if line.startswith("MemTotal:")).split()[1])
    ansible = run([REPO / ".venv" / "bin" / "ansible", "--version"]).stdout.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "cpu": read_first_line("/proc/cpuinfo", "model name"),
        "kernel": platform.release(),
        "python": run([PYTHON, "--version"]).stdout.strip(),
        "ansible_core": ansible[0] if ansible else "unknown",
    }


# ------------------------------------------------------------------------------------- SVG plot

def svg_plot(results: list[dict]) -> str:
    """Return an SVG line chart of the three wall times (seconds) against the number of Pis."""
    width, height, left, right, top, bottom = 640, 360, 60, 150, 20, 50
    series = [
        ("ping floor", "floor", "#555555"),
        ("first run", "first", "#d62728"),
        ("re-run", "rerun", "#1f77b4"),
    ]

    def seconds(result: dict, key: str) -> float:
        return result["floor"] if key == "floor" else result[key]["seconds"]

    xs = [result["pis"] for result in results]
    y_max = max(seconds(result, key) for result in results for _, key, _ in series) * 1.1 or 1.0
    x_min, x_max = min(xs), max(xs)
    x_span = (x_max - x_min) or 1

    def px(value: float) -> float:
        return left + (value - x_min) / x_span * (width - left - right)

    def py(value: float) -> float:
        return height - bottom - value / y_max * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{py(0)}" x2="{width - right}" y2="{py(0)}" stroke="black"/>',
             f'<line x1="{left}" y1="{py(0)}" x2="{left}" y2="{top}" stroke="black"/>']
    for step in range(6):
        value = y_max * step / 5
        parts.append(f'<text x="{left - 6}" y="{py(value) + 4:.1f}" text-anchor="end">{value:.0f}</text>')
        parts.append(f'<line x1="{left}" y1="{py(value):.1f}" x2="{width - right}" y2="{py(value):.1f}" '
                     f'stroke="#e0e0e0"/>')
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">Pis (N)</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(top + height - bottom) / 2})">wall time (s)</text>')
    for index, (label, key, colour) in enumerate(series):
        points = " ".join(f"{px(result['pis']):.1f},{py(seconds(result, key)):.1f}" for result in results)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for result in results:
            parts.append(f'<circle cx="{px(result["pis"]):.1f}" cy="{py(seconds(result, key)):.1f}" r="3" '
                         f'fill="{colour}"/>')
        legend_y = top + 10 + index * 18
        parts.append(f'<line x1="{width - right + 12}" y1="{legend_y}" x2="{width - right + 32}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 38}" y="{legend_y + 4}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------- report

def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def target_lines(results: list[dict]) -> list[str]:
    at_target = [result for result in results if result["pis"] == TARGET_PIS]
    if not at_target:
        return [f"No run with N = {TARGET_PIS}, so the targets were not checked."]
    result = at_target[-1]
    rerun, first = result["rerun"], result["first"]
    auth_per_play = rerun["soracom_auth"] / SORACOM_PLAYS
    return [
        f"| target at N = {TARGET_PIS} | measured | |",
        "|---|---|---|",
        f"| re-run at most {RERUN_RATIO_TARGET:g}x the ping floor | {result['rerun_ratio']:.2f}x | "
        f"{verdict(result['rerun_ratio'] <= RERUN_RATIO_TARGET)} |",
        f"| first run at most {FIRST_RATIO_TARGET:g}x the ping floor | {result['first_ratio']:.2f}x | "
        f"{verdict(result['first_ratio'] <= FIRST_RATIO_TARGET)} |",
        f"| re-run calls Krypton 0 times | {rerun['krypton_calls']} | {verdict(rerun['krypton_calls'] == 0)} |",
        f"| re-run makes 0 AWS write calls | {rerun['aws_writes']} | {verdict(rerun['aws_writes'] == 0)} |",
        f"| at most {AUTH_PER_PLAY_TARGET} SORACOM /auth per play | {auth_per_play:g} | "
        f"{verdict(auth_per_play <= AUTH_PER_PLAY_TARGET)} |",
    ]


BREAKDOWN_HEADINGS = {
    "en": {"run": {"first": "First run", "rerun": "Re-run"}, "play": "play", "task": "task",
           "seconds": "seconds", "share": "share", "unit": "s",
           "intro": "Measured at N = {pis} (ping floor {floor:.1f} s): the wall time of each play of "
                    "provision.yml, and its slowest tasks, each from its start to the next task's start "
                    "(its time on the slowest Pi).",
           "missing": "No task times were recorded."},
    "ja": {"run": {"first": "初回実行", "rerun": "再実行"}, "play": "プレイ", "task": "タスク",
           "seconds": "秒", "share": "割合", "unit": "秒",
           "intro": "N = {pis} (ping 下限 {floor:.1f} 秒) で測った、provision.yml の各プレイの実行時間と、"
                    "時間のかかったタスクです。タスクの時間は、開始から次のタスクの開始までです "
                    "(最も遅い Raspberry Pi での時間)。",
           "missing": "タスクごとの時間は記録されていません。"},
}


def breakdown_lines(results: list[dict], language: str = "en") -> list[str]:
    """Return tables of the time per play and the slowest tasks of both runs at TARGET_PIS, else the largest N."""
    words = BREAKDOWN_HEADINGS[language]
    at_target = [item for item in results if item["pis"] == TARGET_PIS]
    result = at_target[-1] if at_target else max(results, key=lambda item: item["pis"])
    lines = [words["intro"].format(pis=result["pis"], floor=result["floor"]), ""]
    for run_name in ("first", "rerun"):
        run_result = result[run_name]
        plays, tasks = run_result.get("plays", []), run_result.get("slowest_tasks", [])
        lines += [f"**{words['run'][run_name]}** ({run_result['seconds']:.1f} {words['unit']})", ""]
        if not plays:
            lines += [words["missing"], ""]
            continue
        total = run_result["seconds"] or 1.0
        lines += [f"| {words['play']} | {words['seconds']} | {words['share']} |", "|---|---|---|"]
        lines += [f"| {play['play']} | {play['seconds']:.1f} | {play['seconds'] / total:.0%} |" for play in plays]
        lines += ["", f"| {words['task']} | {words['seconds']} | {words['share']} |", "|---|---|---|"]
        lines += [f"| {task['task']} | {task['seconds']:.1f} | {task['seconds'] / total:.0%} |" for task in tasks]
        lines.append("")
    return lines


def report(results: list[dict], host: dict, started: str, finished: str) -> str:
    rows = []
    for result in results:
        first, rerun = result["first"], result["rerun"]
        rows.append(
            f"| {result['pis']} | {result['floor']:.1f} | {first['seconds']:.1f} ({result['first_ratio']:.1f}x) "
            f"| {rerun['seconds']:.1f} ({result['rerun_ratio']:.1f}x) "
            f"| {first['krypton_calls']} ({first['krypton_429']}) / {rerun['krypton_calls']} "
            f"| {first['aws_writes']} / {rerun['aws_writes']} "
            f"| {first['soracom_auth']} / {rerun['soracom_auth']} "
            f"| {first['soracom_calls']} / {rerun['soracom_calls']} "
            f"| {' '.join(str(value) for value in result['load_before'][:1] + result['load_after'][:1])} |")
    failures = [f"- N = {result['pis']}: {name} run exited with {result[name]['rc']}, "
                f"{result[name]['failed']} host(s) failed or unreachable, {result[name]['changed']} change(s)."
                for result in results for name in ("first", "rerun")
                if result[name]["rc"] != 0 or (name == "rerun" and result[name]["changed"])]
    lines = [
        "# Benchmarks",
        "",
        "[日本語](ja/benchmarks.md)",
        "",
        "Wall time and API calls of `playbooks/provision.yml` on the lab, written by `make bench`",
        "(`tests/bench/bench.py`). Each fleet size N is measured on a lab with N Pis that",
        "`tests/bench/measure.py` first returns to the state `labctl up` left it in:",
        "",
        "- **ping floor**: median wall time of `ansible pis -m ansible.builtin.ping` (three runs before",
        "  the first provisioning run and one after the re-run, all after one warm-up ping). It is the",
        "  least any playbook that touches every Pi takes on this machine at that moment, so the",
        "  runs are also given as multiples of it, which keeps most of the machine's load out of the",
        "  comparison.",
        "- **first run**: provisioning from nothing: AWS IoT policy, IAM user and key, credential",
        "  set, group, SIMs, one Krypton bootstrap and one MQTTS check per Pi.",
        "- **re-run**: the same command again, which must change nothing.",
        "- **Krypton**: bootstrap requests of the first run (of them answered 429 by the lab's",
        "  rate limit, in brackets) / of the re-run.",
        "- **AWS writes**: AWS API calls other than Describe*, Get* and List*, counted by the lab's",
        "  moto server (`GET /moto-api/lab/calls`), including the calls Krypton makes. First run /",
        "  re-run.",
        "- **SORACOM /auth** and **SORACOM calls**: `POST /v1/auth` and all SORACOM API requests,",
        "  counted by the SORACOM emulator (`/_lab/calls`). First run / re-run.",
        "- **load**: the 1-minute load average before and after the measurement of that N.",
        "",
        "| N | ping floor (s) | first run (s) | re-run (s) | Krypton | AWS writes | SORACOM /auth "
        "| SORACOM calls | load |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "![Wall time against the number of Pis](benchmarks.svg)",
        "",
        "## Targets",
        "",
        *target_lines(results),
        "",
    ]
    if failures:
        lines += ["Runs that did not succeed:", "", *failures, ""]
    lines += [
        "## Where the time goes",
        "",
        *breakdown_lines(results),
        "The ping floor is one Python module run on every Pi. A re-run of provision.yml costs",
        "more than a few floors because of its structure:",
        "",
        "- the cloud play runs about ten modules one after another on the controller, each a new",
        "  Python process that imports its libraries (boto3 for the AWS modules), whatever N is;",
        "- the device play runs four Python modules on every Pi, each about one floor: the",
        "  roll-out's connection check, the link check, the certificate inspection and the MQTTS",
        "  check. The MQTTS check also keeps the connection open for one second to detect a client",
        "  ID in use. About ten more tasks run on the controller for every Pi (argument checks,",
        "  conditions, the roll-out's bookkeeping);",
        "- the reconcile play reads the things and certificates of every Pi from AWS IoT.",
        "",
        "On a 2-core machine the Pis, the stand-ins and the controller share the cores, so the",
        "per-Pi work grows with N on the controller side too. With more Pis than `forks` (20 in",
        "the repository's `ansible.cfg`), each task runs on the Pis in several rounds.",
        "",
        "## Settings that keep a fleet run short",
        "",
        "- `forks` in `ansible.cfg` at least the number of Pis that should work at once (the",
        "  repository's `ansible.cfg` sets 20); Ansible runs each task on at most that many hosts at",
        "  a time.",
        "- `pipelining = True` under `[connection]` and `[ssh_connection]`, and `ssh_args` with",
        "  `ControlMaster=auto` and `ControlPersist=300s`, as in the repository's `ansible.cfg`.",
        "  Modules then go to the Pi over the open SSH connection and start on the controller",
        "  without a temporary file, and a re-run within five minutes skips the SSH handshakes.",
        "- `gather_facts: false`, as in `playbooks/provision.yml`: neither role reads facts.",
        "- On a re-run the device role checks the packages with `dpkg-query` (without starting",
        "  Python on the Pi), reads the cellular link, inspects the stored certificate without",
        "  calling Krypton, and makes one MQTTS check, which also writes the check's record.",
        "- The cloud role starts one SORACOM API session and shares it between its tasks",
        "  (`soracom.krypton.soracom_auth`).",
        "",
        "## Machine",
        "",
        f"- {host['cores']} cores ({host['cpu']}), {host['memory_gib']} GiB memory",
        f"- Linux {host['kernel']}, {host['python']}, {host['ansible_core']}",
        f"- measured from {started} to {finished} (UTC)",
        "",
        "The lab's Pis are systemd-nspawn containers on the same machine as the controller, the",
        "SORACOM emulator, moto and the broker, so every Pi's work competes for the same cores.",
        "Other jobs on the machine change the absolute times from run to run; the load column",
        "shows how busy it was.",
        "",
    ]
    return "\n".join(lines)


def report_ja(results: list[dict], host: dict, started: str, finished: str) -> str:
    """Return the Japanese version of report(): the same table with Japanese text."""
    english = report(results, host, started, finished).splitlines()
    table = [line for line in english if re.match(r"^\| \d+ \|", line)]
    targets_section = english[english.index("## Targets"):english.index("## Where the time goes")]
    targets = [line for line in targets_section if line.startswith("| ") and not line.startswith("| target")]
    translated_targets = []
    for line in targets:
        line = (line.replace(f"re-run at most {RERUN_RATIO_TARGET:g}x the ping floor",
                             f"再実行: ping 下限の {RERUN_RATIO_TARGET:g} 倍以内")
                .replace(f"first run at most {FIRST_RATIO_TARGET:g}x the ping floor",
                         f"初回実行: ping 下限の {FIRST_RATIO_TARGET:g} 倍以内")
                .replace("re-run calls Krypton 0 times", "再実行の Krypton 呼び出し 0 回")
                .replace("re-run makes 0 AWS write calls", "再実行の AWS 書き込み呼び出し 0 回")
                .replace(f"at most {AUTH_PER_PLAY_TARGET} SORACOM /auth per play",
                         f"SORACOM /auth はプレイごとに {AUTH_PER_PLAY_TARGET} 回以内")
                .replace("**not met**", "**未達**").replace("| met |", "| 達成 |"))
        translated_targets.append(line)
    lines = [
        "# ベンチマーク",
        "",
        "[English](../benchmarks.md)",
        "",
        "ラボでの `playbooks/provision.yml` の実行時間と API 呼び出し回数です。`make bench`",
        "(`tests/bench/bench.py`) が書き出します。各台数 N について、Raspberry Pi N 台のラボを",
        "`tests/bench/measure.py` が `labctl up` 直後の状態に戻してから測ります。列の意味は",
        "[英語版](../benchmarks.md) と同じです。ping 下限は `ansible pis -m ansible.builtin.ping` の",
        "実行時間の中央値で、初回実行と再実行はその倍率でも示します。",
        "",
        "| N | ping 下限 (秒) | 初回実行 (秒) | 再実行 (秒) | Krypton | AWS 書き込み | SORACOM /auth "
        "| SORACOM 呼び出し | 負荷 |",
        "|---|---|---|---|---|---|---|---|---|",
        *table,
        "",
        "![Raspberry Pi の台数と実行時間](../benchmarks.svg)",
        "",
        "## 目標",
        "",
        f"| N = {TARGET_PIS} での目標 | 測定値 | |",
        "|---|---|---|",
        *translated_targets,
        "",
        "## 時間の内訳",
        "",
        *breakdown_lines(results, "ja"),
        "ping 下限は、各 Raspberry Pi での Python モジュール 1 回分の実行です。provision.yml の再実行が",
        "その数倍かかるのは、次の構成によります。",
        "",
        "- クラウドのプレイは、N に関係なく、コントローラー上で約 10 個のモジュールを順に実行します。",
        "  それぞれが新しい Python プロセスで、ライブラリ (AWS のモジュールでは boto3) を読み込みます。",
        "- デバイスのプレイは、各 Raspberry Pi で Python モジュールを 4 回実行します (ロールアウトの接続確認、",
        "  回線の確認、証明書の検査、MQTTS のチェック。MQTTS のチェックはクライアント ID の重複を検出するために",
        "  接続を 1 秒保ちます)。それぞれが下限 1 回分ほどかかり、さらに各 Raspberry Pi についてコントローラー上で",
        "  約 10 個のタスク (引数の確認、条件、ロールアウトの記録) を実行します。",
        "- 照合のプレイは、各 Raspberry Pi のモノと証明書を AWS IoT から読みます。",
        "",
        "2 コアのマシンでは Raspberry Pi、スタンドイン、コントローラーが同じコアを使うので、",
        "Raspberry Pi ごとの処理はコントローラー側でも N とともに増えます。Raspberry Pi の台数が `forks`",
        "(リポジトリの `ansible.cfg` では 20) より多いと、各タスクは何回かに分けて Raspberry Pi で実行されます。",
        "",
        "## フリートの実行を短くする設定",
        "",
        "- `ansible.cfg` の `forks` を、同時に処理したい Raspberry Pi の台数以上にします (リポジトリの",
        "  `ansible.cfg` は 20)。Ansible は各タスクを同時に最大その台数のホストで実行します。",
        "- リポジトリの `ansible.cfg` と同じく、`[connection]` と `[ssh_connection]` で `pipelining = True` を、",
        "  さらに `ControlMaster=auto` と `ControlPersist=300s` を含む `ssh_args` を設定します。モジュールは開いている",
        "  SSH 接続で送られ、コントローラー上では一時ファイルなしで起動し、5 分以内の再実行では SSH の",
        "  ハンドシェイクを省けます。",
        "- `playbooks/provision.yml` と同じく `gather_facts: false` にします。どちらのロールもファクトを使いません。",
        "- 再実行では、デバイスロールは `dpkg-query` でパッケージを確認し (Raspberry Pi 上で Python を起動しません)、",
        "  セルラー回線を確認し、Krypton を呼ばずに保存済みの証明書を検査し、MQTTS のチェックを 1 回行って",
        "  その記録を書きます。",
        "- クラウドロールは SORACOM API のセッションを 1 つだけ開始し、各タスクで共有します",
        "  (`soracom.krypton.soracom_auth`)。",
        "",
        "## 測定したマシン",
        "",
        f"- {host['cores']} コア ({host['cpu']})、メモリ {host['memory_gib']} GiB",
        f"- Linux {host['kernel']}、{host['python']}、{host['ansible_core']}",
        f"- 測定期間 {started} から {finished} (UTC)",
        "",
        "ラボの Raspberry Pi は、コントローラー、SORACOM エミュレーター、moto、ブローカーと同じマシン上の",
        "systemd-nspawn コンテナーなので、同じ CPU コアを取り合います。マシン上のほかの処理によって",
        "絶対時間は実行ごとに変わります。負荷の列が、そのときのマシンの混み具合を示します。",
        "",
    ]
    return "\n".join(lines)


def write_reports(output: Path, results: list[dict], host: dict, started: str, finished: str) -> None:
    """Write the English and Japanese reports and the SVG plot beside ``output``."""
    output.write_text(report(results, host, started, finished))
    japanese = output.parent / "ja" / output.name
    japanese.parent.mkdir(parents=True, exist_ok=True)
    japanese.write_text(report_ja(results, host, started, finished))
    output.with_name("benchmarks.svg").write_text(svg_plot(results))
    print(f"wrote {output}, {japanese} and {output.with_name('benchmarks.svg')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pis", type=int, nargs="+", default=[1, 5, 20], help="fleet sizes (default 1 5 20)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="Markdown report; the SVG plot is written beside it as benchmarks.svg")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    parser.add_argument("--report-only", nargs=2, metavar=("STARTED", "FINISHED"),
                        help="write the report from the JSON results of an earlier run in tests/bench/results "
                             "without measuring; STARTED and FINISHED are that run's times (UTC)")
    args = parser.parse_args()
    sizes = sorted(set(args.pis))
    if sizes[0] < 1 or sizes[-1] > 50:
        parser.error("--pis takes fleet sizes from 1 to 50")

    if args.report_only:
        results = [json.loads((RESULTS / f"pis-{pis}.json").read_text()) for pis in sizes]
        write_reports(args.output, results, machine(), *args.report_only)
        return 0

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    host = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    run([LABCTL, "down"])
    try:
        for pis in sizes:
            result = measure(pis, RESULTS / f"logs-{pis}")
            (RESULTS / f"pis-{pis}.json").write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        if not args.keep_lab:
            run([LABCTL, "down"])
    finished = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")

    write_reports(args.output, results, host, started, finished)
    return 0 if all(result["first"]["rc"] == 0 and result["rerun"]["rc"] == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
