"""The durable update queue of webhook mode, in Redis Streams; with bot.memory, one of the two
modules that import `redis`.

Why a second importer: bot.memory owns what the bot remembers about people (keys under `{u<id>}`
that expire with the user's data); this module owns the delivery of updates between replicas
(streams, consumer groups, leases), a different life cycle and failure story. Both share one
connection (`Memory.client`), so the topology (one server, Cluster, Sentinel) is chosen once, in
`bot.memory.connect`, and Redis errors become MemoryUnavailable here as there.

Keys (`{p}` the REDIS_KEY_PREFIX; each shard is its own hash tag `{q<n>}`, so a Redis Cluster
spreads the shards over its masters and every script below stays within one slot):

    {p}:{q<n>}:s            stream: updates accepted, not yet finished (fields: id, lane, JSON)
    {p}:{q<n>}:u:<update>   string: "queued", then "done" (deduplication; expires after a day)
    {p}:{q<n>}:lease        string: the replica that owns the shard (expires unless renewed)
    {p}:replicas            sorted set: live replicas by their last heartbeat (Redis time, ms)

The consumer group `telellama` of each stream holds the entries a replica has read and not yet
acknowledged (its pending entries list), which is how the work of a replica that died is found
and claimed (XAUTOCLAIM) by the next owner of the shard.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from redis.exceptions import RedisError, ResponseError

from bot.errors import MemoryUnavailable
from bot.memory import Memory

log = logging.getLogger(__name__)
T = TypeVar("T")

GROUP = "telellama"
# Telegram gives up redelivering an update within a day; a retry after that is not expected.
SEEN_TTL_S = 86400

# KEYS: seen, stream. ARGV: TTL in seconds, update_id, lane, the update's JSON.
# Returns 1 when the update was new (and is now in the stream), 0 for a duplicate. One script, so
# an update is never marked seen without being queued, nor queued twice; a client retrying it
# after a lost reply gets 0, which is just as right.
_ACCEPT = """
if redis.call('SET', KEYS[1], 'queued', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'l', ARGV[3], 'u', ARGV[4])
  return 1
end
return 0
"""

# KEYS: seen, stream. ARGV: group, entry id, TTL in seconds for a seen key that is gone.
# Marks the update done, then acknowledges and deletes its entry: the stream holds only work.
_FINISH = """
local ttl = redis.call('TTL', KEYS[1])
if ttl < 1 then ttl = tonumber(ARGV[3]) end
redis.call('SET', KEYS[1], 'done', 'EX', ttl)
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""

# KEYS: replicas. ARGV: this replica, lease in ms. Returns how many replicas are alive.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: lease. ARGV: this replica, lease in ms. 1 when the lease was ours and is renewed.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: this replica. Lets the lease go, if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted update in a shard's stream; `lane` is bot.routing's ("" to run at once)."""

    id: str
    update_id: int
    lane: str
    payload: bytes


class QueueKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def shard(self, shard: int) -> str:
        return f"{self.prefix}:{{q{shard}}}"

    def stream(self, shard: int) -> str:
        return f"{self.shard(shard)}:s"

    def seen(self, shard: int, update_id: int) -> str:
        return f"{self.shard(shard)}:u:{update_id}"

    def lease(self, shard: int) -> str:
        return f"{self.shard(shard)}:lease"

    def replicas(self) -> str:
        return f"{self.prefix}:replicas"


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _entries(raw: Any) -> list[Entry]:
    """Stream entries as redis-py returns them: [(id, {field: value}), ...]."""
    found = []
    for entry_id, fields in raw or ():
        if not fields:  # deleted while pending; nothing left to process
            continue
        try:
            update_id, lane = int(fields[b"id"]), _text(fields[b"l"])
            found.append(Entry(_text(entry_id), update_id, lane, bytes(fields[b"u"])))
        except (KeyError, ValueError):
            log.warning("skipped an unreadable queue entry %s", _text(entry_id))
    return found


