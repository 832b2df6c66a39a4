"""The one way a handler gets an answer written: build the request, stream the reply."""

from __future__ import annotations

import logging

from telegram import Update

from bot.engine import Incoming
from bot.errors import ChatUnavailable
from bot.render import Chunk
from handlers.context import Context, where

log = logging.getLogger(__name__)


async def answer(update: Update, context: Context, question: str) -> None:
    """Answer `question` in the conversation the update belongs to."""
    here = where(update)
    services = context.services
    lines = 0
    if not here.private:
        policy = await services.groups.policy(here.key.chat_id)
        lines = services.groups.context_messages if policy.shared_context else 0
    incoming = Incoming(here.key, question, here.user_name, group_lines=lines, title=here.title)
    await services.engine.answer(incoming, services.reply_stream(here.target))
    if not here.private:
        await services.groups.observe(
            here.key.chat_id, here.key.thread_id, here.user_name, question
        )


async def retry(update: Update, context: Context) -> None:
    here = where(update)
    services = context.services
    incoming = Incoming(here.key, "", here.user_name, title=here.title)
    await services.engine.retry(incoming, services.reply_stream(here.target))


async def say(update: Update, context: Context, text: str) -> None:
    """A short plain reply from the bot itself (not the model), paced like every send."""
    try:
        await context.services.outbox.send(where(update).target, Chunk(text, ()))
    except ChatUnavailable as exc:
        log.info("notice not delivered: %s", exc)
