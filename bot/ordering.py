"""Per-conversation ordering: one conversation's updates run one at a time, in arrival order;
different conversations run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    """A FIFO lock per key, created on first use and dropped when nobody holds or awaits it.

    Re-entrant within one task: a handler that holds its conversation while it prepares a
    message (a download, a transcription) can then have the engine answer it.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}
        self._owners: dict[Hashable, asyncio.Task[object]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._owners.get(key) is task:
            yield
            return
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                if task is not None:
                    self._owners[key] = task
                try:
                    yield
                finally:
                    self._owners.pop(key, None)
        finally:
            lock_now, users_now = self._locks[key]
            if users_now <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_now, users_now - 1)

    def busy(self, key: Hashable) -> bool:
        return key in self._locks

    def __len__(self) -> int:
        return len(self._locks)
