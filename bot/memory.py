"""Conversation memory in Redis, and the Redis connection itself (one server, a Redis Cluster,
or a master found through Sentinel). With bot.updatequeue (the durable update queue of webhook
mode, Redis Streams) it is one of the two modules that import `redis`.

Layout (see README "Memory"); every key of a user shares the hash tag `{u<id>}`, so a Redis
Cluster keeps them on one slot and multi-key transactions stay legal:

    {p}:{u<id>}:h:<scope>   list: the current conversation's turns, oldest first (JSON u, a, t, at)
    {p}:{u<id>}:o:<scope>   list: older turns waiting to be folded into the summary
    {p}:{u<id>}:m:<scope>   hash: last (unix time of the last turn), summary, title, doc (the
                            document shared in the conversation: JSON name, text, cut, at)
    {p}:{u<id>}:facts       list: facts the user asked to be remembered (JSON text, at)
    {p}:{u<id>}:lang        string: the language the user chose with /language (bot/languages.py)
    {p}:{u<id>}:keys        set: every key above that exists, so "forget everything" needs no SCAN
    {p}:{g<chat>}:settings  hash: a group's own settings (context, triggers)
    {p}:{g<chat>}:log:<t>   list: the group topic's recent visible messages (shared context only)
    {p}:{u<id>}:rate        sorted set: times of the user's recent requests (rate limit)
    {p}:{u<id>}:quota       hash: day, used (tokens charged today, daily quota)
    {p}:kb:index            hash: version, blob (the built knowledge base; no TTL)
    {p}:{g<chat>}:members   set: users with a conversation in the group (to follow a migration)
    {p}:{u<id>}:handoff     hash: topic, since, last, name (the user is handed over to people)
    {p}:{u<id>}:fb          hash: <tag> (JSON q, a, c, at: an answer with 👍/👎), <tag>:v (the vote)
    {p}:{support}:topics    hash: support-chat topic -> user (no TTL); :users the reverse
    {p}:{support}:active    sorted set: users in a handoff, by their last message either way
    {p}:{b<conn>}:conn      hash: owner, name, enabled, reply (a Telegram Business connection)
    {p}:{b<conn>}:pause:<c> string: the owner wrote in chat <c> (expires after the pause)
    {p}:{stats}:day:<d>     hash: answers, up, down, unknown, handoffs of UTC day <d> (/stats)
    {p}:{stats}:unanswered  sorted set: questions that got "don't know" or 👎, by count

A scope is `p` for the private chat, `g<chat_id>t<thread_id>` for one group topic,
`b<connection>` for a chat with a business (Telegram Business). Every write
renews the TTLs. A message costs one pipelined read and one MULTI/EXEC write.

Redis Cluster: every transaction (MULTI/EXEC) and Lua script here touches one hash tag only
(`{u<id>}`, or `{g<chat>}` for a group's keys); pipelines without a transaction (`load`,
`conversations`) may span tags, the cluster client sends each command to its node.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from bot.conversation import SharedDocument, Turn
from bot.errors import MemoryUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Older turns still waiting for a summary are capped so a model that cannot summarise does not
# make memory grow without bound.
MAX_PENDING_TURNS = 200
MAX_FACTS = 100
TOMBSTONE = "\x00deleted"


RATE_WINDOW_MS = 60_000
QUOTA_TTL_S = 2 * 86400


@dataclass(frozen=True, slots=True)
class Admission:
    """The limits' verdict on a request: `refused` is "" (admitted), "rate" or "quota"."""

    refused: str
    retry_at: float = 0.0


# KEYS: rate (sorted set of request times in ms), quota (hash: day, used).
# ARGV: requests allowed per window (0 = no limit), window in ms, daily tokens (0 = no quota),
# a unique member for this request. Returns {0, 0} admitted, {1, ms} rate-limited until ms,
# {2, ms} over the quota until ms (the next UTC midnight).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, quota = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if quota > 0 then
  local day = math.floor(now / 86400000)
  local stored = redis.call('HMGET', KEYS[2], 'day', 'used')
  if tonumber(stored[1]) == day and tonumber(stored[2] or '0') >= quota then
    return {2, (day + 1) * 86400000}
  end
end
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tonumber(oldest[2]) + window}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
return {0, 0}
"""

# KEYS: quota (hash: day, used). ARGV: tokens to add, TTL in seconds. Returns today's total.
_CHARGE = """
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
if tonumber(redis.call('HGET', KEYS[1], 'day')) ~= day then
  redis.call('HSET', KEYS[1], 'day', day, 'used', 0)
