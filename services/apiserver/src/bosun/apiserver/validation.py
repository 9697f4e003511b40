"""Object validation for create, update and status update, with Kubernetes' field paths.

Every check appends a `FieldError` and carries on, so one round trip tells a user everything
that is wrong with an object, each error rendered as Kubernetes renders it:

    metadata.name: Invalid value: "Foo_": a lowercase RFC 1123 subdomain must consist of ...
    spec.containers: Required value
    spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", ...

Paths use the JSON (camelCase) field names with `[i]` list indices and `[key]` map keys.

Validation runs after defaulting, but it does not rely on it: a field that defaulting fills
(restartPolicy, imagePullPolicy, a port's protocol, a Service's type …) is accepted when empty,
so an object is judged the same whether or not defaults were applied first.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import Message

from bosun.api.v1 import apps_pb2, coordination_pb2, core_pb2, meta_pb2
from bosun.common.kinds import KindInfo
from bosun.common.quantity import QUANTITY_PATTERN, QuantityError, parse_quantity
from bosun.common.selectors import (
    DNS1123_LABEL_MAX,
    DNS1123_SUBDOMAIN_MAX,
    LabelSelector,
    SelectorError,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
)

__all__ = [
    "ErrorType",
    "FieldError",
    "validate_object",
    "validate_status_update",
    "validate_update",
]


class ErrorType(StrEnum):
    """The kinds of field error Kubernetes reports, valued as they are rendered."""

    INVALID = "Invalid value"
    REQUIRED = "Required value"
    DUPLICATE = "Duplicate value"
    NOT_SUPPORTED = "Unsupported value"
    FORBIDDEN = "Forbidden"
    TOO_LONG = "Too long"
    NOT_FOUND = "Not found"


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()
"""The `value` of a FieldError that quotes no value (Required, Forbidden, Too long)."""


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Fraction):
        return str(value)
    if isinstance(value, Message):
        value = json_format.MessageToDict(value)
    if value is None or isinstance(value, str | Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: `path: <type>[: <value>][: <message>]`."""

    path: str
    message: str = ""
    value: object = NO_VALUE
    type: ErrorType = ErrorType.INVALID

    def __str__(self) -> str:
        parts = [self.path, self.type.value]
        if self.value is not NO_VALUE:
            parts.append(_render(self.value))
        if self.message:
            parts.append(self.message)
        return ": ".join(parts)

    @classmethod
    def invalid(cls, path: str, value: object, message: str) -> FieldError:
        return cls(path, message, value, ErrorType.INVALID)

    @classmethod
    def required(cls, path: str, message: str = "") -> FieldError:
        return cls(path, message, NO_VALUE, ErrorType.REQUIRED)

    @classmethod
    def duplicate(cls, path: str, value: object) -> FieldError:
        return cls(path, "", value, ErrorType.DUPLICATE)

    @classmethod
    def not_supported(cls, path: str, value: object, supported: Iterable[str]) -> FieldError:
        quoted = ", ".join(json.dumps(item) for item in supported)
        return cls(path, f"supported values: {quoted}", value, ErrorType.NOT_SUPPORTED)

    @classmethod
    def forbidden(cls, path: str, message: str) -> FieldError:
        return cls(path, message, NO_VALUE, ErrorType.FORBIDDEN)

    @classmethod
    def too_long(cls, path: str, limit: int, unit: str = "bytes") -> FieldError:
        return cls(path, f"must have at most {limit} {unit}", NO_VALUE, ErrorType.TOO_LONG)

    @classmethod
    def not_found(cls, path: str, value: object) -> FieldError:
        return cls(path, "", value, ErrorType.NOT_FOUND)


Errors = list[FieldError]

# ---------------------------------------------------------------------------- primitives

IMMUTABLE = "field is immutable"
MAX_ANNOTATIONS_BYTES = 256 * 1024

_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_PERCENT = re.compile(r"[0-9]+%")

