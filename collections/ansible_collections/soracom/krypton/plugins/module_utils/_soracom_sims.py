# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIM group membership and SIM facts: the logic of soracom_sim and soracom_sim_info.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    SoracomApiError,
    SoracomError,
)
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_groups import (
    _group_label,
    find_groups_by_name,
    resolve_group,
)

IMSI_PATTERN = re.compile(r"^[0-9]{15}$")
# A SORACOM SIM ID is the SIM's ICCID: 18 to 20 digits, check digit included.
SIM_ID_PATTERN = re.compile(r"^[0-9]{18,20}$")


# ---------------------------------------------------------------------------
# SIMs
# ---------------------------------------------------------------------------

def validate_sim_identifiers(imsis, sim_ids):
    """Raise SoracomError listing every IMSI and SIM ID that is malformed."""
    problems = []
    bad_imsis = [imsi for imsi in imsis if not IMSI_PATTERN.match(imsi)]
    bad_sim_ids = [sim_id for sim_id in sim_ids if not SIM_ID_PATTERN.match(sim_id)]
    if bad_imsis:
        problems.append("IMSIs must be exactly 15 digits: %s" % ", ".join(repr(item) for item in bad_imsis))
    if bad_sim_ids:
        problems.append("SIM IDs must be 18 to 20 digits: %s" % ", ".join(repr(item) for item in bad_sim_ids))
    if problems:
        raise SoracomError("Invalid SIM identifiers. " + ". ".join(problems) + ". Nothing was changed.")


def sim_imsis(sim):
    """Return every IMSI of an API Sim object, the primary IMSI first."""
    imsis = []

    def add(imsi):
        if imsi and imsi not in imsis:
            imsis.append(str(imsi))

    profiles = sim.get("profiles") or {}
    active = profiles.get(sim.get("activeProfileId")) if isinstance(profiles, dict) else None
    if isinstance(active, dict):
        add(active.get("primaryImsi"))
    add(sim.get("imsi"))
    if isinstance(profiles, dict):
        for profile in profiles.values():
            if not isinstance(profile, dict):
                continue
            add(profile.get("primaryImsi"))
            for key, subscriber in (profile.get("subscribers") or {}).items():
                add((subscriber or {}).get("imsi") or key)
    add((sim.get("sessionStatus") or {}).get("imsi"))
    return imsis


def sim_iccid(sim):
    if sim.get("iccid"):
        return sim["iccid"]
    if sim.get("activeProfileId"):
        return sim["activeProfileId"]
    profiles = sim.get("profiles") or {}
    for key, profile in profiles.items():
        return (profile or {}).get("iccid") or key
    return None


def describe_sim(sim):
    """Return the documented ``sims`` item of soracom_sim_info for an API Sim object."""
    imsis = sim_imsis(sim)
    session = sim.get("sessionStatus") or {}
    return dict(
        sim_id=sim.get("simId"),
        iccid=sim_iccid(sim),
        imsi=imsis[0] if imsis else None,
        imsis=imsis,
        group_id=sim.get("groupId"),
        status=sim.get("status"),
        tags=dict(sim.get("tags") or {}),
        speed_class=sim.get("speedClass"),
        session_status=dict(
            online=bool(session.get("online")),
            ip_address=session.get("ueIpAddress"),
        ),
    )


def list_sims(client):
    return client.paginate("/sims")


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _string_list(values):
    return [str(value).strip() for value in (values or [])]


def select_sims(sims, imsis, sim_ids):
    """Find the SIMs named by IMSI or SIM ID.

    Return (matches, unknown). ``matches`` lists (Sim object, IMSI it was named
    by or None) in input order, SIM IDs first, each SIM once. ``unknown``
    lists the identifiers no SIM has.
    """
    by_sim_id = {}
    by_imsi = {}
    for sim in sims:
        if sim.get("simId"):
            by_sim_id[str(sim["simId"])] = sim
        for imsi in sim_imsis(sim):
            by_imsi[imsi] = sim

    matches = []
    matched_ids = set()
    unknown = []
    for kind, identifiers, index in (("SIM ID", sim_ids, by_sim_id), ("IMSI", imsis, by_imsi)):
        for identifier in identifiers:
            sim = index.get(identifier)
            if sim is None:
                unknown.append("%s %s" % (kind, identifier))
                continue
            if sim.get("simId") not in matched_ids:
                matched_ids.add(sim.get("simId"))
                matches.append((sim, identifier if kind == "IMSI" else None))
    return matches, unknown


