"""Staying inside Telegram's flood limits before Telegram has to say 429.

Two leaky buckets: one for the whole bot (about 30 messages a second), one per group (about 20
a minute). Previews only go out when there is room to spare, keeping a reserve for final
messages; finals wait for their turn.
"""

from __future__ import annotations

import time

from aiolimiter import AsyncLimiter

# Previews leave this much of a group's bucket for the final messages of replies in progress.
GROUP_RESERVE = 3
OVERALL_RESERVE = 5
IDLE_GROUP_S = 120.0


class Pacer:
    def __init__(self, overall_per_s: float, group_per_min: float) -> None:
        self._overall = AsyncLimiter(overall_per_s, 1) if overall_per_s > 0 else None
        self._group_rate = group_per_min
        self._groups: dict[int, tuple[AsyncLimiter, float]] = {}

    def _group(self, chat_id: int) -> AsyncLimiter | None:
        if chat_id >= 0 or self._group_rate <= 0:
            return None
        now = time.monotonic()
        entry = self._groups.get(chat_id)
        limiter = entry[0] if entry is not None else AsyncLimiter(self._group_rate, 60)
        self._groups[chat_id] = (limiter, now)
        if len(self._groups) > 1000:
            self._groups = {k: v for k, v in self._groups.items() if now - v[1] < IDLE_GROUP_S}
        return limiter

    async def preview(self, chat_id: int) -> bool:
        """Take a slot for a preview if there is room to spare; False means skip this preview."""
        group = self._group(chat_id)
        if group is not None and not group.has_capacity(1 + GROUP_RESERVE):
            return False
        if self._overall is not None and not self._overall.has_capacity(1 + OVERALL_RESERVE):
            return False
        if group is not None:
            await group.acquire()
        if self._overall is not None:
            await self._overall.acquire()
        return True

    async def final(self, chat_id: int) -> None:
        """Wait for a slot for a message that must be delivered."""
        group = self._group(chat_id)
        if group is not None:
            await group.acquire()
        if self._overall is not None:
            await self._overall.acquire()
