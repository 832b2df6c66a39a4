"""The one way a handler gets an answer written: build the request, stream the reply."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace

from telegram import Update

from bot import texts
from bot.engine import Incoming, Report
from bot.errors import ChatUnavailable
from bot.handoff import Customer
from bot.languages import Language
from bot.render import Chunk
from handlers.context import Context, Where, where

log = logging.getLogger(__name__)


async def answer(
    update: Update,
    context: Context,
    question: str,
    *,
    images: tuple[str, ...] = (),
    admitted: bool = False,
) -> None:
    """Answer `question` in the conversation the update belongs to (`images`, data URLs, go to
    the vision model with it; `admitted`: the gate was already asked, see Engine.admit)."""
    here = where(update)
    services = context.services
    lang = language_for_answer(update, context)
    lines = 0
    if not here.private:
        policy = await services.groups.policy(here.key.chat_id)
        lines = services.groups.context_messages if policy.shared_context else 0
    incoming = Incoming(
        here.key,
        question,
        here.user_name,
        group_lines=lines,
        title=here.title,
        images=images,
        admitted=admitted,
        language=lang.spoken,
    )
    await _reply(update, context, here, incoming, lang.ui)
    if not here.private:
        await services.groups.observe(
            here.key.chat_id, here.key.thread_id, here.user_name, question
        )


async def retry(update: Update, context: Context) -> None:
    here = where(update)
    lang = language_for_answer(update, context)
    incoming = Incoming(here.key, "", here.user_name, title=here.title, language=lang.spoken)
    await _reply(update, context, here, incoming, lang.ui, retry=True)


async def _reply(
    update: Update,
    context: Context,
    here: Where,
    incoming: Incoming,
    ui: str,
    *,
    retry: bool = False,
) -> None:
    """Stream the engine's answer; then count it, keep it for 👍/👎 when it has the buttons,
    and hand the user over to a person when the model asked for that."""
    services = context.services
    customer = services.customer
    report = Report()
    buttons = customer.feedback.rating(here.key.user_id)
    stream = services.reply_stream(here.target, report, buttons, language=ui)
    run = services.engine.retry if retry else services.engine.answer
    await run(replace(incoming, report=report), stream)
    user = update.effective_user
    if user is not None:
        services.languages.learned(user.id, report.language, user.language_code)
    rated = buttons.tag if buttons is not None and stream.rated else None
    await customer.feedback.after(here.key, report, rated)
    user = update.effective_user
    if report.handoff and customer.desk is not None and here.private and user is not None:
        opened = await customer.desk.open(
            Customer.of(user), question=report.question, by_model=True
        )
        await say(update, context, opened)


async def say(update: Update, context: Context, text: str) -> None:
    """A short plain reply from the bot itself (not the model), paced like every send, in the
    user's language."""
    text = texts.localize((await language(update, context)).ui, text)
    try:
        await context.services.outbox.send(where(update).target, Chunk(text, ()))
    except ChatUnavailable as exc:
        log.info("notice not delivered: %s", exc)


async def language(update: Update, context: Context) -> Language:
    """The language of the user an update comes from (bot/languages.py)."""
    languages = context.services.languages
    user = update.effective_user
    if user is None:
        return Language(languages.default)
    return await languages.of(user.id, user.language_code)


def language_for_answer(update: Update, context: Context) -> Language:
    """The language to start an answer in, without a Redis read: the answer's memory read
    brings the /language choice along and the engine switches to it (Engine.use_language)."""
    languages = context.services.languages
    user = update.effective_user
    if user is None:
        return Language(languages.default)
    return languages.peek(user.id, user.language_code)


def translator(language: str) -> Callable[[str], str]:
    """`localize` in `language`, for handlers that send several of the bot's messages."""
    return functools.partial(texts.localize, language)
