"""/language: which language the bot speaks with the user (bot/languages.py)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update, User

from bot import texts
from bot.errors import MemoryUnavailable
from handlers import replying
from handlers.context import Context, where

BUTTON = "lang:"
PER_ROW = 2
# The languages by their own names too: "/language español".
_BY_NAME = {name.lower(): code for code, name in texts.LANGUAGES.items()}


def _buttons() -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(name, callback_data=f"{BUTTON}{code}")
        for code, name in texts.LANGUAGES.items()
    ]
    return InlineKeyboardMarkup([buttons[i : i + PER_ROW] for i in range(0, len(buttons), PER_ROW)])


async def choose(update: Update, context: Context) -> None:
    """/language: the language in use and buttons to change it; /language <code> (or auto)
    changes it at once."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    parts = (message.text or "").split(maxsplit=1)
    wanted = parts[1].strip().lower() if len(parts) > 1 else ""
    if not wanted:
        current = await replying.language(update, context)
        listing = texts.language_choices(current.ui, current.chosen)
        await message.reply_text(texts.localize(current.ui, listing), reply_markup=_buttons())
        return
    if wanted == texts.AUTO:
        await replying.say(update, context, await _apply(context, user, None))
        return
    code = texts.supported(wanted) or _BY_NAME.get(wanted)
    if code is None:
        await replying.say(update, context, texts.language_unknown(parts[1].strip()))
        return
    await replying.say(update, context, await _apply(context, user, code))


async def button(update: Update, context: Context) -> None:
    """A language button under /language's message: the presser's language changes."""
    query = update.callback_query
    if query is None:
        return
    code = texts.supported((query.data or "").removeprefix(BUTTON))
    if code is None:
        await query.answer()
        return
    notice = await _apply(context, query.from_user, code)
    if query.message is not None and where(update).private:
        await query.answer()
        await query.edit_message_text(notice)
    else:
        # In a group the list stays for the others: the presser gets a toast.
        await query.answer(notice)


async def _apply(context: Context, user: User, code: str | None) -> str:
    """Keep the user's choice (None: Telegram's language again); what to tell them, in the
    language they now have."""
    languages = context.services.languages
    try:
        await languages.choose(user.id, code)
    except MemoryUnavailable:
        current = await languages.of(user.id, user.language_code)
        return texts.localize(current.ui, texts.LANGUAGE_NOT_SAVED)
    current = await languages.of(user.id, user.language_code)
    notice = texts.language_set(current.ui) if code else texts.language_auto(current.ui)
    return texts.localize(current.ui, notice)
