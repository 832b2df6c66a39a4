"""What happens to each update: counted, timed, logged in one line with its outcome; drained on
shutdown.

PTB hands every update to its update processor; `UpdateTracker` is PTB's own (at most
MAX_CONCURRENT_UPDATES at once) with a record around each update. The log line carries ids,
the kind, the outcome and the latency: never the text.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import Application, SimpleUpdateProcessor

from bot import metrics
from bot.logs import fields

log = logging.getLogger(__name__)

# After the grace period, how long the updates being cut off get to unwind.
CUT_OFF_WAIT_S = 5.0


def kind_of(update: object) -> str:
    """command, text, media, callback, edited or other."""
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "callback"
    if update.edited_message is not None or update.edited_business_message is not None:
        return "edited"
    message = update.message or update.business_message
    if message is None:
        return "other"
    if message.text is not None:
        return "command" if message.text.startswith("/") else "text"
    return "media" if message.effective_attachment is not None else "other"


def _ids(update: object) -> dict[str, object]:
    if not isinstance(update, Update):
        return {}
    chat, user = update.effective_chat, update.effective_user
    return {
        "update_id": update.update_id,
        "chat_id": chat.id if chat is not None else None,
        "user_id": user.id if user is not None else None,
    }


class UpdateTracker(SimpleUpdateProcessor):
    """PTB's update processor plus one record per update, and a bounded drain at shutdown."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self._closed:
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            log.warning("update dropped: shutting down", extra=fields(**_ids(update)))
            return
        record = metrics.update_started(kind_of(update))
        task = asyncio.current_task()
        # With one update at a time PTB processes it in its fetcher task: never cut that off.
        if task is not None and self.max_concurrent_updates > 1:
            self._tasks.add(task)
        started = time.monotonic()
        try:
            with metrics.current(record):
                await coroutine
        except asyncio.CancelledError:
            record.outcome = "cut_off"
            raise
        finally:
            if task is not None:
                self._tasks.discard(task)
            elapsed = time.monotonic() - started
            metrics.update_finished(record, elapsed)
            log.info(
                "update handled",
                extra=fields(
                    **_ids(update),
                    kind=record.kind,
                    outcome=record.outcome,
                    cause=record.cause,
                    latency_ms=round(elapsed * 1000),
                ),
            )

    async def drain(self, queue: asyncio.Queue[Any], grace_s: float) -> None:
        """Let the updates taken so far finish, for up to `grace_s`; then cut the rest off."""
        try:
            await asyncio.wait_for(queue.join(), grace_s)
            return
        except TimeoutError:
            self._closed = True
        tasks = [t for t in self._tasks if not t.done()]
        if not tasks:
            return
        log.warning(
            "shutting down: %d update(s) still in progress after %gs are cut off",
            len(tasks),
            grace_s,
        )
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=CUT_OFF_WAIT_S)


async def drain(app: Application[Any, Any, Any, Any, Any, Any], grace_s: float) -> None:
    """Stop point of a graceful shutdown: in-flight updates finish within `grace_s`, or stop."""
    tracker = app.update_processor
    if isinstance(tracker, UpdateTracker):
        await tracker.drain(app.update_queue, grace_s)
