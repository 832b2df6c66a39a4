"""Prometheus metrics: their definitions, and one small function for each thing worth counting.

Recording runs on every message, so each helper is a counter increment or a histogram
observation, nothing more. `bot.health` serves the registry at `/metrics`. The README's
"Operations" section lists every metric.

The update being processed (see `bot.updates`) is carried in a context variable, so a failure
recorded deep in the engine also becomes the outcome of that update's log line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from contextlib import aclosing, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from bot.errors import ChatUnavailable, MemoryUnavailable, TelellamaError

P = ParamSpec("P")
T = TypeVar("T")

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UPDATES_RECEIVED = Counter(
    "telellama_updates_received",
    "Updates taken from Telegram for processing, by kind",
    ["kind"],
    registry=REGISTRY,
)
UPDATES_PROCESSED = Counter(
    "telellama_updates_processed",
    "Updates processed, by kind and outcome (answered, ok, failed, undelivered, error, cut_off)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
UPDATE_SECONDS = Histogram(
    "telellama_update_duration_seconds",
    "Time from taking an update to having fully processed it (the whole streamed answer)",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
    registry=REGISTRY,
)
UPDATES_IN_PROGRESS = Gauge(
    "telellama_updates_in_progress", "Updates being processed right now", registry=REGISTRY
)
REPLIES = Counter(
    "telellama_replies_delivered",
    "Replies whose final message reached the chat (answers, stopped or cut answers, notices)",
    registry=REGISTRY,
)
ERRORS = Counter(
    "telellama_errors",
    "Failures by cause: an LLMError subclass name, MemoryUnavailable, ChatUnavailable, internal",
    ["cause"],
    registry=REGISTRY,
)
FIRST_TOKEN_SECONDS = Histogram(
    "telellama_llm_time_to_first_token_seconds",
    "From opening a completion stream (retries included) to its first text",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30),
    registry=REGISTRY,
)
TOKENS_PER_SECOND = Histogram(
    "telellama_llm_tokens_per_second",
    "Generation speed of a finished answer, after its first token",
    buckets=(1, 2, 5, 10, 15, 20, 30, 40, 60, 80, 100, 150, 200, 300, 500),
    registry=REGISTRY,
)
TOKENS = Counter(
    "telellama_llm_tokens",
    "Tokens used by answers as the endpoint reported them, by type (prompt, completion)",
    ["type"],
    registry=REGISTRY,
)
CONVERSATIONS = Gauge(
    "telellama_conversations_in_progress",
    "Answers being generated right now (read when scraped)",
    registry=REGISTRY,
)
REDIS_SECONDS = Histogram(
    "telellama_redis_duration_seconds",
    "Memory round trips on the message path, by operation (load, append)",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
    registry=REGISTRY,
)
# Webhook mode's update queue, sampled by bot.workers. Each replica counts only the shards it
# holds the lease of, so every shard is counted once: sum() over the replicas is the whole queue,
# and the average per pod (what an autoscaler's Pods metric compares) is the backlog per replica.
QUEUE_DEPTH = Gauge(
    "telellama_queue_depth",
    "Webhook mode: updates accepted and not yet finished in the queue shards this replica owns "
    "(XLEN, sampled every 5 s); each shard is counted by its owner only: sum() over replicas",
    registry=REGISTRY,
)
QUEUE_PENDING = Gauge(
    "telellama_queue_pending",
    "Webhook mode: of the queue depth, entries read by a replica and not yet acknowledged "
    "(XPENDING; being answered or waiting in their lane); counted by the shard's owner only",
    registry=REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "telellama_webhook_receipt_seconds",
    "Webhook mode: from receiving an update to answering Telegram 200 (stored, or dropped as "
    "a redelivery)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)

_PROMPT_TOKENS = TOKENS.labels("prompt")
_COMPLETION_TOKENS = TOKENS.labels("completion")


@dataclass(slots=True)
class UpdateRecord:
    """What happened to one update; `outcome` ends up in the metrics and the log line."""

    kind: str
    outcome: str = "ok"
    cause: str | None = None


_current: ContextVar[UpdateRecord | None] = ContextVar("telellama_update", default=None)
# Outcomes a failure may still replace.
_SUCCESS = ("ok", "answered")


class Usage(Protocol):
    """What a finished stream reports (bot.llm.Answer)."""

    prompt_tokens: int | None
    completion_tokens: int | None


def update_started(kind: str) -> UpdateRecord:
    UPDATES_RECEIVED.labels(kind).inc()
    UPDATES_IN_PROGRESS.inc()
    return UpdateRecord(kind)


@contextmanager
def current(record: UpdateRecord) -> Iterator[UpdateRecord]:
    """Make `record` the update that failures and replies are attributed to, for the block."""
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)


def update_finished(record: UpdateRecord, seconds: float) -> None:
    UPDATES_IN_PROGRESS.dec()
    UPDATES_PROCESSED.labels(record.kind, record.outcome).inc()
    UPDATE_SECONDS.labels(record.kind).observe(seconds)


def cause_of(error: BaseException | type[BaseException]) -> str:
    """The `cause` label: our own exception's class name, `internal` for anything else."""
    kind = error if isinstance(error, type) else type(error)
    return kind.__name__ if issubclass(kind, TelellamaError) else "internal"


