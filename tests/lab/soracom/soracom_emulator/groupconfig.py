# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Group configuration namespaces and the parameter checks the emulator applies to them."""
from __future__ import annotations

from .errors import api_error
from .validation import check_field

# Enum of the namespace path parameter of PUT /groups/{group_id}/configuration/{namespace}.
NAMESPACES = (
    "SoracomAir",
    "SoracomBeam",
    "SoracomEndorse",
    "SoracomFlux",
    "SoracomFunk",
    "SoracomFunnel",
    "SoracomHarvest",
    "SoracomHarvestFiles",
    "SoracomKrypton",
    "SoracomOrbit",
    "UnifiedEndpoint",
)
# The spec's enum for DELETE .../configuration/{namespace}/{name} lacks SoracomOrbit.
PARAMETER_DELETE_NAMESPACES = tuple(name for name in NAMESPACES if name != "SoracomOrbit")

# String fields of SoracomKrypton.AwsIot that Krypton reads for AWS IoT bootstrap.
KRYPTON_AWS_IOT_FIELDS = ("region", "credentialsId", "policyName", "thingNamePattern", "host")

# Typed fields of SoracomAir.metadata, from the Metadata Service example in the spec.
_METADATA_FIELDS = {
    "enabled": bool,
    "readonly": bool,
    "allowOrigin": str,
    "minimizeResponseBody": bool,
}


def check_namespace(namespace: str, allowed: tuple[str, ...] = NAMESPACES) -> str:
    """Raise 400 unless ``namespace`` is one of ``allowed``."""
    if namespace not in allowed:
        raise api_error("field_value_invalid", field="namespace",
                        detail=f"'{namespace}' is not one of {', '.join(allowed)}")
    return namespace


def check_parameter(namespace: str, key: str, value) -> None:
    """Type-check one configuration parameter whose shape the emulator models.

    The spec types every namespace as a free-form object and documents no SoracomKrypton keys.
    Unknown keys therefore pass unchecked, because Krypton also serves Azure IoT, Amazon Cognito
    and SORACOM Inventory, whose keys the lab does not model.
    """
    field = f"{namespace}.{key}"
    if namespace == "SoracomKrypton":
        _check_krypton_parameter(field, key, value)
    elif namespace == "SoracomAir":
        _check_air_parameter(field, key, value)


def check_configuration(configuration) -> dict:
    """Check the ``configuration`` object of POST /groups: namespace -> object of parameters."""
    check_field(configuration, "configuration", dict)
    for namespace, parameters in configuration.items():
        check_namespace(namespace)
        check_field(parameters, f"configuration.{namespace}", dict)
        for key, value in parameters.items():
            check_parameter(namespace, key, value)
    return configuration


def _check_krypton_parameter(field: str, key: str, value) -> None:
    if key == "enabled":
        check_field(value, field, bool)
    elif key == "AwsIot":
        check_field(value, field, dict)
        for name in KRYPTON_AWS_IOT_FIELDS:
            if name in value:
                check_field(value[name], f"{field}.{name}", str)


def _check_air_parameter(field: str, key: str, value) -> None:
    if key == "metadata":
        check_field(value, field, dict)
        for name, expected in _METADATA_FIELDS.items():
            if name in value:
                check_field(value[name], f"{field}.{name}", expected)
    elif key == "userdata":
        check_field(value, field, str)
