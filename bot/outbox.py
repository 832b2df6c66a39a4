"""Everything the bot sends to Telegram goes through here: flood control and Telegram's errors.

Previews (drafts, streaming edits) are best effort: on a 429 they are skipped and the chat cools
down. Final messages are delivered: a 429 waits `retry_after` and tries again, rejected entities
fall back to plain text, "message is not modified" counts as done, and a chat that blocked the
bot raises ChatUnavailable (logged, never retried).
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    MessageEntity,
    MessageId,
    ReplyParameters,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.errors import ChatUnavailable
from bot.pacing import Pacer
from bot.render import Chunk

log = logging.getLogger(__name__)
T = TypeVar("T")

FINAL_ATTEMPTS = 4
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where a reply goes."""

    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None
    private: bool = True
    # A business owner's chat (Telegram Business): sent on the owner's behalf, no drafts.
    business_connection_id: str | None = None


def retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return 1.0


def telegram_entities(chunk: Chunk) -> list[MessageEntity] | None:
    """A rendered chunk's entities as PTB objects (None when there are none)."""
    if not chunk.entities:
        return None
    return [
        MessageEntity(
            type=e.type,
            offset=e.offset,
            length=e.length,
            url=e.url,
            language=e.language,
            custom_emoji_id=e.custom_emoji_id,
        )
        for e in chunk.entities
    ]


def _is(exc: BadRequest, *fragments: str) -> bool:
    message = exc.message.lower()
    return any(f in message for f in fragments)


