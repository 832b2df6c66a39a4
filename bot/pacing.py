"""Staying inside Telegram's flood limits before Telegram has to say 429.

Leaky buckets for the whole bot (about 30 messages a second), each chat (about one a second,
short bursts allowed) and each group (about 20 a minute). Previews only go out when there is
room to spare, keeping a reserve for final messages; finals wait for their turn. A rate of 0
switches that bucket off.
"""

from __future__ import annotations

import time

from aiolimiter import AsyncLimiter

# Previews leave this much of a bucket for the final messages of replies in progress.
RESERVE = {"overall": 5, "chat": 1, "group": 3}
CHAT_BURST = 3
# Requests reach Telegram a little later and less evenly than they leave: pacing a tenth below
# the published limits keeps that jitter from turning into 429s.
MARGIN = 0.9
IDLE_S = 120.0
MAX_TRACKED = 2000


class _Buckets:
    """One limiter per chat, forgotten after a while without use."""

    def __init__(self, rate: float, period: float) -> None:
        self._rate, self._period = rate, period
        self._limiters: dict[int, tuple[AsyncLimiter, float]] = {}

    def get(self, chat_id: int) -> AsyncLimiter | None:
        if self._rate <= 0:
            return None
        now = time.monotonic()
        entry = self._limiters.get(chat_id)
        limiter = entry[0] if entry is not None else AsyncLimiter(self._rate, self._period)
        self._limiters[chat_id] = (limiter, now)
        if len(self._limiters) > MAX_TRACKED:
            self._limiters = {k: v for k, v in self._limiters.items() if now - v[1] < IDLE_S}
        return limiter


class Pacer:
    def __init__(self, overall_per_s: float, chat_per_s: float, group_per_min: float) -> None:
        self._overall = AsyncLimiter(overall_per_s * MARGIN, 1) if overall_per_s > 0 else None
        self._chats = _Buckets(chat_per_s * CHAT_BURST * MARGIN, CHAT_BURST)
        self._groups = _Buckets(group_per_min * MARGIN, 60)

    def _limiters(self, chat_id: int) -> list[tuple[AsyncLimiter, int]]:
        found = [(self._overall, RESERVE["overall"]), (self._chats.get(chat_id), RESERVE["chat"])]
        if chat_id < 0:
            found.append((self._groups.get(chat_id), RESERVE["group"]))
        return [(limiter, reserve) for limiter, reserve in found if limiter is not None]

    async def preview(self, chat_id: int) -> bool:
        """Take a slot for a preview if there is room to spare; False means skip this preview."""
        limiters = self._limiters(chat_id)
        if not all(limiter.has_capacity(1 + reserve) for limiter, reserve in limiters):
            return False
        for limiter, _ in limiters:
            await limiter.acquire()
        return True

    async def final(self, chat_id: int) -> None:
        """Wait for a slot for a message that must be delivered."""
        for limiter, _ in self._limiters(chat_id):
            await limiter.acquire()
