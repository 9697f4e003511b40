"""The compactor keeps one interval of history."""

from __future__ import annotations

from bosun.apiserver.compactor import Compactor


class RevisionCounter:
    def __init__(self) -> None:
        self.revision = 10
        self.compactions: list[int] = []

    async def current_revision(self) -> int:
        return self.revision

    async def compact(self, revision: int) -> None:
        self.compactions.append(revision)


async def test_first_tick_only_remembers_the_revision() -> None:
    storage = RevisionCounter()
    compactor = Compactor(storage, interval=60)  # type: ignore[arg-type]
    await compactor.tick()
    assert storage.compactions == []


async def test_each_tick_compacts_to_the_revision_seen_one_interval_ago() -> None:
    storage = RevisionCounter()
    compactor = Compactor(storage, interval=60)  # type: ignore[arg-type]
    await compactor.tick()
    storage.revision = 25
    await compactor.tick()
    storage.revision = 40
    await compactor.tick()
    assert storage.compactions == [10, 25]


async def test_no_compaction_without_new_writes() -> None:
    storage = RevisionCounter()
    compactor = Compactor(storage, interval=60)  # type: ignore[arg-type]
    await compactor.tick()
    await compactor.tick()
    await compactor.tick()
    assert storage.compactions == [10]
