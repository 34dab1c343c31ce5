# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.soracom.krypton.plugins.filter.fleet_report import FilterModule
from ansible_collections.soracom.krypton.plugins.plugin_utils._fleet_report_render import (
    SCRIPT,
    STYLE,
    escape_markdown,
    render_html,
    render_markdown,
)

HOSTILE = "<script>alert('x')</script>&\"|*_`[link](http://example.invalid)"


def row(host, status="ok", **changes):
    entry = {
        "host": host, "status": status, "problems": [], "warnings": [], "reachable": True, "unreachable_reason": None,
        "sim": {"imsi": "440103000000001", "sim_id": "8981100000000000001", "status": "active", "online": True,
                "group_id": "gid", "group_name": "krypton-pis", "found": True},
        "thing_name": "krypton-440103000000001", "thing_found": True,
        "certificate": {"id": "ab" * 32, "source": "device", "status": "ACTIVE", "attached": True,
                        "not_after": "2027-06-01T00:00:00Z", "days_left": 365, "expiring": False, "expired": False,
                        "bootstrapped_at": None},
        "link": {"interface": "ppp0", "up": True, "ipv4_address": "10.213.0.11", "ready": True, "problems": [],
                 "state": "up"},
        "mqtt_check": {"source": "record", "result": "ok", "checked_at": "2026-05-31T12:00:00Z", "connect_ms": 64,
                       "publish_ms": 3, "step": None, "message": None},
    }
    entry.update(changes)
    return entry


def report(*rows):
    return {"format": 1, "generated_at": "2026-06-01T00:00:00Z", "expiry_warning_days": 30, "group_name": "krypton-pis",
            "summary": {"pis": len(rows), "ok": 0, "warning": 0, "failing": 0, "expiring": 0}, "errors": [],
            "pis": list(rows)}


class ElementCollector(HTMLParser):
    """Collects every start tag with its attributes, and the text of each <td>."""

    def __init__(self):
        super().__init__()
        self.elements = []
        self.cells = []
        self._in_td = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "td":
            self._in_td = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td = False

    def handle_data(self, data):
        if self._in_td:
            self.cells[-1] += data


def parse(page):
    parser = ElementCollector()
    parser.feed(page)
    return parser


def test_html_escapes_values():
    hostile = row(HOSTILE, status="failing", problems=[HOSTILE])
    page = render_html(report(hostile), title=HOSTILE)
    assert "<script>alert" not in page
    assert page.count("<script>") == 1
    parsed = parse(page)
    assert parsed.cells[0] == HOSTILE
    assert [attrs["data-host"] for tag, attrs in parsed.elements if tag == "tr" and "data-host" in attrs] == [HOSTILE]


def test_html_loads_nothing_from_outside():
    page = render_html(report(row("pi01")))
    for tag, attrs in parse(page).elements:
        assert "src" not in attrs, tag
        assert "href" not in attrs, tag
    assert not re.search(r"https?://", page)


def test_html_csp_allows_only_inline_parts():
    page = render_html(report(row("pi01")))
    csp = next(attrs["content"] for tag, attrs in parse(page).elements
               if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert csp.startswith("default-src 'none';")
    for text in (STYLE, SCRIPT):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert "'sha256-%s'" % digest in csp
    assert "<style>%s</style>" % STYLE in page
    assert "<script>%s</script>" % SCRIPT in page


def test_html_marks_failing_and_expiring():
    expiring = row("pi02", status="warning", certificate=dict(row("x")["certificate"], expiring=True, days_left=9))
    page = render_html(report(row("pi01", status="failing"), expiring))
    parsed = parse(page)
    rows = {attrs["data-host"]: attrs["class"] for tag, attrs in parsed.elements if tag == "tr" and "data-host" in attrs}
    assert rows == {"pi01": "status-failing", "pi02": "status-warning"}
    expiring_cells = [attrs for tag, attrs in parsed.elements if tag == "td" and "cert-expiring" in attrs.get("class", "")]
    assert len(expiring_cells) == 2
    assert {attrs.get("data-sort") for attrs in expiring_cells} == {"2027-06-01T00:00:00Z", "9"}


def test_markdown_escapes_cells():
    text = render_markdown(report(row("pi|01\nnext", problems=["a | b"], status="failing")))
    table_rows = [line for line in text.splitlines() if line.startswith("| pi")]
    assert len(table_rows) == 1
    assert table_rows[0].startswith("| pi\\|01 next | FAILING |")
    assert "  - Problem: a \\| b" in text


def test_escape_markdown():
    assert escape_markdown("<b>_x_</b>") == "\\<b\\>\\_x\\_\\</b\\>"
    assert escape_markdown(None) == "-"
    assert escape_markdown("a\n\tb") == "a b"


def test_filters_reject_other_input():
    filters = FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match="expects the output of soracom.krypton.fleet_report"):
        filters["fleet_report_html"]({"pis": "x"})
    with pytest.raises(AnsibleFilterError, match="expiry_warning_days"):
        filters["fleet_report"]([], expiry_warning_days=-3)
