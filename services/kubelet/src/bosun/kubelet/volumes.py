"""Pod volumes on the node: where each one lives, and how its content gets there.

Layout under the kubelet's root directory (`--root-dir`):

    pods/<pod uid>/volumes/empty-dir/<volume>     emptyDir on node disk
    pods/<pod uid>/volumes/config-map/<volume>    projected ConfigMap keys
    pods/<pod uid>/volumes/secret/<volume>        projected Secret keys (mode 0644 by default)

`persistentVolumeClaim` is followed to its bound PersistentVolume (`spec.volumeName`, whose
`claimRef` must name this claim) and that volume's hostPath is bind-mounted.

`emptyDir` with `medium: Memory` is a Docker volume of type tmpfs (labelled with the pod uid),
shared by the pod's containers and gone with the pod. `hostPath` is bind-mounted as is (the
`type` checks of Kubernetes are applied).

ConfigMap and Secret projection is atomic, as Kubernetes' AtomicWriter does it: the files of
one version go into a fresh `..<timestamp>` directory, the `..data` symlink is swapped to it in
one rename, and every key is a symlink `key → ..data/key`. A container reading the mounted
directory sees either the old or the new set of files, never a mix. Re-projecting unchanged
data is a no-op, so the pod worker may call `prepare` on every sync.

Paths are the same inside and outside a containerised kubelet only if `--root-dir` is mounted
at the same path: Docker resolves bind sources on the host.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bosun.api.v1 import core_pb2
from bosun.kubelet import labels as L
from bosun.kubelet.runtime import ContainerRuntime, Mount


class VolumeError(Exception):
    """A volume cannot be set up (missing ConfigMap, bad hostPath type, …)."""


ConfigMapLookup = Callable[[str, str], core_pb2.ConfigMap | None]
SecretLookup = Callable[[str, str], core_pb2.Secret | None]
ClaimLookup = Callable[[str, str], core_pb2.PersistentVolumeClaim | None]
# PersistentVolumes are cluster-scoped: called with namespace "".
VolumeLookup = Callable[[str, str], core_pb2.PersistentVolume | None]

DATA_LINK = "..data"


def _safe_relative(path: str) -> str:
    parts = Path(path).parts
    if not path or path.startswith("/") or ".." in parts or path.startswith(".."):
        raise VolumeError(f"invalid path {path!r}: must be relative and not contain '..'")
    return path


def project_files(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """Atomically make `directory` hold exactly `files` (relative path → (content, mode)).

    Returns whether anything changed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    current = directory / DATA_LINK
    if current.is_symlink() and _same_content(directory / os.readlink(current), files):
        return False
    version = directory / f"..{time.time_ns()}"
    version.mkdir()
    for relative, (content, mode) in files.items():
        target = version / _safe_relative(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    staging = directory / "..data_tmp"
    if staging.is_symlink() or staging.exists():
        staging.unlink()
    staging.symlink_to(version.name)
    old = os.readlink(current) if current.is_symlink() else None
    staging.rename(current)  # the atomic switch
    # Top-level links: key → ..data/key (for nested paths, the first component).
    wanted = {Path(relative).parts[0] for relative in files}
    for name in wanted:
        link = directory / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    if old is not None and old != version.name:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True


def _same_content(version: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    existing = {str(path.relative_to(version)) for path in version.rglob("*") if path.is_file()}
    if existing != set(files):
        return False
    for relative, (content, mode) in files.items():
        path = version / relative
        if path.read_bytes() != content or stat.S_IMODE(path.stat().st_mode) != mode:
            return False
    return True


def _select(
    data: Mapping[str, bytes],
    items: list[core_pb2.KeyToPath],
    default_mode: int,
    what: str,
    optional: bool,
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise VolumeError(f'key "{item.key}" not found in {what}')
        mode = item.mode if item.HasField("mode") else default_mode
        files[item.path or item.key] = (data[item.key], mode)
    return files


class VolumeManager:
    def __init__(
        self,
        root: Path,
        runtime: ContainerRuntime,
        *,
        node: str,
        config_map: ConfigMapLookup,
        secret: SecretLookup,
        claim: ClaimLookup = lambda namespace, name: None,
        volume: VolumeLookup = lambda namespace, name: None,
    ) -> None:
        self.root = root
        self.runtime = runtime
        self.node = node
        self._config_map = config_map
        self._secret = secret
        self._claim = claim
        self._volume = volume

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    async def prepare(self, pod: core_pb2.Pod) -> dict[str, Mount]:
        """Set up (or refresh) every volume of `pod`; volume name → what to mount.

        Runtime volumes (tmpfs) are created here; the file work (directories, projections)
        runs in a thread so that the event loop never waits on the disk.
        """
        uid = pod.metadata.uid
        sources: dict[str, Mount] = {}
        for volume in pod.spec.volumes:
            if volume.HasField("empty_dir") and volume.empty_dir.medium == "Memory":
                name = f"bosun-{uid}-{volume.name}"
                labels = {L.NODE: self.node, L.POD_UID: uid}
                await self.runtime.ensure_volume(name, labels=labels, tmpfs=True)
                sources[volume.name] = Mount(name, "", volume=True)
        sources.update(await asyncio.to_thread(self._prepare_files, pod, set(sources)))
        return sources

    def _prepare_files(self, pod: core_pb2.Pod, done: set[str]) -> dict[str, Mount]:
        base = self.pod_dir(pod.metadata.uid) / "volumes"
        sources: dict[str, Mount] = {}
        for volume in pod.spec.volumes:
            if volume.name in done:
                continue
            if volume.HasField("empty_dir"):
                path = base / "empty-dir" / volume.name
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)
                sources[volume.name] = Mount(str(path), "")
            elif volume.HasField("host_path"):
                sources[volume.name] = Mount(self._host_path(volume.host_path), "")
            elif volume.HasField("config_map"):
                source = volume.config_map
                optional = source.optional if source.HasField("optional") else False
                cm = self._config_map(pod.metadata.namespace, source.name)
                if cm is None and not optional:
                    raise VolumeError(f'configmap "{source.name}" not found')
                data: dict[str, bytes] = {}
                if cm is not None:
                    data = {k: v.encode() for k, v in cm.data.items()}
                    data.update(cm.binary_data)
                mode = source.default_mode if source.HasField("default_mode") else 0o644
                files = _select(
                    data, list(source.items), mode, f'configmap "{source.name}"', optional
                )
                path = base / "config-map" / volume.name
                project_files(path, files)
                sources[volume.name] = Mount(str(path), "", read_only=True)
            elif volume.HasField("secret"):
                ssource = volume.secret
                optional = ssource.optional if ssource.HasField("optional") else False
                sec = self._secret(pod.metadata.namespace, ssource.secret_name)
                if sec is None and not optional:
                    raise VolumeError(f'secret "{ssource.secret_name}" not found')
                sdata = dict(sec.data) if sec is not None else {}
                mode = ssource.default_mode if ssource.HasField("default_mode") else 0o644
                what = f'secret "{ssource.secret_name}"'
                files = _select(sdata, list(ssource.items), mode, what, optional)
                path = base / "secret" / volume.name
                project_files(path, files)
                sources[volume.name] = Mount(str(path), "", read_only=True)
            elif volume.HasField("persistent_volume_claim"):
                claim = volume.persistent_volume_claim
                path_ = self._claimed_path(pod.metadata.namespace, claim.claim_name)
                sources[volume.name] = Mount(path_, "", read_only=claim.read_only)
            else:
                raise VolumeError(f"volume {volume.name!r} has no supported source")
        return sources

    def _claimed_path(self, namespace: str, claim_name: str) -> str:
        """The host path behind a claim: claim → bound PersistentVolume → its hostPath."""
        claim = self._claim(namespace, claim_name)
        if claim is None:
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
        if not claim.spec.volume_name:
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" is not bound')
        volume = self._volume("", claim.spec.volume_name)
        if volume is None:
            raise VolumeError(f'persistentvolume "{claim.spec.volume_name}" not found')
        bound_to = volume.spec.claim_ref
        if bound_to.uid and bound_to.uid != claim.metadata.uid:
            raise VolumeError(
                f'persistentvolume "{volume.metadata.name}" is bound to another claim'
                f" ({bound_to.namespace}/{bound_to.name})"
            )
        if not volume.spec.HasField("host_path"):
            raise VolumeError(
                f'persistentvolume "{volume.metadata.name}": only hostPath volumes are supported'
            )
        return self._host_path(volume.spec.host_path)

    @staticmethod
    def _host_path(source: core_pb2.HostPathVolumeSource) -> str:
        path = Path(source.path)
        kind = source.type
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        elif kind == "Directory" and not path.is_dir():
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
        elif kind == "File" and not path.is_file():
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
        elif kind == "Socket" and not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
            raise VolumeError(f"hostPath type check failed: {path} is not a socket")
        return str(path)

    @staticmethod
    def mounts_for(container: core_pb2.Container, sources: Mapping[str, Mount]) -> list[Mount]:
        mounts = []
        for vm in container.volume_mounts:
            source = sources.get(vm.name)
            if source is None:
                raise VolumeError(f"volumeMount {vm.name!r}: no volume of that name")
            origin = source.source
            if vm.sub_path:
                if source.volume:
                    raise VolumeError(f"volumeMount {vm.name!r}: subPath on a tmpfs emptyDir")
                sub = Path(origin) / _safe_relative(vm.sub_path)
                if not sub.exists():
                    sub.mkdir(parents=True, exist_ok=True)
                origin = str(sub)
            mounts.append(
                Mount(
                    origin,
                    vm.mount_path,
                    read_only=vm.read_only or source.read_only,
                    volume=source.volume,
                )
            )
        return mounts

    async def cleanup(self, uid: str) -> None:
        await self.runtime.remove_volumes(pod_uid=uid)
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(uid), ignore_errors=True)
