"""Message handlers: text goes to the engine; anything else gets a short explanation."""

from __future__ import annotations

from telegram import Update

from bot import texts
from handlers import replying
from handlers.addressing import question_for_bot, with_quote
from handlers.context import Context, where


async def private_text(update: Update, context: Context) -> None:
    """Answer a text message in a private chat, streamed."""
    message = update.effective_message
    if message is not None and message.text is not None:
        await replying.answer(update, context, message.text)


async def group_message(update: Update, context: Context) -> None:
    """Answer when addressed; otherwise just keep the message for shared context (if on)."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    here = where(update)
    groups = context.services.groups
    me = context.bot.bot
    policy = await groups.policy(here.key.chat_id)
    question = question_for_bot(
        message, username=me.username or "", bot_id=me.id, triggers=policy.triggers
    )
    if question is None:
        text = message.text or message.caption or ""
        await groups.observe(here.key.chat_id, here.key.thread_id, here.user_name, text)
        return
    if not question:
        await replying.say(update, texts.ADDRESS_ME)
        return
    await replying.answer(update, context, with_quote(message, question, bot_id=me.id))


async def unsupported(update: Update, context: Context) -> None:
    """Say what the bot can read when it gets something else (sticker, photo, voice...)."""
    await replying.say(update, texts.UNSUPPORTED)


async def unknown_command(update: Update, context: Context) -> None:
    """Point to /help for commands the bot does not have."""
    await replying.say(update, texts.UNKNOWN_COMMAND)
