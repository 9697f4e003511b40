"""Periodic etcd compaction that keeps one interval of history.

Every `interval` seconds the compactor compacts etcd up to the revision it saw at the previous
tick, so etcd always holds at least one interval of history: enough for the watch caches to
resume a broken etcd watch and for paginated Lists to finish, without letting etcd grow forever.
"""

from __future__ import annotations

import asyncio
import logging

from bosun.apiserver.storage import Storage, StorageError

log = logging.getLogger(__name__)


class Compactor:
    def __init__(self, storage: Storage, *, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self.compacted_revision = 0
        self._previous_revision = 0

    async def tick(self) -> None:
        current = await self.storage.current_revision()
        if self._previous_revision > self.compacted_revision:
            await self.storage.compact(self._previous_revision)
            self.compacted_revision = self._previous_revision
            log.info("compacted etcd to revision %d", self.compacted_revision)
        self._previous_revision = current

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except StorageError as error:
                log.warning("compaction failed: %s", error)
