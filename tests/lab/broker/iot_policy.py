# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse and evaluate AWS IoT Core policies for the lab broker.

The module covers the part of the policy language that device policies use. A document has
Version, Id and Statement (a list or one object). A statement has Sid, Effect, Action or
NotAction, Resource or NotResource, and Condition with the String*, Bool and Null operators,
each also with the IfExists suffix. Actions and resources take the wildcards * (any run of characters, "/" and ":" included) and
? (one character). Actions match case-insensitively, resources case-sensitively over the
whole ARN. Resources and condition values may contain the policy variables ${iot:ClientId},
${iot:Connection.Thing.ThingName} and ${iot:Connection.Thing.IsAttached}, and the escapes
${*}, ${?} and ${$} for a literal *, ? or $.

Evaluation follows AWS: an explicit Deny wins over every Allow, and an action that no
statement allows is denied. The documentation behind these rules is the AWS IoT Core
Developer Guide ("AWS IoT Core policies", "Thing policy variables") and the IAM User Guide
("Policy evaluation logic", "IAM policy elements: Variables and tags").
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Only this version substitutes policy variables. Under 2008-10-17 "${...}" is literal text.
VARIABLES_VERSION = "2012-10-17"
LEGACY_VERSION = "2008-10-17"
# NOTE: IAM treats a document without Version as 2008-10-17. AWS IoT's handling of a missing
# Version is not documented, so the lab follows IAM.
DEFAULT_VERSION = LEGACY_VERSION

DOCUMENT_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}

VARIABLE_CLIENT_ID = "iot:clientid"
VARIABLE_THING_NAME = "iot:connection.thing.thingname"
VARIABLE_IS_ATTACHED = "iot:connection.thing.isattached"
# ${*}, ${?} and ${$} stand for the literal character, as in IAM.
LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}

VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
ACTION_RE = re.compile(r"^(\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+)$")


class PolicyError(ValueError):
    """Invalid policy document, or one that uses a feature this module does not evaluate."""


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class RequestContext:
    """Connection facts that policy variables and condition keys resolve to.

    thing_name is the client id when a thing of that name is attached to the client
    certificate, and None otherwise. AWS IoT takes the thing name from the client id and
    resolves ${iot:Connection.Thing.ThingName} only for an attached thing.
    """

    client_id: str
    thing_name: str | None = None

    @classmethod
    def for_connection(cls, client_id: str, attached_thing_names: Iterable[str]) -> RequestContext:
        # NOTE: with an exclusive thing association AWS resolves the thing name from the
        # certificate alone, whatever the client id. moto 5.2.5 records no association type,
        # so the lab always applies the non-exclusive rule (client id = thing name).
        return cls(client_id, client_id if client_id in set(attached_thing_names) else None)

    def value(self, name: str) -> str | None:
        """Return the value of a policy variable or condition key, or None when it is unresolved."""
        key = name.lower()
        if key == VARIABLE_CLIENT_ID:
            return self.client_id
        if key == VARIABLE_THING_NAME:
            return self.thing_name
        if key == VARIABLE_IS_ATTACHED:
            # NOTE: AWS documents the value only for attached things. The lab returns "false"
            # when the client id names no attached thing.
            return "true" if self.thing_name is not None else "false"
        return None

    def explain_unresolved(self, name: str) -> str:
        if name.lower() == VARIABLE_THING_NAME:
            return f"${{{name}}} is unresolved because no thing named {self.client_id!r} is attached to the certificate"
        return f"${{{name}}} is not a policy variable that the lab resolves"


@dataclass(frozen=True)
class Pattern:
    """Action, resource or condition value, kept as text until a request resolves its variables."""

    text: str
    substitute_variables: bool

    def compile(self, context: RequestContext, wildcards: bool, ignore_case: bool = False) -> re.Pattern | str:
        """Return a regular expression for the whole value, or the name of the first unresolved variable.

        A variable's value is always literal: a client id that contains "*" matches only "*".
        """
        parts = []
        position = 0
        matches = VARIABLE_RE.finditer(self.text) if self.substitute_variables else ()
        for match in matches:
            parts.append(literal_to_regex(self.text[position:match.start()], wildcards))
            name = match.group(1)
            if name in LITERAL_ESCAPES:
                parts.append(re.escape(LITERAL_ESCAPES[name]))
            else:
                value = context.value(name)
                if value is None:
                    return name
                parts.append(re.escape(value))
            position = match.end()
        parts.append(literal_to_regex(self.text[position:], wildcards))
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        return re.compile("".join(parts), flags)


def literal_to_regex(text: str, wildcards: bool) -> str:
    if not wildcards:
        return re.escape(text)
    parts = []
    for char in text:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


@dataclass(frozen=True)
class Match:
    """Outcome of checking one statement against a request."""

    matched: bool
    # Names of variables that kept a resource or condition from matching.
    unresolved: tuple[str, ...] = ()


NO_MATCH = Match(False)


# ---------------------------------------------------------------------------------------------
# Conditions


