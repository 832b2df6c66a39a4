"""Folds turns that left the conversation into its rolling summary, off the reply's path.

A reply never waits for this: the turns are moved to a pending list in the same write as the
turn itself, and a background task asks the model for the new summary afterwards. If the model
or Redis fails, the turns stay pending and the next overflow tries again.
"""

from __future__ import annotations

import asyncio
import logging

from bot.conversation import summary_prompt
from bot.errors import LLMError, MemoryUnavailable
from bot.llm import LLMClient
from bot.memory import ConversationKey, Memory

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0


class Summarizer:
    def __init__(self, llm: LLMClient, memory: Memory, max_tokens: int) -> None:
        self._llm = llm
        self._memory = memory
        self._max_tokens = max_tokens
        self._tasks: dict[ConversationKey, asyncio.Task[None]] = {}
        self.completed = 0

    def schedule(self, key: ConversationKey) -> None:
        """Fold the pending turns of `key` soon; at most one fold per conversation at a time."""
        if key in self._tasks:
            return
        task = asyncio.create_task(self._fold(key))
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    def running(self, key: ConversationKey) -> bool:
        return key in self._tasks

    async def idle(self) -> None:
        """Wait for every fold in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        if self._tasks:
            _, late = await asyncio.wait(self._tasks.values(), timeout=SHUTDOWN_GRACE_S)
            for task in late:
                task.cancel()

    async def _fold(self, key: ConversationKey) -> None:
        try:
            summary, pending = await self._memory.pending(key)
            if not pending:
                return
            words = max(50, self._max_tokens * 2 // 3)
            answer = await self._llm.complete(
                summary_prompt(summary, pending, words), self._max_tokens
            )
            text = answer.text.strip()
            if not text:
                log.warning("summary for %s came back empty; will retry later", key.scope)
                return
            await self._memory.store_summary(key, text, len(pending))
            self.completed += 1
            log.info("folded %d turns into the summary of %s", len(pending), key.scope)
        except (LLMError, MemoryUnavailable) as exc:
            log.warning("summary for %s not updated: %s", key.scope, type(exc).__name__)
