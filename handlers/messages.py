"""Message handlers: text goes to the engine; anything else gets a short explanation."""

from __future__ import annotations

from telegram import Update

from bot import texts
from handlers.context import Context, conversation_of


async def text(update: Update, context: Context) -> None:
    """Answer a text message, streamed."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    key, target, name = conversation_of(update)
    services = context.services
    await services.engine.answer(key, message.text, name, services.reply_stream(target))


async def unsupported(update: Update, context: Context) -> None:
    """Say what the bot can read when it gets something else (sticker, photo, voice...)."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(texts.UNSUPPORTED, do_quote=False)


async def unknown_command(update: Update, context: Context) -> None:
    """Point to /help for commands the bot does not have."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(texts.UNKNOWN_COMMAND, do_quote=False)
