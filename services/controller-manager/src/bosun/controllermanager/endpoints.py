"""Endpoints controller: for each Service with a selector, the addresses of the pods it selects.

Keys are Services (`namespace/name`). A Service's change wakes its own key; a pod's change wakes
every Service in its namespace whose selector matches the pod's labels before or after the
change (so a pod that stops matching is removed too). `sync` then recomputes the whole Endpoints
object from the caches, as Kubernetes' endpoints controller does:

* pods with an IP that are not terminating and not finished (Succeeded/Failed) take part;
* a pod whose Ready condition is True is an address, any other a notReadyAddress (all are
  addresses when the Service sets publishNotReadyAddresses);
* each service port's targetPort is resolved per pod: a number as is, a name through the pod's
  container ports (a pod without that named port is left out of that port only);
* pods serving the same set of ports share a subset; addresses are sorted, so an unchanged set
  of pods gives an identical object and no write.

A Service without a selector is left alone: its Endpoints are the user's to write. When a
Service is deleted, its Endpoints go too (NotFound is fine). Writes carry the cached
resourceVersion; a conflict raises and the key is retried with backoff.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.errors import AlreadyExistsError, NotFoundError, PreconditionError
from bosun.common.informer import NAMESPACE_INDEX, Informer
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller, split_key

__all__ = ["EndpointsController", "desired_subsets"]

# The ports (name, number, protocol) a group of addresses serves.
_PortSet = tuple[tuple[str, int, str], ...]


def _selects(service: core_pb2.Service, labels: Any) -> bool:
    selector = service.spec.selector
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _ready(pod: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def _resolve(port: core_pb2.ServicePort, pod: core_pb2.Pod) -> int | None:
    target = port.target_port or str(port.port)
    if target.isdigit():
        return int(target)
    for container in pod.spec.containers:
        for container_port in container.ports:
            if container_port.name == target and (container_port.protocol or "TCP") == (
                port.protocol or "TCP"
            ):
                return int(container_port.container_port)
    return None


def _address(pod: core_pb2.Pod, service: core_pb2.Service) -> core_pb2.EndpointAddress:
    address = core_pb2.EndpointAddress(ip=pod.status.pod_ip)
    if pod.spec.node_name:
        address.node_name = pod.spec.node_name
    # A pod's hostname is part of its DNS name only under the Service named as its subdomain.
    if pod.spec.hostname and pod.spec.subdomain == service.metadata.name:
        address.hostname = pod.spec.hostname
    ref = address.target_ref
    ref.kind, ref.namespace, ref.name, ref.uid = (
        "Pod",
        pod.metadata.namespace,
        pod.metadata.name,
        pod.metadata.uid,
    )
    return address


def desired_subsets(
    service: core_pb2.Service, pods: Iterable[core_pb2.Pod]
) -> list[core_pb2.EndpointSubset]:
    """The subsets of the Endpoints of `service`, given the pods of its namespace."""
    groups: dict[_PortSet, tuple[list[Any], list[Any]]] = {}
    publish_all = service.spec.publish_not_ready_addresses
    for pod in pods:
        if not _selects(service, pod.metadata.labels) or not pod.status.pod_ip:
            continue
        if pod.metadata.HasField("deletion_timestamp"):
            continue
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        resolved = tuple(
            (port.name, number, port.protocol or "TCP")
            for port in service.spec.ports
            if (number := _resolve(port, pod)) is not None
        )
        if not resolved:
            continue
        ready, not_ready = groups.setdefault(resolved, ([], []))
        (ready if publish_all or _ready(pod) else not_ready).append(_address(pod, service))
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items()):
        subset = core_pb2.EndpointSubset()
        subset.addresses.extend(sorted(ready, key=lambda a: (a.ip, a.target_ref.name)))
        subset.not_ready_addresses.extend(
            sorted(not_ready, key=lambda a: (a.ip, a.target_ref.name))
        )
        for name, number, protocol in ports:
            subset.ports.add(name=name, port=number, protocol=protocol)
        subsets.append(subset)
    return subsets


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.services: Informer[core_pb2.Service] = context.informers.informer("Service")
        self.pods: Informer[core_pb2.Pod] = context.informers.informer("Pod")
        self.endpoints: Informer[core_pb2.Endpoints] = context.informers.informer("Endpoints")
        self.services.add_handler(
            on_add=self._service_changed,
            on_update=lambda old, new: self._service_changed(new),
            on_delete=self._service_changed,
        )
        self.pods.add_handler(
            on_add=lambda pod: self._pod_changed(pod, None),
            on_update=lambda old, new: self._pod_changed(new, old),
            on_delete=lambda pod: self._pod_changed(pod, None),
        )
        # An Endpoints object appeared, changed or went: put it right. (On add too: one whose
        # Service was deleted before this informer saw it is removed only through this.)
        self.endpoints.add_handler(
            on_add=self._endpoints_changed,
            on_update=lambda old, new: self._endpoints_changed(new),
            on_delete=self._endpoints_changed,
        )

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.services, self.pods, self.endpoints)

    def _service_changed(self, service: core_pb2.Service) -> None:
        self.enqueue(f"{service.metadata.namespace}/{service.metadata.name}")

    def _endpoints_changed(self, endpoints: core_pb2.Endpoints) -> None:
        self.enqueue(f"{endpoints.metadata.namespace}/{endpoints.metadata.name}")

    def _pod_changed(self, pod: core_pb2.Pod, old: core_pb2.Pod | None) -> None:
        namespace = pod.metadata.namespace
        for service in self.services.store.by_index(NAMESPACE_INDEX, namespace):
            if _selects(service, pod.metadata.labels) or (
                old is not None and _selects(service, old.metadata.labels)
            ):
                self._service_changed(service)

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.store.get(key)
        current = self.endpoints.store.get(key)
        if service is None:
            if current is not None:
                with contextlib.suppress(NotFoundError):
                    await self.client.endpoints.delete(name, namespace=namespace)
            return
        if not service.spec.selector:
            return  # a Service without a selector: its Endpoints are written by hand
        subsets = desired_subsets(service, self.pods.store.by_index(NAMESPACE_INDEX, namespace))
        labels = dict(service.metadata.labels)
        if (
            current is not None
            and list(current.subsets) == subsets
            and dict(current.metadata.labels) == labels
        ):
            return
        endpoints = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
        endpoints.metadata.name, endpoints.metadata.namespace = name, namespace
        endpoints.metadata.labels.update(labels)
        endpoints.subsets.extend(subsets)
        if current is None:
            try:
                await self.client.endpoints.create(endpoints)
            except (AlreadyExistsError, NotFoundError, PreconditionError):
                # The cache was behind (it exists: its update event re-queues the key), or
                # the namespace is gone or terminating.
                return
            return
        endpoints.metadata.resource_version = current.metadata.resource_version
        await self.client.endpoints.update(endpoints)