PROTOCOLS = ("TCP", "UDP", "SCTP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
SESSION_AFFINITIES = ("None", "ClientIP")
TRAFFIC_POLICIES = ("Cluster", "Local")
STRATEGY_TYPES = ("RollingUpdate", "Recreate")
EVENT_TYPES = ("Normal", "Warning")
NAMESPACE_PHASES = ("Active", "Terminating")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
MAX_INT32 = 2**31 - 1


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _has(message: Any, field: str) -> bool:
    """HasField for a field named at run time."""
    return bool(message.HasField(field))


def _check(errs: Errors, path: str, value: object, messages: Iterable[str]) -> None:
    for message in messages:
        errs.append(FieldError.invalid(path, value, message))


def _dns1035_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1035_LABEL.fullmatch(value):
        errors.append(DNS1035_LABEL_MESSAGE)
    return errors


def _port_name_errors(value: str) -> list[str]:
    """Why `value` is not an IANA_SVC_NAME (a named port); [] when it is."""
    errors = []
    if len(value) > 15:
        errors.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.fullmatch(value):
        errors.append("must contain only alphanumeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if not any(char.isalpha() for char in value):
        errors.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _config_key_errors(key: str) -> list[str]:
    errors = []
    if len(key) > DNS1123_SUBDOMAIN_MAX:
        errors.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _CONFIG_KEY.fullmatch(key):
        errors.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name', or 'KEY_NAME', or 'key-name')"
        )
    if key in (".", ".."):
        errors.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def _port_in_range(errs: Errors, path: str, port: int, *, allow_zero: bool = False) -> None:
    if allow_zero and port == 0:
        return
    if not 1 <= port <= 65535:
        errs.append(FieldError.invalid(path, port, "must be between 1 and 65535, inclusive"))


def _int_or_name_port(errs: Errors, path: str, value: str) -> None:
    """An IntOrString port: a number 1-65535 or an IANA_SVC_NAME."""
    if not value:
        errs.append(FieldError.required(path))
        return
    try:
        number = int(value)
    except ValueError:
        _check(errs, path, value, _port_name_errors(value))
        return
    _port_in_range(errs, path, number)


def _non_negative(errs: Errors, path: str, value: int) -> None:
    if value < 0:
        errs.append(FieldError.invalid(path, value, "must be greater than or equal to 0"))


def _positive(errs: Errors, path: str, value: int) -> None:
    if value <= 0:
        errs.append(FieldError.invalid(path, value, "must be greater than 0"))


def _one_of(errs: Errors, path: str, value: str, supported: tuple[str, ...]) -> None:
    """`value` is empty (defaulted) or one of `supported`."""
    if value and value not in supported:
        errs.append(FieldError.not_supported(path, value, supported))


def _labels(errs: Errors, path: str, labels: Mapping[str, str]) -> None:
    for key in sorted(labels):
        _check(errs, path, key, qualified_name_errors(key))
        _check(errs, path, labels[key], label_value_errors(labels[key]))


def _annotations(errs: Errors, path: str, annotations: Mapping[str, str]) -> None:
    size = 0
    for key in sorted(annotations):
        _check(errs, path, key, qualified_name_errors(key.lower()))
        size += len(key) + len(annotations[key])
    if size > MAX_ANNOTATIONS_BYTES:
        errs.append(FieldError.too_long(path, MAX_ANNOTATIONS_BYTES))


def _quantity(errs: Errors, path: str, text: str) -> Fraction | None:
    try:
        quantity = parse_quantity(text)
    except QuantityError:
        errs.append(
            FieldError.invalid(
                path, text, f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
            )
        )
        return None
    if quantity < 0:
        errs.append(FieldError.invalid(path, text, "must be greater than or equal to 0"))
    return quantity


def _label_selector(errs: Errors, path: str, selector: meta_pb2.LabelSelector) -> None:
    _labels(errs, _join(path, "matchLabels"), selector.match_labels)
    for index, expression in enumerate(selector.match_expressions):
        where = f"{path}.matchExpressions[{index}]"
        if not expression.key:
            errs.append(FieldError.required(_join(where, "key")))
        else:
            _check(errs, _join(where, "key"), expression.key, qualified_name_errors(expression.key))
        operator = expression.operator
        if operator in ("In", "NotIn"):
            if not expression.values:
                errs.append(
                    FieldError.required(
                        _join(where, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if expression.values:
                errs.append(
                    FieldError.forbidden(
                        _join(where, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(
                FieldError.not_supported(_join(where, "operator"), operator, SELECTOR_OPERATORS)
            )
        for value_index, value in enumerate(expression.values):
            _check(errs, f"{where}.values[{value_index}]", value, label_value_errors(value))


# ---------------------------------------------------------------------------- metadata


def _name_errors(kind: str) -> Callable[[str], list[str]]:
    if kind == "Namespace":
        return dns1123_label_errors
    if kind == "Service":
        return _dns1035_label_errors
    return dns1123_subdomain_errors


def _mask_trailing_dash(prefix: str) -> str:
    """generateName "web-" is checked as "weba": the suffix makes the trailing dash legal."""
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def _validate_meta(info: KindInfo, meta: meta_pb2.ObjectMeta) -> Errors:
    errs: Errors = []
    name_errors = _name_errors(info.kind)
    if meta.generate_name:
        _check(
            errs,
            "metadata.generateName",
            meta.generate_name,
            name_errors(_mask_trailing_dash(meta.generate_name)),
        )
    if not meta.name:
        if not meta.generate_name:
            errs.append(FieldError.required("metadata.name", "name or generateName is required"))
    else:
        _check(errs, "metadata.name", meta.name, name_errors(meta.name))
    if info.namespaced:
        if not meta.namespace:
            errs.append(FieldError.required("metadata.namespace"))
        else:
            _check(errs, "metadata.namespace", meta.namespace, dns1123_label_errors(meta.namespace))
    elif meta.namespace:
        errs.append(FieldError.forbidden("metadata.namespace", "not allowed on this type"))
    _labels(errs, "metadata.labels", meta.labels)
    _annotations(errs, "metadata.annotations", meta.annotations)
    controllers = 0
    for index, owner in enumerate(meta.owner_references):
        where = f"metadata.ownerReferences[{index}]"
        for field, value in (
            ("apiVersion", owner.api_version),
            ("kind", owner.kind),
            ("name", owner.name),
            ("uid", owner.uid),
        ):
            if not value:
                errs.append(FieldError.required(_join(where, field)))
        if owner.HasField("controller") and owner.controller:
            controllers += 1
    if controllers > 1:
        errs.append(
            FieldError.invalid(
                "metadata.ownerReferences",
                controllers,
                "Only one reference can have Controller set to true",
            )
        )
    for index, finalizer in enumerate(meta.finalizers):
        _check(errs, f"metadata.finalizers[{index}]", finalizer, qualified_name_errors(finalizer))
    return errs


def _validate_meta_update(new: meta_pb2.ObjectMeta, old: meta_pb2.ObjectMeta) -> Errors:
    errs: Errors = []
    if new.name != old.name:
        errs.append(FieldError.invalid("metadata.name", new.name, IMMUTABLE))
    if new.namespace != old.namespace:
        errs.append(FieldError.invalid("metadata.namespace", new.namespace, IMMUTABLE))
    if old.uid and new.uid != old.uid:
        errs.append(FieldError.invalid("metadata.uid", new.uid, IMMUTABLE))
    if old.HasField("creation_timestamp") and new.creation_timestamp != old.creation_timestamp:
        errs.append(
            FieldError.invalid("metadata.creationTimestamp", new.creation_timestamp, IMMUTABLE)
        )
    return errs


# ---------------------------------------------------------------------------- pods


def _validate_probe(errs: Errors, path: str, probe: core_pb2.Probe, *, liveness: bool) -> None:
    handlers = [name for name in ("exec", "http_get", "tcp_socket") if probe.HasField(name)]
    if not handlers:
        errs.append(FieldError.required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        json_names = {"exec": "exec", "http_get": "httpGet", "tcp_socket": "tcpSocket"}
        errs.append(
            FieldError.forbidden(
                _join(path, json_names[handlers[1]]), "may not specify more than 1 handler type"
            )
        )
    if probe.HasField("exec") and not probe.exec.command:
        errs.append(FieldError.required(_join(path, "exec.command")))
    if probe.HasField("http_get"):
        http = probe.http_get
        _int_or_name_port(errs, _join(path, "httpGet.port"), http.port)
        _one_of(errs, _join(path, "httpGet.scheme"), http.scheme, ("HTTP", "HTTPS"))
    if probe.HasField("tcp_socket"):
        _int_or_name_port(errs, _join(path, "tcpSocket.port"), probe.tcp_socket.port)
    for field, value in (
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ):
        _non_negative(errs, _join(path, field), value)
    if liveness and probe.success_threshold > 1:
        errs.append(
            FieldError.invalid(
                _join(path, "successThreshold"), probe.success_threshold, "must be 1"
            )
        )
    if probe.HasField("termination_grace_period_seconds"):
        _positive(
            errs,
            _join(path, "terminationGracePeriodSeconds"),
            probe.termination_grace_period_seconds,
        )


def _validate_resources(errs: Errors, path: str, resources: core_pb2.ResourceRequirements) -> None:
    limits: dict[str, Fraction] = {}
    for kind_path, quantities, parsed in (
        (_join(path, "limits"), resources.limits, limits),
        (_join(path, "requests"), resources.requests, {}),
    ):
        for name in sorted(quantities):
            where = f"{kind_path}[{name}]"
            _check(errs, where, name, qualified_name_errors(name))
            quantity = _quantity(errs, where, quantities[name])
            if quantity is not None:
                parsed[name] = quantity
    for name in sorted(resources.requests):
        if name not in limits:
            continue
        try:
            request = parse_quantity(resources.requests[name])
        except QuantityError:
            continue
        if request > limits[name]:
            errs.append(
                FieldError.invalid(
                    f"{path}.requests[{name}]",
                    resources.requests[name],
                    f"must be less than or equal to {name} limit of {resources.limits[name]}",
                )
            )


def _validate_env(errs: Errors, path: str, container: core_pb2.Container) -> None:
    for index, env in enumerate(container.env):
        where = f"{path}.env[{index}]"
        if not env.name:
            errs.append(FieldError.required(_join(where, "name")))
        elif not _ENV_VAR_NAME.fullmatch(env.name):
            errs.append(
                FieldError.invalid(
                    _join(where, "name"),
                    env.name,
                    "a valid environment variable name must consist of alphabetic characters, "
                    "digits, '_', '-', or '.', and must not start with a digit",
                )
            )
        if env.HasField("value_from"):
            source = env.value_from
            sources = [
                name
                for name in (
                    "field_ref",
                    "resource_field_ref",
                    "config_map_key_ref",
                    "secret_key_ref",
                )
                if _has(source, name)
            ]
            if len(sources) != 1:
                errs.append(
                    FieldError.invalid(
                        _join(where, "valueFrom"),
                        "",
                        "must specify exactly one of: `fieldRef`, `resourceFieldRef`, "
                        "`configMapKeyRef` or `secretKeyRef`",
                    )
                )
            if env.value:
                errs.append(
                    FieldError.invalid(
                        _join(where, "valueFrom"),
                        "",
                        "may not be specified when `value` is not empty",
                    )
                )
            if source.HasField("field_ref") and not source.field_ref.field_path:
                errs.append(FieldError.required(_join(where, "valueFrom.fieldRef.fieldPath")))
            for ref_name, ref_json in (
                ("config_map_key_ref", "configMapKeyRef"),
                ("secret_key_ref", "secretKeyRef"),
            ):
                if _has(source, ref_name):
                    ref = getattr(source, ref_name)
                    if not ref.key:
                        errs.append(FieldError.required(f"{where}.valueFrom.{ref_json}.key"))
                    if not ref.name:
                        errs.append(FieldError.required(f"{where}.valueFrom.{ref_json}.name"))


def _validate_container(
    errs: Errors,
    path: str,
    container: core_pb2.Container,
    volumes: set[str],
    names: set[str],
) -> None:
    if not container.name:
        errs.append(FieldError.required(_join(path, "name")))
    else:
        _check(errs, _join(path, "name"), container.name, dns1123_label_errors(container.name))
        if container.name in names:
            errs.append(FieldError.duplicate(_join(path, "name"), container.name))
        names.add(container.name)
    if not container.image:
        errs.append(FieldError.required(_join(path, "image")))
    elif container.image != container.image.strip():
        errs.append(
            FieldError.invalid(
                _join(path, "image"),
                container.image,
                "must not have leading or trailing whitespace",
            )
        )
    _one_of(errs, _join(path, "imagePullPolicy"), container.image_pull_policy, PULL_POLICIES)
    _one_of(
        errs,
        _join(path, "terminationMessagePolicy"),
        container.termination_message_policy,
        TERMINATION_MESSAGE_POLICIES,
    )
    port_names: set[str] = set()
    for index, port in enumerate(container.ports):
        where = f"{path}.ports[{index}]"
        if port.name:
            _check(errs, _join(where, "name"), port.name, _port_name_errors(port.name))
            if port.name in port_names:
                errs.append(FieldError.duplicate(_join(where, "name"), port.name))
            port_names.add(port.name)
        _port_in_range(errs, _join(where, "containerPort"), port.container_port)
        _port_in_range(errs, _join(where, "hostPort"), port.host_port, allow_zero=True)
        _one_of(errs, _join(where, "protocol"), port.protocol, PROTOCOLS)
        if port.host_ip:
            _ip(errs, _join(where, "hostIP"), port.host_ip)
    _validate_env(errs, path, container)
    _validate_resources(errs, _join(path, "resources"), container.resources)
    mount_paths: set[str] = set()
    for index, mount in enumerate(container.volume_mounts):
        where = f"{path}.volumeMounts[{index}]"
        if not mount.name:
            errs.append(FieldError.required(_join(where, "name")))
        elif mount.name not in volumes:
            errs.append(FieldError.not_found(_join(where, "name"), mount.name))
        if not mount.mount_path:
            errs.append(FieldError.required(_join(where, "mountPath")))
        elif mount.mount_path in mount_paths:
            errs.append(
                FieldError.invalid(_join(where, "mountPath"), mount.mount_path, "must be unique")
            )
        mount_paths.add(mount.mount_path)
        if mount.sub_path.startswith("/") or ".." in mount.sub_path.split("/"):
            errs.append(
                FieldError.invalid(
                    _join(where, "subPath"),
                    mount.sub_path,
                    "must be a relative path without '..'",
                )
            )
    for field, json_name in (
        ("liveness_probe", "livenessProbe"),
        ("readiness_probe", "readinessProbe"),
        ("startup_probe", "startupProbe"),
    ):
        if _has(container, field):
            _validate_probe(
                errs,
                _join(path, json_name),
                getattr(container, field),
                liveness=field != "readiness_probe",
            )


_VOLUME_SOURCES = (
    ("empty_dir", "emptyDir"),
    ("host_path", "hostPath"),
    ("config_map", "configMap"),
    ("secret", "secret"),
    ("persistent_volume_claim", "persistentVolumeClaim"),
)


def _validate_volumes(errs: Errors, path: str, volumes: Iterable[core_pb2.Volume]) -> set[str]:
    names: set[str] = set()
    for index, volume in enumerate(volumes):
        where = f"{path}[{index}]"
        if not volume.name:
            errs.append(FieldError.required(_join(where, "name")))
        else:
            _check(errs, _join(where, "name"), volume.name, dns1123_label_errors(volume.name))
            if volume.name in names:
                errs.append(FieldError.duplicate(_join(where, "name"), volume.name))
            names.add(volume.name)
        sources = [(f, j) for f, j in _VOLUME_SOURCES if _has(volume, f)]
        if not sources:
            errs.append(FieldError.required(where, "must specify a volume type"))
        for _field, json_name in sources[1:]:
            errs.append(
                FieldError.forbidden(
                    _join(where, json_name), "may not specify more than 1 volume type"
                )
            )
        if volume.HasField("empty_dir") and volume.empty_dir.size_limit:
            _quantity(errs, _join(where, "emptyDir.sizeLimit"), volume.empty_dir.size_limit)
        if volume.HasField("empty_dir"):
            _one_of(errs, _join(where, "emptyDir.medium"), volume.empty_dir.medium, ("Memory",))
        if volume.HasField("host_path") and not volume.host_path.path:
            errs.append(FieldError.required(_join(where, "hostPath.path")))
        if volume.HasField("config_map") and not volume.config_map.name:
            errs.append(FieldError.required(_join(where, "configMap.name")))
        if volume.HasField("secret") and not volume.secret.secret_name:
            errs.append(FieldError.required(_join(where, "secret.secretName")))
        claim = volume.persistent_volume_claim
        if volume.HasField("persistent_volume_claim") and not claim.claim_name:
            errs.append(FieldError.required(_join(where, "persistentVolumeClaim.claimName")))
        for source_field, json_name in (("config_map", "configMap"), ("secret", "secret")):
            if not _has(volume, source_field):
                continue
            for item_index, item in enumerate(getattr(volume, source_field).items):
                item_path = f"{where}.{json_name}.items[{item_index}]"
                if not item.key:
                    errs.append(FieldError.required(_join(item_path, "key")))
                if not item.path:
                    errs.append(FieldError.required(_join(item_path, "path")))
                elif item.path.startswith("/") or ".." in item.path.split("/"):
                    errs.append(
                        FieldError.invalid(
                            _join(item_path, "path"),
                            item.path,
                            "must be a relative path without '..'",
                        )
                    )
    return names


def _validate_tolerations(
    errs: Errors, path: str, tolerations: Iterable[core_pb2.Toleration]
) -> None:
    for index, toleration in enumerate(tolerations):
        where = f"{path}[{index}]"
        if toleration.key:
            _check(errs, _join(where, "key"), toleration.key, qualified_name_errors(toleration.key))
        elif toleration.operator != "Exists":
            errs.append(
                FieldError.invalid(
                    _join(where, "operator"),
                    toleration.operator,
                    "operator must be Exists when `key` is empty, which means "
                    '"match all values and all keys"',
                )
            )
        if toleration.HasField("toleration_seconds") and toleration.effect != "NoExecute":
            errs.append(
                FieldError.invalid(
                    _join(where, "effect"),
                    toleration.effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if toleration.operator in ("", "Equal"):
            _check(
                errs, _join(where, "value"), toleration.value, label_value_errors(toleration.value)
            )
        elif toleration.operator == "Exists":
            if toleration.value:
                errs.append(
                    FieldError.invalid(
                        _join(where, "operator"),
                        toleration.value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(
                FieldError.not_supported(
                    _join(where, "operator"), toleration.operator, TOLERATION_OPERATORS
                )
            )
        _one_of(errs, _join(where, "effect"), toleration.effect, TAINT_EFFECTS)


def _validate_node_selector_term(errs: Errors, path: str, term: core_pb2.NodeSelectorTerm) -> None:
    for field, requirements in (
        ("matchExpressions", term.match_expressions),
        ("matchFields", term.match_fields),
    ):
        for index, requirement in enumerate(requirements):
            where = f"{path}.{field}[{index}]"
            if not requirement.key:
                errs.append(FieldError.required(_join(where, "key")))
            operator = requirement.operator
            if operator not in NODE_SELECTOR_OPERATORS:
                errs.append(
                    FieldError.not_supported(
                        _join(where, "operator"), operator, NODE_SELECTOR_OPERATORS
                    )
                )
            elif operator in ("In", "NotIn") and not requirement.values:
                errs.append(
                    FieldError.required(
                        _join(where, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
            elif operator in ("Exists", "DoesNotExist") and requirement.values:
                errs.append(
                    FieldError.forbidden(
                        _join(where, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
            elif operator in ("Gt", "Lt"):
                values = list(requirement.values)
                if len(values) != 1 or not values[0].lstrip("-").isdigit():
                    errs.append(
                        FieldError.invalid(
                            _join(where, "values"),
                            values,
                            "must be specified single value when `operator` is 'Lt' or 'Gt', and "
                            "it must be an integer",
                        )
                    )


def _validate_affinity_term(errs: Errors, path: str, term: core_pb2.PodAffinityTerm) -> None:
    if term.HasField("label_selector"):
        _label_selector(errs, _join(path, "labelSelector"), term.label_selector)
    if term.HasField("namespace_selector"):
        _label_selector(errs, _join(path, "namespaceSelector"), term.namespace_selector)
    if not term.topology_key:
        errs.append(FieldError.required(_join(path, "topologyKey"), "can not be empty"))
    else:
        _check(
            errs,
            _join(path, "topologyKey"),
            term.topology_key,
            qualified_name_errors(term.topology_key),
        )


def _weight(errs: Errors, path: str, weight: int) -> None:
    if not 1 <= weight <= 100:
        errs.append(FieldError.invalid(path, weight, "must be in the range 1-100"))


def _validate_affinity(errs: Errors, path: str, affinity: core_pb2.Affinity) -> None:
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    if affinity.HasField("node_affinity"):
        node = affinity.node_affinity
        node_path = _join(path, "nodeAffinity")
        if node.HasField("required_during_scheduling_ignored_during_execution"):
            terms = node.required_during_scheduling_ignored_during_execution.node_selector_terms
            where = f"{node_path}.{required}.nodeSelectorTerms"
            if not terms:
                errs.append(FieldError.required(where, "must have at least one node selector term"))
            for index, term in enumerate(terms):
                _validate_node_selector_term(errs, f"{where}[{index}]", term)
        for index, weighted in enumerate(node.preferred_during_scheduling_ignored_during_execution):
            where = f"{node_path}.{preferred}[{index}]"
            _weight(errs, _join(where, "weight"), weighted.weight)
            _validate_node_selector_term(errs, _join(where, "preference"), weighted.preference)
    for field, json_name in (
        ("pod_affinity", "podAffinity"),
        ("pod_anti_affinity", "podAntiAffinity"),
    ):
        if not _has(affinity, field):
            continue
        pod = getattr(affinity, field)
        pod_path = _join(path, json_name)
        for index, term in enumerate(pod.required_during_scheduling_ignored_during_execution):
            _validate_affinity_term(errs, f"{pod_path}.{required}[{index}]", term)
        for index, weighted in enumerate(pod.preferred_during_scheduling_ignored_during_execution):
            where = f"{pod_path}.{preferred}[{index}]"
            _weight(errs, _join(where, "weight"), weighted.weight)
            _validate_affinity_term(
                errs, _join(where, "podAffinityTerm"), weighted.pod_affinity_term
            )


def _validate_pod_spec(errs: Errors, path: str, spec: core_pb2.PodSpec) -> None:
    volumes = _validate_volumes(errs, _join(path, "volumes"), spec.volumes)
    if not spec.containers:
        errs.append(FieldError.required(_join(path, "containers")))
    names: set[str] = set()
    for field, containers in (
        ("initContainers", spec.init_containers),
        ("containers", spec.containers),
    ):
        for index, container in enumerate(containers):
            _validate_container(errs, f"{path}.{field}[{index}]", container, volumes, names)
    _one_of(errs, _join(path, "restartPolicy"), spec.restart_policy, RESTART_POLICIES)
    _one_of(errs, _join(path, "dnsPolicy"), spec.dns_policy, DNS_POLICIES)
    _one_of(errs, _join(path, "preemptionPolicy"), spec.preemption_policy, PREEMPTION_POLICIES)
    if spec.HasField("termination_grace_period_seconds"):
        _non_negative(
            errs,
            _join(path, "terminationGracePeriodSeconds"),
            spec.termination_grace_period_seconds,
        )
    if spec.HasField("active_deadline_seconds") and not (
        1 <= spec.active_deadline_seconds <= MAX_INT32
    ):
        errs.append(
            FieldError.invalid(
                _join(path, "activeDeadlineSeconds"),
                spec.active_deadline_seconds,
                f"must be between 1 and {MAX_INT32}, inclusive",
            )
        )
    _labels(errs, _join(path, "nodeSelector"), spec.node_selector)
    for field, json_name, check in (
        ("service_account_name", "serviceAccountName", dns1123_subdomain_errors),
        ("node_name", "nodeName", dns1123_subdomain_errors),
        ("scheduler_name", "schedulerName", dns1123_subdomain_errors),
        ("priority_class_name", "priorityClassName", dns1123_subdomain_errors),
        ("hostname", "hostname", dns1123_label_errors),
        ("subdomain", "subdomain", dns1123_label_errors),
    ):
        value = getattr(spec, field)
        if value:
            _check(errs, _join(path, json_name), value, check(value))
    _validate_tolerations(errs, _join(path, "tolerations"), spec.tolerations)
    if spec.HasField("affinity"):
        _validate_affinity(errs, _join(path, "affinity"), spec.affinity)
    for index, constraint in enumerate(spec.topology_spread_constraints):
        where = f"{path}.topologySpreadConstraints[{index}]"
        _positive(errs, _join(where, "maxSkew"), constraint.max_skew)
        if not constraint.topology_key:
            errs.append(FieldError.required(_join(where, "topologyKey"), "can not be empty"))
        if not constraint.when_unsatisfiable:
            errs.append(FieldError.required(_join(where, "whenUnsatisfiable")))
        _one_of(
            errs,
            _join(where, "whenUnsatisfiable"),
            constraint.when_unsatisfiable,
            WHEN_UNSATISFIABLE,
        )
        if constraint.HasField("label_selector"):
            _label_selector(errs, _join(where, "labelSelector"), constraint.label_selector)
        if constraint.HasField("min_domains"):
            _positive(errs, _join(where, "minDomains"), constraint.min_domains)
    for index, secret in enumerate(spec.image_pull_secrets):
        if not secret.name:
            errs.append(FieldError.required(f"{path}.imagePullSecrets[{index}].name"))


def _validate_pod(obj: Any) -> Errors:
    pod: core_pb2.Pod = obj
    errs: Errors = []
    _validate_pod_spec(errs, "spec", pod.spec)
    return errs


# ---------------------------------------------------------------------------- workloads


def _validate_template(
    errs: Errors,
    path: str,
    template: core_pb2.PodTemplateSpec,
    selector: meta_pb2.LabelSelector,
    *,
    selector_valid: bool,
) -> None:
    labels_path = _join(path, "metadata.labels")
    _labels(errs, labels_path, template.metadata.labels)
    _annotations(errs, _join(path, "metadata.annotations"), template.metadata.annotations)
    if selector_valid:
        try:
            matches = LabelSelector.from_proto(selector).matches(template.metadata.labels)
        except SelectorError:
            matches = True  # already reported against the selector itself
        if not matches:
            errs.append(
                FieldError.invalid(
                    labels_path,
                    dict(template.metadata.labels),
                    "`selector` does not match template `labels`",
                )
            )
    spec_path = _join(path, "spec")
    _validate_pod_spec(errs, spec_path, template.spec)
    if template.spec.restart_policy in ("OnFailure", "Never"):
        errs.append(
            FieldError.not_supported(
                _join(spec_path, "restartPolicy"), template.spec.restart_policy, ("Always",)
            )
        )
    if template.spec.HasField("active_deadline_seconds"):
        errs.append(
            FieldError.forbidden(
                _join(spec_path, "activeDeadlineSeconds"),
                "activeDeadlineSeconds in a template is "
                "not allowed: a controller would restart its pods forever",
            )
        )


def _validate_workload(errs: Errors, spec: Any) -> None:
    """What ReplicaSetSpec and DeploymentSpec share: replicas, selector, template."""
    if spec.HasField("replicas"):
        _non_negative(errs, "spec.replicas", spec.replicas)
    _non_negative(errs, "spec.minReadySeconds", spec.min_ready_seconds)
    selector = spec.selector
    selector_valid = False
    if not spec.HasField("selector") or (
        not selector.match_labels and not selector.match_expressions
    ):
        errs.append(FieldError.required("spec.selector", "a non-empty selector is required"))
    else:
        before = len(errs)
        _label_selector(errs, "spec.selector", selector)
        selector_valid = len(errs) == before
    if not spec.HasField("template"):
        errs.append(FieldError.required("spec.template"))
    else:
        _validate_template(
            errs, "spec.template", spec.template, selector, selector_valid=selector_valid
        )


def _validate_replica_set(obj: Any) -> Errors:
    rs: apps_pb2.ReplicaSet = obj
    errs: Errors = []
    _validate_workload(errs, rs.spec)
    return errs


def _int_or_percent(errs: Errors, path: str, value: str, *, max_percent: int | None) -> int | None:
    """The number in an IntOrString ("3" or "25%"), or None (reported) when malformed."""
    if value.endswith("%"):
        if not _PERCENT.fullmatch(value):
            errs.append(
                FieldError.invalid(
                    path,
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%', or '93%')",
                )
            )
            return None
        number = int(value[:-1])
        if max_percent is not None and number > max_percent:
            errs.append(FieldError.invalid(path, value, f"must not be greater than {max_percent}%"))
        return number
    try:
        number = int(value)
    except ValueError:
        errs.append(
            FieldError.invalid(
                path, value, "must be an integer or a percentage (e.g. '1' or '25%')"
            )
        )
        return None
    _non_negative(errs, path, number)
    return number


def _validate_deployment(obj: Any) -> Errors:
    deployment: apps_pb2.Deployment = obj
    spec = deployment.spec
    errs: Errors = []
    _validate_workload(errs, spec)
    strategy = spec.strategy
    _one_of(errs, "spec.strategy.type", strategy.type, STRATEGY_TYPES)
    if strategy.type == "Recreate" and strategy.HasField("rolling_update"):
        errs.append(
            FieldError.forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            )
        )
    elif strategy.HasField("rolling_update"):
        rolling = strategy.rolling_update
        unavailable_path = "spec.strategy.rollingUpdate.maxUnavailable"
        surge = unavailable = None
        if rolling.max_surge:
            surge = _int_or_percent(
                errs, "spec.strategy.rollingUpdate.maxSurge", rolling.max_surge, max_percent=None
            )
        if rolling.max_unavailable:
            unavailable = _int_or_percent(
                errs, unavailable_path, rolling.max_unavailable, max_percent=100
            )
        if surge == 0 and unavailable == 0:
            errs.append(
                FieldError.invalid(
                    unavailable_path, rolling.max_unavailable, "may not be 0 when `maxSurge` is 0"
                )
            )
    if spec.HasField("revision_history_limit"):
        _non_negative(errs, "spec.revisionHistoryLimit", spec.revision_history_limit)
    if spec.HasField("progress_deadline_seconds"):
        deadline = spec.progress_deadline_seconds
        _positive(errs, "spec.progressDeadlineSeconds", deadline)
        if 0 < deadline <= spec.min_ready_seconds:
            errs.append(
                FieldError.invalid(
                    "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                )
            )
    return errs


# ---------------------------------------------------------------------------- services


def _ip(errs: Errors, path: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        errs.append(
            FieldError.invalid(
                path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            )
        )


def _validate_service(obj: Any) -> Errors:
    service: core_pb2.Service = obj
    spec = service.spec
    errs: Errors = []
    _one_of(errs, "spec.type", spec.type, SERVICE_TYPES)
    headless = spec.cluster_ip == "None"
    if spec.cluster_ip and not headless:
        _ip(errs, "spec.clusterIP", spec.cluster_ip)
    if spec.type == "ExternalName":
        if not spec.external_name:
            errs.append(FieldError.required("spec.externalName"))
        else:
            _check(
                errs,
                "spec.externalName",
                spec.external_name,
                dns1123_subdomain_errors(spec.external_name.rstrip(".")),
            )
        if spec.cluster_ip:
            errs.append(
                FieldError.forbidden("spec.clusterIP", "may not be set for type 'ExternalName'")
            )
    elif not spec.ports and not headless:
        errs.append(FieldError.required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for index, port in enumerate(spec.ports):
        where = f"spec.ports[{index}]"
        if not port.name:
            if len(spec.ports) > 1:
                errs.append(FieldError.required(_join(where, "name")))
        else:
            _check(errs, _join(where, "name"), port.name, dns1123_label_errors(port.name))
            if port.name in names:
                errs.append(FieldError.duplicate(_join(where, "name"), port.name))
            names.add(port.name)
        _port_in_range(errs, _join(where, "port"), port.port)
        _one_of(errs, _join(where, "protocol"), port.protocol, PROTOCOLS)
        key = (port.port, port.protocol or "TCP")
        if key in seen:
            errs.append(FieldError.duplicate(where, f"{port.port}/{key[1]}"))
        seen.add(key)
        if port.target_port:
            _int_or_name_port(errs, _join(where, "targetPort"), port.target_port)
        _port_in_range(errs, _join(where, "nodePort"), port.node_port, allow_zero=True)
        if port.node_port and spec.type in ("", "ClusterIP"):
            errs.append(
                FieldError.forbidden(
                    _join(where, "nodePort"), "may not be used when `type` is 'ClusterIP'"
                )
            )
    _labels(errs, "spec.selector", spec.selector)
    _one_of(errs, "spec.sessionAffinity", spec.session_affinity, SESSION_AFFINITIES)
    client_ip = spec.session_affinity_config.client_ip
    if client_ip.HasField("timeout_seconds") and not 0 < client_ip.timeout_seconds <= 86400:
        errs.append(
            FieldError.invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                client_ip.timeout_seconds,
                "must be greater than 0 and less than 86400",
            )
        )
    _one_of(errs, "spec.externalTrafficPolicy", spec.external_traffic_policy, TRAFFIC_POLICIES)
    _one_of(errs, "spec.internalTrafficPolicy", spec.internal_traffic_policy, TRAFFIC_POLICIES)
    for index, address in enumerate(spec.external_ips):
        _ip(errs, f"spec.externalIPs[{index}]", address)
    return errs


def _validate_endpoints(obj: Any) -> Errors:
    endpoints: core_pb2.Endpoints = obj
    errs: Errors = []
    for index, subset in enumerate(endpoints.subsets):
        where = f"subsets[{index}]"
        for field, addresses in (
            ("addresses", subset.addresses),
            ("notReadyAddresses", subset.not_ready_addresses),
        ):
            for address_index, address in enumerate(addresses):
                ip_path = f"{where}.{field}[{address_index}].ip"
                if not address.ip:
                    errs.append(FieldError.required(ip_path))
                else:
                    _ip(errs, ip_path, address.ip)
        for port_index, port in enumerate(subset.ports):
            port_path = f"{where}.ports[{port_index}]"
            if port.name:
                _check(errs, _join(port_path, "name"), port.name, dns1123_label_errors(port.name))
            _port_in_range(errs, _join(port_path, "port"), port.port)
            _one_of(errs, _join(port_path, "protocol"), port.protocol, PROTOCOLS)
    return errs


# ---------------------------------------------------------------------------- other kinds


def _validate_node(obj: Any) -> Errors:
    node: core_pb2.Node = obj
    errs: Errors = []
    seen: set[tuple[str, str]] = set()
    for index, taint in enumerate(node.spec.taints):
        where = f"spec.taints[{index}]"
        if not taint.key:
            errs.append(FieldError.required(_join(where, "key")))
        else:
            _check(errs, _join(where, "key"), taint.key, qualified_name_errors(taint.key))
        _check(errs, _join(where, "value"), taint.value, label_value_errors(taint.value))
        if not taint.effect:
            errs.append(FieldError.required(_join(where, "effect")))
        else:
            _one_of(errs, _join(where, "effect"), taint.effect, TAINT_EFFECTS)
        if (taint.key, taint.effect) in seen:
            errs.append(FieldError.duplicate(where, f"{taint.key}:{taint.effect}"))
        seen.add((taint.key, taint.effect))
    for field, cidrs in (
        ("podCIDR", [node.spec.pod_cidr] if node.spec.pod_cidr else []),
        ("podCIDRs", list(node.spec.pod_cidrs)),
    ):
        for index, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                path = field if field == "podCIDR" else f"{field}[{index}]"
                errs.append(
                    FieldError.invalid(
                        f"spec.{path}", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24)"
                    )
                )
    return errs


def _validate_lease(obj: Any) -> Errors:
    lease: coordination_pb2.Lease = obj
    errs: Errors = []
    if lease.spec.HasField("lease_duration_seconds"):
        _positive(errs, "spec.leaseDurationSeconds", lease.spec.lease_duration_seconds)
    if lease.spec.HasField("lease_transitions"):
        _non_negative(errs, "spec.leaseTransitions", lease.spec.lease_transitions)
    return errs


def _config_keys(errs: Errors, path: str, keys: Iterable[str]) -> None:
    for key in sorted(keys):
        _check(errs, f"{path}[{key}]", key, _config_key_errors(key))


def _validate_config_map(obj: Any) -> Errors:
    config_map: core_pb2.ConfigMap = obj
    errs: Errors = []
    _config_keys(errs, "data", config_map.data)
    _config_keys(errs, "binaryData", config_map.binary_data)
    for key in sorted(set(config_map.data) & set(config_map.binary_data)):
        errs.append(
            FieldError.invalid(f"binaryData[{key}]", key, "duplicate of key present in data")
        )
    return errs


def _validate_secret(obj: Any) -> Errors:
    secret: core_pb2.Secret = obj
    errs: Errors = []
    _config_keys(errs, "data", secret.data)
    _config_keys(errs, "stringData", secret.string_data)
    return errs


def _validate_event(obj: Any) -> Errors:
    event: core_pb2.Event = obj
    errs: Errors = []
    involved = event.involved_object
    if not involved.kind:
        errs.append(FieldError.required("involvedObject.kind"))
    if not involved.name:
        errs.append(FieldError.required("involvedObject.name"))
    if involved.namespace and involved.namespace != event.metadata.namespace:
        errs.append(
            FieldError.invalid(
                "involvedObject.namespace", involved.namespace, "does not match event.namespace"
            )
        )
    _one_of(errs, "type", event.type, EVENT_TYPES)
    _non_negative(errs, "count", event.count)
    return errs


def _validate_namespace(obj: Any) -> Errors:
    namespace: core_pb2.Namespace = obj
    errs: Errors = []
    for index, finalizer in enumerate(namespace.spec.finalizers):
        _check(errs, f"spec.finalizers[{index}]", finalizer, qualified_name_errors(finalizer))
    _one_of(errs, "status.phase", namespace.status.phase, NAMESPACE_PHASES)
    return errs


def _validate_service_account(obj: Any) -> Errors:
    account: core_pb2.ServiceAccount = obj
    errs: Errors = []
    for index, secret in enumerate(account.secrets):
        if not secret.name:
            errs.append(FieldError.required(f"secrets[{index}].name"))
    for index, pull_secret in enumerate(account.image_pull_secrets):
        if not pull_secret.name:
            errs.append(FieldError.required(f"imagePullSecrets[{index}].name"))
    return errs


_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_VOLUME_MODES = ("Filesystem", "Block")


def _access_modes(errs: Errors, path: str, modes: Iterable[str]) -> None:
    listed = list(modes)
    if not listed:
        errs.append(FieldError.required(path))
    for index, mode in enumerate(listed):
        if mode not in _ACCESS_MODES:
            errs.append(FieldError.not_supported(f"{path}[{index}]", mode, _ACCESS_MODES))


def _validate_persistent_volume(obj: Any) -> Errors:
    pv: core_pb2.PersistentVolume = obj
    errs: Errors = []
    spec = pv.spec
    if "storage" not in spec.capacity:
        errs.append(FieldError.required("spec.capacity[storage]"))
    for name, text in spec.capacity.items():
        _quantity(errs, f"spec.capacity[{name}]", text)
    _access_modes(errs, "spec.accessModes", spec.access_modes)
    if not spec.HasField("host_path"):
        errs.append(FieldError.required("spec.hostPath", "must specify a volume type (hostPath)"))
    elif not spec.host_path.path.startswith("/"):
        errs.append(
            FieldError.invalid("spec.hostPath.path", spec.host_path.path, "must be absolute")
        )
    policies = ("Retain", "Delete", "Recycle")
    # Empty fields are filled by defaulting (Retain, Filesystem) before storage.
    if spec.persistent_volume_reclaim_policy not in ("", *policies):
        errs.append(
            FieldError.not_supported(
                "spec.persistentVolumeReclaimPolicy",
                spec.persistent_volume_reclaim_policy,
                policies,
            )
        )
    if spec.volume_mode not in ("", *_VOLUME_MODES):
        errs.append(FieldError.not_supported("spec.volumeMode", spec.volume_mode, _VOLUME_MODES))
    return errs


def _validate_persistent_volume_claim(obj: Any) -> Errors:
    pvc: core_pb2.PersistentVolumeClaim = obj
    errs: Errors = []
    spec = pvc.spec
    _access_modes(errs, "spec.accessModes", spec.access_modes)
    if "storage" not in spec.resources.requests:
        errs.append(FieldError.required("spec.resources.requests[storage]"))
    for name, text in spec.resources.requests.items():
        _quantity(errs, f"spec.resources.requests[{name}]", text)
    if spec.HasField("selector"):
        _label_selector(errs, "spec.selector", spec.selector)
    if spec.volume_mode not in ("", *_VOLUME_MODES):
        errs.append(FieldError.not_supported("spec.volumeMode", spec.volume_mode, _VOLUME_MODES))
    return errs


_VALIDATORS: dict[str, Callable[[Any], Errors]] = {
    "PersistentVolume": _validate_persistent_volume,
    "PersistentVolumeClaim": _validate_persistent_volume_claim,
    "Pod": _validate_pod,
    "ReplicaSet": _validate_replica_set,
    "Deployment": _validate_deployment,
    "Service": _validate_service,
    "Endpoints": _validate_endpoints,
    "Node": _validate_node,
    "Lease": _validate_lease,
    "ConfigMap": _validate_config_map,
    "Secret": _validate_secret,
    "Event": _validate_event,
    "Namespace": _validate_namespace,
    "ServiceAccount": _validate_service_account,
}


def validate_object(info: KindInfo, obj: Message) -> list[FieldError]:
    """Every problem with `obj` (a message of `info`'s kind) as it is to be stored."""
    message: Any = obj
    errs = _validate_meta(info, message.metadata)
    validator = _VALIDATORS.get(info.kind)
    if validator is not None:
        errs.extend(validator(message))
    return errs


# ---------------------------------------------------------------------------- updates

_POD_UPDATABLE = (
    "pod updates may not change fields other than `spec.containers[*].image`, "
    "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only "
    "additions to existing tolerations)"
)


def _changed_paths(new: Message, old: Message, path: str, depth: int) -> list[str]:
    """JSON paths of the fields that differ, descending `depth` levels into messages."""
    changed: list[str] = []
    for field in new.DESCRIPTOR.fields:
        name = field.name
        new_value, old_value = getattr(new, name), getattr(old, name)
        presence = field.has_presence and not field.is_repeated
        if new_value == old_value and (not presence or new.HasField(name) == old.HasField(name)):
            continue
        child = _join(path, field.json_name)
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if depth > 0 and field.message_type is not None and not is_map:
            if field.is_repeated and len(new_value) == len(old_value):
                pairs = zip(new_value, old_value, strict=True)
                for index, (item_new, item_old) in enumerate(pairs):
                    if item_new != item_old:
                        changed.extend(
                            _changed_paths(item_new, item_old, f"{child}[{index}]", depth - 1)
                        )
                continue
            if not field.is_repeated:
                changed.extend(_changed_paths(new_value, old_value, child, depth - 1))
                continue
        changed.append(child)
    return changed


def _validate_pod_update(new: core_pb2.Pod, old: core_pb2.Pod) -> Errors:
    errs: Errors = []
    new_spec, old_spec = new.spec, old.spec
    if old_spec.node_name and new_spec.node_name != old_spec.node_name:
        errs.append(FieldError.invalid("spec.nodeName", new_spec.node_name, IMMUTABLE))
    if old_spec.HasField("active_deadline_seconds"):
        if not new_spec.HasField("active_deadline_seconds"):
            errs.append(
                FieldError.invalid(
                    "spec.activeDeadlineSeconds",
                    None,
                    "must not update from a positive integer to nil value",
                )
            )
        elif new_spec.active_deadline_seconds > old_spec.active_deadline_seconds:
            errs.append(
                FieldError.invalid(
                    "spec.activeDeadlineSeconds",
                    new_spec.active_deadline_seconds,
                    "must be less than or equal to previous value",
                )
            )
    remaining = list(new_spec.tolerations)
    for toleration in old_spec.tolerations:
        if toleration in remaining:
            remaining.remove(toleration)
        else:
            errs.append(
                FieldError.forbidden(
                    "spec.tolerations",
                    "existing tolerations may not be removed or changed, only added to",
                )
            )
            break
    # Compare everything else with the mutable parts masked out of copies.
    masked_new, masked_old = core_pb2.PodSpec(), core_pb2.PodSpec()
    masked_new.CopyFrom(new_spec)
    masked_old.CopyFrom(old_spec)
    for masked in (masked_new, masked_old):
        for field in ("active_deadline_seconds", "tolerations", "node_name"):
            masked.ClearField(field)
    for field in ("containers", "init_containers"):
        new_list, old_list = getattr(masked_new, field), getattr(masked_old, field)
        if len(new_list) == len(old_list):
            for new_container, old_container in zip(new_list, old_list, strict=True):
                new_container.image = old_container.image = ""
    if masked_new != masked_old:
        changed = _changed_paths(masked_new, masked_old, "spec", 2)
        detail = f" (changed: {', '.join(changed)})" if changed else ""
        errs.append(FieldError.forbidden("spec", _POD_UPDATABLE + detail))
    return errs


def _validate_data_update(new: Any, old: Any, binary: bool) -> Errors:
    errs: Errors = []
    if old.HasField("immutable") and old.immutable:
        message = "field is immutable when `immutable` is set"
        if not (new.HasField("immutable") and new.immutable):
            errs.append(FieldError.forbidden("immutable", message))
        if new.data != old.data:
            errs.append(FieldError.forbidden("data", message))
        if binary and new.binary_data != old.binary_data:
            errs.append(FieldError.forbidden("binaryData", message))
    return errs


def validate_update(info: KindInfo, new: Message, old: Message) -> list[FieldError]:
    """Every problem with replacing `old` by `new`: `new` as an object, plus what may not
    change (identity metadata, a pod's spec beyond images, selectors, immutable data …)."""
    new_obj: Any = new
    old_obj: Any = old
    errs = validate_object(info, new)
    errs.extend(_validate_meta_update(new_obj.metadata, old_obj.metadata))
    kind = info.kind
    if kind == "Pod":
        errs.extend(_validate_pod_update(new_obj, old_obj))
    elif kind in ("ReplicaSet", "Deployment"):
        if new_obj.spec.selector != old_obj.spec.selector:
            errs.append(FieldError.invalid("spec.selector", new_obj.spec.selector, IMMUTABLE))
    elif kind == "ConfigMap":
        errs.extend(_validate_data_update(new_obj, old_obj, binary=True))
    elif kind == "Secret":
        errs.extend(_validate_data_update(new_obj, old_obj, binary=False))
        if old_obj.type and new_obj.type != old_obj.type:
            errs.append(FieldError.invalid("type", new_obj.type, IMMUTABLE))
    elif kind == "Service":
        old_ip, new_ip = old_obj.spec.cluster_ip, new_obj.spec.cluster_ip
        if old_ip and new_ip != old_ip:
            errs.append(FieldError.invalid("spec.clusterIP", new_ip, IMMUTABLE))
    elif kind == "Node":
        old_cidr = old_obj.spec.pod_cidr
        if old_cidr and new_obj.spec.pod_cidr != old_cidr:
            errs.append(FieldError.invalid("spec.podCIDR", new_obj.spec.pod_cidr, IMMUTABLE))
    return errs


def validate_status_update(info: KindInfo, new: Message, old: Message) -> list[FieldError]:
    """Problems with a status write: metadata only (the spec is the old one, unchanged)."""
    new_obj: Any = new
    old_obj: Any = old
    errs = _validate_meta(info, new_obj.metadata)
    errs.extend(_validate_meta_update(new_obj.metadata, old_obj.metadata))
    return errs
