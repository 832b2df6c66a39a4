"""Typed access to the running bot's services from any handler."""

from __future__ import annotations

from typing import Any

from telegram import Update
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


def conversation_of(update: Update) -> tuple[ConversationKey, Target, str]:
    """Whose conversation an update belongs to, where the reply goes, the user's first name."""
    message = update.effective_message
    chat, user = update.effective_chat, update.effective_user
    if message is None or chat is None or user is None:
        raise ValueError("update without a message, chat or user")
    thread_id = message.message_thread_id if message.is_topic_message else None
    private = chat.type == chat.PRIVATE
    key = ConversationKey(user.id, chat.id, thread_id)
    target = Target(chat.id, thread_id, None if private else message.message_id, private)
    return key, target, user.first_name or "there"
