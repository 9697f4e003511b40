"""One pod worker per pod: the loop that drives a pod's containers to what its spec asks.

Concurrency model (as the Kubernetes kubelet's pod workers): a worker is one asyncio task that
owns its pod — only it creates, stops or removes that pod's containers, so two actions on one
pod never race. Everything else only *tells* the worker something and wakes it: the informer
hands it the latest Pod (`update`), a probe that flips its verdict calls `wake`, and a backoff
that expires is a timed wake. The worker then runs `sync`, which is level-triggered: it lists
the pod's containers from the runtime, compares with the spec, takes the next steps, and writes
the status it observes. A missed wake-up costs at most `resync_period`.

The worker keeps no state that matters across a kubelet restart: containers carry labels
(pod uid, container name, kind, attempt), so a new kubelet adopts them. In-memory state is only
backoff windows, probe workers and the last status written (to skip identical writes).

A pod whose object was deleted (deletionTimestamp set, or gone from the API) is terminated:
every app container gets SIGTERM and the grace period, then SIGKILL (Docker's stop does both),
then the sandbox; containers and volumes are removed, and finally the pod object is deleted
with grace 0 (uid precondition, so a new pod of the same name is never touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bosun.api.v1 import core_pb2
from bosun.common.errors import ApiError, NotFoundError, PreconditionError
from bosun.common.quantity import milli_value, value
from bosun.kubelet import labels as L
from bosun.kubelet import metrics
from bosun.kubelet.context import KubeletContext, WorkerSettings
from bosun.kubelet.envvars import EnvError, container_env
from bosun.kubelet.probes import ProbeOutcome, ProbeType, ProbeWorker, run_probe
from bosun.kubelet.runtime import (
    ContainerRecord,
    ContainerSpec,
    ContainerStartError,
    ImagePullError,
    Mount,
)
from bosun.kubelet.status import TERMINAL_PHASES, ContainerView, compute_status
from bosun.kubelet.volumes import VolumeError, VolumeManager

log = logging.getLogger(__name__)


def pull_policy(container: core_pb2.Container) -> str:
    if container.image_pull_policy:
        return container.image_pull_policy
    image = container.image
    name = image.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    return "Always" if ":" not in name or name.endswith(":latest") else "IfNotPresent"


PROBE_ORDER: tuple[ProbeType, ...] = ("startup", "liveness", "readiness")


def probe_of(container: core_pb2.Container, probe_type: ProbeType) -> core_pb2.Probe | None:
    if probe_type == "startup":
        return container.startup_probe if container.HasField("startup_probe") else None
    if probe_type == "liveness":
        return container.liveness_probe if container.HasField("liveness_probe") else None
    return container.readiness_probe if container.HasField("readiness_probe") else None


def should_restart(policy: str, exit_code: int) -> bool:
    policy = policy or "Always"
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def resource_limits(container: core_pb2.Container) -> tuple[int, int, int]:
    """(nano_cpus, memory_bytes, cpu_shares) for Docker from limits and requests."""
    limits = container.resources.limits
    requests = container.resources.requests
    nano_cpus = milli_value(limits["cpu"]) * 1_000_000 if "cpu" in limits else 0
    memory = value(limits["memory"]) if "memory" in limits else 0
    cpu_request = requests.get("cpu") or limits.get("cpu")
    shares = max(2, milli_value(cpu_request) * 1024 // 1000) if cpu_request else 0
    return nano_cpus, memory, shares


def host_ports(pod: core_pb2.Pod) -> dict[tuple[int, str], tuple[str, int]]:
    """Every container's hostPort, to publish on the sandbox (which owns the network)."""
    bindings = {}
    for container in [*pod.spec.init_containers, *pod.spec.containers]:
        for port in container.ports:
            if port.host_port:
                key = (port.container_port, port.protocol or "TCP")
                bindings[key] = (port.host_ip, port.host_port)
    return bindings


