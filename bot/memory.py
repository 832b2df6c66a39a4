"""Conversation memory in Redis: the only module that imports `redis`.

Layout, one hash tag per user so a Redis Cluster keeps all of a user's keys on one slot:

    {prefix}:{u<user_id>}:h:<scope>   list of turns, oldest first (JSON: u, a, t, at)
    {prefix}:{u<user_id>}:m:<scope>   hash: last (unix time of the last turn)

A scope is `p` for a private chat, `g<chat_id>t<thread_id>` for a group topic. Every key gets the
TTL again on each write. Reads and writes are one pipelined round trip each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.conversation import Turn
from bot.errors import MemoryUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Whose conversation, where: one user in a private chat, or one user in one group topic."""

    user_id: int
    chat_id: int
    thread_id: int | None = None

    @property
    def scope(self) -> str:
        if self.chat_id == self.user_id:
            return "p"
        return f"g{self.chat_id}t{self.thread_id or 0}"


@dataclass(frozen=True, slots=True)
class Loaded:
    history: list[Turn]
    last_active: float | None


class Keys:
    """Every Redis key name the bot uses, built in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def user(self, user_id: int) -> str:
        return f"{self.prefix}:{{u{user_id}}}"

    def history(self, key: ConversationKey) -> str:
        return f"{self.user(key.user_id)}:h:{key.scope}"

    def meta(self, key: ConversationKey) -> str:
        return f"{self.user(key.user_id)}:m:{key.scope}"


def encode_turn(turn: Turn) -> bytes:
    record = {"u": turn.user, "a": turn.assistant, "t": turn.tokens, "at": round(turn.at, 3)}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def decode_turn(raw: bytes) -> Turn | None:
    try:
        record = json.loads(raw)
        return Turn(str(record["u"]), str(record["a"]), int(record["t"]), float(record["at"]))
    except (ValueError, KeyError, TypeError):
        return None


class Memory:
    """History and conversation state per ConversationKey; Redis errors become MemoryUnavailable."""

    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds

    @classmethod
    def from_url(cls, url: str, prefix: str, ttl_seconds: int) -> Memory:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=3,
            socket_connect_timeout=3,
            health_check_interval=30,
            max_connections=256,
        )
        return cls(client, Keys(prefix), ttl_seconds)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except (RedisError, OSError) as exc:
            log.warning("redis %s failed: %s", what, type(exc).__name__)
            raise MemoryUnavailable(f"redis {what} failed: {type(exc).__name__}") from exc

    async def ping(self) -> str:
        """The server's version; raises MemoryUnavailable when Redis does not answer."""

        async def info() -> str:
            server: dict[str, Any] = await self._redis.info("server")
            return str(server.get("redis_version", "?"))

        return await self._call("ping", info)

    async def load(self, key: ConversationKey) -> Loaded:
        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(self._keys.history(key), 0, -1)
                pipe.hget(self._keys.meta(key), "last")
                return await pipe.execute()

        raw_turns, last = await self._call("load", read)
        history = [t for t in map(decode_turn, raw_turns) if t is not None]
        if len(history) != len(raw_turns):
            log.warning("skipped %d unreadable turns", len(raw_turns) - len(history))
        return Loaded(history, float(last) if last is not None else None)

    async def append(
        self,
        key: ConversationKey,
        turn: Turn,
        *,
        drop_oldest: int = 0,
        replace_last: bool = False,
        fresh: bool = False,
    ) -> None:
        """Record a completed turn, atomically, with the oldest turns trimmed and TTLs renewed."""
        history, meta = self._keys.history(key), self._keys.meta(key)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                if fresh:
                    pipe.delete(history)
                elif replace_last:
                    pipe.rpop(history)
                pipe.rpush(history, encode_turn(turn))
                if drop_oldest and not fresh:
                    pipe.ltrim(history, drop_oldest, -1)
                pipe.hset(meta, "last", str(turn.at))
                pipe.expire(history, self._ttl)
                pipe.expire(meta, self._ttl)
                await pipe.execute()

        await self._call("append", write)

    async def forget_conversation(self, key: ConversationKey) -> None:
        """Start over: the history goes, the conversation state stays."""
        await self._call("reset", lambda: self._redis.delete(self._keys.history(key)))

    async def forget_user(self, user_id: int) -> int:
        """Delete every key of a user (all scopes). Off the hot path: SCAN is fine here."""

        async def scan_delete() -> int:
            pattern = f"{self._keys.user(user_id)}:*"
            found = [k async for k in self._redis.scan_iter(match=pattern, count=500)]
            return int(await self._redis.delete(*found)) if found else 0

        return await self._call("forget", scan_delete)
