"""Kubernetes label and field selectors: parsing, matching, and the fields each kind exposes.

A label selector is a conjunction of requirements on an object's labels, written as Kubernetes
writes them (`app=web,tier in (front,back),!legacy`) or carried in a `meta.LabelSelector` proto
(matchLabels + matchExpressions). A field selector is a conjunction of `=`/`!=` terms on a small,
per-kind set of fields (`spec.nodeName=node-1,status.phase!=Succeeded`); `object_fields` computes
those fields from a message so the apiserver's watch cache can evaluate selectors without
re-decoding objects, and `validate_field_selector` refuses a field that a kind does not expose.

The name validators Kubernetes applies to label keys and values (qualified names, DNS-1123
labels and subdomains) live here too, because selectors must refuse what labels cannot hold;
the apiserver's object validation reuses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from google.protobuf.message import Message

from bosun.api.v1 import meta_pb2

__all__ = [
    "SUPPORTED_FIELDS",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "label_value_errors",
    "object_fields",
    "parse_field_selector",
    "parse_label_selector",
    "qualified_name_errors",
    "validate_field_selector",
]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed, or names something it may not."""


# ---------------------------------------------------------------------------- name validation

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_CHARS = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
LABEL_VALUE_MESSAGE = f"a valid label must be an empty string or {_QUALIFIED_NAME_CHARS[5:]}"


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label_errors(value: str) -> list[str]:
    """Why `value` is not a DNS-1123 label (namespace names, container names); [] when it is."""
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_too_long(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.fullmatch(value):
        errors.append(DNS1123_LABEL_MESSAGE)
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Why `value` is not a DNS-1123 subdomain (most object names); [] when it is."""
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(DNS1123_SUBDOMAIN_MESSAGE)
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """Why `value` is not a qualified name (`[prefix/]name`, the form of label and annotation
    keys): the prefix a DNS-1123 subdomain, the name at most 63 of [A-Za-z0-9_.-] starting and
    ending alphanumeric. [] when it is."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errors: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors = ["prefix part must be non-empty"]
        else:
            errors = [f"prefix part {message}" for message in dns1123_subdomain_errors(prefix)]
    else:
        return [
            f"a qualified name {_QUALIFIED_NAME_CHARS} with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
        return errors
    if len(name) > QUALIFIED_NAME_MAX:
        errors.append(f"name part {_too_long(QUALIFIED_NAME_MAX)}")
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append(f"name part {_QUALIFIED_NAME_CHARS}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """Why `value` cannot be a label value (empty, or at most 63 of [A-Za-z0-9_.-] starting and
    ending alphanumeric); [] when it can."""
    errors = []
    if len(value) > LABEL_VALUE_MAX:
        errors.append(_too_long(LABEL_VALUE_MAX))
    if value and not _QUALIFIED_NAME.fullmatch(value):
        errors.append(LABEL_VALUE_MESSAGE)
    return errors


# ---------------------------------------------------------------------------- label selectors


class Operator(StrEnum):
    """A label requirement's operator, valued as it is written in selector text."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_PROTO_OPERATORS: dict[str, Operator] = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label key; `values` is sorted and empty for (Does not) Exist."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if op is Operator.EQUALS or op is Operator.IN:
            return value is not None and value in self.values
        # NotEquals / NotIn also match objects that do not carry the label at all.
        return value is None or value not in self.values

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op is Operator.EQUALS or op is Operator.NOT_EQUALS:
            return f"{self.key}{op.value}{self.values[0]}"
        return f"{self.key} {op.value} ({','.join(self.values)})"


def _requirement(key: str, operator: Operator, values: Iterable[str], text: str) -> Requirement:
    """A checked Requirement; SelectorError (quoting `text`) when key or values are invalid."""
    key_errors = qualified_name_errors(key)
    if key_errors:
        raise SelectorError(f"invalid label key {key!r} in {text!r}: {'; '.join(key_errors)}")
    ordered = tuple(sorted(set(values)))
    for value in ordered:
        value_errors = label_value_errors(value)
        if value_errors:
            raise SelectorError(
                f"invalid label value {value!r} for key {key!r} in {text!r}: "
                f"{'; '.join(value_errors)}"
            )
    if operator in (Operator.IN, Operator.NOT_IN) and not ordered:
        raise SelectorError(
            f"{key!r} in {text!r}: operator {operator.value!r} needs at least one value"
        )
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS) and len(ordered) != 1:
        raise SelectorError(
            f"{key!r} in {text!r}: operator {operator.value!r} needs exactly one value"
        )
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and ordered:
        raise SelectorError(f"{key!r} in {text!r}: an existence test takes no values")
    return Requirement(key, operator, ordered)


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of label requirements, kept sorted by key; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)

    @classmethod
    def from_requirements(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        return cls(tuple(sorted(requirements, key=lambda r: (r.key, r.operator.value, r.values))))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> LabelSelector:
        """The selector `k1=v1,k2=v2` matching objects that carry all of `labels`."""
        text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return cls.from_requirements(
            _requirement(key, Operator.EQUALS, (value,), text) for key, value in labels.items()
        )

    @classmethod
    def from_proto(cls, selector: meta_pb2.LabelSelector) -> LabelSelector:
        """The selector a `meta.LabelSelector` proto stands for (an empty one matches all)."""
        requirements = [
            _requirement(key, Operator.EQUALS, (value,), f"matchLabels {key}: {value}")
            for key, value in selector.match_labels.items()
        ]
        for index, expression in enumerate(selector.match_expressions):
            where = f"matchExpressions[{index}]"
            operator = _PROTO_OPERATORS.get(expression.operator)
            if operator is None:
                supported = ", ".join(_PROTO_OPERATORS)
                raise SelectorError(
                    f"{where}: invalid operator {expression.operator!r} for key "
                    f"{expression.key!r}; expected one of {supported}"
                )
            requirements.append(_requirement(expression.key, operator, expression.values, where))
        return cls.from_requirements(requirements)


# The lexer splits selector text into identifiers and these symbols, as Kubernetes' does.
_SYMBOLS = ("==", "!=", "=", "!", "(", ")", ",")
_SPECIAL = frozenset("=!(),") | frozenset(" \t\n\r")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "id", "end", or one of _SYMBOLS
    text: str
    position: int

    def describe(self) -> str:
        if self.kind == "end":
            return "end of input"
        return repr(self.text)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, position)), None)
        if symbol is not None:
            tokens.append(_Token(symbol, symbol, position))
            position += len(symbol)
            continue
        start = position
        while position < len(text) and text[position] not in _SPECIAL:
            position += 1
        tokens.append(_Token("id", text[start:position], start))
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def next(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, token: _Token, expected: str) -> SelectorError:
        return SelectorError(
            f"unable to parse label selector {self.text!r}: found {token.describe()} at "
            f"position {token.position}, expected {expected}"
        )

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self.peek().kind == "end":
            return LabelSelector()
        while True:
            requirements.append(self.requirement())
            token = self.next()
            if token.kind == "end":
                return LabelSelector.from_requirements(requirements)
            if token.kind != ",":
                raise self.fail(token, "',' or end of input")

    def key(self) -> _Token:
        token = self.next()
        if token.kind != "id" or token.text in ("in", "notin"):
            raise self.fail(token, "a label key")
        return token

    def requirement(self) -> Requirement:
        if self.peek().kind == "!":
            self.next()
            key = self.key()
            after = self.peek()
            if after.kind not in (",", "end"):
                raise self.fail(after, "',' or end of input after '!" + key.text + "'")
            return _requirement(key.text, Operator.DOES_NOT_EXIST, (), self.text)
        key = self.key()
        token = self.peek()
        if token.kind in (",", "end"):
            return _requirement(key.text, Operator.EXISTS, (), self.text)
        self.next()
        if token.kind in ("=", "=="):
            return _requirement(key.text, Operator.EQUALS, (self.single_value(),), self.text)
        if token.kind == "!=":
            return _requirement(key.text, Operator.NOT_EQUALS, (self.single_value(),), self.text)
        if token.kind == "id" and token.text in ("in", "notin"):
            operator = Operator.IN if token.text == "in" else Operator.NOT_IN
            return _requirement(key.text, operator, self.value_set(), self.text)
        raise self.fail(token, "one of '=', '==', '!=', 'in', 'notin', ',' or end of input")

    def single_value(self) -> str:
        token = self.peek()
        if token.kind == "id":
            self.next()
            return token.text
        if token.kind in (",", "end"):
            return ""  # `key=` selects an empty value
        raise self.fail(token, "a label value")

    def value_set(self) -> list[str]:
        opening = self.next()
        if opening.kind != "(":
            raise self.fail(opening, "'(' opening a set of values")
        values: list[str] = []
        while True:
            token = self.next()
            if token.kind == "id":
                values.append(token.text)
                token = self.next()
            elif token.kind in (",", ")"):
                values.append("")
            else:
                raise self.fail(token, "a value, ',' or ')'")
            if token.kind == ")":
                if values == [""]:
                    raise self.fail(token, "at least one value in the set")
                return values
            if token.kind != ",":
                raise self.fail(token, "',' or ')' in a set of values")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse Kubernetes label selector text; SelectorError says what was expected where."""
    return _LabelParser(text).parse()


# ---------------------------------------------------------------------------- field selectors


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    negated: bool
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negated

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negated else '='}{_escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of `field=value` / `field!=value` terms; empty matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(requirement.field for requirement in self.requirements)

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(requirement.matches(fields) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*")


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_terms(text: str) -> Iterator[str]:
    """Split on unescaped commas, keeping escapes for the term parser."""
    start = 0
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == ",":
            yield text[start:index]
            start = index + 1
        index += 1
    yield text[start:]


def _unescape_field_value(value: str, text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            if index + 1 >= len(value) or value[index + 1] not in "\\,=":
                raise SelectorError(
                    f"unable to parse field selector {text!r}: invalid escape in value "
                    f"{value!r}; only '\\\\', '\\,' and '\\=' may be escaped"
                )
            out.append(value[index + 1])
            index += 2
            continue
        if char == "=":
            raise SelectorError(
                f"unable to parse field selector {text!r}: unescaped '=' in value {value!r}"
            )
        out.append(char)
        index += 1
    return "".join(out)


def _split_field_term(term: str) -> tuple[str, bool, str] | None:
    """(field, negated, raw value) of one term, or None when it has no operator."""
    for operator, negated in (("!=", True), ("==", False), ("=", False)):
        field, found, value = term.partition(operator)
        if found and "=" not in field and not field.endswith("!"):
            return field, negated, value
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `field=value,field!=value` (also `==`); values may escape `\\`, `,` and `=`."""
    if not text.strip():
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in _split_terms(text):
        split = _split_field_term(term)
        if split is None:
            raise SelectorError(
                f"unable to parse field selector {text!r}: term {term.strip()!r} is not of the "
                "form 'field=value', 'field==value' or 'field!=value'"
            )
        field, negated, value = split
        field = field.strip()
        if not _FIELD_NAME.fullmatch(field):
            raise SelectorError(
                f"unable to parse field selector {text!r}: {field!r} is not a field name "
                "(expected dotted names such as 'metadata.name')"
            )
        value = _unescape_field_value(value.strip(), text)
        requirements.append(FieldRequirement(field, negated, value))
    return FieldSelector(tuple(requirements))


