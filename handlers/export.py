"""/export: everything the bot keeps about the user, as a file."""

from __future__ import annotations

import logging
import time

from telegram import Update

from bot import texts
from bot.errors import ChatUnavailable, MemoryUnavailable
from bot.export import Format, export_file
from handlers import replying
from handlers.context import Context, where

log = logging.getLogger(__name__)


async def export(update: Update, context: Context) -> None:
    """/export [json|md]: the user's facts and conversations as a JSON or Markdown file."""
    here = where(update)
    if not here.private:
        await replying.say(update, context, texts.PRIVATE_ONLY)
        return
    message = update.effective_message
    words = (message.text or "").lower().split() if message is not None else []
    fmt: Format = "md" if len(words) > 1 and words[1] in ("md", "markdown") else "json"
    services = context.services
    user_id = here.key.user_id
    try:
        facts, conversations = await services.userdata.export(user_id)
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN)
        return
    if not facts and not conversations:
        await replying.say(update, context, texts.EXPORT_NOTHING)
        return
    t = replying.translator((await replying.language(update, context)).ui)
    exported = export_file(
        fmt, user_id, facts, conversations, now=time.time(), bot_name=services.bot_name
    )
    try:
        await services.outbox.document(
            here.target, exported.name, exported.content, t(texts.EXPORT_CAPTION)
        )
    except ChatUnavailable as exc:
        log.info("export not delivered: %s", exc)
