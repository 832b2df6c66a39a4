"""Inline mode: `@bot question` in any chat, answered with one result (bot/inline.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import InlineQuery, InlineQueryResult, InlineQueryResultsButton, Update
from telegram.error import TelegramError

from bot import texts
from bot.conversation import clean_input
from bot.engine import Incoming
from bot.errors import InputRejected, LLMError, LLMTimeout
from bot.inline import CACHE_TIME_S, article
from bot.memory import ConversationKey
from handlers.context import Context

log = logging.getLogger(__name__)

# Where the button shown instead of an answer leads: the private chat, with /start inline.
START_PARAMETER = "inline"


async def inline_query(update: Update, context: Context) -> None:
    """Answer an inline query with the model's answer (ignored unless INLINE_MODE is on)."""
    query, inline = update.inline_query, context.services.inline
    if query is None or inline is None:
        return
    question = clean_input(query.query)
    if not question:
        return
    user = query.from_user
    language = await context.services.languages.of(user.id, user.language_code)
    # No chat is known here: the person's own (private) scope stands for them, for the gate.
    key = ConversationKey(user.id, user.id)
    incoming = Incoming(key, question, user.first_name, language=language.spoken)
    notice = texts.INLINE_FAILED
    try:
        answer = await inline.answer(incoming)
    except InputRejected:
        answer, notice = "", texts.INLINE_REFUSED
    except LLMTimeout:
        answer, notice = "", texts.INLINE_TIMEOUT
    except LLMError as exc:
        log.warning("no inline answer: %s", type(exc).__name__)
        answer = ""
    if answer is None:
        return  # a newer query from the same person replaced this one
    if answer.strip():
        await _answer(query, [article(question, answer)], None)
    else:
        button = InlineQueryResultsButton(
            texts.localize(language.ui, notice), start_parameter=START_PARAMETER
        )
        await _answer(query, [], button)


async def _answer(
    query: InlineQuery,
    results: Sequence[InlineQueryResult],
    button: InlineQueryResultsButton | None,
) -> None:
    try:
        await query.answer(
            results,
            cache_time=CACHE_TIME_S if results else 0,
            is_personal=True,
            button=button,
        )
    except TelegramError as exc:
        # Usually "query is too old": the person typed on, or the answer came too late.
        log.info("inline answer not accepted: %s", exc)