class Outbox:
    def __init__(self, bot: Bot, pacer: Pacer) -> None:
        self._bot = bot
        self._pacer = pacer
        self._cool_until: dict[int, float] = {}

    def cooling(self, chat_id: int) -> bool:
        until = self._cool_until.get(chat_id)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._cool_until[chat_id]
            return False
        return True

    def _cool(self, chat_id: int, seconds: float) -> None:
        self._cool_until[chat_id] = time.monotonic() + seconds

    async def typing(self, target: Target) -> None:
        if self.cooling(target.chat_id):
            return
        try:
            await self._bot.send_chat_action(
                target.chat_id,
                ChatAction.TYPING,
                message_thread_id=target.thread_id,
                business_connection_id=target.business_connection_id,
            )
        except RetryAfter as exc:
            self._cool(target.chat_id, retry_after_seconds(exc))
        except Forbidden as exc:
            raise self._unavailable(target, exc) from exc
        except NetworkError as exc:
            log.debug("typing action failed: %s", exc)

    async def draft(self, target: Target, draft_id: int, chunk: Chunk) -> bool:
        """Show a draft; False when drafts are refused here (the caller falls back to edits)."""
        if self.cooling(target.chat_id):
            return True
        try:
            await self._bot.send_message_draft(
                target.chat_id,
                draft_id,
                chunk.text,
                message_thread_id=target.thread_id,
                entities=telegram_entities(chunk),
            )
        except RetryAfter as exc:
            self._cool(target.chat_id, retry_after_seconds(exc))
        except Forbidden as exc:
            raise self._unavailable(target, exc) from exc
        except BadRequest as exc:
            if _is(exc, "parse entities"):
                return await self.draft(target, draft_id, Chunk(chunk.text, ()))
            log.info("drafts refused in chat %s: %s", target.chat_id, exc.message)
            return False
        except NetworkError as exc:
            log.debug("draft update failed: %s", exc)
        return True

    async def send(
        self,
        target: Target,
        chunk: Chunk,
        *,
        reply: bool = True,
        final: bool = True,
        markup: InlineKeyboardMarkup | None = None,
    ) -> int | None:
        """Send a message and return its id; a preview may be skipped (None)."""
        reply_parameters = (
            ReplyParameters(target.reply_to, allow_sending_without_reply=True)
            if reply and target.reply_to is not None
            else None
        )

        async def call(entities: Sequence[MessageEntity] | None, text: str) -> Message:
            return await self._bot.send_message(
                target.chat_id,
                text,
                entities=entities,
                message_thread_id=target.thread_id,
                reply_parameters=reply_parameters,
                link_preview_options=None,
                reply_markup=markup,
                business_connection_id=target.business_connection_id,
            )

        deliver = self._deliver if final else self._preview
        message = await deliver(target, chunk, call)
        return message.message_id if message is not None else None

    async def edit(
        self,
        target: Target,
        message_id: int,
        chunk: Chunk,
        *,
        final: bool,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Replace a message's text; previews give up quietly, finals are delivered."""

        async def call(entities: Sequence[MessageEntity] | None, text: str) -> bool:
            await self._bot.edit_message_text(
                text,
                chat_id=target.chat_id,
                message_id=message_id,
                entities=entities,
                reply_markup=markup,
                business_connection_id=target.business_connection_id,
            )
            return True

        deliver = self._deliver if final else self._preview
        await deliver(target, chunk, call)

    async def _preview(
        self,
        target: Target,
        chunk: Chunk,
        call: Callable[[Sequence[MessageEntity] | None, str], Awaitable[T]],
    ) -> T | None:
        """Best effort: skipped when the chat is cooling down or its budget has no room."""
        if self.cooling(target.chat_id) or not await self._pacer.preview(target.chat_id):
            return None
        entities = telegram_entities(chunk)
        for _ in range(2):
            try:
                return await call(entities, chunk.text)
            except RetryAfter as exc:
                self._cool(target.chat_id, retry_after_seconds(exc))
            except Forbidden as exc:
                raise self._unavailable(target, exc) from exc
            except BadRequest as exc:
                if entities is not None and _is(exc, "parse entities", "entity"):
                    entities = None
                    continue
                if not _is(exc, "not modified"):
                    log.info("preview refused: %s", exc.message)
            except NetworkError as exc:
                log.debug("preview failed: %s", exc)
            return None
        return None

    async def delete(self, target: Target, message_id: int) -> None:
        try:
            if target.business_connection_id is not None:
                await self._bot.delete_business_messages(
                    target.business_connection_id, [message_id]
                )
            else:
                await self._bot.delete_message(target.chat_id, message_id)
        except (BadRequest, Forbidden, NetworkError) as exc:
            log.info("could not delete message: %s", exc)

    async def copy(self, target: Target, from_chat_id: int, message_id: int) -> int | None:
        """Copy a message of any kind (text, photo, document...) to `target`, delivered like a
        final message; its new id."""

        async def call(_: Sequence[MessageEntity] | None, __: str) -> MessageId:
            return await self._bot.copy_message(
                target.chat_id, from_chat_id, message_id, message_thread_id=target.thread_id
            )

        copied = await self._deliver(target, Chunk("", ()), call)
        return copied.message_id if copied is not None else None

    async def document(self, target: Target, filename: str, content: bytes, caption: str) -> None:
        """Send a file, delivered like a final message."""

        async def call(_: Sequence[MessageEntity] | None, __: str) -> Message:
            return await self._bot.send_document(
                target.chat_id,
                InputFile(content, filename=filename),
                caption=caption,
                message_thread_id=target.thread_id,
            )

        await self._deliver(target, Chunk("", ()), call)

    async def _deliver(
        self,
        target: Target,
        chunk: Chunk,
        call: Callable[[Sequence[MessageEntity] | None, str], Awaitable[T]],
    ) -> T | None:
        entities = telegram_entities(chunk)
        for attempt in range(1, FINAL_ATTEMPTS + 1):
            await self._pacer.final(target.chat_id)
            try:
                return await call(entities, chunk.text)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if wait > MAX_RETRY_AFTER_S or attempt == FINAL_ATTEMPTS:
                    log.warning("telegram flood limit: giving up after %.0fs wait asked", wait)
                    raise ChatUnavailable(f"flood limit in chat {target.chat_id}") from exc
                log.info("telegram asked to wait %.1fs (chat %s)", wait, target.chat_id)
                self._cool(target.chat_id, wait)
                await asyncio.sleep(wait)
            except Forbidden as exc:
                raise self._unavailable(target, exc) from exc
            except ChatMigrated as exc:
                raise ChatUnavailable(f"chat {target.chat_id} migrated") from exc
            except BadRequest as exc:
                if _is(exc, "not modified"):
                    return None
                if entities is not None and _is(exc, "parse entities", "entity"):
                    log.info("telegram rejected entities (%s); sending plain text", exc.message)
                    entities = None
                    continue
                log.warning("telegram refused a message in chat %s: %s", target.chat_id, exc)
                raise ChatUnavailable(exc.message) from exc
            except NetworkError as exc:
                if attempt == FINAL_ATTEMPTS:
                    raise ChatUnavailable(f"network: {exc}") from exc
                await asyncio.sleep(0.5 * attempt)
        return None

    @staticmethod
    def _unavailable(target: Target, exc: Forbidden) -> ChatUnavailable:
        log.info("chat %s does not accept messages: %s", target.chat_id, exc.message)
        return ChatUnavailable(exc.message)
