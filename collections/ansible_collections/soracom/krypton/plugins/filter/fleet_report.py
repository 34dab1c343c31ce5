# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that build the fleet report of playbooks/report.yml and render it.

Their documentation is in the YAML files of the same names beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.soracom.krypton.plugins.plugin_utils._fleet_report import (
    FleetReportError,
    build_report,
    thing_names,
)
from ansible_collections.soracom.krypton.plugins.plugin_utils._fleet_report_render import (
    render_html,
    render_markdown,
)


def fleet_report(devices, sims=None, groups=None, things=None, expiry_warning_days=30, group_name=None,
                 thing_name_pattern=None, now=None):
    try:
        return build_report(devices, sims=sims, groups=groups, things=things,
                            expiry_warning_days=expiry_warning_days, group_name=group_name,
                            thing_name_pattern=thing_name_pattern, now=now)
    except FleetReportError as exc:
        raise AnsibleFilterError("fleet_report: %s" % exc) from exc


def fleet_report_thing_names(devices, sims=None, pattern=None):
    try:
        return thing_names(devices, sims=sims, pattern=pattern)
    except FleetReportError as exc:
        raise AnsibleFilterError("fleet_report_thing_names: %s" % exc) from exc


def _check_report(report, filter_name):
    if not isinstance(report, dict) or not isinstance(report.get("pis"), list) or "summary" not in report:
        raise AnsibleFilterError("%s expects the output of soracom.krypton.fleet_report, got %s."
                                 % (filter_name, type(report).__name__))


def fleet_report_html(report, title="Fleet report"):
    _check_report(report, "fleet_report_html")
    return render_html(report, title=title)


def fleet_report_markdown(report, title="Fleet report"):
    _check_report(report, "fleet_report_markdown")
    return render_markdown(report, title=title)


class FilterModule:
    """The fleet report filters."""

    def filters(self):
        return {
            "fleet_report": fleet_report,
            "fleet_report_thing_names": fleet_report_thing_names,
            "fleet_report_html": fleet_report_html,
            "fleet_report_markdown": fleet_report_markdown,
        }