# ---------------------------------------------------------------------------- object fields

_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.restartPolicy",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Node": frozenset({"spec.unschedulable"}),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "type",
            "source",
        }
    ),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
}
_KNOWN_KINDS = (
    "Namespace",
    "Node",
    "Pod",
    "Event",
    "Lease",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "Endpoints",
    "ReplicaSet",
    "Deployment",
)

SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    kind: _METADATA_FIELDS | _KIND_FIELDS.get(kind, frozenset()) for kind in _KNOWN_KINDS
}
"""Per kind, the field names a field selector may use."""


def _bool(value: bool) -> str:
    return "true" if value else "false"


def object_fields(kind: str, obj: Message) -> dict[str, str]:
    """The selectable fields of `obj` (a message of `kind`), values rendered as strings."""
    message: Any = obj
    fields = {
        "metadata.name": message.metadata.name,
        "metadata.namespace": message.metadata.namespace,
    }
    if kind == "Pod":
        spec, status = message.spec, message.status
        fields.update(
            {
                "spec.nodeName": spec.node_name,
                "spec.schedulerName": spec.scheduler_name,
                "spec.serviceAccountName": spec.service_account_name,
                "spec.restartPolicy": spec.restart_policy,
                "spec.hostNetwork": _bool(spec.host_network),
                "status.phase": status.phase,
                "status.podIP": status.pod_ip,
                "status.nominatedNodeName": status.nominated_node_name,
            }
        )
    elif kind == "Node":
        fields["spec.unschedulable"] = _bool(message.spec.unschedulable)
    elif kind == "Event":
        involved = message.involved_object
        fields.update(
            {
                "involvedObject.kind": involved.kind,
                "involvedObject.namespace": involved.namespace,
                "involvedObject.name": involved.name,
                "involvedObject.uid": involved.uid,
                "involvedObject.apiVersion": involved.api_version,
                "involvedObject.resourceVersion": involved.resource_version,
                "involvedObject.fieldPath": involved.field_path,
                "reason": message.reason,
                "reportingComponent": message.reporting_component,
                "type": message.type,
                "source": message.source.component,
            }
        )
    elif kind == "Namespace":
        fields["status.phase"] = message.status.phase
    elif kind == "Secret":
        fields["type"] = message.type
    return fields


def validate_field_selector(kind: str, selector: FieldSelector) -> None:
    """Refuse (SelectorError) a selector on a field that `kind` does not expose."""
    supported = SUPPORTED_FIELDS.get(kind, _METADATA_FIELDS)
    for name in sorted(selector.fields - supported):
        raise SelectorError(
            f'field label "{name}" is not supported for {kind}; supported fields: '
            f"{', '.join(sorted(supported))}"
        )
