"""What the bot keeps about a user, as the user sees and controls it: facts, conversations,
and forgetting everything."""

from __future__ import annotations

import time

from bot.conversation import MAX_FACT_CHARS
from bot.memory import ExportedConversation, Fact, Memory, StoredConversation


class UserData:
    def __init__(self, memory: Memory) -> None:
        self._memory = memory

    async def remember(self, user_id: int, fact: str) -> int:
        return await self._memory.add_fact(user_id, Fact(fact[:MAX_FACT_CHARS], time.time()))

    async def facts(self, user_id: int) -> list[Fact]:
        return await self._memory.facts(user_id)

    async def conversations(self, user_id: int) -> list[StoredConversation]:
        return await self._memory.conversations(user_id)

    async def forget_fact(self, user_id: int, number: int) -> Fact | None:
        return await self._memory.delete_fact(user_id, number)

    async def forget_everything(self, user_id: int) -> int:
        return await self._memory.forget_user(user_id)

    async def export(self, user_id: int) -> tuple[list[Fact], list[ExportedConversation]]:
        """Everything kept about the user (/export)."""
        return await self._memory.export_user(user_id)
