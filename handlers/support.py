"""Human handoff in Telegram: /human, a customer's messages during a handoff, the support chat.

`during_handoff` and `support_chat` run before the handler table (handlers.first) and stop it:
a customer in a handoff is not answered by the model, and neither is anyone in the support chat.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop

from bot import texts
from bot.errors import MemoryUnavailable
from bot.handoff import Customer
from handlers import replying
from handlers.context import Context, where

log = logging.getLogger(__name__)

# Commands that would ask the model: paused while a person handles the customer. Any other
# command works as usual during a handoff (/human, /export, /memory, /help...).
PAUSED = frozenset({"ask", "retry"})


def command_of(message: Message) -> str | None:
    """The command a message starts with, lower-cased and without @botname; else None."""
    text = message.text or ""
    if not text.startswith("/"):
        return None
    return text.split(maxsplit=1)[0][1:].split("@", 1)[0].lower()


async def human(update: Update, context: Context) -> None:
    """/human: hand the user over to a person from the team."""
    desk = context.services.customer.desk
    user = update.effective_user
    if desk is None or user is None:
        await replying.say(update, context, texts.HANDOFF_OFF)
        return
    if not where(update).private:
        await replying.say(update, context, texts.HANDOFF_IN_PRIVATE)
        return
    await replying.say(update, context, await desk.open(Customer.of(user)))


async def during_handoff(update: Update, context: Context) -> None:
    """A customer's private message while a person handles them goes to the operators."""
    desk = context.services.customer.desk
    message, user = update.effective_message, update.effective_user
    if desk is None or message is None or user is None:
        return
    try:
        state = await desk.current(user.id)
    except MemoryUnavailable:
        return  # no way to know: the assistant answers
    if state is None:
        return
    command = command_of(message)
    if command is not None and command not in PAUSED:
        return
    if command is not None:
        await replying.say(update, context, texts.HANDOFF_PAUSED)
    elif not await desk.to_operators(state, message.message_id):
        await replying.say(update, context, texts.RELAY_FAILED)
    raise ApplicationHandlerStop


async def support_chat(update: Update, context: Context) -> None:
    """The support chat: operators' messages in a topic go to its customer; /resolve."""
    desk = context.services.customer.desk
    message, chat = update.effective_message, update.effective_chat
    if desk is None or message is None or chat is None or chat.id != desk.chat_id:
        return
    command = command_of(message)
    if command is not None and command != "resolve":
        return  # other commands work here as in any group (/stats, /help)
    thread = message.message_thread_id if message.is_topic_message else None
    sender = message.from_user
    note = None
    try:
        if command == "resolve":
            operator = sender.first_name if sender is not None else texts.AN_OPERATOR
            note = texts.RESOLVE_WHERE if thread is None else await desk.resolve(thread, operator)
        elif thread is not None and sender is not None and not sender.is_bot:
            note = await desk.to_customer(thread, message.message_id)
    except MemoryUnavailable:
        note = texts.MEMORY_DOWN
    if note:
        await replying.say(update, context, note)
    raise ApplicationHandlerStop