end
local used = redis.call('HINCRBY', KEYS[1], 'used', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return used
"""


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Whose conversation, where: one user in a private chat, or one user in one group topic."""

    user_id: int
    chat_id: int
    thread_id: int | None = None
    # A Telegram Business connection: the user is a customer writing to a business owner.
    business: str = ""

    @property
    def private(self) -> bool:
        return self.chat_id == self.user_id and not self.business

    @property
    def scope(self) -> str:
        if self.business:
            return f"b{self.business}"
        if self.private:
            return "p"
        return f"g{self.chat_id}t{self.thread_id or 0}"


@dataclass(frozen=True, slots=True)
class Fact:
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class GroupLine:
    """One message seen in a group, for shared context."""

    name: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class Loaded:
    history: list[Turn]
    last_active: float | None
    summary: str = ""
    facts: list[Fact] = field(default_factory=list)
    group_lines: list[GroupLine] = field(default_factory=list)
    document: SharedDocument | None = None
    # The user's /language choice, None when they made none.
    language: str | None = None


@dataclass(frozen=True, slots=True)
class StoredConversation:
    scope: str
    title: str
    turns: int
    last_active: float | None


class Keys:
    """Every Redis key name the bot uses, built in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def user(self, user_id: int) -> str:
        return f"{self.prefix}:{{u{user_id}}}"

    def history(self, key: ConversationKey) -> str:
        return f"{self.user(key.user_id)}:h:{key.scope}"

    def pending(self, key: ConversationKey) -> str:
        return f"{self.user(key.user_id)}:o:{key.scope}"

    def meta(self, key: ConversationKey) -> str:
        return f"{self.user(key.user_id)}:m:{key.scope}"

    def facts(self, user_id: int) -> str:
        return f"{self.user(user_id)}:facts"

    def index(self, user_id: int) -> str:
        return f"{self.user(user_id)}:keys"

    def language(self, user_id: int) -> str:
        return f"{self.user(user_id)}:lang"

    # Limits live outside the key index on purpose: "forget everything" must not reset a quota.
    def rate(self, user_id: int) -> str:
        return f"{self.user(user_id)}:rate"

    def quota(self, user_id: int) -> str:
        return f"{self.user(user_id)}:quota"

    def knowledge(self) -> str:
        return f"{self.prefix}:kb:index"

    def group(self, chat_id: int) -> str:
        return f"{self.prefix}:{{g{chat_id}}}"

    def group_settings(self, chat_id: int) -> str:
        return f"{self.group(chat_id)}:settings"

    def group_log(self, chat_id: int, thread_id: int | None) -> str:
        return f"{self.group(chat_id)}:log:{thread_id or 0}"

    def group_members(self, chat_id: int) -> str:
        return f"{self.group(chat_id)}:members"

    # Customer service. The user's handoff and kept answers share the user's tag; the support
    # desk's maps, a business connection's keys and the /stats counters have a tag each.
    def handoff(self, user_id: int) -> str:
        return f"{self.user(user_id)}:handoff"

    def feedback(self, user_id: int) -> str:
        return f"{self.user(user_id)}:fb"

    def support(self) -> str:
        return f"{self.prefix}:{{support}}"

    def support_topics(self) -> str:
        return f"{self.support()}:topics"

    def support_users(self) -> str:
        return f"{self.support()}:users"

    def support_active(self) -> str:
        return f"{self.support()}:active"

    def business_connection(self, connection_id: str) -> str:
        return f"{self.prefix}:{{b{connection_id}}}:conn"

    def business_pause(self, connection_id: str, chat_id: int) -> str:
        return f"{self.prefix}:{{b{connection_id}}}:pause:{chat_id}"

    def stats_day(self, day: str) -> str:
        return f"{self.prefix}:{{stats}}:day:{day}"

    def stats_unanswered(self) -> str:
        return f"{self.prefix}:{{stats}}:unanswered"


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def encode_turn(turn: Turn) -> bytes:
    return _json({"u": turn.user, "a": turn.assistant, "t": turn.tokens, "at": round(turn.at, 3)})


def decode_turn(raw: bytes | str) -> Turn | None:
    try:
        record = json.loads(raw)
        return Turn(str(record["u"]), str(record["a"]), int(record["t"]), float(record["at"]))
    except (ValueError, KeyError, TypeError):
        return None


def encode_document(document: SharedDocument) -> bytes:
    return _json(
        {
            "name": document.name,
            "text": document.text,
            "cut": document.truncated,
            "at": round(document.at, 3),
        }
    )


def decode_document(raw: bytes | str | None) -> SharedDocument | None:
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        return SharedDocument(
            str(record["name"]), str(record["text"]), bool(record["cut"]), float(record["at"])
        )
    except (ValueError, KeyError, TypeError):
        log.warning("skipped an unreadable shared document")
        return None


def decode_fact(raw: bytes | str) -> Fact | None:
    try:
        record = json.loads(raw)
        return Fact(str(record["text"]), float(record["at"]))
    except (ValueError, KeyError, TypeError):
        return None


def decode_line(raw: bytes | str) -> GroupLine | None:
    try:
        record = json.loads(raw)
        return GroupLine(str(record["n"]), str(record["t"]), float(record["at"]))
    except (ValueError, KeyError, TypeError):
        return None


def _decode_all(raws: Sequence[bytes | str], decode: Callable[[bytes | str], T | None]) -> list[T]:
    items = [item for item in map(decode, raws) if item is not None]
    if len(items) != len(raws):
        log.warning("skipped %d unreadable memory records", len(raws) - len(items))
    return items


def _text(raw: bytes | str | None) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw or ""


# A command that meets a broken connection is retried on a new connection, 3 times, waiting
# 50 ms doubling up to 0.5 s (jittered) in between: well under a second. That rides out a
# dropped connection, a restart, and the end of a failover: a new connection asks the Sentinels
# for the master again (a demoted master answers READONLY, which drops the connection too), and
# the cluster client re-reads the slot map on MOVED or a lost node. A longer outage (a failover
# still deciding) is not waited out here: the caller gets MemoryUnavailable at once and answers
# without memory, and the next command starts over.
MAX_CONNECTIONS = 64
RETRY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3)
_TIMEOUTS: dict[str, Any] = {"socket_timeout": 3, "socket_connect_timeout": 3}


def connect(
    url: str, *, cluster: bool = False, sentinels: Sequence[tuple[str, int]] = (), master: str = ""
) -> aioredis.Redis:
    """A client for one server, a Redis Cluster or a Sentinel-managed master (see from_url)."""
    options: dict[str, Any] = {
        **_TIMEOUTS,
        "retry": RETRY,
        "max_connections": MAX_CONNECTIONS,
        "health_check_interval": 30,
        # No CLIENT SETINFO: it costs a round trip and a package-metadata lookup per connection.
        "driver_info": None,
    }
    if cluster:
        # The cluster client speaks the same command API, sending each command to the node of its
        # key; it is typed as Redis so one code path serves every topology.
        return cast("aioredis.Redis", RedisCluster.from_url(url, **options))
    if sentinels:
        parts = urlsplit(url)
        database = parts.path.strip("/")
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(sentinels), sentinel_kwargs=dict(_TIMEOUTS), **_TIMEOUTS
        )
        managed: aioredis.Redis = sentinel.master_for(
            master,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=int(database) if database.isdigit() else 0,
            ssl=parts.scheme == "rediss",
            **options,
        )
        return managed
    # A bounded pool that makes a burst wait briefly for a connection instead of opening one per
    # conversation: a command takes well under a millisecond, so a few dozen connections serve
    # thousands of users.
    return aioredis.Redis.from_pool(
        aioredis.BlockingConnectionPool.from_url(url, timeout=5, **options)
    )


class Memory:
    """History, summaries and facts per user; Redis errors become MemoryUnavailable."""

    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds
        # One server (or a Sentinel-managed master): a transaction may touch any key. In a
        # cluster, only keys of one hash tag.
        self._one_node = not isinstance(client, RedisCluster)

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str,
        ttl_seconds: int,
        *,
        cluster: bool = False,
        sentinels: Sequence[tuple[str, int]] = (),
        master: str = "",
    ) -> Memory:
        """Memory on REDIS_URL; with `cluster` a Redis Cluster that REDIS_URL is one node of; with
        `sentinels` the master `master` they name (REDIS_URL then gives only the credentials,
        database and TLS)."""
        return cls(
            connect(url, cluster=cluster, sentinels=sentinels, master=master),
            Keys(prefix),
            ttl_seconds,
        )

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def client(self) -> aioredis.Redis:
        """The connection, shared with bot.updatequeue (the other Redis adapter)."""
        return self._redis

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
            if "redis_version" not in server and server:
                server = next(iter(server.values()))  # a cluster answers per node
            return str(server.get("redis_version", "?"))

        return await self._call("ping", info)

    async def load(self, key: ConversationKey, *, facts: bool, group_lines: int = 0) -> Loaded:
        """Everything a reply needs, in one round trip."""

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(self._keys.history(key), 0, -1)
                pipe.hmget(self._keys.meta(key), ["last", "summary", "doc"])
                # The /language choice rides along: it decides the reply's notices.
                pipe.get(self._keys.language(key.user_id))
                if facts:
                    pipe.lrange(self._keys.facts(key.user_id), 0, -1)
                if group_lines:
                    log_key = self._keys.group_log(key.chat_id, key.thread_id)
                    pipe.lrange(log_key, -group_lines, -1)
                return await pipe.execute()

        results = iter(await self._call("load", read))
        raw_turns, (last, summary, document) = next(results), next(results)
        language = _text(next(results)) or None
        return Loaded(
            history=_decode_all(raw_turns, decode_turn),
            last_active=float(last) if last is not None else None,
            summary=_text(summary),
            facts=_decode_all(next(results), decode_fact) if facts else [],
            group_lines=_decode_all(next(results), decode_line) if group_lines else [],
            document=decode_document(document),
            language=language,
        )

    async def append(
        self,
        key: ConversationKey,
        turn: Turn,
        *,
        fold: Sequence[Turn] = (),
        replace_last: bool = False,
        fresh: bool = False,
        title: str | None = None,
        joins_group: bool = False,
    ) -> None:
        """Record a completed turn atomically, TTLs renewed.

        `fold` are the oldest turns leaving the conversation: they move to the pending list for
        the summary. With `fresh` (a new conversation after the idle timeout) they are the
        whole previous history. `joins_group`: the user's first turn in this group, noted in
        the group's member set so a migration can find the conversation.
        """
        user = key.user_id
        history, pending, meta = (
            self._keys.history(key),
            self._keys.pending(key),
            self._keys.meta(key),
        )

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                if fold:
                    pipe.rpush(pending, *map(encode_turn, fold))
                    pipe.ltrim(pending, -MAX_PENDING_TURNS, -1)
                    pipe.expire(pending, self._ttl)
                if fresh:
                    pipe.delete(history)
                elif fold:
                    pipe.ltrim(history, len(fold), -1)
                if replace_last:
                    pipe.rpop(history)
                pipe.rpush(history, encode_turn(turn))
                fields: dict[Any, Any] = {"last": str(turn.at)}
                if title:
                    fields["title"] = title
                pipe.hset(meta, mapping=fields)
                pipe.sadd(self._keys.index(user), history, meta, *([pending] if fold else []))
                for name in (
                    history,
                    meta,
                    self._keys.index(user),
                    self._keys.facts(user),
                    self._keys.language(user),
                ):
                    pipe.expire(name, self._ttl)
                if joins_group and self._one_node:
                    self._add_member(pipe, key.chat_id, user)
                await pipe.execute()

        await self._call("append", write)
        if joins_group and not self._one_node:
            # In a cluster the group's set lives on another slot than the user's keys.
            await self.add_group_member(key.chat_id, user)

    async def pending(self, key: ConversationKey) -> tuple[str, list[Turn]]:
        """The current summary and the turns waiting to be folded into it."""

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hget(self._keys.meta(key), "summary")
                pipe.lrange(self._keys.pending(key), 0, -1)
                return await pipe.execute()

        summary, raw = await self._call("read pending", read)
        return _text(summary), _decode_all(raw, decode_turn)

    async def store_summary(self, key: ConversationKey, summary: str, folded: int) -> None:
        """Replace the summary and drop the `folded` pending turns it now covers."""

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._keys.meta(key), "summary", summary)
                pipe.ltrim(self._keys.pending(key), folded, -1)
                pipe.expire(self._keys.meta(key), self._ttl)
                await pipe.execute()

        await self._call("store summary", write)

    async def store_document(self, key: ConversationKey, document: SharedDocument) -> None:
        """Keep `document` with the conversation, in place of any earlier one (one per
        conversation, so memory stays bounded); it goes with the conversation (/new, TTL)."""
        meta, index = self._keys.meta(key), self._keys.index(key.user_id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(meta, "doc", encode_document(document))
                pipe.sadd(index, meta)
                pipe.expire(meta, self._ttl)
                pipe.expire(index, self._ttl)
                await pipe.execute()

        await self._call("store document", write)

    async def forget_conversation(self, key: ConversationKey) -> None:
        """Start over: the history and its summary go; facts stay."""

        async def delete() -> None:
            names = (self._keys.history(key), self._keys.pending(key), self._keys.meta(key))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(*names)
                pipe.srem(self._keys.index(key.user_id), *names)
                await pipe.execute()

        await self._call("reset", delete)

    async def add_fact(self, user_id: int, fact: Fact) -> int:
        """Store a fact; returns how many the user now has (the oldest go beyond MAX_FACTS)."""
        facts, index = self._keys.facts(user_id), self._keys.index(user_id)

        async def write() -> int:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(facts, _json({"text": fact.text, "at": round(fact.at, 3)}))
                pipe.ltrim(facts, -MAX_FACTS, -1)
                pipe.llen(facts)
                pipe.sadd(index, facts)
                pipe.expire(facts, self._ttl)
                pipe.expire(index, self._ttl)
                result = await pipe.execute()
            return int(result[2])

        return await self._call("add fact", write)

    async def facts(self, user_id: int) -> list[Fact]:
        raw = await self._call(
            "facts", lambda: self._redis.lrange(self._keys.facts(user_id), 0, -1)
        )
        return _decode_all(raw, decode_fact)

    async def delete_fact(self, user_id: int, number: int) -> Fact | None:
        """Delete fact `number` (1-based, as /memory lists them); None if there is no such fact."""
        facts = self._keys.facts(user_id)

        async def delete() -> Fact | None:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(facts)
                raw = await pipe.lindex(facts, number - 1)
                if raw is None or number < 1:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return None
                pipe.multi()  # type: ignore[no-untyped-call]
                # LREM by value after a unique tombstone, so equal facts elsewhere survive.
                pipe.lset(facts, number - 1, TOMBSTONE)
                pipe.lrem(facts, 1, TOMBSTONE)
                await pipe.execute()
                return decode_fact(raw)

        return await self._call("delete fact", delete)

    # ------------------------------------------------------------------ language (bot/languages.py)
    # The user's /language choice: in the user's hash tag and key index (so /forget all deletes
    # it), expiring with the rest of their memory (every turn renews it, see `append`).

    async def language(self, user_id: int) -> str | None:
        """The language the user chose with /language; None when they did not."""
        name = self._keys.language(user_id)
        return _text(await self._call("language", lambda: self._redis.get(name))) or None

    async def set_language(self, user_id: int, language: str | None) -> None:
        """Keep the user's choice of language; None forgets it."""
        name, index = self._keys.language(user_id), self._keys.index(user_id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                if language is None:
                    pipe.delete(name)
                    pipe.srem(index, name)
                else:
                    pipe.set(name, language, ex=self._ttl)
                    pipe.sadd(index, name)
                    pipe.expire(index, self._ttl)
                await pipe.execute()

        await self._call("set language", write)

    async def conversations(self, user_id: int) -> list[StoredConversation]:
        """The conversations stored for a user, from the key index (no SCAN)."""

        async def read() -> list[StoredConversation]:
            members = await self._redis.smembers(self._keys.index(user_id))
            metas = sorted(name for name in map(_text, members) if ":m:" in name)
            async with self._redis.pipeline(transaction=False) as pipe:
                for meta in metas:
                    pipe.hmget(meta, ["title", "last"])
                    pipe.llen(meta.replace(":m:", ":h:", 1))
                results = await pipe.execute()
            found = []
            for i, meta in enumerate(metas):
                (title, last), turns = results[2 * i], results[2 * i + 1]
                if turns or last is not None:
                    last_active = float(last) if last is not None else None
                    scope = meta.rsplit(":m:", 1)[1]
                    found.append(StoredConversation(scope, _text(title), int(turns), last_active))
            return found

        return await self._call("list conversations", read)

    async def forget_user(self, user_id: int) -> int:
        """Delete every key of a user, found through the user's key index."""
        index = self._keys.index(user_id)

        async def delete() -> int:
            names = list(await self._redis.smembers(index))
            names += [self._keys.facts(user_id).encode(), index.encode()]
            return int(await self._redis.delete(*names))

        return await self._call("forget user", delete)

    async def group_settings(self, chat_id: int) -> dict[str, str]:
        name = self._keys.group_settings(chat_id)
        raw: dict[Any, Any] = await self._call("group settings", lambda: self._redis.hgetall(name))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def save_group_settings(self, chat_id: int, fields: dict[str, str]) -> None:
        name = self._keys.group_settings(chat_id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping=dict[Any, Any](fields))
                pipe.expire(name, max(self._ttl, 365 * 86400))
                await pipe.execute()

        await self._call("save group settings", write)

    async def log_group_line(
        self, chat_id: int, thread_id: int | None, line: GroupLine, keep: int
    ) -> None:
        name = self._keys.group_log(chat_id, thread_id)
        record = _json({"n": line.name, "t": line.text, "at": round(line.at, 3)})

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.rpush(name, record)
                pipe.ltrim(name, -keep, -1)
                pipe.expire(name, self._ttl)
                await pipe.execute()

        await self._call("log group line", write)

    def _add_member(self, pipe: Any, chat_id: int, user_id: int) -> None:
        name = self._keys.group_members(chat_id)
        pipe.sadd(name, str(user_id))
        pipe.expire(name, self._ttl)

    async def add_group_member(self, chat_id: int, user_id: int) -> None:
        """Note that `user_id` has a conversation in the group (its first turn there)."""

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._add_member(pipe, chat_id, user_id)
                await pipe.execute()

        await self._call("add group member", write)

    async def migrate_group(self, old: int, new: int) -> int:
        """A group became a supergroup with a new id: its conversations and settings follow.

        Off the hot path and rare, so clarity wins over round trips. Groups that migrate have
        no forum topics, so each member's conversation is the `t0` scope. Returns the number
        of members moved.
        """
        keys = self._keys

        async def move() -> int:
            members = [int(m) for m in await self._redis.smembers(keys.group_members(old))]
            for user in members:
                before, after = ConversationKey(user, old), ConversationKey(user, new)
                for name in (keys.history, keys.pending, keys.meta):
                    if await self._redis.exists(name(before)):
                        await self._redis.rename(name(before), name(after))
                        await self._redis.srem(keys.index(user), name(before))
                        await self._redis.sadd(keys.index(user), name(after))
                await self._redis.sadd(keys.group_members(new), str(user))
            settings = await self._redis.hgetall(keys.group_settings(old))
            if settings:
                await self._redis.hset(keys.group_settings(new), mapping=dict[Any, Any](settings))
            lines = await self._redis.lrange(keys.group_log(old, None), 0, -1)
            if lines:
                await self._redis.rpush(keys.group_log(new, None), *lines)
            await self._redis.delete(
                keys.group_members(old), keys.group_settings(old), keys.group_log(old, None)
            )
            return len(members)

        return await self._call("migrate group", move)

    # ------------------------------------------------------------------ limits (bot/limits.py)
    # Both run as Lua scripts, so every replica sees one consistent count, and they read the
    # clock of Redis itself: replicas whose clocks disagree still agree on the limits.

    async def admit(self, user_id: int, *, per_minute: int, daily_tokens: int) -> Admission:
        """Count one request against the rate limit, unless it or the daily quota refuses it."""
        keys = [self._keys.rate(user_id), self._keys.quota(user_id)]
        args: list[int | str] = [per_minute, RATE_WINDOW_MS, daily_tokens, uuid.uuid4().hex]

        async def run() -> Any:
            return await self._redis.register_script(_ADMIT)(keys=keys, args=args)

        code, retry_at_ms = (int(v) for v in await self._call("admit", run))
        reason = {0: "", 1: "rate", 2: "quota"}[code]
        return Admission(reason, retry_at_ms / 1000)

    async def charge(self, user_id: int, tokens: int) -> int:
        """Add `tokens` to the user's count for today (UTC); returns today's total."""
        keys, args = [self._keys.quota(user_id)], [tokens, QUOTA_TTL_S]

        async def run() -> Any:
            return await self._redis.register_script(_CHARGE)(keys=keys, args=args)

        return int(await self._call("charge", run))

    # ------------------------------------------------------------------ knowledge base
    # One hash, no TTL: the current build's version and its blob (bot/knowledge.py's format).

    async def knowledge_version(self) -> str | None:
        raw = await self._call(
            "knowledge version", lambda: self._redis.hget(self._keys.knowledge(), "version")
        )
        return _text(raw) or None

    async def load_knowledge(self) -> tuple[str, bytes] | None:
        name = self._keys.knowledge()
        version, blob = await self._call(
            "load knowledge", lambda: self._redis.hmget(name, ["version", "blob"])
        )
        if version is None or blob is None:
            return None
        return _text(version), blob if isinstance(blob, bytes) else blob.encode()

    async def store_knowledge(self, version: str, blob: bytes) -> None:
        name = self._keys.knowledge()
        mapping: dict[Any, Any] = {"version": version, "blob": blob}
        await self._call("store knowledge", lambda: self._redis.hset(name, mapping=mapping))

    # ------------------------------------------------------------------ customer service
    # Handoffs (bot/handoff.py), Telegram Business (bot/business.py), feedback and /stats
    # (bot/feedback.py), /export. Keys and scripts: see `Keys` and the end of this module.

    async def claim_handoff(self, user_id: int, name: str, now: float, ttl: int) -> bool:
        """Start a handoff for the user unless one is open (its topic still 0); True if so."""
        keys = [self._keys.handoff(user_id)]
        args: list[float | str | int] = [round(now, 3), name, ttl]

        async def run() -> Any:
            return await self._redis.register_script(_CLAIM_HANDOFF)(keys=keys, args=args)

        return bool(await self._call("claim handoff", run))

    async def start_handoff(self, user_id: int, thread_id: int, now: float, ttl: int) -> None:
        """The handoff's topic is ready: relaying starts, and the idle clock."""
        await self._update_handoff("start handoff", user_id, now, ttl, thread_id)

    async def touch_handoff(self, user_id: int, now: float, ttl: int) -> None:
        """A message went either way: the idle clock starts again."""
        await self._update_handoff("touch handoff", user_id, now, ttl)

    async def _update_handoff(
        self, what: str, user_id: int, now: float, ttl: int, thread_id: int | None = None
    ) -> None:
        """Set `last` (and the topic) of a handoff still open: one that just ended stays so."""
        keys = [self._keys.handoff(user_id)]
        args: list[str | int | float] = [ttl, "last", round(now, 3)]
        if thread_id is not None:
            args += ["topic", thread_id]
        active = self._keys.support_active()

        async def run() -> None:
            if await self._redis.register_script(_UPDATE_HANDOFF)(keys=keys, args=args):
                await self._redis.zadd(active, {str(user_id): now})

        await self._call(what, run)

    async def handoff(self, user_id: int) -> HandoffState | None:
        raw = await self._call(
            "read handoff", lambda: self._redis.hgetall(self._keys.handoff(user_id))
        )
        return _handoff_state(user_id, raw)

    async def end_handoff(self, user_id: int) -> HandoffState | None:
        """End the handoff; its state when this call ended it, None when none was open."""
        keys: list[str] = [self._keys.handoff(user_id)]
        active = self._keys.support_active()

        async def run() -> Any:
            fields = await self._redis.register_script(_END_HANDOFF)(keys=keys)
            await self._redis.zrem(active, str(user_id))
            return fields

        flat = await self._call("end handoff", run)
        return _handoff_state(user_id, dict(zip(flat[::2], flat[1::2], strict=True)))

    async def link_topic(self, thread_id: int, user_id: int) -> None:
        """The customer's forum topic in the support chat, both ways (kept after handoffs)."""

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._keys.support_topics(), str(thread_id), str(user_id))
                pipe.hset(self._keys.support_users(), str(user_id), str(thread_id))
                await pipe.execute()

        await self._call("link topic", write)

    async def topic_user(self, thread_id: int) -> int | None:
        raw = await self._call(
            "topic user", lambda: self._redis.hget(self._keys.support_topics(), str(thread_id))
        )
        return int(raw) if raw is not None else None

    async def user_topic(self, user_id: int) -> int | None:
        raw = await self._call(
            "user topic", lambda: self._redis.hget(self._keys.support_users(), str(user_id))
        )
        return int(raw) if raw is not None else None

    async def idle_handoffs(self, before: float) -> list[int]:
        """Users whose handoff saw no message since `before`."""
        raw = await self._call(
            "idle handoffs",
            lambda: self._redis.zrangebyscore(self._keys.support_active(), "-inf", before),
        )
        return [int(_text(member)) for member in cast("list[bytes]", raw)]

    async def save_business(self, link: BusinessLink) -> None:
        name = self._keys.business_connection(link.id)
        fields: dict[Any, Any] = {
            "owner": link.owner_id,
            "name": link.owner_name,
            "enabled": int(link.enabled),
            "reply": int(link.can_reply),
        }
        await self._call("save business", lambda: self._redis.hset(name, mapping=fields))

    async def business_state(
        self, connection_id: str, chat_id: int
    ) -> tuple[BusinessLink | None, bool]:
        """The connection (None if unknown) and whether the chat is paused, in one round trip."""

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._keys.business_connection(connection_id))
                pipe.exists(self._keys.business_pause(connection_id, chat_id))
                return await pipe.execute()

        raw, paused = await self._call("business state", read)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if "owner" not in fields:
            return None, bool(paused)
        link = BusinessLink(
            connection_id,
            int(fields["owner"]),
            fields.get("name", ""),
            fields.get("enabled") == "1",
            fields.get("reply") == "1",
        )
        return link, bool(paused)

    async def pause_business(self, connection_id: str, chat_id: int, seconds: float) -> None:
        name = self._keys.business_pause(connection_id, chat_id)
        ms = max(1, round(seconds * 1000))
        await self._call("pause business", lambda: self._redis.set(name, "1", px=ms))

    async def keep_answer(
        self, user_id: int, tag: str, record: dict[str, Any], keep: int, ttl: int
    ) -> None:
        """Keep an answer that has 👍/👎 buttons, for its votes (the newest `keep` stay)."""
        keys = [self._keys.feedback(user_id), self._keys.index(user_id)]
        args: list[str | int] = [tag, _json(record).decode(), keep, ttl]

        async def run() -> Any:
            return await self._redis.register_script(_KEEP_ANSWER)(keys=keys, args=args)

        await self._call("keep answer", run)

    async def vote(self, user_id: int, tag: str, value: str) -> tuple[dict[str, Any] | None, str]:
        """Set the vote on a kept answer: the answer's record (None if gone), the vote before."""
        keys, args = [self._keys.feedback(user_id)], [tag, value]

        async def run() -> Any:
            return await self._redis.register_script(_VOTE)(keys=keys, args=args)

        found = await self._call("vote", run)
        if not found:
            return None, ""
        try:
            record = json.loads(found[0])
        except ValueError:
            return None, ""
        return (record if isinstance(record, dict) else None), _text(found[1])

    async def add_stats(
        self, day: str, counts: dict[str, int], questions: dict[str, int] | None = None
    ) -> None:
        """Add to a day's counters, and to the unanswered questions' counts."""
        day_key, unanswered = self._keys.stats_day(day), self._keys.stats_unanswered()

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                for counter, n in counts.items():
                    pipe.hincrby(day_key, counter, n)
                pipe.expire(day_key, STATS_TTL_S)
                for question, n in (questions or {}).items():
                    pipe.zincrby(unanswered, n, question)
                if questions:
                    pipe.zremrangebyscore(unanswered, "-inf", 0)
                    pipe.zremrangebyrank(unanswered, 0, -MAX_UNANSWERED - 1)
                await pipe.execute()

        await self._call("add stats", write)

    async def read_stats(
        self, days: Sequence[str], top: int
    ) -> tuple[list[DayCounts], list[tuple[str, int]], int]:
        """Counters of `days`, the `top` unanswered questions, the handoffs open now."""

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(self._keys.stats_day(day))
                pipe.zrevrange(self._keys.stats_unanswered(), 0, top - 1, withscores=True)
                pipe.zcard(self._keys.support_active())
                return await pipe.execute()

        *raw_days, raw_top, open_handoffs = await self._call("read stats", read)
        counts = [_day_counts(day, raw) for day, raw in zip(days, raw_days, strict=True)]
        questions = [(_text(q), int(score)) for q, score in raw_top]
        return counts, questions, int(open_handoffs)

    async def export_user(self, user_id: int) -> tuple[list[Fact], list[ExportedConversation]]:
        """Every fact and stored conversation of a user (from the key index, no SCAN)."""

        async def read() -> tuple[list[Any], list[str]]:
            members = await self._redis.smembers(self._keys.index(user_id))
            metas = sorted(name for name in map(_text, members) if ":m:" in name)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(self._keys.facts(user_id), 0, -1)
                for meta in metas:
                    pipe.hmget(meta, ["title", "last", "summary"])
                    pipe.lrange(meta.replace(":m:", ":o:", 1), 0, -1)
                    pipe.lrange(meta.replace(":m:", ":h:", 1), 0, -1)
                return await pipe.execute(), metas

        results, metas = await self._call("export", read)
        conversations = []
        for i, meta in enumerate(metas):
            (title, last, summary), pending, turns = results[1 + 3 * i : 4 + 3 * i]
            if not (turns or pending or summary):
                continue
            conversations.append(
                ExportedConversation(
                    scope=meta.rsplit(":m:", 1)[1],
                    title=_text(title),
                    last_active=float(last) if last is not None else None,
                    summary=_text(summary),
                    pending=_decode_all(pending, decode_turn),
                    turns=_decode_all(turns, decode_turn),
                )
            )
        return _decode_all(results[0], decode_fact), conversations