class UpdateQueue:
    """Accepts updates into shard streams; leases shards; reads, claims and finishes entries."""

    def __init__(self, memory: Memory, prefix: str, consumer: str) -> None:
        self._redis = memory.client
        self._keys = QueueKeys(prefix)
        self.consumer = consumer
        self._accept = self._redis.register_script(_ACCEPT)
        self._finish = self._redis.register_script(_FINISH)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    @property
    def keys(self) -> QueueKeys:
        return self._keys

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except (RedisError, OSError) as exc:
            raise MemoryUnavailable(f"redis {what} failed: {type(exc).__name__}") from exc

    # ------------------------------------------------------------------ receiving (webhook)

    async def accept(self, shard: int, update_id: int, lane: str, payload: bytes) -> bool:
        """Queue an update unless it was seen before; True when it is new."""
        keys = [self._keys.seen(shard, update_id), self._keys.stream(shard)]
        args: list[int | str | bytes] = [SEEN_TTL_S, update_id, lane, payload]

        async def run() -> Any:
            return await self._accept(keys=keys, args=args)

        return bool(await self._call("accept", run))

    # ------------------------------------------------------------------ leases

    async def heartbeat(self, lease_ms: int) -> int:
        """Say this replica is alive; returns how many are (this one included)."""
        keys, args = [self._keys.replicas()], [self.consumer, str(lease_ms)]

        async def run() -> Any:
            return await self._heartbeat(keys=keys, args=args)

        return max(1, int(await self._call("heartbeat", run)))

    async def leave(self) -> None:
        await self._call("leave", lambda: self._redis.zrem(self._keys.replicas(), self.consumer))

    async def acquire(self, shard: int, lease_ms: int) -> bool:
        """Take the shard if nobody owns it."""
        name = self._keys.lease(shard)
        taken = await self._call(
            "acquire", lambda: self._redis.set(name, self.consumer, nx=True, px=lease_ms)
        )
        return bool(taken)

    async def renew(self, shard: int, lease_ms: int) -> bool:
        """Extend the lease; False when it is no longer ours."""
        keys, args = [self._keys.lease(shard)], [self.consumer, str(lease_ms)]

        async def run() -> Any:
            return await self._renew(keys=keys, args=args)

        return bool(await self._call("renew", run))

    async def release(self, shard: int) -> None:
        keys, args = [self._keys.lease(shard)], [self.consumer]

        async def run() -> Any:
            return await self._release(keys=keys, args=args)

        await self._call("release", run)

    # ------------------------------------------------------------------ consuming

    async def prepare(self, shard: int) -> None:
        """The shard's consumer group (and stream), created when missing."""
        stream = self._keys.stream(shard)

        async def create() -> None:
            try:
                await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

        await self._call("create group", create)

    async def read(self, shard: int, count: int, block_ms: int) -> list[Entry]:
        """New entries for this replica, waiting up to `block_ms` for some to arrive."""
        stream = self._keys.stream(shard)

        async def run() -> Any:
            return await self._redis.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=count, block=block_ms
            )

        try:
            reply = await self._call("read", run)
        except MemoryUnavailable as exc:
            if "NOGROUP" in str(exc.__cause__):
                await self.prepare(shard)  # the stream was deleted (a flush): start over
                return []
            raise
        return [e for _, entries in reply or () for e in _entries(entries)]

    async def claim(self, shard: int, min_idle_ms: int) -> list[Entry]:
        """Take over every entry of the shard pending (unacknowledged) for at least
        `min_idle_ms`, from whichever replica read it; in stream order."""
        stream = self._keys.stream(shard)
        claimed: list[Entry] = []
        cursor = "0-0"
        while True:
            reply = await self._call(
                "claim", partial(self._claim_page, stream, min_idle_ms, cursor)
            )
            claimed += _entries(reply[1])
            cursor = _text(reply[0])
            if cursor == "0-0":
                return claimed

    async def _claim_page(self, stream: str, min_idle_ms: int, start: str) -> Any:
        return await self._redis.xautoclaim(
            stream, GROUP, self.consumer, min_idle_ms, start_id=start, count=100
        )

    async def deliveries(self, shard: int, entries: list[Entry]) -> dict[str, int]:
        """How many times each pending entry was handed to a replica (read or claimed)."""
        if not entries:
            return {}
        stream = self._keys.stream(shard)

        async def run() -> Any:
            return await self._redis.xpending_range(
                stream, GROUP, min=entries[0].id, max=entries[-1].id, count=len(entries)
            )

        pending = await self._call("pending", run)
        return {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}

    async def forget_idle_consumers(self, shard: int, idle_ms: int) -> None:
        """Drop consumers (replicas gone) with nothing pending, so the group does not grow."""
        stream = self._keys.stream(shard)

        async def run() -> None:
            for consumer in await self._redis.xinfo_consumers(stream, GROUP):
                name = _text(consumer["name"])
                if name != self.consumer and not consumer["pending"] and consumer["idle"] > idle_ms:
                    await self._redis.xgroup_delconsumer(stream, GROUP, name)

        await self._call("forget consumers", run)

    async def is_done(self, shard: int, update_id: int) -> bool:
        raw = await self._call("seen", lambda: self._redis.get(self._keys.seen(shard, update_id)))
        return raw is not None and _text(raw) == "done"

    async def finish(self, shard: int, entry: Entry) -> None:
        """Mark the update done, then acknowledge and delete its entry (one script)."""
        keys = [self._keys.seen(shard, entry.update_id), self._keys.stream(shard)]
        args: list[str | int] = [GROUP, entry.id, SEEN_TTL_S]

        async def run() -> Any:
            return await self._finish(keys=keys, args=args)

        await self._call("finish", run)

    # ------------------------------------------------------------------ metrics

    async def backlog(self, shards: list[int]) -> tuple[int, int]:
        """The shards' depth (entries accepted and not yet finished: XLEN, since finished ones
        are deleted) and how many of those are pending (read by a replica, not acknowledged:
        XPENDING's summary), summed. One pipelined round trip (in a Cluster, one per master);
        a shard without its consumer group yet counts no pending entries."""
        if not shards:
            return 0, 0
        streams = [self._keys.stream(shard) for shard in shards]

        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream in streams:
                    pipe.xlen(stream)
                    pipe.xpending(stream, GROUP)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            for reply in replies:
                if isinstance(reply, Exception) and "NOGROUP" not in str(reply):
                    raise reply
            return replies

        replies = await self._call("backlog", run)
        depth = sum(int(length) for length in replies[0::2])
        pending = sum(int(r["pending"]) for r in replies[1::2] if isinstance(r, dict))
        return depth, pending
