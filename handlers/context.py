"""Typed access to the running bot's services, and who/where an update is about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Chat, Update
from telegram.ext import CallbackContext, ExtBot

from bot.memory import ConversationKey
from bot.outbox import Target
from bot.services import BotData, Services


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("an update arrived before the bot finished starting")
        return services


@dataclass(frozen=True, slots=True)
class Where:
    """Whose conversation an update belongs to and where the reply goes."""

    key: ConversationKey
    target: Target
    user_name: str
    title: str | None
    # The user's language code as Telegram gives it ("" when it does not).
    language: str = ""

    @property
    def private(self) -> bool:
        return self.target.private


def where(update: Update) -> Where:
    message = update.effective_message
    chat, user = update.effective_chat, update.effective_user
    if message is None or chat is None or user is None:
        raise ValueError("update without a message, chat or user")
    thread_id = message.message_thread_id if message.is_topic_message else None
    private = chat.type == Chat.PRIVATE
    # In groups the answer replies to the message that asked; in private chats it just follows.
    target = Target(chat.id, thread_id, None if private else message.message_id, private)
    title = None if private else (chat.title or str(chat.id))
    key = ConversationKey(user.id, chat.id, thread_id)
    return Where(key, target, user.first_name, title, user.language_code or "")
