"""👍/👎 buttons under answers, and /stats for admins."""

from __future__ import annotations

from telegram import Update

from bot import texts
from bot.errors import ChatUnavailable, MemoryUnavailable
from bot.feedback import format_stats, parse_vote
from bot.render import split_plain
from handlers import replying
from handlers.context import Context, where

DEFAULT_DAYS = 7


async def vote(update: Update, context: Context) -> None:
    """A 👍 or 👎 pressed under an answer."""
    query = update.callback_query
    if query is None:
        return
    t = replying.translator((await replying.language(update, context)).ui)
    parsed = parse_vote(query.data or "")
    if parsed is None:
        await query.answer(t(texts.STALE_BUTTON))
        return
    await query.answer(t(await context.services.customer.feedback.vote(parsed, query.from_user.id)))


async def stats(update: Update, context: Context) -> None:
    """/stats [days]: answers, votes, handoffs and unanswered questions, for admins."""
    user, message = update.effective_user, update.effective_message
    feedback = context.services.customer.feedback
    if user is None or message is None or not feedback.is_admin(user.id):
        await replying.say(update, context, texts.STATS_ADMINS_ONLY)
        return
    words = (message.text or "").split()
    days = int(words[1]) if len(words) > 1 and words[1].isdigit() else DEFAULT_DAYS
    try:
        figures = await feedback.stats(days)
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN)
        return
    target = where(update).target
    try:
        for chunk in split_plain(format_stats(figures, len(figures.days))):
            await context.services.outbox.send(target, chunk)
    except ChatUnavailable:
        return