STRING_OPERATORS = {
    # operator: (negated, ignore case, wildcards)
    "StringEquals": (False, False, False),
    "StringNotEquals": (True, False, False),
    "StringEqualsIgnoreCase": (False, True, False),
    "StringNotEqualsIgnoreCase": (True, True, False),
    "StringLike": (False, False, True),
    "StringNotLike": (True, False, True),
}
IF_EXISTS_SUFFIX = "IfExists"


@dataclass(frozen=True)
class Condition:
    operator: str  # without the IfExists suffix
    key: str
    values: tuple[Pattern, ...]
    if_exists: bool

    def evaluate(self, context: RequestContext) -> Match:
        actual = context.value(self.key)
        if self.operator == "Null":
            # {"Null": {"key": "true"}} holds when the key is absent.
            expect_absent = self.values[0].text.lower() == "true"
            return Match((actual is None) == expect_absent)
        negated = STRING_OPERATORS.get(self.operator, (False,))[0]
        if actual is None:
            # IAM treats a missing key as failing a positive operator and satisfying a negated
            # one. IfExists makes any operator hold.
            return Match(self.if_exists or negated)
        if self.operator == "Bool":
            found = any(value.text.lower() == actual.lower() for value in self.values)
            return Match(found)

        _, ignore_case, wildcards = STRING_OPERATORS[self.operator]
        unresolved = []
        found = False
        for value in self.values:
            compiled = value.compile(context, wildcards, ignore_case)
            if isinstance(compiled, str):
                unresolved.append(compiled)
            elif compiled.fullmatch(actual):
                found = True
        if unresolved and not found:
            # An unresolved value makes the statement not match, whatever the operator.
            return Match(False, tuple(unresolved))
        return Match(found != negated)


def parse_conditions(block, label: str, substitute_variables: bool) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError(f"{label}: Condition must be an object")
    conditions = []
    for operator_name, keys in block.items():
        operator, if_exists = operator_name, False
        if operator.endswith(IF_EXISTS_SUFFIX) and operator != IF_EXISTS_SUFFIX:
            operator, if_exists = operator[: -len(IF_EXISTS_SUFFIX)], True
        if operator not in STRING_OPERATORS and operator not in ("Bool", "Null"):
            raise PolicyError(
                f"{label}: condition operator {operator_name!r} is not supported by the lab broker; "
                f"use {', '.join(sorted([*STRING_OPERATORS, 'Bool', 'Null']))}, optionally with IfExists"
            )
        if operator == "Null" and if_exists:
            raise PolicyError(f"{label}: NullIfExists is not a condition operator")
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{label}: condition operator {operator_name!r} needs an object of keys and values")
        for key, raw_values in keys.items():
            values = string_list(raw_values, f"{label}: condition {operator_name} {key}", allow_scalars=True)
            if operator in ("Bool", "Null") and any(value.lower() not in ("true", "false") for value in values):
                raise PolicyError(f"{label}: condition {operator_name} {key} takes \"true\" or \"false\", not {raw_values!r}")
            if operator == "Null" and len(values) != 1:
                raise PolicyError(f"{label}: condition Null {key} takes one value")
            patterns = tuple(Pattern(value, substitute_variables) for value in values)
            conditions.append(Condition(operator, key, patterns, if_exists))
    return tuple(conditions)


