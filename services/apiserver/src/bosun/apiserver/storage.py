"""The apiserver's storage layer: a small interface over etcd v3, and its etcd3aio implementation.

Everything above this module speaks in keys, bytes and revisions. The interface is deliberately
narrow (get, list, create, update, delete, watch, compact) so that the etcd client library can
be swapped without touching the registry or the watch cache.

Writes are etcd transactions with a precondition on the key's revision, which is what gives the
API its optimistic concurrency: `create` requires create_revision == 0, `update` and `delete`
require mod_revision == the revision the caller read. A failed precondition returns the current
state of the key in the same round trip, so the caller can tell "changed" from "gone".

A write may also claim keys (create them, failing if any exists) and release keys (delete them)
in the same transaction: that is how a Service and the ClusterIP and NodePorts it holds are
written together, so no two objects ever hold the same address (see bosun.apiserver.allocation).

Writes are never retried here: after a lost connection a write may or may not have been applied,
and only the caller knows whether repeating it is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import grpc
from etcd3aio import Etcd3Client
from etcd3aio import _protobuf as etcd_protos
from etcd3aio.kv import KVService, prefix_range_end
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from bosun.apiserver.etcd_target import resolve_target

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# etcd's generated messages and stubs, as etcd3aio registers them.
rpc_pb2: Any = getattr(etcd_protos, "rpc_pb2")  # noqa: B009 - not re-exported for type checkers
rpc_pb2_grpc: Any = getattr(etcd_protos, "rpc_pb2_grpc")  # noqa: B009

_ETCD_METHODS = {
    rpc_pb2.RangeRequest: "Range",
    rpc_pb2.TxnRequest: "Txn",
    rpc_pb2.CompactionRequest: "Compact",
    rpc_pb2.PutRequest: "Put",
    rpc_pb2.DeleteRangeRequest: "DeleteRange",
}
_ETCD_SPAN_ATTRIBUTES = {"rpc.system": "grpc", "db.system": "etcd"}


# Keys a write creates alongside its object, each with the value it holds (its owner).
Claims = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class ListResult:
    kvs: list[KeyValue]
    # The revision the range was read at.
    revision: int
    # Whether keys remain past the `limit`, and how many keys the range holds in all.
    more: bool
    count: int


@dataclass(frozen=True, slots=True)
class StorageEvent:
    type: Literal["PUT", "DELETE"]
    key: str
    # The new value for PUT; empty for DELETE.
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events in revision order, plus the revision the stream is known to be complete up to."""

    events: list[StorageEvent]
    revision: int


class StorageError(Exception):
    pass


class StorageUnavailableError(StorageError):
    """etcd could not be reached; a write may or may not have been applied."""


class KeyExistsError(StorageError):
    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("key exists")
        self.current = current


class KeyNotFoundError(StorageError):
    pass


class RevisionConflictError(StorageError):
    """The key's revision is not the one the write was conditioned on."""

    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("revision conflict")
        self.current = current


class ClaimConflictError(StorageError):
    """A key the write claimed exists already: someone else holds it."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(f"already claimed: {', '.join(keys)}")
        self.keys = list(keys)


class CompactedError(StorageError):
    """The requested revision has been compacted away."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision compacted (oldest available: {compact_revision})")
        self.compact_revision = compact_revision


class Storage(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult: ...

    async def current_revision(self) -> int: ...

    async def create(self, key: str, value: bytes, *, claims: Claims = ()) -> int: ...

    async def update(
        self,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        claims: Claims = (),
        releases: Sequence[str] = (),
    ) -> int: ...

    async def delete(
        self, key: str, *, expected_revision: int, releases: Sequence[str] = ()
    ) -> int: ...

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]: ...

    def request_progress(self, prefix: str) -> None: ...

    async def unchanged_between(
        self, prefix: str, *, after: int, at: int, expected_count: int
    ) -> bool: ...

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...


def _holds(compare: Any, current: KeyValue | None) -> bool:
    """Whether a create (key absent) or revision compare holds for the key's current state."""
    if compare.target == rpc_pb2.Compare.CREATE:
        return current is None
    return current is not None and current.mod_revision == compare.mod_revision


def _kv(raw: Any) -> KeyValue:
    return KeyValue(
        key=raw.key.decode(),
        value=raw.value,
        mod_revision=raw.mod_revision,
        create_revision=raw.create_revision,
    )


