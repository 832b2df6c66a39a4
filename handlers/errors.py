"""The one error handler: log for the operator, a short sorry for the user, no traceback."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot import metrics, texts
from handlers.context import Context

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its traceback; tell the user briefly when there is one to tell."""
    log.error("update failed: %s", type(context.error).__name__, exc_info=context.error)
    metrics.error(context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user, services = update.effective_user, context.bot_data.services
    language = texts.ENGLISH
    if user is not None and services is not None:
        language = (await services.languages.of(user.id, user.language_code)).ui
    try:
        await context.bot.send_message(
            update.effective_chat.id, texts.localize(language, texts.INTERNAL_ERROR)
        )
    except TelegramError as exc:
        log.info("could not tell the user about the failure: %s", exc)
