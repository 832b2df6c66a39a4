"""Message handlers: text goes to the engine; anything else gets a short explanation."""

from __future__ import annotations

import logging

from telegram import Update

from bot import texts
from bot.errors import MemoryUnavailable
from handlers import replying
from handlers.addressing import question_for_bot, with_quote
from handlers.context import Context, where

log = logging.getLogger(__name__)


async def private_text(update: Update, context: Context) -> None:
    """Answer a text message in a private chat, streamed."""
    message = update.effective_message
    if message is not None and message.text is not None:
        await replying.answer(update, context, message.text)


async def group_message(update: Update, context: Context) -> None:
    """Answer when addressed; otherwise just keep the message for shared context (if on)."""
    message = update.effective_message
    # Channel posts copied into their discussion group are not people talking to the bot.
    if message is None or message.from_user is None or message.is_automatic_forward:
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
        await replying.say(update, context, texts.ADDRESS_ME)
        return
    await replying.answer(update, context, with_quote(message, question, bot_id=me.id))


async def unsupported(update: Update, context: Context) -> None:
    """Say what this deployment reads when it gets something else (sticker, GIF, poll...)."""
    media = context.services.media
    images = media is not None and media.reads_images
    voice = media is not None and media.hears_voice
    await replying.say(update, context, texts.unsupported(images=images, voice=voice))


async def unknown_command(update: Update, context: Context) -> None:
    """Point to /help for commands the bot does not have."""
    await replying.say(update, context, texts.UNKNOWN_COMMAND)


async def migrated(update: Update, context: Context) -> None:
    """A group became a supergroup: memory follows the new chat id."""
    message = update.effective_message
    if message is not None and message.migrate_to_chat_id is not None:
        try:
            await context.services.groups.migrated(message.chat.id, message.migrate_to_chat_id)
        except MemoryUnavailable:
            log.warning("group migration not applied: memory unavailable")


async def stale_button(update: Update, context: Context) -> None:
    """Any button press no handler claims: an old or forged button. Stop the spinner politely."""
    if update.callback_query is not None:
        language = (await replying.language(update, context)).ui
        await update.callback_query.answer(texts.localize(language, texts.STALE_BUTTON))