def _is_compacted(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.OUT_OF_RANGE or "compacted" in (error.details() or "")


def _storage_error(error: grpc.aio.AioRpcError) -> StorageError:
    if _is_compacted(error):
        return CompactedError(0)
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return StorageUnavailableError(f"etcd: {error.code().name}: {error.details()}")
    return StorageError(f"etcd: {error.code().name}: {error.details()}")


class EtcdStorage:
    """Storage on an etcd v3 cluster: etcd3aio makes the connection (endpoints, keepalive, TLS);
    calls go through its generated stubs so that each is made exactly once (see `_call`)."""

    def __init__(self, endpoints: Sequence[str], *, request_timeout: float = 10.0) -> None:
        self._endpoints = list(endpoints)
        self._client = Etcd3Client(self._endpoints, rpc_max_attempts=3)
        self._timeout = request_timeout
        self._kv_stub: Any = None
        self._watch_stub: Any = None
        # The request queue of each open watch stream, by prefix, for progress requests.
        self._progress_queues: dict[str, asyncio.Queue[rpc_pb2.WatchRequest]] = {}

    async def connect(self) -> None:
        # etcd3aio would dial `ipv4:<endpoints>`, which refuses host names: give it our target.
        self._client._manager.target = await resolve_target(self._endpoints)
        await self._client.connect()
        channel = self._client._channel
        self._kv_stub = rpc_pb2_grpc.KVStub(channel)
        self._watch_stub = rpc_pb2_grpc.WatchStub(channel)

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, rpc: Any, request: Any) -> Any:
        """One etcd RPC on the raw stubs, its failure mapped to a StorageError.

        Not retried here: reads are retried by API clients, and writes must not be (see above).
        Each call is a CLIENT span (a child of the request being served), so a trace shows
        which etcd calls a request made and how long each took.
        """
        method = _ETCD_METHODS.get(type(request), type(request).__name__)
        with _tracer.start_as_current_span(
            f"etcdserverpb.KV/{method}", kind=SpanKind.CLIENT, attributes=_ETCD_SPAN_ATTRIBUTES
        ) as span:
            try:
                return await rpc(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                span.set_status(Status(StatusCode.ERROR, f"{error.code().name}"))
                raise _storage_error(error) from error

    async def get(self, key: str) -> KeyValue | None:
        response = await self._call(self._kv_stub.Range, rpc_pb2.RangeRequest(key=key.encode()))
        return _kv(response.kvs[0]) if response.kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        """Keys under `prefix` (from `start_key` on) in key order, at `revision` (0: now)."""
        request = rpc_pb2.RangeRequest(
            key=(start_key or prefix).encode(),
            range_end=prefix_range_end(prefix),
            revision=revision,
            limit=limit,
        )
        response = await self._call(self._kv_stub.Range, request)
        return ListResult(
            [_kv(raw) for raw in response.kvs],
            int(response.header.revision),
            bool(response.more),
            int(response.count),
        )

    async def unchanged_between(
        self, prefix: str, *, after: int, at: int, expected_count: int
    ) -> bool:
        """Whether no key under `prefix` was written in (after, at] and `expected_count` keys
        exist at `at`: then a state exact at `after` is also exact at `at` (a key both created
        and deleted in between is the one change this cannot see)."""
        end = prefix_range_end(prefix)
        base = {"key": prefix.encode(), "range_end": end, "revision": at, "count_only": True}
        try:
            total = await self._call(self._kv_stub.Range, rpc_pb2.RangeRequest(**base))
            written = await self._call(
                self._kv_stub.Range, rpc_pb2.RangeRequest(**base, min_mod_revision=after + 1)
            )
        except CompactedError:
            return False
        return int(total.count) == expected_count and int(written.count) == 0

    async def current_revision(self) -> int:
        request = rpc_pb2.RangeRequest(key=b"\x00", count_only=True)
        response = await self._call(self._kv_stub.Range, request)
        return int(response.header.revision)

    async def _txn(
        self,
        compare: Any,
        success: Sequence[Any],
        key: str,
        claims: Claims = (),
        releases: Sequence[str] = (),
    ) -> tuple[bool, int, KeyValue | None]:
        """One transaction: `compare` on `key` and "absent" on every claimed key; on success the
        `success` ops, a put of each claim and a delete of each release. On failure the current
        `key`, or ClaimConflictError naming the claimed keys that exist."""
        compares = [compare]
        compares.extend(KVService.txn_compare_create_revision(claim, 0) for claim, _ in claims)
        ops: list[Any] = [*success]
        ops.extend(KVService.txn_op_put(claim, owner) for claim, owner in claims)
        ops.extend(KVService.txn_op_delete(released) for released in releases)
        failure = [KVService.txn_op_get(key)]
        failure.extend(KVService.txn_op_get(claim) for claim, _ in claims)
        request = rpc_pb2.TxnRequest(compare=compares, success=ops, failure=failure)
        # A write is attempted exactly once (see the module docstring).
        response = await self._call(self._kv_stub.Txn, request)
        if response.succeeded:
            return True, int(response.header.revision), None
        kvs = response.responses[0].response_range.kvs
        current = _kv(kvs[0]) if kvs else None
        taken = [
            claim
            for (claim, _), reply in zip(claims, response.responses[1:], strict=True)
            if reply.response_range.kvs
        ]
        if taken and _holds(compare, current):
            raise ClaimConflictError(taken)  # the object itself was as expected: a claim failed
        return False, int(response.header.revision), current

    async def create(self, key: str, value: bytes, *, claims: Claims = ()) -> int:
        ok, revision, current = await self._txn(
            KVService.txn_compare_create_revision(key, 0),
            [KVService.txn_op_put(key, value)],
            key,
            claims,
        )
        if not ok:
            raise KeyExistsError(current)
        return revision

    @staticmethod
    def _same_revision(key: str, revision: int) -> Any:
        return rpc_pb2.Compare(
            result=rpc_pb2.Compare.EQUAL,
            target=rpc_pb2.Compare.MOD,
            key=key.encode(),
            mod_revision=revision,
        )

    async def update(
        self,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        claims: Claims = (),
        releases: Sequence[str] = (),
    ) -> int:
        ok, revision, current = await self._txn(
            self._same_revision(key, expected_revision),
            [KVService.txn_op_put(key, value)],
            key,
            claims,
            releases,
        )
        if not ok:
            if current is None:
                raise KeyNotFoundError(key)
            raise RevisionConflictError(current)
        return revision

    async def delete(
        self, key: str, *, expected_revision: int, releases: Sequence[str] = ()
    ) -> int:
        ok, revision, current = await self._txn(
            self._same_revision(key, expected_revision),
            [KVService.txn_op_delete(key)],
            key,
            releases=releases,
        )
        if not ok:
            if current is None:
                raise KeyNotFoundError(key)
            raise RevisionConflictError(current)
        return revision

    async def compact(self, revision: int) -> None:
        try:
            await self._call(self._kv_stub.Compact, rpc_pb2.CompactionRequest(revision=revision))
        except CompactedError:
            return  # already compacted at or beyond this revision

    def request_progress(self, prefix: str) -> None:
        """Ask the watch stream on `prefix` to report the revision it is complete up to.

        etcd answers with an event-less response whose header revision is that mark (only once
        the stream has caught up, so callers re-ask until they see the revision they need).
        """
        queue = self._progress_queues.get(prefix)
        if queue is not None:
            queue.put_nowait(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Stream changes under `prefix` from `start_revision` on, in revision order.

        Ends with CompactedError when `start_revision` is older than etcd's history, and with
        StorageUnavailableError when the stream breaks; the caller decides how to resume.
        """
        requests: asyncio.Queue[rpc_pb2.WatchRequest] = asyncio.Queue()
        requests.put_nowait(
            rpc_pb2.WatchRequest(
                create_request=rpc_pb2.WatchCreateRequest(
                    key=prefix.encode(),
                    range_end=prefix_range_end(prefix),
                    start_revision=start_revision,
                    progress_notify=True,
                )
            )
        )

        async def request_stream() -> AsyncIterator[rpc_pb2.WatchRequest]:
            while True:
                yield await requests.get()

        call = self._watch_stub.Watch(request_stream())
        self._progress_queues[prefix] = requests
        try:
            async for response in call:
                if response.created:
                    # Its header revision says nothing about replayed history still to come.
                    continue
                if response.compact_revision:
                    raise CompactedError(int(response.compact_revision))
                if response.canceled:
                    raise StorageUnavailableError(
                        f"etcd cancelled the watch: {response.cancel_reason}"
                    )
                events = [
                    StorageEvent(
                        "PUT" if raw.type == 0 else "DELETE",
                        raw.kv.key.decode(),
                        raw.kv.value,
                        int(raw.kv.mod_revision),
                    )
                    for raw in response.events
                ]
                # A response's header revision is only a completeness mark for progress
                # notifications (no events); with events, the last event's revision is.
                revision = events[-1].revision if events else int(response.header.revision)
                yield WatchBatch(events, revision)
            raise StorageUnavailableError("etcd closed the watch stream")
        except grpc.aio.AioRpcError as error:
            if _is_compacted(error):
                raise CompactedError(0) from error
            raise StorageUnavailableError(
                f"etcd watch broke: {error.code().name}: {error.details()}"
            ) from error
        finally:
            if self._progress_queues.get(prefix) is requests:
                del self._progress_queues[prefix]
            call.cancel()