# ---------------------------------------------------------------------------------------------
# Statements and policies


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[Pattern, ...]
    actions_negated: bool  # NotAction
    resources: tuple[Pattern, ...]
    resources_negated: bool  # NotResource
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None

    def match(self, action: str, resource: str, context: RequestContext) -> Match:
        action_listed = any(pattern.compile(context, wildcards=True, ignore_case=True).fullmatch(action) for pattern in self.actions)
        if action_listed == self.actions_negated:
            return NO_MATCH

        resource_match = self._match_resource(resource, context)
        if not resource_match.matched:
            return resource_match
        for condition in self.conditions:
            condition_match = condition.evaluate(context)
            if not condition_match.matched:
                return condition_match
        return Match(True)

    def _match_resource(self, resource: str, context: RequestContext) -> Match:
        unresolved = []
        listed = False
        for pattern in self.resources:
            compiled = pattern.compile(context, wildcards=True)
            if isinstance(compiled, str):
                unresolved.append(compiled)
            elif compiled.fullmatch(resource):
                listed = True
        if self.resources_negated:
            # The resource must match none of the patterns, and an unresolved pattern leaves
            # that open, so the statement does not match.
            if unresolved:
                return Match(False, tuple(unresolved))
            return Match(not listed)
        # NOTE: IAM documents only a single unresolved value. Here a Resource list still matches
        # through its other entries when one entry has an unresolved variable.
        if listed:
            return Match(True)
        return Match(False, tuple(unresolved))


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document) -> Policy:
        """Parse a policy document given as JSON text or as a dict; raise PolicyError when it is invalid."""
        if isinstance(document, (bytes, bytearray)):
            document = document.decode("utf-8")
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise PolicyError(f"policy {name!r} is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise PolicyError(f"policy {name!r} must be a JSON object, not {type(document).__name__}")
        unknown = sorted(set(document) - DOCUMENT_KEYS)
        if unknown:
            raise PolicyError(f"policy {name!r} has unknown top-level keys {unknown}; allowed are {sorted(DOCUMENT_KEYS)}")

        version = document.get("Version", DEFAULT_VERSION)
        if version not in (VARIABLES_VERSION, LEGACY_VERSION):
            raise PolicyError(f"policy {name!r} has Version {version!r}; use {VARIABLES_VERSION!r}")
        if "Statement" not in document:
            raise PolicyError(f"policy {name!r} has no Statement")
        raw_statements = document["Statement"]
        if isinstance(raw_statements, dict):
            raw_statements = [raw_statements]
        if not isinstance(raw_statements, list) or not raw_statements:
            raise PolicyError(f"policy {name!r}: Statement must be an object or a non-empty list of objects")
        statements = tuple(
            parse_statement(raw, f"policy {name!r} Statement[{index}]", version == VARIABLES_VERSION)
            for index, raw in enumerate(raw_statements)
        )
        return cls(name, version, statements)


def parse_statement(raw, label: str, substitute_variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{label} must be an object")
    unknown = sorted(set(raw) - STATEMENT_KEYS)
    if unknown:
        # Principal and NotPrincipal are IAM resource-policy elements that AWS IoT policies lack.
        raise PolicyError(f"{label} has unknown keys {unknown}; allowed are {sorted(STATEMENT_KEYS)}")
    try:
        effect = Effect(raw.get("Effect"))
    except ValueError:
        raise PolicyError(f"{label}: Effect must be \"Allow\" or \"Deny\", not {raw.get('Effect')!r}") from None

    actions, actions_negated = exactly_one(raw, "Action", "NotAction", label)
    for action in actions:
        if not ACTION_RE.match(action):
            raise PolicyError(f"{label}: invalid action {action!r}; expected \"*\" or \"service:Name\", for example \"iot:Publish\"")
    resources, resources_negated = exactly_one(raw, "Resource", "NotResource", label)

    conditions = parse_conditions(raw["Condition"], label, substitute_variables) if "Condition" in raw else ()
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{label}: Sid must be a string")
    return Statement(
        effect=effect,
        # Actions take no policy variables.
        actions=tuple(Pattern(action, substitute_variables=False) for action in actions),
        actions_negated=actions_negated,
        resources=tuple(Pattern(resource, substitute_variables) for resource in resources),
        resources_negated=resources_negated,
        conditions=conditions,
        sid=sid,
    )


def exactly_one(raw: dict, key: str, negated_key: str, label: str) -> tuple[list[str], bool]:
    """Return the values of key or negated_key, and whether it was negated_key."""
    if (key in raw) == (negated_key in raw):
        raise PolicyError(f"{label} must have exactly one of {key} and {negated_key}")
    if key in raw:
        return string_list(raw[key], f"{label}: {key}"), False
    return string_list(raw[negated_key], f"{label}: {negated_key}"), True


def string_list(value, label: str, allow_scalars: bool = False) -> list[str]:
    """Return a string or a list of strings as a non-empty list.

    With allow_scalars, JSON booleans and numbers count as their text, as IAM accepts them in
    condition values.
    """
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        if isinstance(item, bool) and allow_scalars:
            result.append("true" if item else "false")
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and allow_scalars:
            result.append(str(item))
        elif isinstance(item, str) and item:
            result.append(item)
        else:
            raise PolicyError(f"{label} must be a non-empty string or a list of them, not {item!r}")
    if not result:
        raise PolicyError(f"{label} must not be an empty list")
    return result


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(policies: Iterable[Policy], action: str, resource: str, context: RequestContext) -> Decision:
    """Decide whether the policies allow an action on a resource for one connection.

    Every statement of every policy is checked. A matching Deny denies at once, at least one
    matching Allow is needed otherwise, and a statement with an unresolved variable in its
    resource or condition does not match.
    """
    policies = list(policies)
    allowed_by = None
    unresolved = []
    for policy in policies:
        for index, statement in enumerate(policy.statements):
            outcome = statement.match(action, resource, context)
            unresolved.extend(name for name in outcome.unresolved if name not in unresolved)
            if not outcome.matched:
                continue
            label = statement_label(policy, index, statement)
            if statement.effect is Effect.DENY:
                return Decision(False, f"explicitly denied by {label}")
            allowed_by = allowed_by or label
    if allowed_by is not None:
        return Decision(True, f"allowed by {allowed_by}")

    if not policies:
        reason = "no policy is attached to the certificate"
    else:
        names = ", ".join(repr(policy.name) for policy in policies)
        reason = f"no statement allows it in the attached policies ({names})"
    if unresolved:
        reason += "; " + "; ".join(context.explain_unresolved(name) for name in unresolved)
    return Decision(False, reason)


def statement_label(policy: Policy, index: int, statement: Statement) -> str:
    sid = f" (Sid {statement.sid!r})" if statement.sid else ""
    return f"policy {policy.name!r} Statement[{index}]{sid}"