# ---------------------------------------------------------------------- customer service

STATS_TTL_S = 400 * 86400
MAX_UNANSWERED = 500


@dataclass(frozen=True, slots=True)
class HandoffState:
    """A customer handed over to people: their topic (0 while it opens), since, last message."""

    user_id: int
    thread_id: int
    since: float
    last: float
    name: str


def _handoff_state(user_id: int, raw: dict[Any, Any]) -> HandoffState | None:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    if "since" not in fields:
        return None
    try:
        since = float(fields["since"])
        return HandoffState(
            user_id,
            int(fields.get("topic") or 0),
            since,
            float(fields.get("last") or since),
            fields.get("name", ""),
        )
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class BusinessLink:
    """A business account's connection with the bot."""

    id: str
    owner_id: int
    owner_name: str
    enabled: bool
    can_reply: bool


@dataclass(frozen=True, slots=True)
class DayCounts:
    COUNTERS: ClassVar[tuple[str, ...]] = ("answers", "up", "down", "unknown", "handoffs")

    day: str
    answers: int = 0
    up: int = 0
    down: int = 0
    unknown: int = 0
    handoffs: int = 0


def _day_counts(day: str, raw: dict[Any, Any]) -> DayCounts:
    fields = {_text(k): int(v) for k, v in raw.items()}
    return DayCounts(day, *(max(0, fields.get(name, 0)) for name in DayCounts.COUNTERS))