def container_name(pod: core_pb2.Pod, name: str, attempt: int) -> str:
    meta = pod.metadata
    return f"bosun_{name}_{meta.name}_{meta.namespace}_{meta.uid[:8]}_{attempt}"


def grace_seconds(pod: core_pb2.Pod | None, default: int) -> int:
    if pod is None:
        return default
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return int(pod.metadata.deletion_grace_period_seconds)
    if pod.spec.HasField("termination_grace_period_seconds"):
        return int(pod.spec.termination_grace_period_seconds)
    return default


Resolver = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # servers, search, options


def pod_dns(pod: core_pb2.Pod, settings: WorkerSettings) -> Resolver:
    """The sandbox's resolver, as the kubelet sets it for each dnsPolicy.

    ClusterFirst (the default) and ClusterFirstWithHostNet: the cluster DNS servers, the search
    path `<ns>.svc.<domain> svc.<domain> <domain>` and ndots:5, so `web` and `web.other` resolve
    as Services. A hostNetwork pod with plain ClusterFirst, dnsPolicy Default, or a kubelet
    without --cluster-dns: the node's own resolver (the runtime's default).
    """
    policy = pod.spec.dns_policy or "ClusterFirst"
    if not settings.cluster_dns or policy not in ("ClusterFirst", "ClusterFirstWithHostNet"):
        return (), (), ()
    if pod.spec.host_network and policy != "ClusterFirstWithHostNet":
        return (), (), ()
    domain = settings.cluster_domain
    namespace = pod.metadata.namespace or "default"
    search = (f"{namespace}.svc.{domain}", f"svc.{domain}", domain)
    return settings.cluster_dns, search, ("ndots:5",)


@dataclass
class _Instances:
    """One container name's instances, newest first."""

    records: list[ContainerRecord]

    @property
    def current(self) -> ContainerRecord | None:
        return self.records[0] if self.records else None

    @property
    def previous(self) -> ContainerRecord | None:
        return self.records[1] if len(self.records) > 1 else None


def _by_container(records: Sequence[ContainerRecord], kind: str) -> dict[str, _Instances]:
    grouped: dict[str, list[ContainerRecord]] = {}
    for record in records:
        if record.labels.get(L.KIND) == kind:
            grouped.setdefault(record.labels.get(L.CONTAINER_NAME, ""), []).append(record)
    return {
        name: _Instances(
            sorted(group, key=lambda r: (L.attempt_of(r.labels), r.created_at or 0), reverse=True)
        )
        for name, group in grouped.items()
    }


