"""Per-group policy (shared context, trigger words) and the shared context itself.

Group settings are read on every group message the bot sees, so they are cached in-process for
a short while; an admin's change is visible at once in the replica that made it and within
CACHE_SECONDS in the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace

from bot.errors import MemoryUnavailable
from bot.memory import GroupLine, Memory
from bot.settings import split_words

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
MAX_LINE_CHARS = 500


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    shared_context: bool
    triggers: tuple[str, ...]


def format_context(lines: list[GroupLine]) -> str:
    """Recent group messages as the model sees them, before the question."""
    if not lines:
        return ""
    shown = "\n".join(f"{line.name}: {line.text}" for line in lines)
    return f"Recent messages in this group, for context:\n{shown}\n\nThe question:\n"


class Groups:
    def __init__(self, memory: Memory, defaults: GroupPolicy, context_messages: int) -> None:
        self._memory = memory
        self._defaults = defaults
        self.context_messages = context_messages
        self._cache: dict[int, tuple[float, GroupPolicy]] = {}
        self._reading: dict[int, asyncio.Future[GroupPolicy]] = {}

    async def policy(self, chat_id: int) -> GroupPolicy:
        cached = self._cache.get(chat_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # Members of a busy group write at once: one read serves all of them.
        reading = self._reading.get(chat_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(chat_id, cached))
            self._reading[chat_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(chat_id, None))
        return await asyncio.shield(reading)

    async def _read(self, chat_id: int, cached: tuple[float, GroupPolicy] | None) -> GroupPolicy:
        now = time.monotonic()
        try:
            stored = await self._memory.group_settings(chat_id)
        except MemoryUnavailable:
            return cached[1] if cached is not None else self._defaults
        policy = self._defaults
        if "shared" in stored:
            policy = replace(policy, shared_context=stored["shared"] == "1")
        if "triggers" in stored:
            policy = replace(policy, triggers=split_words(stored["triggers"]))
        self._cache[chat_id] = (now + CACHE_SECONDS, policy)
        return policy

    async def update(
        self, chat_id: int, *, shared: bool | None = None, triggers: tuple[str, ...] | None = None
    ) -> GroupPolicy:
        fields: dict[str, str] = {}
        if shared is not None:
            fields["shared"] = "1" if shared else "0"
        if triggers is not None:
            fields["triggers"] = ",".join(triggers)
        await self._memory.save_group_settings(chat_id, fields)
        self._cache.pop(chat_id, None)
        return await self.policy(chat_id)

    async def observe(self, chat_id: int, thread_id: int | None, name: str, text: str) -> None:
        """Keep a visible group message for shared context (only where that is switched on)."""
        if not text.strip() or not (await self.policy(chat_id)).shared_context:
            return
        line = GroupLine(name, " ".join(text.split())[:MAX_LINE_CHARS], time.time())
        try:
            await self._memory.log_group_line(chat_id, thread_id, line, self.context_messages)
        except MemoryUnavailable:
            log.info("group message not kept for context: memory unavailable")

    async def migrated(self, old: int, new: int) -> None:
        """The group became a supergroup: its memory and settings move to the new id."""
        moved = await self._memory.migrate_group(old, new)
        self._cache.pop(old, None)
        self._cache.pop(new, None)
        log.info("group %s migrated to %s; %d conversations moved", old, new, moved)
