# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render the fleet report of _fleet_report.py as one self-contained HTML page or as Markdown.

The HTML page loads nothing: its style and script are inline, and its Content
Security Policy allows only those two, by hash, so a browser fetches no other
resource even if a value in the report looked like markup. Every value is
escaped anyway.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import base64
import hashlib
import html

STATUS_ORDER = {"failing": 0, "warning": 1, "ok": 2}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 0.5rem; }
p.meta { color: #555; margin: 0 0 1rem; }
ul.summary { list-style: none; padding: 0; display: flex; gap: 1.5rem; margin: 0 0 1rem; }
ul.errors { color: #8b0000; }
table { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num { text-align: right; }
td.time { white-space: nowrap; }
td.notes { min-width: 24rem; }
td code { font-size: 0.8rem; }
tr.status-failing td { background: #fde2e2; }
tr.status-warning td { background: #fff7d6; }
td.cert-expiring { background: #ffd58a !important; font-weight: bold; }
td.cert-expired { background: #f4a3a3 !important; font-weight: bold; }
td ul { margin: 0; padding-left: 1.1rem; }
li.problem { color: #8b0000; }
li.warning { color: #6b4e00; }
"""

# Sorts on each cell's data-sort value (numbers numerically, text by locale),
# and on the host name when two rows are equal. Clicking a header again reverses.
SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  var headers = table.tHead.rows[0].cells;
  function key(row, index) {
    var cell = row.cells[index];
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent.trim() : value;
  }
  function compare(a, b) {
    if (a !== "" && b !== "" && !isNaN(Number(a)) && !isNaN(Number(b))) {
      return Number(a) - Number(b);
    }
    return a.localeCompare(b);
  }
  function sortBy(index, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (first, second) {
      var order = compare(key(first, index), key(second, index));
      if (order === 0) {
        order = compare(key(first, 0), key(second, 0));
      }
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var i = 0; i < headers.length; i++) {
      headers[i].setAttribute("aria-sort", i === index ? (descending ? "descending" : "ascending") : "none");
    }
  }
  Array.prototype.forEach.call(headers, function (header, index) {
    header.addEventListener("click", function () {
      sortBy(index, header.getAttribute("aria-sort") === "ascending");
    });
  });
}());
"""

# The table's columns in order, as (header, key). _row_cells builds the cells in the same order.
COLUMNS = (
    ("Pi", "host"),
    ("Status", "status"),
    ("IMSI", "imsi"),
    ("SIM ID", "sim_id"),
    ("SIM group", "group"),
    ("Thing", "thing"),
    ("Certificate", "certificate"),
    ("Not after", "not_after"),
    ("Days left", "days_left"),
    ("Link", "link"),
    ("Last MQTTS check", "check"),
    ("Checked at", "checked_at"),
    ("Connect (ms)", "connect_ms"),
    ("Publish (ms)", "publish_ms"),
    ("Problems and warnings", "notes"),
)


def _csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _escape(value):
    return html.escape("" if value is None else str(value), quote=True)


def _text(value, empty="-"):
    return empty if value is None or value == "" else str(value)


def _short_id(certificate_id):
    return certificate_id[:12] + "\u2026" if certificate_id and len(certificate_id) > 12 else _text(certificate_id)


def link_text(link):
    if link["state"] == "unknown":
        return "unknown"
    parts = [link["state"]]
    if link.get("interface"):
        parts.append(link["interface"])
    if link.get("ipv4_address"):
        parts.append(link["ipv4_address"])
    return " ".join(parts)


def check_text(check):
    if check.get("result") is None:
        return "none recorded" if check.get("source") is None else "unknown"
    text = check["result"]
    if check["result"] == "failed" and check.get("step"):
        text += " at " + check["step"]
    if check.get("source") == "fresh":
        # In check mode mqtt_check connects without publishing.
        text += " (fresh)" if check.get("published") is not False else " (fresh, connect only)"
    return text


def group_text(sim):
    return sim.get("group_name") or sim.get("group_id")


def certificate_status_text(certificate):
    """Return the certificate's AWS IoT status, and where the ID came from when the Pi was not read."""
    parts = [certificate["status"]] if certificate.get("status") else []
    if certificate.get("source") == "aws":
        parts.append("(from AWS IoT)")
    return " ".join(parts)


def certificate_text(certificate):
    if not certificate.get("id"):
        return None
    status = certificate_status_text(certificate)
    return certificate["id"] + (" " + status if status else "")


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

def _cell(text, sort=None, css=None, title=None, html_content=None):
    """Return one <td>. ``html_content`` must already be escaped, and every other value is escaped here."""
    attributes = ""
    if css:
        attributes += ' class="%s"' % _escape(css)
    if sort is not None:
        attributes += ' data-sort="%s"' % _escape(sort)
    if title:
        attributes += ' title="%s"' % _escape(title)
    content = html_content if html_content is not None else _escape(_text(text))
    return "<td%s>%s</td>" % (attributes, content)


def _certificate_css(certificate):
    if certificate.get("expired"):
        return "cert-expired"
    if certificate.get("expiring"):
        return "cert-expiring"
    return None


def _notes_html(row):
    items = ['<li class="problem">%s</li>' % _escape(text) for text in row["problems"]]
    items += ['<li class="warning">%s</li>' % _escape(text) for text in row["warnings"]]
    return "<ul>%s</ul>" % "".join(items) if items else ""


def _row_cells(row):
    sim, certificate, check = row["sim"], row["certificate"], row["mqtt_check"]
    expiry_css = _certificate_css(certificate)
    days_left = certificate.get("days_left")
    return [
        _cell(row["host"]),
        _cell(row["status"], sort=STATUS_ORDER.get(row["status"], 9)),
        _cell(sim.get("imsi"), sort=sim.get("imsi") or ""),
        _cell(sim.get("sim_id"), sort=sim.get("sim_id") or ""),
        _cell(group_text(sim), sort=group_text(sim) or "", title=sim.get("group_id")),
        _cell(row.get("thing_name"), sort=row.get("thing_name") or ""),
        _cell(None, sort=certificate.get("id") or "", title=certificate_text(certificate),
              html_content="<code>%s</code>%s" % (
                  _escape(_short_id(certificate.get("id"))),
                  " " + _escape(certificate_status_text(certificate)) if certificate_status_text(certificate) else "")),
        _cell(certificate.get("not_after"), sort=certificate.get("not_after") or "",
              css=" ".join(filter(None, ["time", expiry_css]))),
        _cell(days_left, sort="" if days_left is None else days_left, css=" ".join(filter(None, ["num", expiry_css]))),
        _cell(link_text(row["link"])),
        _cell(check_text(check), title=check.get("message")),
        _cell(check.get("checked_at"), sort=check.get("checked_at") or "", css="time"),
        _cell(check.get("connect_ms"), sort="" if check.get("connect_ms") is None else check["connect_ms"], css="num"),
        _cell(check.get("publish_ms"), sort="" if check.get("publish_ms") is None else check["publish_ms"], css="num"),
        _cell(None, sort=len(row["problems"]) * 1000 + len(row["warnings"]), css="notes",
              html_content=_notes_html(row)),
    ]


def render_html(report, title="Fleet report"):
    """Return the report as one HTML page that needs no other file and contacts no server."""
    summary = report["summary"]
    csp = "default-src 'none'; style-src %s; script-src %s; base-uri 'none'; form-action 'none'" % (
        _csp_hash(STYLE), _csp_hash(SCRIPT))
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % _escape(csp),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % _escape(title),
        "<style>%s</style>" % STYLE,
        "</head>",
        "<body>",
        "<h1>%s</h1>" % _escape(title),
        '<p class="meta">Generated at <time id="generated-at">%s</time>. Certificates that expire within '
        '<span id="expiry-days">%s</span> days are highlighted%s.</p>' % (
            _escape(report["generated_at"]), _escape(report["expiry_warning_days"]),
            "; the fleet's SIM group is %s" % _escape(report["group_name"]) if report.get("group_name") else ""),
        '<ul class="summary" id="summary">',
    ]

    for key, label in (("pis", "Pis"), ("ok", "OK"), ("warning", "Warning"), ("failing", "Failing"),
                       ("expiring", "Expiring certificates")):
        lines.append('<li data-key="%s">%s: <strong>%s</strong></li>' % (key, label, _escape(summary.get(key, 0))))
    lines.append("</ul>")

    if report.get("errors"):
        lines.append('<ul class="errors" id="errors">%s</ul>'
                     % "".join("<li>%s</li>" % _escape(error) for error in report["errors"]))

    lines.append('<table id="fleet">')
    lines.append("<thead><tr>%s</tr></thead>" % "".join(
        '<th scope="col" data-column="%s" aria-sort="none">%s</th>' % (key, _escape(label)) for label, key in COLUMNS))
    lines.append("<tbody>")
    for row in report["pis"]:
        lines.append('<tr class="status-%s" data-host="%s" data-status="%s">%s</tr>' % (
            _escape(row["status"]), _escape(row["host"]), _escape(row["status"]), "".join(_row_cells(row))))
    lines.append("</tbody>")
    lines.append("</table>")

    lines.append("<script>%s</script>" % SCRIPT)
    lines.append("</body>")
    lines.append("</html>")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

# Characters that CommonMark or a table could read as markup. Each gets a backslash.
_MARKDOWN_SPECIAL = set("\\`*_[]<>|&~!")


def escape_markdown(value):
    """Return ``value`` as one line of Markdown text that renders literally, also inside a table cell."""
    text = " ".join(_text(value).split())
    return "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in text)


def render_markdown(report, title="Fleet report"):
    """Return the report as a Markdown document with a summary, a table and each Pi's problems and warnings."""
    summary = report["summary"]
    lines = [
        "# %s" % escape_markdown(title),
        "",
        "Generated at %s. Certificates that expire within %s days are flagged%s." % (
            escape_markdown(report["generated_at"]), escape_markdown(report["expiry_warning_days"]),
            "; the fleet's SIM group is %s" % escape_markdown(report["group_name"]) if report.get("group_name") else ""),
        "",
        "| Pis | OK | Warning | Failing | Expiring certificates |",
        "| ---: | ---: | ---: | ---: | ---: |",
        "| %s |" % " | ".join(escape_markdown(summary.get(key, 0))
                              for key in ("pis", "ok", "warning", "failing", "expiring")),
        "",
    ]
    if report.get("errors"):
        lines.append("Lookups that failed:")
        lines.append("")
        lines.extend("- %s" % escape_markdown(error) for error in report["errors"])
        lines.append("")
    headers = [label for label, key in COLUMNS if key != "notes"]
    lines.append("| %s |" % " | ".join(headers))
    lines.append("| %s |" % " | ".join("---" for dummy in headers))
    for row in report["pis"]:
        sim, certificate, check = row["sim"], row["certificate"], row["mqtt_check"]
        status = row["status"].upper() if row["status"] == "failing" else row["status"]
        days_left = _text(certificate.get("days_left"))
        if certificate.get("expired"):
            days_left += " (expired)"
        elif certificate.get("expiring"):
            days_left += " (expiring)"
        cells = [row["host"], status, sim.get("imsi"), sim.get("sim_id"), group_text(sim), row.get("thing_name"),
                 certificate_text(certificate), certificate.get("not_after"), days_left, link_text(row["link"]),
                 check_text(check), check.get("checked_at"), check.get("connect_ms"), check.get("publish_ms")]
        lines.append("| %s |" % " | ".join(escape_markdown(cell) for cell in cells))
    noted = [row for row in report["pis"] if row["problems"] or row["warnings"]]
    if noted:
        lines.append("")
        lines.append("## Problems and warnings")
        lines.append("")
        for row in noted:
            lines.append("- %s (%s)" % (escape_markdown(row["host"]), escape_markdown(row["status"])))
            lines.extend("  - Problem: %s" % escape_markdown(text) for text in row["problems"])
            lines.extend("  - Warning: %s" % escape_markdown(text) for text in row["warnings"])
    return "\n".join(lines) + "\n"