class PodWorker:
    def __init__(self, ctx: KubeletContext, uid: str, pod: core_pb2.Pod | None) -> None:
        self.ctx = ctx
        self.uid = uid
        self.pod = pod
        self._wake = asyncio.Event()
        self._wake.set()
        self._task: asyncio.Task[None] | None = None
        self._next_sync: float | None = None
        # container name → (reason, message) while it waits for something.
        self._waiting: dict[str, tuple[str, str]] = {}
        # Exited instances whose restart was already counted in the crash backoff.
        self._counted: set[str] = set()
        # (container id, probe type) → probe worker.
        self._probes: dict[tuple[str, ProbeType], ProbeWorker] = {}
        self._last_status: core_pb2.PodStatus | None = None
        # Pull-backoff key → when its last pull failed (the backoff clock's time).
        self._pull_failed_at: dict[str, float] = {}
        self._start_time = time.time()
        self._seen_at = time.monotonic()
        # Adopted pods (already running when first seen) are not counted as starts.
        self._start_observed = pod is not None and pod.status.phase == "Running"
        self.finished = asyncio.Event()

    # ---------------------------------------------------------------------------- driving

    def update(self, pod: core_pb2.Pod | None) -> None:
        """The latest Pod from the API (None: it is gone); wakes the worker."""
        self.pod = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"pod-worker-{self.uid}")

    async def stop(self) -> None:
        """Stop the worker (not the pod's containers: a new kubelet adopts them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stop_probes(keep=set())

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                await self._wait()
                self._next_sync = None
                started = time.monotonic()
                try:
                    if await self.sync():
                        return
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    metrics.SYNC_ERRORS.inc()
                    log.exception("pod %s: sync failed", self._describe())
                    self._after(min(30.0, 0.5 * 2**failures))
                finally:
                    metrics.SYNC_SECONDS.observe(time.monotonic() - started)
        finally:
            self.finished.set()

    async def _wait(self) -> None:
        timeout = self.ctx.settings.resync_period
        if self._next_sync is not None:
            timeout = min(timeout, max(0.0, self._next_sync - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def _after(self, delay: float) -> None:
        """Sync again after `delay` seconds at the latest."""
        when = time.monotonic() + delay
        if self._next_sync is None or when < self._next_sync:
            self._next_sync = when

    def _describe(self) -> str:
        if self.pod is None:
            return self.uid
        return f"{self.pod.metadata.namespace}/{self.pod.metadata.name}"

    # ---------------------------------------------------------------------------- sync

    async def sync(self) -> bool:
        """One step toward the spec; True once the pod is terminated and cleaned up."""
        pod = self.pod
        if pod is None or pod.metadata.HasField("deletion_timestamp"):
            await self.terminate(pod)
            return True
        records = await self.ctx.runtime.list_containers(pod_uid=self.uid)
        sandboxes = sorted(
            (r for r in records if r.labels.get(L.KIND) == "sandbox"),
            key=lambda r: (L.attempt_of(r.labels), r.created_at or 0),
            reverse=True,
        )
        sandbox = sandboxes[0] if sandboxes else None
        # Terminal as written by this worker, even before the informer shows it.
        written = self._last_status.phase if self._last_status is not None else ""
        terminal = pod.status.phase in TERMINAL_PHASES or written in TERMINAL_PHASES
        if not terminal and self._past_deadline(pod):
            await self._fail_for_deadline(pod, records)
            return False
        if terminal:
            # Nothing restarts in a finished pod; its sandbox is no longer needed.
            if sandbox is not None and sandbox.state == "running":
                await self.ctx.runtime.stop_container(sandbox.id, grace_seconds=0)
            await self._stop_probes(keep=set())
            return False
        if sandbox is None or sandbox.state != "running":
            dead = sandbox
            sandbox = await self._new_sandbox(pod, records, dead)
            if sandbox is None:
                await self._write_status(pod, records, "")
                return False
            # A first sandbox changed nothing else; replacing a dead one stopped containers.
            if dead is None:
                records = [*records, sandbox]
            else:
                records = await self.ctx.runtime.list_containers(pod_uid=self.uid)
        pod_ip = self.ctx.host_ip if pod.spec.host_network else sandbox.ip
        try:
            sources = await self.ctx.volumes.prepare(pod)
        except VolumeError as error:
            # As Kubernetes: the pod stays ContainerCreating and a FailedMount event says why.
            waiting = ("ContainerCreating", f"MountVolume.SetUp failed: {error}")
            containers = [c.name for c in [*pod.spec.init_containers, *pod.spec.containers]]
            if any(self._waiting.get(name) != waiting for name in containers):
                self.ctx.recorder.record(pod, "Warning", "FailedMount", waiting[1])
            for name in containers:
                self._waiting[name] = waiting
            self._after(2.0)
            await self._write_status(pod, records, pod_ip)
            return False
        changed = await self._sync_containers(pod, records, sandbox, sources, pod_ip)
        if changed:
            records = await self.ctx.runtime.list_containers(pod_uid=self.uid)
        await self._sync_probes(pod, records, pod_ip)
        await self._write_status(pod, records, pod_ip)
        await self._collect_garbage(records)
        return False

    def _past_deadline(self, pod: core_pb2.Pod) -> bool:
        """activeDeadlineSeconds, counted from the pod's startTime, has run out."""
        if not pod.spec.HasField("active_deadline_seconds"):
            return False
        started = (
            pod.status.start_time.ToNanoseconds() / 1e9
            if pod.status.HasField("start_time")
            else self._start_time
        )
        remaining = started + pod.spec.active_deadline_seconds - time.time()
        if remaining > 0:
            self._after(remaining)
            return False
        return True

    async def _fail_for_deadline(
        self, pod: core_pb2.Pod, records: Sequence[ContainerRecord]
    ) -> None:
        """Kubernetes' DeadlineExceeded: stop every container, then report the pod Failed."""
        message = "Pod was active on the node longer than the specified deadline"
        self.ctx.recorder.record(pod, "Normal", "DeadlineExceeded", message)
        await self._stop_probes(keep=set())
        grace = grace_seconds(pod, self.ctx.settings.default_grace_seconds)
        running = [r for r in records if r.state == "running" and r.labels.get(L.KIND) != "sandbox"]
        await asyncio.gather(
            *(self.ctx.runtime.stop_container(r.id, grace_seconds=grace) for r in running)
        )
        records = await self.ctx.runtime.list_containers(pod_uid=self.uid)
        sandbox_ip = next((r.ip for r in records if r.labels.get(L.KIND) == "sandbox" and r.ip), "")
        await self._write_status(
            pod, records, pod.status.pod_ip or sandbox_ip, failed=("DeadlineExceeded", message)
        )

    async def _new_sandbox(
        self,
        pod: core_pb2.Pod,
        records: Sequence[ContainerRecord],
        dead: ContainerRecord | None,
    ) -> ContainerRecord | None:
        """Start a (new) sandbox; a dead one takes its containers with it, as in Kubernetes."""
        runtime = self.ctx.runtime
        if dead is not None:
            log.info(
                "pod %s: sandbox %s is not running; recreating", self._describe(), dead.id[:12]
            )
            for record in records:
                if record.state == "running" and record.labels.get(L.KIND) != "sandbox":
                    await runtime.stop_container(record.id, grace_seconds=grace_seconds(pod, 30))
        image = self.ctx.settings.pod_infra_image
        if not await runtime.image_present(image):
            try:
                await runtime.pull_image(image)
            except ImagePullError as error:
                for container in [*pod.spec.init_containers, *pod.spec.containers]:
                    self._waiting[container.name] = ("ContainerCreating", str(error))
                self.ctx.recorder.record(pod, "Warning", "FailedCreatePodSandBox", str(error))
                self._after(10.0)
                return None
        attempt = 0 if dead is None else L.attempt_of(dead.labels) + 1
        host_network = pod.spec.host_network
        dns_servers, dns_search, dns_options = pod_dns(pod, self.ctx.settings)
        spec = ContainerSpec(
            name=container_name(pod, "POD", attempt),
            image=image,
            labels=self._labels(pod, "", "sandbox", attempt),
            # With hostNetwork the pod shares the node's network namespace (and name).
            hostname="" if host_network else pod.spec.hostname or pod.metadata.name,
            network_mode="host" if host_network else "",
            port_bindings={} if host_network else host_ports(pod),
            dns_servers=dns_servers,
            dns_search=dns_search,
            dns_options=dns_options,
        )
        try:
            await runtime.create_and_start(spec)
        except ContainerStartError as error:
            self.ctx.recorder.record(pod, "Warning", "FailedCreatePodSandBox", str(error))
            self._after(5.0)
            return None
        for record in await runtime.list_containers(pod_uid=self.uid):
            if record.labels.get(L.KIND) == "sandbox" and L.attempt_of(record.labels) == attempt:
                return record
        return None

    def _labels(self, pod: core_pb2.Pod, name: str, kind: str, attempt: int) -> dict[str, str]:
        meta = pod.metadata
        labels = L.pod_labels(
            node=self.ctx.node_name,
            uid=meta.uid,
            name=meta.name,
            namespace=meta.namespace,
            grace=grace_seconds(pod, self.ctx.settings.default_grace_seconds),
        )
        labels[L.KIND] = kind
        labels[L.ATTEMPT] = str(attempt)
        if name:
            labels[L.CONTAINER_NAME] = name
        return labels

    async def _sync_containers(
        self,
        pod: core_pb2.Pod,
        records: Sequence[ContainerRecord],
        sandbox: ContainerRecord,
        sources: dict[str, Mount],
        pod_ip: str,
    ) -> bool:
        """Take this sync's steps; True when a container was started or stopped."""
        changed = False
        policy = pod.spec.restart_policy or "Always"
        inits = _by_container(records, "init")
        for container in pod.spec.init_containers:
            instances = inits.get(container.name, _Instances([]))
            current = instances.current
            if current is not None and current.state == "running":
                return changed  # wait for it to finish
            if current is not None and current.state == "exited":
                if current.exit_code == 0:
                    continue
                if policy == "Never":
                    return changed  # the pod has failed
            changed |= await self._start_or_backoff(
                pod, container, "init", current, sandbox, sources
            )
            return changed
        apps = _by_container(records, "app")
        for container in pod.spec.containers:
            instances = apps.get(container.name, _Instances([]))
            current = instances.current
            if current is not None and current.state == "running":
                if not self._probe_says_kill(current):
                    continue
                await self._kill_unhealthy(pod, container, current)
                changed = True
                current = next(
                    (
                        r
                        for r in await self.ctx.runtime.list_containers(pod_uid=self.uid)
                        if r.id == current.id
                    ),
                    current,
                )
            if (
                current is not None
                and current.state == "exited"
                and not should_restart(policy, current.exit_code)
            ):
                continue
            changed |= await self._start_or_backoff(
                pod, container, "app", current, sandbox, sources
            )
        return changed

    def _probe_says_kill(self, record: ContainerRecord) -> bool:
        return any(
            (worker := self._probes.get((record.id, probe_type))) is not None and worker.killed
            for probe_type in ("liveness", "startup")
        )

    async def _kill_unhealthy(
        self, pod: core_pb2.Pod, container: core_pb2.Container, record: ContainerRecord
    ) -> None:
        probe_type = "liveness"
        probe = container.liveness_probe
        startup = self._probes.get((record.id, "startup"))
        if startup is not None and startup.killed:
            probe_type, probe = "startup", container.startup_probe
        grace = grace_seconds(pod, self.ctx.settings.default_grace_seconds)
        if probe.HasField("termination_grace_period_seconds"):
            grace = int(probe.termination_grace_period_seconds)
        self.ctx.recorder.record(
            pod,
            "Normal",
            "Killing",
            f"Container {container.name} failed {probe_type} probe, will be restarted",
        )
        await self._stop_probes_of(record.id)
        await self.ctx.runtime.stop_container(record.id, grace_seconds=grace)

    async def _start_or_backoff(
        self,
        pod: core_pb2.Pod,
        container: core_pb2.Container,
        kind: str,
        current: ContainerRecord | None,
        sandbox: ContainerRecord,
        sources: dict[str, Mount],
    ) -> bool:
        """Start the next instance of `container` unless a backoff says wait; True if started."""
        key = f"{self.uid}/{container.name}"
        backoff = self.ctx.crash_backoff
        attempt = 0
        if current is not None:
            attempt = L.attempt_of(current.labels) + 1
            finished = current.finished_at or time.time()
            if current.id not in self._counted and current.started_at is not None:
                backoff.reset_if_ran(key, finished - current.started_at)
            remaining = backoff.remaining(key, finished)
            if remaining > 0:
                message = (
                    f"back-off {backoff.window(key):g}s restarting failed "
                    f"container={container.name} pod={pod.metadata.name}"
                )
                if self._waiting.get(container.name, ("",))[0] != "CrashLoopBackOff":
                    self.ctx.recorder.record(pod, "Warning", "BackOff", message)
                self._waiting[container.name] = ("CrashLoopBackOff", message)
                self._after(remaining)
                return False
        if not await self._ensure_image(pod, container):
            return False
        try:
            # status.podIP / status.hostIP as they will be reported, before the first write.
            env_pod = core_pb2.Pod()
            env_pod.CopyFrom(pod)
            env_pod.status.pod_ip = self.ctx.host_ip if pod.spec.host_network else sandbox.ip
            env_pod.status.host_ip = self.ctx.host_ip
            env = container_env(
                env_pod,
                container,
                config_map=self.ctx.config_map,
                secret=self.ctx.secret,
                services=self.ctx.services(pod.metadata.namespace),
            )
            mounts = VolumeManager.mounts_for(container, sources)
        except (EnvError, VolumeError) as error:
            self._waiting[container.name] = ("CreateContainerConfigError", str(error))
            self.ctx.recorder.record(pod, "Warning", "Failed", f"Error: {error}")
            self._after(2.0)
            return False
        nano_cpus, memory, shares = resource_limits(container)
        spec = ContainerSpec(
            name=container_name(pod, container.name, attempt),
            image=container.image,
            labels=self._labels(pod, container.name, kind, attempt),
            entrypoint=list(container.command) if container.command else None,
            command=list(container.args) if container.args or container.command else None,
            env=env,
            working_dir=container.working_dir,
            mounts=mounts,
            network_mode=f"container:{sandbox.id}",
            nano_cpus=nano_cpus,
            memory_bytes=memory,
            cpu_shares=shares,
            tty=container.tty,
            stdin=container.stdin,
        )
        if current is not None:
            self._counted.add(current.id)
            backoff.next(key)
        try:
            await self.ctx.runtime.create_and_start(spec)
        except ContainerStartError as error:
            self._waiting[container.name] = ("CreateContainerError", str(error))
            self.ctx.recorder.record(pod, "Warning", "Failed", f"Error: {error}")
            if current is None:
                backoff.next(key)
            self._after(backoff.window(key) or 1.0)
            return True
        self._waiting.pop(container.name, None)
        metrics.CONTAINER_STARTS.labels(kind=kind).inc()
        self.ctx.recorder.record(pod, "Normal", "Created", f"Created container {container.name}")
        self.ctx.recorder.record(pod, "Normal", "Started", f"Started container {container.name}")
        return True

    async def _ensure_image(self, pod: core_pb2.Pod, container: core_pb2.Container) -> bool:
        """Apply imagePullPolicy; False (with a waiting reason) when the image is not there."""
        runtime = self.ctx.runtime
        image = container.image
        policy = pull_policy(container)
        if policy != "Always" and await runtime.image_present(image):
            # Called only before a container starts: once per start, as Kubernetes reports it.
            message = f'Container image "{image}" already present on machine'
            self.ctx.recorder.record(pod, "Normal", "Pulled", message)
            return True
        if policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._waiting[container.name] = ("ErrImageNeverPull", message)
            self.ctx.recorder.record(pod, "Warning", "ErrImageNeverPull", message)
            self._after(10.0)
            return False
        key = f"{self.uid}/{container.name}/{image}"
        pulls = self.ctx.pull_backoff
        remaining = pulls.remaining(key, self._pull_failed_at.get(key, 0.0))
        if remaining > 0:
            message = f'Back-off pulling image "{image}"'
            if self._waiting.get(container.name, ("",))[0] != "ImagePullBackOff":
                self.ctx.recorder.record(pod, "Normal", "BackOff", message)
            self._waiting[container.name] = ("ImagePullBackOff", message)
            self._after(remaining)
            return False
        self.ctx.recorder.record(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            await runtime.pull_image(image)
        except ImagePullError as error:
            pulls.next(key)
            self._pull_failed_at[key] = pulls.clock()
            self._waiting[container.name] = (error.reason, str(error))
            self.ctx.recorder.record(pod, "Warning", "Failed", str(error))
            self._after(pulls.window(key))
            return False
        pulls.forget(key)
        self._pull_failed_at.pop(key, None)
        self.ctx.recorder.record(
            pod,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s',
        )
        return True

    # ---------------------------------------------------------------------------- probes

    async def _sync_probes(
        self, pod: core_pb2.Pod, records: Sequence[ContainerRecord], pod_ip: str
    ) -> None:
        """One probe worker per (running app container instance, probe type)."""
        apps = _by_container(records, "app")
        wanted: set[tuple[str, ProbeType]] = set()
        for container in pod.spec.containers:
            current = apps.get(container.name, _Instances([])).current
            if current is None or current.state != "running":
                continue
            for probe_type in PROBE_ORDER:
                probe = probe_of(container, probe_type)
                if probe is None:
                    continue
                key = (current.id, probe_type)
                wanted.add(key)
                if key not in self._probes:
                    self._start_probe(pod, container, current, probe_type, probe, pod_ip)
        await self._stop_probes(keep=wanted)

    def _start_probe(
        self,
        pod: core_pb2.Pod,
        container: core_pb2.Container,
        record: ContainerRecord,
        probe_type: ProbeType,
        probe: core_pb2.Probe,
        pod_ip: str,
    ) -> None:
        runtime = self.ctx.runtime
        startup_key: tuple[str, ProbeType] = (record.id, "startup")

        async def check() -> ProbeOutcome:
            return await run_probe(
                probe, container, container_id=record.id, pod_ip=pod_ip, runtime=runtime
            )

        def gate() -> bool:
            if probe_type == "startup" or not container.HasField("startup_probe"):
                return True
            startup = self._probes.get(startup_key)
            return startup is not None and startup.result

        def on_failure(worker: ProbeWorker, message: str) -> None:
            kind = probe_type.capitalize()
            self.ctx.recorder.record(pod, "Warning", "Unhealthy", f"{kind} probe failed: {message}")

        worker = ProbeWorker(
            probe_type,
            probe,
            check,
            on_change=lambda worker: self.wake(),
            on_failure=on_failure,
            gate=gate,
            initial=self._was_ready(container.name, record.id)
            if probe_type == "readiness"
            else None,
        )
        self._probes[(record.id, probe_type)] = worker
        worker.start(f"probe-{probe_type}-{container.name}-{self.uid[:8]}")

    def _was_ready(self, name: str, container_id: str) -> bool | None:
        """Readiness already reported for this very instance (a restarted kubelet keeps it)."""
        if self.pod is None:
            return None
        for status in self.pod.status.container_statuses:
            if status.name == name and status.container_id == f"docker://{container_id}":
                return status.ready
        return None

    async def _stop_probes(self, *, keep: set[tuple[str, ProbeType]]) -> None:
        for key in [k for k in self._probes if k not in keep]:
            await self._probes.pop(key).stop()

    async def _stop_probes_of(self, container_id: str) -> None:
        for key in [k for k in self._probes if k[0] == container_id]:
            await self._probes.pop(key).stop()

    def _views(
        self, pod: core_pb2.Pod, records: Sequence[ContainerRecord], kind: str
    ) -> list[ContainerView]:
        containers = pod.spec.init_containers if kind == "init" else pod.spec.containers
        grouped = _by_container(records, kind)
        views = []
        for container in containers:
            instances = grouped.get(container.name, _Instances([]))
            current = instances.current
            waiting = self._waiting.get(container.name)
            if current is not None and current.state == "running":
                waiting = None
            if waiting is None and current is None and kind == "app" and pod.spec.init_containers:
                waiting = ("PodInitializing", "")
            ready, started = True, True
            if current is not None:
                readiness = self._probes.get((current.id, "readiness"))
                if container.HasField("readiness_probe"):
                    ready = readiness is not None and readiness.result
                startup = self._probes.get((current.id, "startup"))
                if container.HasField("startup_probe"):
                    started = startup is not None and startup.result
                ready = ready and started
            views.append(
                ContainerView(
                    name=container.name,
                    image=container.image,
                    current=current,
                    previous=instances.previous,
                    restart_count=L.attempt_of(current.labels) if current else 0,
                    waiting_reason=waiting[0] if waiting else "",
                    waiting_message=waiting[1] if waiting else "",
                    ready=ready,
                    started=started,
                )
            )
        return views

    async def _write_status(
        self,
        pod: core_pb2.Pod,
        records: Sequence[ContainerRecord],
        pod_ip: str,
        *,
        failed: tuple[str, str] | None = None,
    ) -> None:
        """Write the observed status (`failed`: (reason, message) that end the pod Failed)."""
        status = compute_status(
            pod,
            init_views=self._views(pod, records, "init"),
            views=self._views(pod, records, "app"),
            host_ip=self.ctx.host_ip,
            pod_ip=pod_ip,
            start_time=self._start_time,
            now=time.time(),
        )
        if failed is not None:
            status.phase = "Failed"
            status.reason, status.message = failed
            for condition in status.conditions:
                if condition.type in ("ContainersReady", "Ready") and condition.status == "True":
                    condition.status = "False"
                    condition.reason = "PodFailed"
                    condition.last_transition_time.GetCurrentTime()
        if status == pod.status or status == self._last_status:
            return
        update = core_pb2.Pod()
        update.CopyFrom(pod)
        # The kubelet owns pod status: write it without a resourceVersion (last writer wins)
        # instead of failing on every concurrent spec or metadata change.
        update.metadata.resource_version = ""
        update.status.CopyFrom(status)
        try:
            written = await self.ctx.pods.update_status(update)
        except NotFoundError:
            return  # deleted meanwhile: the informer's event will terminate the worker
        self._last_status = status
        if (
            not self._start_observed
            and status.phase == "Running"
            and all(c.state.HasField("running") for c in status.container_statuses)
        ):
            self._start_observed = True
            metrics.POD_START_SECONDS.observe(time.monotonic() - self._seen_at)
        if self.pod is not None and self.pod.metadata.uid == written.metadata.uid:
            self.pod = written

    async def _collect_garbage(self, records: Sequence[ContainerRecord]) -> None:
        """Remove exited instances beyond the newest `keep_exited + 1` per container."""
        keep = self.ctx.settings.keep_exited + 1
        for kind in ("init", "app", "sandbox"):
            if kind == "sandbox":
                groups = {"": _by_container(records, "sandbox").get("", _Instances([]))}
            else:
                groups = _by_container(records, kind)
            for instances in groups.values():
                for old in instances.records[keep:]:
                    if old.state == "exited":
                        await self.ctx.runtime.remove_container(old.id)

    # ---------------------------------------------------------------------------- termination

    async def terminate(self, pod: core_pb2.Pod | None) -> None:
        await self._stop_probes(keep=set())
        runtime = self.ctx.runtime
        records = await runtime.list_containers(pod_uid=self.uid)
        default = self.ctx.settings.default_grace_seconds
        if pod is not None:
            grace = grace_seconds(pod, default)
        else:
            labelled = [r.labels.get(L.GRACE, "") for r in records]
            grace = next((int(g) for g in labelled if g.isdigit()), default)
        running = [r for r in records if r.state == "running" and r.labels.get(L.KIND) != "sandbox"]
        if pod is not None:
            for record in running:
                name = record.labels.get(L.CONTAINER_NAME, "")
                self.ctx.recorder.record(pod, "Normal", "Killing", f"Stopping container {name}")
        await asyncio.gather(*(runtime.stop_container(r.id, grace_seconds=grace) for r in running))
        for record in records:
            if record.labels.get(L.KIND) == "sandbox" and record.state == "running":
                await runtime.stop_container(record.id, grace_seconds=0)
        for record in records:
            await runtime.remove_container(record.id)
        await self.ctx.volumes.cleanup(self.uid)
        self.ctx.crash_backoff.forget_prefix(f"{self.uid}/")
        self.ctx.pull_backoff.forget_prefix(f"{self.uid}/")
        if pod is not None:
            try:
                await self.ctx.pods.delete(
                    pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    grace_period_seconds=0,
                    uid=pod.metadata.uid,
                )
            except (NotFoundError, PreconditionError):
                pass  # already gone, or a new pod took the name
            except ApiError:
                log.warning("pod %s: final delete failed; retrying", self._describe())
                raise
        log.info("pod %s terminated and cleaned up", self._describe())
