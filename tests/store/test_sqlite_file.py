"""The SQLite store's file under a running service (docs/operations.md#health): a file that
cannot be written fails the readiness ping and every write with the cause, and recovers by
itself; a file removed under the store is never written to again, until it is back.

Immutable files (`chattr +i`) refuse writes even through descriptors opened before, which is
what a full or read-only disk does to a running service; setting the flag needs root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from queue_manager.adapters.sqlite_store import SQLiteStore
from queue_manager.domain.errors import DependencyUnavailable
from tests.store.helpers import make_queue, update_one
from tests.support.files import immutable


async def _open(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


async def test_an_unwritable_file_fails_ping_and_writes_with_the_cause_then_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "qm.db"
    store = await _open(path)
    try:
        kept = make_queue()
        await store.insert(kept, None)
        await store.ping()
        # Not the shared-memory index: it is mapped into memory, and SQLite is not the point.
        with immutable([path, path.with_name("qm.db-wal")]):
            with pytest.raises(DependencyUnavailable) as pinged:
                await store.ping()
            assert pinged.value.dependency == "store"
            assert "cannot write" in pinged.value.detail
            with pytest.raises(DependencyUnavailable) as inserted:
                await store.insert(make_queue(), None)
            assert "rollback" not in inserted.value.detail
            assert "cannot write" in inserted.value.detail
            assert "disk I/O error" in inserted.value.detail
            with pytest.raises(DependencyUnavailable):
                await update_one(store, kept.id, lambda q: setattr(q, "symbol", "ETHUSDT") or True)
            assert (await store.get(kept.id)) is not None  # reads still answer
        await store.ping()  # by itself, no reopening needed
        later = make_queue()
        await store.insert(later, None)
        assert (await update_one(store, kept.id, lambda q: True)) is not None
    finally:
        await store.close()
    reopened = await _open(path)
    try:
        assert await reopened.get(later.id) is not None
    finally:
        await reopened.close()


async def test_a_removed_file_is_never_written_until_it_is_back(tmp_path: Path) -> None:
    path = tmp_path / "qm.db"
    aside = tmp_path / "moved-away.db"
    store = await _open(path)
    try:
        first = make_queue()
        await store.insert(first, None)
        path.rename(aside)
        with pytest.raises(DependencyUnavailable) as pinged:
            await store.ping()
        assert "removed" in pinged.value.detail and str(path) in pinged.value.detail
        with pytest.raises(DependencyUnavailable, match="removed"):
            await store.insert(make_queue(), None)
        with pytest.raises(DependencyUnavailable, match="removed"):
            await update_one(store, first.id, lambda q: True)
        assert not path.exists()  # nothing created an empty store in its place

        aside.rename(path)  # back: the same file
        await store.ping()
        second = make_queue()
        await store.insert(second, None)
    finally:
        await store.close()
    reopened = await _open(path)
    try:
        assert await reopened.get(first.id) is not None
        assert await reopened.get(second.id) is not None
    finally:
        await reopened.close()


async def test_a_file_put_back_from_a_copy_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "qm.db"
    store = await _open(path)
    try:
        first = make_queue()
        await store.insert(first, None)
        backup = tmp_path / "backup"
        backup.mkdir()
        for name in ("qm.db", "qm.db-wal"):
            shutil.copy(tmp_path / name, backup / name)
        for name in ("qm.db", "qm.db-wal", "qm.db-shm"):
            (tmp_path / name).unlink()
        with pytest.raises(DependencyUnavailable, match="removed"):
            await store.insert(make_queue(), None)
        # Restored the way an operator restores a file: moved into place whole.
        (backup / "qm.db-wal").rename(tmp_path / "qm.db-wal")
        (backup / "qm.db").rename(path)
        await store.ping()
        second = make_queue()
        await store.insert(second, None)
        assert await store.get(first.id) is not None
    finally:
        await store.close()
    reopened = await _open(path)
    try:
        assert await reopened.get(first.id) is not None
        assert await reopened.get(second.id) is not None
    finally:
        await reopened.close()
