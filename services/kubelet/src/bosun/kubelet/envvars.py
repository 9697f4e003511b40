"""A container's environment: Service links, envFrom, then env (later entries win).

Pure functions over the pod and lookups, so the rules are unit-tested without an apiserver:

* Service links (`enableServiceLinks`, default true): for every Service with a cluster IP in
  the pod's namespace, `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` and
  `<NAME>_SERVICE_PORT_<PORTNAME>` (name upper-cased, `-` → `_`), as Kubernetes injects them.
* `envFrom` configMapRef / secretRef with an optional prefix.
* `env` with `value` (with `$(VAR)` expansion of earlier variables; `$$` escapes) or `valueFrom`
  fieldRef, resourceFieldRef (limits/requests), configMapKeyRef, secretKeyRef.

A missing non-optional ConfigMap, Secret or key raises `EnvError`: the container is not
started and waits with reason CreateContainerConfigError, as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from bosun.api.v1 import core_pb2
from bosun.common.quantity import parse_quantity


class EnvError(Exception):
    """The environment cannot be built (a missing ConfigMap, Secret or key)."""


ConfigMapLookup = Callable[[str, str], core_pb2.ConfigMap | None]
SecretLookup = Callable[[str, str], core_pb2.Secret | None]

_FIELD_LABEL = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]$")
_EXPAND = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def service_env(services: Iterable[core_pb2.Service]) -> dict[str, str]:
    env: dict[str, str] = {}
    for service in sorted(services, key=lambda s: s.metadata.name):
        ip = service.spec.cluster_ip
        if not ip or ip == "None" or not service.spec.ports:
            continue
        prefix = service.metadata.name.upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(service.spec.ports[0].port)
        for port in service.spec.ports:
            if port.name:
                env[f"{prefix}_SERVICE_PORT_{port.name.upper().replace('-', '_')}"] = str(port.port)
    return env


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, others left as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _EXPAND.sub(replace, value)


def field_value(pod: core_pb2.Pod, path: str) -> str:
    meta = pod.metadata
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.hostIP": pod.status.host_ip,
        "status.podIP": pod.status.pod_ip,
    }
    if path in simple:
        return simple[path]
    match = _FIELD_LABEL.match(path)
    if match:
        source = meta.labels if match.group(1) == "labels" else meta.annotations
        return source.get(match.group(2), "")
    raise EnvError(f"unsupported fieldRef fieldPath {path!r}")


def resource_value(
    pod: core_pb2.Pod, container: core_pb2.Container, ref: core_pb2.ResourceFieldSelector
) -> str:
    target = container
    if ref.container_name:
        matches = [c for c in pod.spec.containers if c.name == ref.container_name]
        if not matches:
            raise EnvError(f"resourceFieldRef: no container {ref.container_name!r}")
        target = matches[0]
    kind, _, resource = ref.resource.partition(".")
    source = target.resources.limits if kind == "limits" else target.resources.requests
    text = source.get(resource, "")
    if not text:
        return "0"
    divisor = parse_quantity(ref.divisor or "1")
    quotient = parse_quantity(text) / divisor
    # Kubernetes rounds up (a 500m limit with divisor 1 is "1").
    return str(-(-quotient.numerator // quotient.denominator))


def _optional(flag: bool, has: bool) -> bool:
    return flag if has else False


def _key(
    data: Mapping[str, bytes] | None,
    ref: core_pb2.ConfigMapKeySelector | core_pb2.SecretKeySelector,
    what: str,
) -> str | None:
    """One key of a ConfigMap or Secret (`data` None: the object is missing); None when it is
    missing and the reference is optional, EnvError when it is missing and required."""
    if data is not None and ref.key in data:
        return data[ref.key].decode(errors="replace")
    if _optional(ref.optional, ref.HasField("optional")):
        return None
    missing = f'{what} "{ref.name}"' if data is None else f'key "{ref.key}" in {what} "{ref.name}"'
    raise EnvError(f"{missing} not found")


def container_env(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    *,
    config_map: ConfigMapLookup,
    secret: SecretLookup,
    services: Iterable[core_pb2.Service] = (),
) -> dict[str, str]:
    namespace = pod.metadata.namespace
    env: dict[str, str] = {}
    links = pod.spec.enable_service_links if pod.spec.HasField("enable_service_links") else True
    if links:
        env.update(service_env(services))
    for source in container.env_from:
        if source.HasField("config_map_ref"):
            ref = source.config_map_ref
            cm = config_map(namespace, ref.name)
            if cm is None:
                if _optional(ref.optional, ref.HasField("optional")):
                    continue
                raise EnvError(f'configmap "{ref.name}" not found')
            for key, value in cm.data.items():
                env[source.prefix + key] = value
        if source.HasField("secret_ref"):
            sref = source.secret_ref
            sec = secret(namespace, sref.name)
            if sec is None:
                if _optional(sref.optional, sref.HasField("optional")):
                    continue
                raise EnvError(f'secret "{sref.name}" not found')
            for key, raw in sec.data.items():
                env[source.prefix + key] = raw.decode(errors="replace")
    for var in container.env:
        if not var.HasField("value_from"):
            env[var.name] = expand(var.value, env)
            continue
        source_ = var.value_from
        if source_.HasField("field_ref"):
            env[var.name] = field_value(pod, source_.field_ref.field_path)
        elif source_.HasField("resource_field_ref"):
            env[var.name] = resource_value(pod, container, source_.resource_field_ref)
        elif source_.HasField("config_map_key_ref"):
            cm_ref = source_.config_map_key_ref
            cm = config_map(namespace, cm_ref.name)
            data = {k: v.encode() for k, v in cm.data.items()} if cm is not None else None
            found = _key(data, cm_ref, "configmap")
            if found is not None:
                env[var.name] = found
        elif source_.HasField("secret_key_ref"):
            secret_ref = source_.secret_key_ref
            sec = secret(namespace, secret_ref.name)
            found = _key(dict(sec.data) if sec is not None else None, secret_ref, "secret")
            if found is not None:
                env[var.name] = found
    return env