@dataclass(frozen=True, slots=True)
class ExportedConversation:
    scope: str
    title: str
    last_active: float | None
    summary: str
    pending: list[Turn]
    turns: list[Turn]


# KEYS: the user's handoff hash. ARGV: now, name, TTL. 1 when this call opened the handoff.
_CLAIM_HANDOFF = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'topic', 0, 'since', ARGV[1], 'last', ARGV[1], 'name', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: the user's handoff hash. ARGV: TTL, then field, value pairs to set. 1 when the handoff
# is open (and updated), 0 when it has ended (nothing is written).
_UPDATE_HANDOFF = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the user's handoff hash. Its fields (none when there was no handoff), deleted: of two
# replicas ending the same handoff, one gets them.
_END_HANDOFF = """
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return fields
"""

# KEYS: the user's feedback hash, the user's key index. ARGV: tag, record, keep, TTL.
# Fields are `<tag>` (the record) and `<tag>:v` (the vote); tags start with the time, so the
# oldest sort first and go when there are more than `keep` answers.
_KEEP_ANSWER = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local keep = tonumber(ARGV[3])
local n = redis.call('HLEN', KEYS[1])
if n > 2 * keep then
  local fields = redis.call('HKEYS', KEYS[1])
  table.sort(fields)
  local old = {}
  for i = 1, n - keep do old[i] = fields[i] end
  redis.call('HDEL', KEYS[1], unpack(old))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return n
"""

# KEYS: the user's feedback hash. ARGV: tag, vote. {record, vote before}; {} when the record
# is gone.
_VOTE = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return {} end
local before = redis.call('HGET', KEYS[1], ARGV[1] .. ':v') or ''
redis.call('HSET', KEYS[1], ARGV[1] .. ':v', ARGV[2])
return {record, before}
"""
