# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIM groups and their SoracomKrypton configuration: the logic of soracom_group and
soracom_krypton_config.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    SoracomApiError,
    SoracomError,
)
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_credentials import list_credentials

try:
    import botocore.loaders
except ImportError:
    HAS_BOTOCORE = False
else:
    HAS_BOTOCORE = True


KRYPTON_NAMESPACE = "SoracomKrypton"

# Used to validate a region name when botocore is not installed: an area code,
# an optional partition infix (us-gov, us-iso, eu-isoe and so on), a direction
# and a number, as in ap-northeast-1, cn-north-1 or us-gov-west-1.
AWS_REGION_PATTERN = re.compile(
    r"^(?:af|ap|ca|cn|eu|il|me|mx|sa|us)(?:-(?:gov|iso|isob|isoe|isof))?"
    r"-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]+$"
)
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
HOSTNAME_LABEL_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
IOT_HOST_REGION_PATTERN = re.compile(r"\.iot\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


# ---------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------

def group_path(group_id, *parts):
    return "/groups/" + "/".join(quote(str(part), safe="") for part in (group_id,) + parts)


def find_groups_by_name(client, name):
    """Return every group whose ``name`` tag equals ``name`` exactly."""
    groups = client.paginate("/groups", query={"tag_name": "name", "tag_value": name})
    return [group for group in groups if (group.get("tags") or {}).get("name") == name]


def get_group(client, group_id):
    """Return the group with this id, or None when the API returns HTTP 404."""
    try:
        return client.get(group_path(group_id))
    except SoracomApiError as exc:
        if exc.status == 404:
            return None
        raise


def ambiguous_group_error(name, groups):
    ids = ", ".join(sorted(str(group.get("groupId")) for group in groups))
    return SoracomError(
        "%d SIM groups are named %r (group IDs: %s). Group names are not unique in SORACOM, so "
        "pass group_id, or rename or delete the extra groups." % (len(groups), name, ids)
    )


def resolve_group(client, group_id=None, group_name=None):
    """Return the group chosen by id or by name, or None when it does not exist.

    Raise SoracomError when several groups have the name.
    """
    if group_id:
        return get_group(client, group_id)
    groups = find_groups_by_name(client, group_name)
    if len(groups) > 1:
        raise ambiguous_group_error(group_name, groups)
    return groups[0] if groups else None


def describe_group(group):
    """Return the documented ``group`` result for an API Group object."""
    return dict(
        group_id=group.get("groupId"),
        tags=dict(group.get("tags") or {}),
        configuration=group.get("configuration") or {},
        operator_id=group.get("operatorId"),
        created_time=group.get("createdTime"),
        last_modified_time=group.get("lastModifiedTime"),
    )


def _group_label(group_id, group_name):
    return "group ID %s" % group_id if group_id else "group named %r" % group_name


def manage_group(client, params, context):
    """Create, retag or delete the SIM group whose ``name`` tag is ``params['name']``."""
    name = params["name"]
    tags = params.get("tags")
    purge_tags = params.get("purge_tags")
    state = params.get("state") or "present"

    if not name:
        raise SoracomError("name must not be empty.")
    wanted_tags = None
    if tags is not None:
        wanted_tags = {}
        for key, value in tags.items():
            if value is None:
                raise SoracomError("Tag %r has no value. SORACOM tag values are strings." % key)
            wanted_tags[str(key)] = value if isinstance(value, str) else str(value)
        if "name" in wanted_tags and wanted_tags["name"] != name:
            raise SoracomError(
                "tags contains name=%r, which differs from the name option %r. Set the group's name with name only."
                % (wanted_tags["name"], name)
            )
        wanted_tags.pop("name", None)

    groups = find_groups_by_name(client, name)
    if len(groups) > 1:
        raise ambiguous_group_error(name, groups)
    current = groups[0] if groups else None
    result = dict(changed=False)

    if state == "absent":
        if current is not None:
            result["changed"] = True
            if not context.check_mode:
                client.delete(group_path(current["groupId"]))
        if context.diff:
            result["diff"] = dict(
                before=_group_diff_view(current),
                after={},
            )
        return result

    if current is None:
        create_tags = dict(wanted_tags or {})
        create_tags["name"] = name
        result["changed"] = True
        if context.check_mode:
            group = dict(group_id=None, tags=create_tags, configuration={}, operator_id=client.operator_id,
                         created_time=None, last_modified_time=None)
        else:
            try:
                created = client.post("/groups", body={"tags": create_tags})
            except SoracomApiError as exc:
                if exc.status is None or exc.status >= 500:
                    exc.message += (
                        " The group may have been created anyway. Run the task again, and it finds the group by name."
                    )
                    exc.args = (exc.message,)
                raise
            group = describe_group(created)
        result["group"] = group
        if context.diff:
            result["diff"] = dict(before={}, after=dict(name=name, tags=create_tags))
        return result

    current_tags = dict(current.get("tags") or {})
    to_set = {}
    to_delete = []
    if wanted_tags is not None:
        to_set = dict((key, value) for key, value in wanted_tags.items() if current_tags.get(key) != value)
        if purge_tags:
            to_delete = sorted(key for key in current_tags if key != "name" and key not in wanted_tags)

    after_tags = dict(current_tags)
    after_tags.update(to_set)
    for key in to_delete:
        after_tags.pop(key, None)

    group = current
    if to_set or to_delete:
        result["changed"] = True
        if not context.check_mode:
            group_id = current["groupId"]
            if to_set:
                group = client.put(group_path(group_id, "tags"),
                                   body=[{"tagName": key, "tagValue": value} for key, value in sorted(to_set.items())])
            for key in to_delete:
                client.delete(group_path(group_id, "tags", key))
            if to_delete or not isinstance(group, dict):
                group = client.get(group_path(group_id))
        else:
            group = dict(current)
            group["tags"] = after_tags
    result["group"] = describe_group(group)
    if context.diff:
        result["diff"] = dict(before=_group_diff_view(current), after=dict(name=name, tags=after_tags))
    return result


def _group_diff_view(group):
    if group is None:
        return {}
    tags = dict(group.get("tags") or {})
    return dict(name=tags.get("name"), tags=tags)


# ---------------------------------------------------------------------------
# SoracomKrypton group configuration
# ---------------------------------------------------------------------------

# Option names inside aws_iot and the keys of the AwsIot value on the wire.
# NOTE: SORACOM's OpenAPI spec does not describe the AwsIot value. region,
# credentialsId, policyName, thingNamePattern and host are the keys used in
# public "soracom groups put-config" examples. rootCaCertificate is unconfirmed:
# it follows the name of the Krypton bootstrap response field.
AWS_IOT_WIRE_KEYS = (
    ("region", "region"),
    ("credentials_id", "credentialsId"),
    ("policy_name", "policyName"),
    ("thing_name_pattern", "thingNamePattern"),
    ("host", "host"),
    ("root_ca_certificate", "rootCaCertificate"),
)


def known_aws_regions():
    """Return the region names in botocore's endpoint data, or None without botocore."""
    if not HAS_BOTOCORE:
        return None
    try:
        data = botocore.loaders.create_loader().load_data("endpoints")
    except Exception:  # pylint: disable=broad-except
        # Any failure to read botocore's data falls back to the name pattern.
        return None
    regions = set()
    for partition in data.get("partitions", []):
        regions.update(partition.get("regions", {}))
    return regions or None


def validate_region(region):
    """Raise SoracomError unless ``region`` is a known AWS region name."""
    known = known_aws_regions()
    if known is not None:
        if region not in known:
            raise SoracomError(
                "aws_iot.region %r is not an AWS region known to the installed botocore (%s). Check the "
                "spelling (for example ap-northeast-1), or upgrade botocore if the region is new."
                % (region, getattr(botocore, "__version__", "unknown version"))
            )
        return
    if not AWS_REGION_PATTERN.match(region):
        raise SoracomError(
            "aws_iot.region %r is not an AWS region name (such as ap-northeast-1 or us-gov-west-1)." % region
        )


def validate_aws_iot(aws_iot, warn):
    """Check aws_iot before any request. Raise SoracomError on the first invalid value."""
    pattern = aws_iot.get("thing_name_pattern")
    if pattern is not None and "$imsi" not in pattern:
        raise SoracomError(
            "aws_iot.thing_name_pattern %r does not contain $imsi. Without it every SIM of the group "
            "gets the same thing name. Use a pattern such as 'pi-$imsi'." % pattern
        )

    region = aws_iot.get("region")
    if region is not None:
        validate_region(region)

    host = aws_iot.get("host")
    if host is not None:
        normalized = host.lower().rstrip(".")
        labels = normalized.split(".")
        if (not normalized.endswith(AWS_HOST_SUFFIXES)
                or not all(HOSTNAME_LABEL_PATTERN.match(label) for label in labels)):
            raise SoracomError(
                "aws_iot.host %r is not an AWS IoT data endpoint host name ending in .amazonaws.com or "
                ".amazonaws.com.cn. Give the host name only, without scheme or port, as returned by "
                "'aws iot describe-endpoint --endpoint-type iot:Data-ATS'." % host
            )
        match = IOT_HOST_REGION_PATTERN.search(normalized)
        if match and region is not None and match.group(1) != region:
            raise SoracomError(
                "aws_iot.host %r is in region %s, but aws_iot.region is %s. Certificates Krypton creates "
                "in one region do not work at another region's endpoint." % (host, match.group(1), region)
            )
        if "-ats." not in normalized:
            warn(
                "aws_iot.host %r is not an ATS endpoint (its first label does not end in -ats). Devices "
                "using Amazon Root CA 1 fail TLS against a legacy endpoint. Use the iot:Data-ATS endpoint." % host
            )


def krypton_config_view(namespace):
    """Return the ``config`` result for the SoracomKrypton namespace of a group."""
    view = {}
    for key, value in (namespace or {}).items():
        if key == "AwsIot" and isinstance(value, dict):
            view["aws_iot"] = camel_dict_to_snake_dict(value)
        elif isinstance(value, dict):
            view[_snake(key)] = camel_dict_to_snake_dict(value)
        else:
            view[_snake(key)] = value
    return view


def _snake(name):
    return camel_dict_to_snake_dict({name: None}).popitem()[0]


def desired_krypton_namespace(current, enabled, aws_iot):
    """Return the SoracomKrypton keys and values the module would write.

    AwsIot starts from the current value, so keys this module does not manage
    and an unset root_ca_certificate keep their values.
    """
    desired = {"enabled": enabled}
    if aws_iot is not None:
        current_aws_iot = current.get("AwsIot")
        merged = dict(current_aws_iot) if isinstance(current_aws_iot, dict) else {}
        for option, wire_key in AWS_IOT_WIRE_KEYS:
            value = aws_iot.get(option)
            if value is not None:
                merged[wire_key] = value
        desired["AwsIot"] = merged
    return desired


def manage_krypton_config(client, params, context):
    """Set or remove the SoracomKrypton configuration of a group."""
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    enabled = params.get("enabled")
    if enabled is None:
        enabled = True
    aws_iot = params.get("aws_iot")
    state = params.get("state") or "present"

    if bool(group_id) == bool(group_name):
        raise SoracomError("Give exactly one of group_id and group_name.")
    if state == "present" and aws_iot is not None:
        validate_aws_iot(aws_iot, context.warn)

    label = _group_label(group_id, group_name)
    group = resolve_group(client, group_id=group_id, group_name=group_name)
    result = dict(changed=False, group_id=group.get("groupId") if group else None)

    if group is None:
        if state == "absent":
            result["config"] = {}
            if context.diff:
                result["diff"] = dict(before={}, after={})
            return result
        if context.check_mode:
            # In check mode an earlier task may not have created the group yet.
            context.warn("The %s does not exist yet. Check mode assumes that an earlier task creates it." % label)
            desired = desired_krypton_namespace({}, enabled, aws_iot)
            result.update(changed=True, config=krypton_config_view(desired))
            if context.diff:
                result["diff"] = dict(before={}, after=krypton_config_view(desired))
            return result
        raise SoracomError(
            "The %s does not exist. Create it first, for example with soracom.krypton.soracom_group." % label
        )

    group_id = group["groupId"]
    current = dict((group.get("configuration") or {}).get(KRYPTON_NAMESPACE) or {})

    if state == "absent":
        keys = sorted(current)
        if keys:
            result["changed"] = True
            if not context.check_mode:
                for key in keys:
                    client.delete(group_path(group_id, "configuration", KRYPTON_NAMESPACE, key))
        result["config"] = {}
        if context.diff:
            result["diff"] = dict(before=krypton_config_view(current), after={})
        return result

    if aws_iot is not None and aws_iot.get("credentials_id"):
        _check_credential_set(client, aws_iot["credentials_id"], context)

    desired = desired_krypton_namespace(current, enabled, aws_iot)
    changes = [{"key": key, "value": value} for key, value in desired.items() if current.get(key) != value]
    after = dict(current)
    after.update(desired)

    if changes:
        result["changed"] = True
        if not context.check_mode:
            updated = client.put(group_path(group_id, "configuration", KRYPTON_NAMESPACE), body=changes)
            if isinstance(updated, dict) and isinstance(updated.get("configuration"), dict):
                after = dict(updated["configuration"].get(KRYPTON_NAMESPACE) or {})
    result["config"] = krypton_config_view(after)
    if context.diff:
        result["diff"] = dict(before=krypton_config_view(current), after=krypton_config_view(after))
    return result


def _check_credential_set(client, credentials_id, context):
    matches = list_credentials(client, credentials_id)
    if not matches:
        message = ("aws_iot.credentials_id %r names no SORACOM credential set, so Krypton could not call AWS. "
                   "Create it first, for example with soracom.krypton.soracom_credential." % credentials_id)
        if context.check_mode:
            context.warn(message + " Check mode assumes that an earlier task creates it.")
            return
        raise SoracomError(message)
    if matches[0].get("type") != "aws-credentials":
        raise SoracomError(
            "aws_iot.credentials_id %r is a credential set of type %r, but Krypton for AWS IoT needs type aws-credentials."
            % (credentials_id, matches[0].get("type"))
        )
