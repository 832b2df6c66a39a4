"""Command handlers: each parses its update and hands over to the engine."""

from __future__ import annotations

from telegram import Update

from bot import texts
from bot.errors import MemoryUnavailable
from handlers.context import Context, conversation_of


async def start(update: Update, context: Context) -> None:
    """Greet the user and say what the bot does."""
    _, _, name = conversation_of(update)
    await _say(update, texts.greeting(name, context.services.bot_name))


async def help_(update: Update, context: Context) -> None:
    """Explain the commands."""
    await _say(update, texts.HELP)


async def new(update: Update, context: Context) -> None:
    """Forget this conversation (/new, /reset)."""
    key, _, _ = conversation_of(update)
    try:
        await context.services.engine.reset(key)
    except MemoryUnavailable:
        await _say(update, texts.MEMORY_DOWN_RESET)
        return
    await _say(update, texts.RESET_DONE)


async def retry(update: Update, context: Context) -> None:
    """Regenerate the last answer."""
    key, target, name = conversation_of(update)
    services = context.services
    await services.engine.retry(key, name, services.reply_stream(target))


async def stop(update: Update, context: Context) -> None:
    """Cancel the answer being generated; the partial answer says it was stopped."""
    key, _, _ = conversation_of(update)
    if not context.services.engine.stop(key):
        await _say(update, "Nothing is being generated right now.")


async def _say(update: Update, text: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, do_quote=False)
