"""Command handlers: each parses its update and hands over to the engine."""

from __future__ import annotations

from telegram import Update

from bot import texts
from bot.errors import MemoryUnavailable
from handlers import replying
from handlers.addressing import with_quote
from handlers.context import Context, where


async def start(update: Update, context: Context) -> None:
    """Greet the user and say what the bot does."""
    await replying.say(
        update, context, texts.greeting(where(update).user_name, context.services.bot_name)
    )


async def help_(update: Update, context: Context) -> None:
    """Explain the commands (in groups: how to address the bot, what privacy mode changes)."""
    if where(update).private:
        await replying.say(update, context, texts.HELP)
        return
    me = context.bot.bot
    privacy_mode = not me.can_read_all_group_messages
    await replying.say(update, context, texts.group_help(me.username or "", privacy_mode))


async def ask(update: Update, context: Context) -> None:
    """/ask <question>, in groups and private chats alike."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    parts = message.text.split(maxsplit=1)
    question = parts[1] if len(parts) > 1 else ""
    if not question.strip():
        await replying.say(update, context, texts.ADDRESS_ME)
        return
    bot_id = context.bot.bot.id
    await replying.answer(update, context, with_quote(message, question, bot_id=bot_id))


async def new(update: Update, context: Context) -> None:
    """Forget this conversation (/new, /reset); in a group, only the caller's."""
    try:
        await context.services.engine.reset(where(update).key)
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN_RESET)
        return
    await replying.say(update, context, texts.RESET_DONE)


async def retry(update: Update, context: Context) -> None:
    """Regenerate the last answer."""
    await replying.retry(update, context)


async def stop(update: Update, context: Context) -> None:
    """Cancel the answer being generated; the partial answer says it was stopped."""
    if not context.services.engine.stop(where(update).key):
        await replying.say(update, context, texts.NOTHING_TO_STOP)
