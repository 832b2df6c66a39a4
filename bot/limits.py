"""Per-user rate limit and daily token quota, shared by every replica through Redis.

RATE_LIMIT_PER_MINUTE counts requests in a sliding 60-second window; DAILY_TOKEN_QUOTA counts
the tokens of a user's answers (prompt and completion, as the server reports them, else
estimated) per UTC day; 0 switches either off. Both are one Lua script in Redis (see
`Memory.admit` and `Memory.charge`), so two replicas can never both let the request over the
limit through. A request is checked before the model is asked and the quota is charged after
the answer, so the answer that crosses the quota completes and the next request is refused.
Admins are exempt. When Redis is unreachable the limits are not enforced (the bot keeps
answering, as it does without memory) and a warning is logged.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import texts
from bot.errors import MemoryUnavailable
from bot.memory import Admission, Memory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    per_minute: int = 0
    daily_tokens: int = 0
    exempt: frozenset[int] = frozenset()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 or self.daily_tokens > 0


class Limits:
    def __init__(self, config: LimitsConfig, memory: Memory) -> None:
        self._config = config
        self._memory = memory

    async def check(self, user_id: int) -> str | None:
        """Count a request; None when it may go ahead, else the refusal to show."""
        config = self._config
        if not config.enabled or user_id in config.exempt:
            return None
        try:
            verdict = await self._memory.admit(
                user_id, per_minute=config.per_minute, daily_tokens=config.daily_tokens
            )
        except MemoryUnavailable:
            log.warning("limits not enforced: memory unavailable")
            return None
        if not verdict.refused:
            return None
        log.info("user refused by the %s limit", verdict.refused)
        return refusal(verdict, time.time(), config)

    async def charge(self, user_id: int, tokens: int) -> None:
        """Count the tokens of an answer against the user's daily quota."""
        if self._config.daily_tokens <= 0 or tokens <= 0 or user_id in self._config.exempt:
            return
        try:
            await self._memory.charge(user_id, tokens)
        except MemoryUnavailable:
            log.warning("%d tokens not charged: memory unavailable", tokens)


def refusal(verdict: Admission, now: float, config: LimitsConfig) -> str:
    """What a refused user reads: why, and when they may write again."""
    when = _when(verdict.retry_at, now)
    if verdict.refused == "quota":
        return texts.over_quota(config.daily_tokens, when)
    return texts.too_fast(config.per_minute, when)


def _when(retry_at: float, now: float) -> texts.Text:
    wait = max(math.ceil(retry_at - now), 1)
    moment = datetime.fromtimestamp(retry_at, UTC)
    clock = moment.strftime("%H:%M:%S" if wait < 3600 else "%H:%M")
    return texts.write_again_at(clock, wait)
