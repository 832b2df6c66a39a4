"""Telegram Business: the bot answers in a business owner's private chats with their customers.

A business owner connects the bot in Telegram's settings (Business → Chatbots; the bot needs
Business Mode switched on in @BotFather). Telegram then sends a `business_connection` update
(stored here: enabled or not, whether the bot may reply) and a `business_message` update for
every message in the owner's chats. The bot answers the customer's messages through the
connection (`business_connection_id`: the answer appears as the owner's), streaming by edits
(drafts cannot be sent on a business's behalf), unless:

- the connection is disabled, or does not let the bot reply;
- the owner is not allowed to use the bot (ALLOWED_USER_IDS, ADMIN_USER_IDS);
- the owner wrote in that chat themselves within BUSINESS_PAUSE_MINUTES: the bot steps back
  and lets the owner talk (the pause restarts with each of the owner's messages);
- the message is one the bot sent itself (Telegram reports those too).

Each customer's conversation with each business is its own memory (scope `b<connection>`),
apart from the customer's private chat with the bot; their remembered facts are not used there.
"""

from __future__ import annotations

import logging

from telegram import Bot, BusinessConnection
from telegram.error import TelegramError

from bot.access import AccessPolicy
from bot.errors import MemoryUnavailable
from bot.memory import BusinessLink, Memory
from bot.ordering import KeyedLocks

log = logging.getLogger(__name__)


def link_of(connection: BusinessConnection) -> BusinessLink:
    rights = connection.rights
    return BusinessLink(
        id=connection.id,
        owner_id=connection.user.id,
        owner_name=connection.user.first_name,
        enabled=connection.is_enabled,
        can_reply=bool(rights is not None and rights.can_reply),
    )


class Business:
    def __init__(
        self, bot: Bot, memory: Memory, access: AccessPolicy, pause_minutes: float
    ) -> None:
        self._bot = bot
        self._memory = memory
        self._access = access
        self._pause_s = pause_minutes * 60
        self._chats = KeyedLocks()

    async def connected(self, connection: BusinessConnection) -> None:
        """A connection was made, changed or disabled: remember its state."""
        link = link_of(connection)
        await self._memory.save_business(link)
        log.info(
            "business connection %s of user %s: %s, %s",
            link.id,
            link.owner_id,
            "enabled" if link.enabled else "disabled",
            "can reply" if link.can_reply else "cannot reply",
        )

    async def admit(
        self, connection_id: str, chat_id: int, sender_id: int, *, sent_by_bot: bool
    ) -> BusinessLink | None:
        """The connection to answer through, or None when this message gets no answer.

        One chat's messages are decided in the order they arrived, so a customer's message
        right after the owner's sees the pause the owner's message starts.
        """
        if sent_by_bot:
            return None
        async with self._chats.hold((connection_id, chat_id)):
            try:
                link, paused = await self._memory.business_state(connection_id, chat_id)
                link = link or await self._fetch(connection_id)
            except MemoryUnavailable:
                return None
            if link is not None and sender_id == link.owner_id:
                await self.pause(connection_id, chat_id)
                return None
        if link is None or paused or not self._serves(link):
            return None
        return link

    async def pause(self, connection_id: str, chat_id: int) -> None:
        """Leave the chat to the owner for BUSINESS_PAUSE_MINUTES (they wrote there, or the
        model asked for a person)."""
        if self._pause_s <= 0:
            return
        try:
            await self._memory.pause_business(connection_id, chat_id, self._pause_s)
        except MemoryUnavailable:
            log.warning("business chat not paused: memory unavailable")

    def _serves(self, link: BusinessLink) -> bool:
        if not (link.enabled and link.can_reply):
            return False
        allowed = self._access.allowed_users
        if allowed and link.owner_id not in allowed and not self._access.is_admin(link.owner_id):
            log.info("business owner %s is not in ALLOWED_USER_IDS: not answering", link.owner_id)
            return False
        return True

    async def _fetch(self, connection_id: str) -> BusinessLink | None:
        """A connection made before the bot kept track of them: ask Telegram."""
        try:
            connection = await self._bot.get_business_connection(connection_id)
        except TelegramError as exc:
            log.warning("business connection %s unknown to Telegram: %s", connection_id, exc)
            return None
        await self.connected(connection)
        return link_of(connection)