def error(error: BaseException | type[BaseException] | None) -> None:
    """Count a failure by cause; it also becomes the outcome of the update being processed.

    Memory failures only degrade an answer (it is given without memory): they are noted as the
    cause without changing the outcome. The first failing outcome of an update sticks.
    """
    if error is None:
        return
    kind = error if isinstance(error, type) else type(error)
    cause = cause_of(kind)
    ERRORS.labels(cause).inc()
    record = _current.get()
    if record is None:
        return
    outcome = _outcome(kind)
    if outcome is not None and record.outcome in _SUCCESS:
        record.outcome, record.cause = outcome, cause
    elif record.cause is None:
        record.cause = cause


def _outcome(kind: type[BaseException]) -> str | None:
    if issubclass(kind, MemoryUnavailable):
        return None
    if issubclass(kind, ChatUnavailable):
        return "undelivered"
    return "failed" if issubclass(kind, TelellamaError) else "error"


def reply_delivered() -> None:
    REPLIES.inc()
    record = _current.get()
    if record is not None and record.outcome == "ok":
        record.outcome = "answered"


async def observe_stream(
    stream: AsyncGenerator[str, None], usage: Usage
) -> AsyncGenerator[str, None]:
    """`stream` unchanged, timed: first token, then pace and tokens used once it has ended."""
    started = time.monotonic()
    first: float | None = None
    pieces = 0
    async with aclosing(stream):
        async for piece in stream:
            if first is None:
                first = time.monotonic()
                FIRST_TOKEN_SECONDS.observe(first - started)
            pieces += 1
            yield piece
    if usage.prompt_tokens:
        _PROMPT_TOKENS.inc(usage.prompt_tokens)
    if usage.completion_tokens:
        _COMPLETION_TOKENS.inc(usage.completion_tokens)
    generated = usage.completion_tokens or pieces
    if first is not None and generated > 1:
        elapsed = time.monotonic() - first
        if elapsed > 0:
            TOKENS_PER_SECOND.observe((generated - 1) / elapsed)


def timed_redis(
    operation: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorator: observe how long each call of a memory round trip takes."""
    histogram = REDIS_SECONDS.labels(operation)

    def decorate(
        function: Callable[P, Coroutine[Any, Any, T]],
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        @wraps(function)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed

    return decorate


def conversations_in_progress(count: int) -> None:
    CONVERSATIONS.set(count)


def queue_sampled(depth: int, pending: int) -> None:
    QUEUE_DEPTH.set(depth)
    QUEUE_PENDING.set(pending)


def webhook_answered(seconds: float) -> None:
    WEBHOOK_SECONDS.observe(seconds)
