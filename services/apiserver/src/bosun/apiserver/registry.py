"""Object semantics on top of storage: what Create, Update, Delete, Bind… mean for an object.

This is Bosun's counterpart of Kubernetes' generic registry store. It owns:

* metadata the server manages (uid, creationTimestamp, generation, resourceVersion,
  deletionTimestamp) and name generation;
* defaulting and validation (with field paths), and the 1.5 MiB object limit;
* optimistic concurrency: a write is an etcd transaction conditioned on the revision it read.
  A caller that sent a resourceVersion gets ConflictError when it is stale; a caller that did not
  (or a merge patch, which is defined on the latest object) is retried here on conflict;
* the main resource / status split: Update ignores status, UpdateStatus changes only status;
* deletion: preconditions, finalizers and deletionTimestamp, graceful pod deletion, namespaces
  that must be emptied before they go.

Reads of "the current object" before a write come from the watch cache when it has the key:
if the cache is behind, the write's revision precondition fails, and etcd hands back the true
current value in the same round trip, so a stale cache costs a retry, never a wrong write.

All errors are bosun.common.errors.ApiError subclasses; the gRPC layer maps them to statuses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.apiserver import wire
from bosun.apiserver.allocation import (
    CLUSTER_IP_PREFIX,
    NODE_PORT_PREFIX,
    RangeFullError,
    ServiceRanges,
    carry_over_allocations,
    choose_allocations,
    claim_fields,
    clear_allocations,
    range_errors,
)
from bosun.apiserver.defaulting import apply_defaults
from bosun.apiserver.storage import (
    ClaimConflictError,
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionConflictError,
    Storage,
    StorageUnavailableError,
)
from bosun.apiserver.validation import (
    FieldError,
    validate_object,
    validate_status_update,
    validate_update,
)
from bosun.apiserver.watchcache import Filter, WatchCache
from bosun.common import kinds
from bosun.common.errors import (
    AlreadyExistsError,
    ApiError,
    ConflictError,
    ExpiredError,
    InvalidError,
    NotFoundError,
    PreconditionError,
    ResourceExhaustedError,
)
from bosun.common.kinds import KindInfo
from bosun.common.mergepatch import apply_merge_patch
from bosun.common.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    validate_field_selector,
)

MAX_OBJECT_BYTES = 1536 * 1024
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
NAMESPACE_FINALIZER = "kubernetes"
FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_RETRIES = 20
# ObjectMeta fields only the server writes: clients' values are ignored on create and update.
_SERVER_MANAGED_METADATA = (
    "uid",
    "creation_timestamp",
    "deletion_timestamp",
    "deletion_grace_period_seconds",
    "generation",
)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def key_for(info: KindInfo, namespace: str, name: str) -> str:
    if info.namespaced:
        return f"/registry/{info.resource}/{namespace}/{name}"
    return f"/registry/{info.resource}/{name}"


def prefix_for(info: KindInfo, namespace: str = "") -> str:
    if info.namespaced and namespace:
        return f"/registry/{info.resource}/{namespace}/"
    return f"/registry/{info.resource}/"


def _invalid(info: KindInfo, name: str, errors: list[FieldError]) -> InvalidError:
    details = "; ".join(str(error) for error in errors)
    return InvalidError(f'{info.kind} "{name}" is invalid: {details}')


def _conflict(info: KindInfo, name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {info.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def _not_found(info: KindInfo, name: str) -> NotFoundError:
    return NotFoundError(f'{info.resource} "{name}" not found')


def _parse_revision(text: str, path: str = "metadata.resourceVersion") -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidError(f'{path}: Invalid value: "{text}": must be an integer') from None
    if value < 0:
        raise InvalidError(f'{path}: Invalid value: "{text}": must be non-negative')
    return value


def _spec_bytes(message: Any) -> bytes:
    """Everything but metadata and status: what `generation` tracks."""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField("metadata")
    for name in ("status", "api_version", "kind"):
        if copy.DESCRIPTOR.fields_by_name.get(name) is not None:
            copy.ClearField(name)
    return bytes(copy.SerializeToString(deterministic=True))


def _deterministic(message: Message) -> bytes:
    return bytes(message.SerializeToString(deterministic=True))


@dataclass
class _Current:
    message: Any
    revision: int
    # Read from the watch cache, which may lag etcd by a few milliseconds.
    cached: bool = False


@dataclass(frozen=True)
class ContinueToken:
    revision: int
    start_key: str

    def encode(self) -> str:
        raw = json.dumps({"rv": self.revision, "start": self.start_key}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, token: str) -> ContinueToken:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return cls(int(data["rv"]), str(data["start"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise InvalidError(
                f'continue: Invalid value: "{token}": not a continue token'
            ) from None


class Registry:
    def __init__(
        self,
        storage: Storage,
        caches: dict[str, WatchCache],
        *,
        clock: Clock = _now,
        max_object_bytes: int = MAX_OBJECT_BYTES,
        service_ranges: ServiceRanges | None = None,
    ) -> None:
        self.storage = storage
        self.caches = caches
        self.clock = clock
        self.max_object_bytes = max_object_bytes
        self.service_ranges = service_ranges or ServiceRanges()

    # ------------------------------------------------------------------ helpers

    def kind(self, name: str) -> KindInfo:
        try:
            return kinds.lookup(name)
        except kinds.UnknownKindError as error:
            raise InvalidError(f"kind: {error}") from None

    def _unwrap(self, envelope: Any) -> tuple[KindInfo, Any]:
        try:
            return kinds.unwrap(envelope)
        except kinds.UnknownKindError as error:
            raise InvalidError(f"object: {error}") from None

    def _namespace_of(self, info: KindInfo, namespace: str) -> str:
        if info.namespaced:
            return namespace or "default"
        if namespace:
            raise InvalidError(
                f"metadata.namespace: Forbidden: {info.kind} is cluster-scoped and takes no "
                f'namespace (got "{namespace}")'
            )
        return ""

    def _timestamp(self, target: Any, when: datetime | None = None) -> None:
        moment = (when or self.clock()).replace(microsecond=0)
        target.FromDatetime(moment)

    async def _read(self, info: KindInfo, key: str) -> _Current | None:
        cached = self.caches[info.kind].get(key)
        if cached is not None:
            return _Current(
                self._decode(info, cached.message), cached.resource_version, cached=True
            )
        return await self._read_storage(info, key)

    async def _read_storage(self, info: KindInfo, key: str) -> _Current | None:
        kv = await self.storage.get(key)
        return None if kv is None else self._current(info, kv)

    def _current(self, info: KindInfo, kv: KeyValue) -> _Current:
        return _Current(self._decode(info, kv.value), kv.mod_revision)

    @staticmethod
    def _decode(info: KindInfo, data: bytes) -> Any:
        message: Any = info.message.FromString(data)
        message.metadata.resource_version = ""
        return message

    def _serialize(self, info: KindInfo, message: Any) -> bytes:
        message.metadata.resource_version = ""
        data = bytes(message.SerializeToString())
        if len(data) > self.max_object_bytes:
            raise ResourceExhaustedError(
                f'{info.kind} "{message.metadata.name}" is too large: {len(data)} bytes '
                f"(the limit is {self.max_object_bytes} bytes)"
            )
        return data

    def _response(self, info: KindInfo, data: bytes, revision: int) -> bytes:
        return wire.envelope(info.envelope_field, wire.with_resource_version(data, revision))

    async def _check_namespace(self, info: KindInfo, namespace: str) -> None:
        if not info.namespaced:
            return
        ns_info = kinds.KINDS["Namespace"]
        current = await self._read(ns_info, key_for(ns_info, "", namespace))
        if current is None:
            raise NotFoundError(f'namespaces "{namespace}" not found')
        if current.message.HasField("metadata") and current.message.metadata.HasField(
            "deletion_timestamp"
        ):
            raise PreconditionError(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )

    # ------------------------------------------------------------------ create

    async def create(self, envelope: Any, *, dry_run: bool = False) -> bytes:
        info, message = self._unwrap(envelope)
        meta = message.metadata
        meta.namespace = self._namespace_of(info, meta.namespace)
        if meta.resource_version:
            raise InvalidError(
                "metadata.resourceVersion: Invalid value: resourceVersion should not be set on "
                "objects to be created"
            )
        for server_field in _SERVER_MANAGED_METADATA:
            message.metadata.ClearField(server_field)
        self._prepare_for_create(info, message)
        apply_defaults(info, message)
        generated = not meta.name and bool(meta.generate_name)
        if generated:
            meta.name = self._generate_name(meta.generate_name)
        errors = validate_object(info, message)
        if info.kind == "Service":
            errors.extend(range_errors(message, self.service_ranges))
        if errors:
            raise _invalid(info, meta.name or meta.generate_name, errors)
        await self._check_namespace(info, meta.namespace)
        meta.uid = str(uuid.uuid4())
        meta.generation = 1
        self._timestamp(meta.creation_timestamp)
        chosen = self._allocate(info, message)
        for _attempt in range(5):
            data = self._serialize(info, message)
            if dry_run:
                return self._response(info, data, 0)
            try:
                revision = await self.storage.create(
                    key_for(info, meta.namespace, meta.name),
                    data,
                    claims=self._claims(info, message),
                )
            except ClaimConflictError as error:
                chosen = await self._allocate_again(info, message, error, chosen)
                continue
            except KeyExistsError:
                if generated:
                    meta.name = self._generate_name(meta.generate_name)
                    continue
                raise AlreadyExistsError(f'{info.resource} "{meta.name}" already exists') from None
            return self._response(info, data, revision)
        raise AlreadyExistsError(
            f'{info.resource}: could not generate a unique name from "{meta.generate_name}"'
        )

    # ------------------------------------------------------------------ service addresses

    def _allocate(self, info: KindInfo, message: Any, taken: Collection[str] = ()) -> set[str]:
        if info.kind != "Service":
            return set()
        try:
            return choose_allocations(message, self.service_ranges, taken=taken)
        except RangeFullError:
            raise ResourceExhaustedError(
                f'services "{message.metadata.name}": no free cluster IP or node port left in '
                f"the service ranges ({self.service_ranges.network}, node ports "
                f"{self.service_ranges.node_ports.start}-{self.service_ranges.node_ports.stop - 1})"
            ) from None

    async def _allocate_again(
        self, info: KindInfo, message: Any, error: ClaimConflictError, chosen: set[str]
    ) -> set[str]:
        """After a lost claim: refuse an address the client asked for, else choose anew
        among the addresses etcd says are free."""
        fields = claim_fields(message)
        requested = [key for key in error.keys if key not in chosen]
        if requested:
            path = fields.get(requested[0], "spec")
            value = requested[0].rsplit("/", 1)[1]
            what = "IP" if path == "spec.clusterIP" else "port"
            raise _invalid(
                info,
                message.metadata.name,
                [FieldError.invalid(path, value, f"provided {what} is already allocated")],
            )
        clear_allocations(message, error.keys)
        taken: set[str] = set()
        for prefix in (CLUSTER_IP_PREFIX, NODE_PORT_PREFIX):
            listed = await self.storage.list(prefix)
            taken.update(kv.key for kv in listed.kvs)
        return (chosen - set(error.keys)) | self._allocate(info, message, taken)

    @staticmethod
    def _claims(info: KindInfo, message: Any) -> list[tuple[str, bytes]]:
        if info.kind != "Service":
            return []
        owner = f"{message.metadata.namespace}/{message.metadata.name}".encode()
        return [(key, owner) for key in claim_fields(message)]

    @staticmethod
    def _releases(info: KindInfo, message: Any) -> list[str]:
        return list(claim_fields(message)) if info.kind == "Service" else []

    @staticmethod
    def _generate_name(prefix: str) -> str:
        return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))

    def _prepare_for_create(self, info: KindInfo, message: Any) -> None:
        if info.kind in ("Pod", "ReplicaSet", "Deployment", "Service"):
            message.ClearField("status")
        if info.kind == "Pod":
            message.status.phase = "Pending"
        if info.kind == "Namespace":
            message.ClearField("status")
            message.status.phase = "Active"
            if NAMESPACE_FINALIZER not in message.spec.finalizers:
                message.spec.finalizers.append(NAMESPACE_FINALIZER)

    # ------------------------------------------------------------------ get / list

    async def get(self, kind: str, namespace: str, name: str) -> bytes:
        info = self.kind(kind)
        namespace = self._namespace_of(info, namespace)
        if not name:
            raise InvalidError("name: Required value")
        kv = await self.storage.get(key_for(info, namespace, name))
        if kv is None:
            raise _not_found(info, name)
        return self._response(info, kv.value, kv.mod_revision)

    def filter(
        self, info: KindInfo, namespace: str, label_selector: str, field_selector: str
    ) -> Filter:
        try:
            labels = parse_label_selector(label_selector) if label_selector else None
        except SelectorError as error:
            raise InvalidError(f"labelSelector: {error}") from None
        try:
            fields = parse_field_selector(field_selector) if field_selector else None
            if fields is not None:
                validate_field_selector(info.kind, fields)
        except SelectorError as error:
            raise InvalidError(f"fieldSelector: {error}") from None
        return Filter(namespace=namespace, labels=labels, fields=fields)

    async def list(self, request: apiserver_pb2.ListRequest) -> bytes:
        """A consistent List, read from etcd (a quorum read at one revision).

        Pages of a paginated List are read at the first page's revision, so together they are
        one snapshot; once etcd has compacted that revision the token is expired. Without
        selectors the stored bytes go out as they are; with selectors each object is decoded
        once to match it.
        """
        info = self.kind(request.kind)
        namespace = (
            request.namespace if info.namespaced else self._namespace_of(info, request.namespace)
        )
        flt = self.filter(info, namespace, request.label_selector, request.field_selector)
        if request.limit < 0:
            raise InvalidError("limit: Invalid value: must be non-negative")
        prefix = prefix_for(info, namespace)
        revision, start = 0, ""
        if request.continue_token:
            token = ContinueToken.decode(request.continue_token)
            if not token.start_key.startswith(prefix):
                raise InvalidError("continue: Invalid value: the token belongs to another List")
            revision, start = token.revision, token.start_key + "\x00"
        limit = request.limit
        filtering = flt.labels is not None or flt.fields is not None
        decode = self.caches[info.kind].decode
        items: list[bytes] = []
        last_key = ""
        more = True
        remaining: int | None = None
        while more and (not limit or len(items) < limit):
            # Without a filter, ask etcd for exactly one more than the page to know if more
            # remain; with one, read in chunks until the page is full.
            chunk = (limit + 1 - len(items)) if limit and not filtering else max(limit, 500)
            try:
                result = await self.storage.list(
                    prefix, revision=revision, start_key=start, limit=chunk if limit else 0
                )
            except CompactedError:
                raise ExpiredError(
                    "the continue token has expired (its resourceVersion was compacted); "
                    "start the List again"
                ) from None
            kvs, more = result.kvs, result.more
            if remaining is None and not filtering:
                remaining = result.count
            revision = revision or result.revision
            for kv in kvs:
                if limit and len(items) == limit:
                    more = True
                    break
                if filtering and not flt.matches(decode(kv.key, kv.value, kv.mod_revision)):
                    last_key = kv.key
                    continue
                items.append(self._response(info, kv.value, kv.mod_revision))
                last_key = kv.key
            if kvs:
                start = kvs[-1].key + "\x00"
            if not limit:
                break
        token_text = ContinueToken(revision, last_key).encode() if limit and more else ""
        left = remaining - len(items) if token_text and remaining is not None else None
        return wire.list_response(
            items, resource_version=revision, continue_token=token_text, remaining=left
        )

    # ------------------------------------------------------------------ update

    async def _write(
        self,
        info: KindInfo,
        key: str,
        name: str,
        mutate: Callable[[Any], Any],
        *,
        precondition: int | None,
        dry_run: bool,
    ) -> bytes:
        """Read-modify-write with retries on conflict. `mutate(current) -> new | None`.

        Returns the response envelope; an object whose last finalizer went is removed.
        """
        current = await self._read(info, key)
        lost_claims = 0
        for _attempt in range(_MAX_RETRIES):
            if current is None:
                raise _not_found(info, name)
            try:
                if precondition is not None and precondition != current.revision:
                    raise _conflict(info, name)
                new = mutate(current.message)
            except ApiError:
                # A decision made on the cache's copy is only final once etcd confirms it.
                if current.cached:
                    current = await self._read_storage(info, key)
                    continue
                raise
            if new is None or _deterministic(new) == _deterministic(current.message):
                data = self._serialize(info, current.message)
                return self._response(info, data, current.revision)
            data = self._serialize(info, new)
            removable = self._finished_deleting(info, new)
            if dry_run:
                return self._response(info, data, current.revision)
            held = self._releases(info, current.message)
            try:
                if removable:
                    revision = await self.storage.delete(
                        key, expected_revision=current.revision, releases=held
                    )
                else:
                    wanted = self._claims(info, new)
                    revision = await self.storage.update(
                        key,
                        data,
                        expected_revision=current.revision,
                        claims=[(k, owner) for k, owner in wanted if k not in held],
                        releases=[k for k in held if k not in dict(wanted)],
                    )
            except RevisionConflictError as error:
                current = None if error.current is None else self._current(info, error.current)
                continue
            except ClaimConflictError as error:
                lost_claims += 1
                if lost_claims < 3:
                    continue  # a random pick lost a race: `mutate` picks again
                path = claim_fields(new).get(error.keys[0], "spec")
                value = error.keys[0].rsplit("/", 1)[1]
                raise _invalid(
                    info,
                    name,
                    [FieldError.invalid(path, value, "provided value is already allocated")],
                ) from None
            except KeyNotFoundError:
                raise _not_found(info, name) from None
            return self._response(info, data, revision)
        raise _conflict(info, name)

    @staticmethod
    def _finished_deleting(info: KindInfo, message: Any) -> bool:
        """An object marked for deletion whose finalizers are all gone is removed."""
        meta = message.metadata
        if not meta.HasField("deletion_timestamp") or meta.finalizers:
            return False
        if info.kind == "Namespace" and message.spec.finalizers:
            return False
        return not (info.kind == "Pod" and meta.deletion_grace_period_seconds > 0)

    async def update(self, envelope: Any, *, status: bool = False, dry_run: bool = False) -> bytes:
        info, new = self._unwrap(envelope)
        meta = new.metadata
        namespace = self._namespace_of(info, meta.namespace)
        if not meta.name:
            raise InvalidError("metadata.name: Required value")
        if status and not info.has_status:
            raise InvalidError(f"{info.kind} has no status; use Update")
        precondition = _parse_revision(meta.resource_version) if meta.resource_version else None

        def mutate(current: Any) -> Any:
            return self._updated(info, current, new, status=status)

        return await self._write(
            info,
            key_for(info, namespace, meta.name),
            meta.name,
            mutate,
            precondition=precondition,
            dry_run=dry_run,
        )

    def _updated(self, info: KindInfo, current: Any, new: Any, *, status: bool) -> Any:
        name = current.metadata.name
        if status:
            result = type(current)()
            result.CopyFrom(current)
            result.status.CopyFrom(new.status)
            errors = validate_status_update(info, result, current)
        else:
            result = type(new)()
            result.CopyFrom(new)
            meta, old_meta = result.metadata, current.metadata
            meta.namespace = old_meta.namespace
            if new.metadata.uid and new.metadata.uid != old_meta.uid:
                raise PreconditionError(
                    f"Precondition failed: UID in precondition: {new.metadata.uid}, UID in "
                    f"object meta: {old_meta.uid}"
                )
            for server_field in _SERVER_MANAGED_METADATA:
                copy_field(meta, old_meta, server_field)
            if info.has_status:
                result.status.CopyFrom(current.status)
            apply_defaults(info, result)
            if info.kind == "Service":
                carry_over_allocations(current, result)
                range_problems = range_errors(result, self.service_ranges)
                if range_problems:
                    raise _invalid(info, name, range_problems)
                self._allocate(info, result)
            if old_meta.HasField("deletion_timestamp"):
                added = set(meta.finalizers) - set(old_meta.finalizers)
                if added:
                    raise InvalidError(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the "
                        f"object is being deleted, found new finalizers {sorted(added)}"
                    )
            if _spec_bytes(result) != _spec_bytes(current):
                meta.generation = old_meta.generation + 1
            errors = validate_update(info, result, current)
        if errors:
            raise _invalid(info, name, errors)
        return result

    async def patch(self, request: apiserver_pb2.PatchRequest) -> bytes:
        info = self.kind(request.kind)
        namespace = self._namespace_of(info, request.namespace)
        if not request.name:
            raise InvalidError("name: Required value")
        if request.type not in (
            apiserver_pb2.PATCH_TYPE_UNSPECIFIED,
            apiserver_pb2.PATCH_TYPE_MERGE,
        ):
            raise InvalidError(f"type: Unsupported value: {request.type}")
        if request.status and not info.has_status:
            raise InvalidError(f"{info.kind} has no status; patch the object itself")
        try:
            document = json.loads(request.patch)
        except json.JSONDecodeError as error:
            raise InvalidError(f"patch: not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise InvalidError("patch: a merge patch must be a JSON object")
        requested_rv = (document.get("metadata") or {}).get("resourceVersion")
        precondition = _parse_revision(str(requested_rv)) if requested_rv else None

        def mutate(current: Any) -> Any:
            original = json_format.MessageToDict(current)
            merged = apply_merge_patch(original, document)
            if not isinstance(merged, dict):
                raise InvalidError("patch: the result is not an object")
            patched: Any = info.message()
            try:
                json_format.ParseDict(merged, patched)
            except json_format.ParseError as error:
                raise InvalidError(f"patch: {error}") from None
            patched.metadata.resource_version = ""
            if patched.metadata.name != current.metadata.name:
                raise InvalidError("metadata.name: Invalid value: field is immutable")
            return self._updated(info, current, patched, status=request.status)

        return await self._write(
            info,
            key_for(info, namespace, request.name),
            request.name,
            mutate,
            precondition=precondition,
            dry_run=request.dry_run,
        )

    # ------------------------------------------------------------------ delete

    async def delete(self, request: apiserver_pb2.DeleteRequest) -> bytes:
        info = self.kind(request.kind)
        namespace = self._namespace_of(info, request.namespace)
        name = request.name
        if not name:
            raise InvalidError("name: Required value")
        if info.kind == "Namespace" and name in UNDELETABLE_NAMESPACES:
            raise PreconditionError(
                f'namespace "{name}" is a system namespace and may not be deleted'
            )
        policy = request.propagation_policy or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise InvalidError(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Background", "Foreground", "Orphan"'
            )
        grace: int | None = None
        if request.HasField("grace_period_seconds"):
            grace = request.grace_period_seconds
            if grace < 0:
                raise InvalidError("gracePeriodSeconds: Invalid value: must be non-negative")
        pre = request.preconditions
        key = key_for(info, namespace, name)
        current = await self._read(info, key)
        for _attempt in range(_MAX_RETRIES):
            if current is None:
                raise _not_found(info, name)
            message = current.message
            try:
                self._check_preconditions(pre, current)
            except ApiError:
                if current.cached:
                    current = await self._read_storage(info, key)
                    continue
                raise
            marked = self._mark_for_deletion(info, message, grace=grace, policy=policy)
            try:
                if marked is None:
                    data = self._serialize(info, message)
                    if request.dry_run:
                        return self._delete_response(info, data, current.revision, removed=True)
                    revision = await self.storage.delete(
                        key,
                        expected_revision=current.revision,
                        releases=self._releases(info, message),
                    )
                    return self._delete_response(info, data, revision, removed=True)
                data = self._serialize(info, marked)
                if request.dry_run or _deterministic(marked) == _deterministic(message):
                    return self._delete_response(info, data, current.revision, removed=False)
                revision = await self.storage.update(key, data, expected_revision=current.revision)
                return self._delete_response(info, data, revision, removed=False)
            except RevisionConflictError as error:
                current = None if error.current is None else self._current(info, error.current)
            except KeyNotFoundError:
                raise _not_found(info, name) from None
        raise _conflict(info, name)

    @staticmethod
    def _check_preconditions(pre: apiserver_pb2.Preconditions, current: _Current) -> None:
        uid = current.message.metadata.uid
        if pre.uid and pre.uid != uid:
            raise PreconditionError(
                f"Precondition failed: UID in precondition: {pre.uid}, UID in object meta: {uid}"
            )
        if pre.resource_version and current.revision != _parse_revision(
            pre.resource_version, "preconditions.resourceVersion"
        ):
            raise ConflictError(
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre.resource_version}, ResourceVersion in object meta: {current.revision}"
            )

    def _delete_response(
        self, info: KindInfo, data: bytes, revision: int, *, removed: bool
    ) -> bytes:
        envelope = self._response(info, data, revision)
        out = wire.length_delimited(1, envelope)
        if removed:
            out += wire.tag(2, 0) + wire.varint(1)
        return out

    def _mark_for_deletion(
        self, info: KindInfo, message: Any, *, grace: int | None, policy: str
    ) -> Any | None:
        """The object marked for deletion, or None when it can be removed now."""
        marked = type(message)()
        marked.CopyFrom(message)
        meta = marked.metadata
        if policy == "Foreground" and FOREGROUND_FINALIZER not in meta.finalizers:
            meta.finalizers.append(FOREGROUND_FINALIZER)
        if policy == "Orphan" and ORPHAN_FINALIZER not in meta.finalizers:
            meta.finalizers.append(ORPHAN_FINALIZER)
        now = self.clock()
        if info.kind == "Pod":
            pod_grace = self._pod_grace(marked, grace)
            if pod_grace > 0:
                if (
                    meta.HasField("deletion_timestamp")
                    and meta.deletion_grace_period_seconds <= pod_grace
                ):
                    return marked  # already terminating at least as fast
                self._timestamp(meta.deletion_timestamp, now + timedelta(seconds=pod_grace))
                meta.deletion_grace_period_seconds = pod_grace
                return marked
            if meta.finalizers:
                if not meta.HasField("deletion_timestamp") or meta.deletion_grace_period_seconds:
                    self._timestamp(meta.deletion_timestamp, now)
                meta.deletion_grace_period_seconds = 0
                return marked
            return None
        holding = bool(meta.finalizers) or (
            info.kind == "Namespace" and bool(marked.spec.finalizers)
        )
        if not holding:
            return None
        if not meta.HasField("deletion_timestamp"):
            self._timestamp(meta.deletion_timestamp, now)
            meta.deletion_grace_period_seconds = 0
        if info.kind == "Namespace":
            marked.status.phase = "Terminating"
        return marked

    @staticmethod
    def _pod_grace(pod: Any, requested: int | None) -> int:
        if not pod.spec.node_name or pod.status.phase in ("Succeeded", "Failed"):
            return 0  # nothing runs it: no kubelet will finish a graceful delete
        if requested is not None:
            return requested
        if pod.spec.HasField("termination_grace_period_seconds"):
            return int(pod.spec.termination_grace_period_seconds)
        return 30

    # ------------------------------------------------------------------ bind

    async def bind(self, request: apiserver_pb2.BindRequest) -> bytes:
        info = kinds.KINDS["Pod"]
        namespace = request.namespace or "default"
        if not request.name:
            raise InvalidError("name: Required value")
        if not request.node_name:
            raise InvalidError("target.name (nodeName): Required value")

        def mutate(current: Any) -> Any:
            if request.uid and request.uid != current.metadata.uid:
                raise PreconditionError(
                    f"Precondition failed: UID in precondition: {request.uid}, UID in object "
                    f"meta: {current.metadata.uid}"
                )
            if current.metadata.HasField("deletion_timestamp"):
                raise PreconditionError(
                    f'pod "{request.name}" is being deleted, cannot be assigned'
                )
            if current.spec.node_name:
                raise ConflictError(
                    f'Operation cannot be fulfilled on pods/binding "{request.name}": pod '
                    f'{request.name} is already assigned to node "{current.spec.node_name}"'
                )
            bound = type(current)()
            bound.CopyFrom(current)
            bound.spec.node_name = request.node_name
            conditions = [c for c in bound.status.conditions if c.type != "PodScheduled"]
            del bound.status.conditions[:]
            bound.status.conditions.extend(conditions)
            scheduled = bound.status.conditions.add(type="PodScheduled", status="True")
            self._timestamp(scheduled.last_transition_time)
            errors = validate_update(info, bound, current)
            errors = [error for error in errors if not error.path.startswith("spec.nodeName")]
            if errors:
                raise _invalid(info, request.name, errors)
            return bound

        return await self._write(
            info,
            key_for(info, namespace, request.name),
            request.name,
            mutate,
            precondition=None,
            dry_run=False,
        )

    # ------------------------------------------------------------------ bootstrap

    async def ensure_system_namespaces(self) -> None:
        from bosun.api.v1 import core_pb2, object_pb2

        for name in SYSTEM_NAMESPACES:
            namespace = core_pb2.Namespace()
            namespace.metadata.name = name
            envelope = object_pb2.Object(namespace=namespace)
            with contextlib.suppress(AlreadyExistsError):
                await self.create(envelope)


def copy_field(target: Any, source: Any, field: str) -> None:
    """Copy one field from `source` to `target`, including its absence."""
    descriptor = source.DESCRIPTOR.fields_by_name[field]
    if descriptor.has_presence and not source.HasField(field):
        target.ClearField(field)
    elif descriptor.message_type is not None:
        getattr(target, field).CopyFrom(getattr(source, field))
    else:
        setattr(target, field, getattr(source, field))


__all__ = ["ContinueToken", "Registry", "StorageUnavailableError", "key_for", "prefix_for"]
