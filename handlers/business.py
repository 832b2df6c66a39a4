"""Telegram Business: connections, and the messages of a business owner's chats."""

from __future__ import annotations

import logging

from telegram import Update

from bot.engine import Incoming, Report
from bot.errors import MemoryUnavailable
from bot.memory import ConversationKey
from bot.outbox import Target
from handlers.context import Context

log = logging.getLogger(__name__)


async def connection(update: Update, context: Context) -> None:
    """A business account connected the bot, changed its rights or disconnected it."""
    if update.business_connection is None:
        return
    try:
        await context.services.customer.business.connected(update.business_connection)
    except MemoryUnavailable:
        log.warning("business connection not stored: memory unavailable")


async def message(update: Update, context: Context) -> None:
    """A message in a business owner's chat: answered on the owner's behalf, unless paused."""
    message = update.business_message
    if message is None or message.from_user is None or message.business_connection_id is None:
        return
    services = context.services
    business = services.customer.business
    link = await business.admit(
        message.business_connection_id,
        message.chat.id,
        message.from_user.id,
        sent_by_bot=message.sender_business_bot is not None,
    )
    if link is None or not message.text:
        return
    customer = message.from_user
    language = await services.languages.of(customer.id, customer.language_code)
    report = Report()
    incoming = Incoming(
        ConversationKey(customer.id, message.chat.id, business=link.id),
        message.text,
        customer.first_name,
        title=link.owner_name,
        language=language.spoken,
        report=report,
    )
    target = Target(message.chat.id, business_connection_id=link.id)
    await services.engine.answer(incoming, services.reply_stream(target, language=language.ui))
    if report.handoff:
        await business.pause(link.id, message.chat.id)
