"""Webhook mode's consumers: every replica owns some shards of the update queue
(bot.updatequeue) and processes their updates, in order per lane, exactly once as far as a user
can tell.

Ordering across replicas: shard leases, not per-conversation locks. An update goes to the shard
of its chat (bot.routing); a shard is owned by one replica at a time through a lease in Redis,
renewed every QUEUE_LEASE_S/5 and lost if not renewed within QUEUE_LEASE_S. The owner reads the
shard's stream through the consumer group, in stream order, and runs each lane (a chat and a
user) one update after the other, lanes concurrently. So the updates of one conversation are
never processed at once by two replicas, nor out of order. Per-conversation locks were the
alternative, and were rejected: a lock orders who runs, not what runs first. Two replicas reading
a user's updates 1 and 2 race for the lock, and 2 may win; restoring the order needs a sequence
per conversation on top, a round trip per update more, and the lock's expiry while the holder
is still answering has the same failure as a lease's. With leases, order comes from the stream
itself, and an update costs no more than a read and an acknowledgement.

Shards are shared out evenly: each replica beats a heartbeat, counts the live ones, and holds at
most ceil(shards / replicas); one that holds more lets the surplus go once their lanes are idle,
one that holds fewer takes free shards. A new owner first claims (XAUTOCLAIM) every entry still
pending for the shard, whoever read it: the work of a replica that died is answered, before any
newer update of the shard. `/stop` runs outside its lane, at once, as in polling mode.

Exactly once: an update is marked done and acknowledged after it was processed, in one script;
an update found done (a retry of Telegram's, a claim after a crash between the two) is only
acknowledged again. A replica that dies while answering leaves its update pending: the next
owner answers it again from the start (the user may see the first attempt's draft). An update
handed over more than MAX_DELIVERIES times (it took down every replica that tried it) is given
up, with an error in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot import metrics
from bot.errors import MemoryUnavailable
from bot.updatequeue import Entry, UpdateQueue

log = logging.getLogger(__name__)
T = TypeVar("T")

Handle = Callable[[bytes], Awaitable[None]]
# After the grace period, how long cut-off updates get to unwind.
CUT_OFF_WAIT_S = 5.0
# Look for entries stranded in another consumer every this many coordinator rounds.
RECLAIM_EVERY = 5
# An update handed over this many times is given up: it took every replica that tried it down
# (or never finished within a shutdown's grace), and must not go on doing so.
MAX_DELIVERIES = 5
# How often the owned shards' depth and pending entries are sampled for /metrics.
SAMPLE_S = 5.0


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    shards: int
    lease_s: float
    batch: int = 64
    block_ms: int = 1000
    # Entries read but not started, per shard, before reading pauses.
    backlog: int = 1000

    @property
    def lease_ms(self) -> int:
        return max(1, round(self.lease_s * 1000))

    @property
    def tick_s(self) -> float:
        return self.lease_s / 5


class HandBack(Exception):
    """The shard is no longer ours: the entry is left pending for its next owner."""


@dataclass(eq=False)
class Shard:
    number: int
    valid_until: float
    lanes: dict[str, deque[Entry]] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None
    releasing: bool = False
    lost: bool = False

    def owned(self) -> bool:
        return not self.lost and time.monotonic() < self.valid_until

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self.lanes.values())

    @property
    def idle(self) -> bool:
        return not self.tasks


class Workers:
    """The shards this replica owns: leases kept, streams read, updates handed to `handle`."""

    def __init__(self, queue: UpdateQueue, handle: Handle, config: WorkersConfig) -> None:
        self._queue = queue
        self._handle = handle
        self._config = config
        self._shards: dict[int, Shard] = {}
        self._stopping = False
        self._closed = False
        self._coordinator: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._immediate = 0
        # Where this replica starts looking for free shards, so replicas do not all race for 0.
        self._offset = zlib.crc32(queue.consumer.encode()) % config.shards

    @property
    def owned(self) -> list[int]:
        return sorted(n for n, s in self._shards.items() if s.owned() and not s.releasing)

    async def start(self) -> None:
        """Start coordinating; returns after the first round (shards taken when free)."""
        self._coordinator = asyncio.create_task(self._coordinate())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self._config.lease_s)
        self._sampler = asyncio.create_task(self._sample())

    async def stop(self, grace_s: float) -> None:
        """Stop reading; updates being processed get `grace_s` to finish, the rest (and those
        cut off) stay pending for the next owner; then the leases go."""
        self._stopping = True
        for shard in self._shards.values():
            _cancel(shard.reader)
        running = [t for s in self._shards.values() for t in s.tasks.values()]
        if running:
            log.info("waiting up to %gs for %d update(s) in progress", grace_s, len(running))
            _, late = await asyncio.wait(running, timeout=grace_s)
            if late:
                log.warning("%d update(s) cut off; left for another replica", len(late))
                for task in late:
                    task.cancel()
                await asyncio.wait(late, timeout=CUT_OFF_WAIT_S)
        self._closed = True
        readers = [s.reader for s in self._shards.values() if s.reader is not None]
        own = [t for t in (self._coordinator, self._sampler) if t is not None]
        await asyncio.gather(*(_end(task) for task in [*readers, *own]))
        for number in list(self._shards):
            with contextlib.suppress(MemoryUnavailable):
                await self._queue.release(number)
        with contextlib.suppress(MemoryUnavailable):
            await self._queue.leave()
        self._shards.clear()
        metrics.queue_sampled(0, 0)

    # ------------------------------------------------------------------ coordination

    async def _coordinate(self) -> None:
        rounds, failing = 0, False
        while not self._closed:
            try:
                await self._round(rounds)
                if failing:
                    log.info("update queue: Redis answers again")
                failing = False
            except MemoryUnavailable as exc:
                if not failing:
                    log.warning("update queue: %s; retrying", exc)
                failing = True
            except Exception:
                log.exception("update queue: coordination failed; retrying")
            self._ready.set()
            rounds += 1
            await asyncio.sleep(self._config.tick_s)

    async def _round(self, rounds: int) -> None:
        await self._renew()
        if self._stopping:
            return
        live = await self._queue.heartbeat(self._config.lease_ms)
        target = math.ceil(self._config.shards / live)
        self._let_go_of_surplus(target)
        await self._finish_releases()
        await self._take_free(target)
        if rounds % RECLAIM_EVERY == RECLAIM_EVERY - 1:
            await self._reclaim()

    async def _renew(self) -> None:
        started = time.monotonic()
        shards = [s for s in self._shards.values() if not s.lost]
        results = await asyncio.gather(
            *(self._queue.renew(s.number, self._config.lease_ms) for s in shards),
            return_exceptions=True,
        )
        for shard, result in zip(shards, results, strict=True):
            if result is True:
                shard.valid_until = started + self._config.lease_s
            elif result is False:
                log.warning("shard %d: lease lost to another replica", shard.number)
                self._drop(shard)
            elif not isinstance(result, MemoryUnavailable):
                raise result
        for shard in shards:
            if not shard.owned() and not shard.lost:
                log.warning("shard %d: lease not renewed in time; letting it go", shard.number)
                self._drop(shard)
        if any(isinstance(r, MemoryUnavailable) for r in results):
            raise next(r for r in results if isinstance(r, MemoryUnavailable))

    def _drop(self, shard: Shard) -> None:
        """Lost: stop reading; what is not started stays pending for the new owner."""
        shard.lost = True
        _cancel(shard.reader)
        if shard.idle:
            self._shards.pop(shard.number, None)

    def _let_go_of_surplus(self, target: int) -> None:
        active = [s for s in self._shards.values() if not s.releasing and not s.lost]
        surplus = len(active) - target
        for shard in sorted(active, key=lambda s: (len(s.tasks), s.queued))[: max(surplus, 0)]:
            shard.releasing = True
            _cancel(shard.reader)

    async def _finish_releases(self) -> None:
        for shard in [s for s in self._shards.values() if (s.releasing or s.lost) and s.idle]:
            if not shard.lost:
                await self._queue.release(shard.number)
                log.info("shard %d handed over", shard.number)
            self._shards.pop(shard.number, None)

    async def _take_free(self, target: int) -> None:
        held = len([s for s in self._shards.values() if not s.releasing and not s.lost])
        shards = self._config.shards
        for number in ((self._offset + i) % shards for i in range(shards)):
            if held >= target:
                return
            if number in self._shards:
                continue
            started = time.monotonic()
            if await self._queue.acquire(number, self._config.lease_ms):
                await self._take(Shard(number, started + self._config.lease_s))
                held += 1

    async def _take(self, shard: Shard) -> None:
        self._shards[shard.number] = shard
        try:
            await self._queue.prepare(shard.number)
            # Whatever the last owner left unfinished comes first, in stream order.
            handed = await self._without_poison(shard, await self._queue.claim(shard.number, 0))
            await self._queue.forget_idle_consumers(shard.number, 10 * self._config.lease_ms)
        except MemoryUnavailable:
            self._shards.pop(shard.number, None)
            with contextlib.suppress(MemoryUnavailable):
                await self._queue.release(shard.number)
            raise
        if handed:
            log.info("shard %d: %d update(s) taken over", shard.number, len(handed))
        self._enqueue(shard, handed)
        shard.reader = asyncio.create_task(self._read(shard))

    async def _without_poison(self, shard: Shard, entries: list[Entry]) -> list[Entry]:
        deliveries = await self._queue.deliveries(shard.number, entries)
        kept = []
        for entry in entries:
            if deliveries.get(entry.id, 0) <= MAX_DELIVERIES:
                kept.append(entry)
                continue
            log.error(
                "update %d given up after %d attempts that did not finish (crashed or cut off)",
                entry.update_id,
                deliveries[entry.id],
            )
            await self._queue.finish(shard.number, entry)
        return kept

    async def _reclaim(self) -> None:
        """Entries left pending by a replica that read them after losing the shard."""
        for shard in list(self._shards.values()):
            if shard.owned() and not shard.releasing:
                stranded = await self._queue.claim(shard.number, self._config.lease_ms)
                self._enqueue(shard, [e for e in stranded if e.id not in shard.taken])

    async def _sample(self) -> None:
        """The depth and pending entries of the shards whose lease this replica holds, every
        SAMPLE_S: each shard is counted by one replica, so summed over replicas it is the whole
        queue. While Redis does not answer, the last sample stands (the coordinator logs it)."""
        while not self._closed:
            owned = sorted(n for n, s in self._shards.items() if s.owned())
            try:
                depth, pending = await self._queue.backlog(owned)
            except MemoryUnavailable as exc:
                log.debug("update queue: not sampled for /metrics: %s", exc)
            except Exception:
                log.exception("update queue: sampling for /metrics failed")
            else:
                metrics.queue_sampled(depth, pending)
            await asyncio.sleep(SAMPLE_S)

    # ------------------------------------------------------------------ reading and lanes

    async def _read(self, shard: Shard) -> None:
        delay = 0.1
        while shard.owned() and not shard.releasing and not self._stopping:
            if shard.queued >= self._config.backlog:
                await asyncio.sleep(0.05)
                continue
            try:
                entries = await self._queue.read(
                    shard.number, self._config.batch, self._config.block_ms
                )
            except MemoryUnavailable as exc:
                # Once per outage; the coordinator says when Redis is back.
                (log.warning if delay == 0.1 else log.debug)("shard %d: %s", shard.number, exc)
            except Exception:
                log.exception("shard %d: read failed", shard.number)
            else:
                delay = 0.1
                self._enqueue(shard, entries)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _enqueue(self, shard: Shard, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.id in shard.taken:
                continue
            shard.taken.add(entry.id)
            if not entry.lane:
                self._immediate += 1
                self._start(shard, f"!{self._immediate}", self._once(shard, entry))
                continue
            lane = shard.lanes.setdefault(entry.lane, deque())
            lane.append(entry)
            if entry.lane not in shard.tasks:
                self._start(shard, entry.lane, self._lane(shard, entry.lane, lane))

    def _start(self, shard: Shard, name: str, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                # A bug; what was not finished stays pending and is claimed again later.
                log.exception("shard %d: lane %s stopped", shard.number, name)
            finally:
                shard.tasks.pop(name, None)
                if shard.lost and shard.idle:
                    self._shards.pop(shard.number, None)

        shard.tasks[name] = asyncio.create_task(run())

    async def _lane(self, shard: Shard, name: str, lane: deque[Entry]) -> None:
        """One lane's updates, one after the other."""
        try:
            while lane and shard.owned() and not self._stopping:
                await self._process(shard, lane[0])
                lane.popleft()
        except HandBack:
            pass
        finally:
            # Not started (the shard went, or we stop): left pending for the next owner.
            for entry in lane:
                shard.taken.discard(entry.id)
            shard.lanes.pop(name, None)

    async def _once(self, shard: Shard, entry: Entry) -> None:
        try:
            await self._process(shard, entry)
        except HandBack:
            shard.taken.discard(entry.id)

    async def _process(self, shard: Shard, entry: Entry) -> None:
        if await self._retrying(shard, lambda: self._queue.is_done(shard.number, entry.update_id)):
            log.info("update %d was answered already; acknowledged again", entry.update_id)
        else:
            try:
                await self._handle(entry.payload)
            except Exception:
                # A bug outside the handlers (PTB reports theirs itself): retrying would repeat it.
                log.exception("update %d could not be processed", entry.update_id)
        await self._retrying(shard, lambda: self._queue.finish(shard.number, entry))
        shard.taken.discard(entry.id)

    async def _retrying(self, shard: Shard, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation` until Redis answers, while the shard is ours."""
        delay = 0.1
        while True:
            try:
                return await operation()
            except MemoryUnavailable as exc:
                if not shard.owned():
                    raise HandBack from exc
                log.warning("shard %d: %s; retrying in %.1fs", shard.number, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()


async def _end(task: asyncio.Task[None], patience_s: float = 5.0) -> None:
    """Cancel `task` and wait for it, cancelling again if the cancellation was lost (Python
    3.11's timeouts can swallow one that races with their own, and redis-py uses them)."""
    deadline = time.monotonic() + patience_s
    while not task.done() and time.monotonic() < deadline:
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.done():
        log.warning("a worker task did not stop within %gs", patience_s)