def manage_sim(client, params, context):
    """Put SIMs into a group, or take them out of their group."""
    imsis = _unique(_string_list(params.get("imsis")))
    sim_ids = _unique(_string_list(params.get("sim_ids")))
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    state = params.get("state") or "present"

    if not imsis and not sim_ids:
        raise SoracomError("Give at least one SIM in imsis or sim_ids.")
    validate_sim_identifiers(imsis, sim_ids)
    if group_id and group_name:
        raise SoracomError("group_id and group_name are mutually exclusive.")
    if state == "present" and not (group_id or group_name):
        raise SoracomError("state=present needs group_id or group_name: the group to put the SIMs in.")

    sims, unknown = select_sims(list_sims(client), imsis, sim_ids)
    if unknown:
        raise SoracomError(
            "%d SIM(s) not found in this SORACOM account: %s. Nothing was changed."
            % (len(unknown), ", ".join(unknown))
        )

    target_group_id = None
    group_missing = False
    if group_id or group_name:
        group = resolve_group(client, group_id=group_id, group_name=group_name)
        if group is None:
            group_missing = True
            label = _group_label(group_id, group_name)
            if state == "present":
                if not context.check_mode:
                    raise SoracomError(
                        "The %s does not exist. Create it first, for example with soracom.krypton.soracom_group. "
                        "Nothing was changed." % label
                    )
                context.warn("The %s does not exist yet. Check mode assumes that an earlier task creates it." % label)
        else:
            target_group_id = group["groupId"]

    plan = []
    for sim, matched_imsi in sims:
        before = sim.get("groupId")
        if state == "present":
            needs_change = group_missing or before != target_group_id
            after = target_group_id if needs_change else before
        elif group_id or group_name:
            needs_change = not group_missing and before is not None and before == target_group_id
            after = None if needs_change else before
        else:
            needs_change = before is not None
            after = None
        imsis_of_sim = sim_imsis(sim)
        plan.append(dict(
            sim_id=sim.get("simId"),
            imsi=matched_imsi or (imsis_of_sim[0] if imsis_of_sim else None),
            group_id_before=before,
            group_id=after,
            changed=needs_change,
        ))

    done = []
    for item in plan:
        if item["changed"] and not context.check_mode:
            path = "/sims/" + quote(item["sim_id"], safe="")
            try:
                if state == "present":
                    updated = client.post(path + "/set_group", body={"groupId": target_group_id}, idempotent=True)
                else:
                    updated = client.post(path + "/unset_group", idempotent=True)
            except SoracomApiError as exc:
                changed_so_far = [entry for entry in done if entry["changed"]]
                exc.message += " %d SIM(s) had already been changed before this failure, see sims." % len(changed_so_far)
                exc.args = (exc.message,)
                exc.result = dict(changed=bool(changed_so_far), sims=done)
                raise
            if isinstance(updated, dict) and "groupId" in updated:
                item["group_id"] = updated.get("groupId")
        done.append(item)

    result = dict(changed=any(item["changed"] for item in plan), sims=plan)
    if context.diff:
        result["diff"] = dict(
            before=dict((item["sim_id"], item["group_id_before"]) for item in plan),
            after=dict((item["sim_id"], item["group_id"]) for item in plan),
        )
    return result


def manage_sim_info(client, params, context):
    """Return the SIMs that match every given filter."""
    imsis = _unique(_string_list(params.get("imsis")))
    sim_ids = _unique(_string_list(params.get("sim_ids")))
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    tag_name = params.get("tag_name")
    tag_value = params.get("tag_value")
    validate_sim_identifiers(imsis, sim_ids)

    group_ids = None
    if group_id:
        group_ids = {group_id}
    elif group_name:
        group_ids = set(group.get("groupId") for group in find_groups_by_name(client, group_name))
        if not group_ids:
            return dict(changed=False, sims=[])

    selected = []
    for sim in list_sims(client):
        described = describe_sim(sim)
        if sim_ids and described["sim_id"] not in sim_ids:
            continue
        if imsis and not set(imsis) & set(described["imsis"]):
            continue
        if group_ids is not None and described["group_id"] not in group_ids:
            continue
        if tag_name is not None and described["tags"].get(tag_name) != tag_value:
            continue
        selected.append(described)
    return dict(changed=False, sims=selected)
