"""/remember, /memory, /forget: what the bot keeps about a user, under the user's control."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from bot import texts
from bot.errors import MemoryUnavailable
from bot.memory import Fact, StoredConversation
from handlers import replying
from handlers.context import Context, where

FORGET_ALL = "forget-all"


def _arguments(update: Update) -> str:
    message = update.effective_message
    parts = (message.text or "").split(maxsplit=1) if message is not None else []
    return parts[1].strip() if len(parts) > 1 else ""


def _describe(conversation: StoredConversation) -> texts.Text:
    place = texts.place_group(conversation.title)
    if conversation.scope == "p":
        place = texts.PLACE_PRIVATE
    elif conversation.scope.startswith("b"):
        place = texts.place_business(conversation.title)
    day = None
    if conversation.last_active is not None:
        day = datetime.fromtimestamp(conversation.last_active, UTC).strftime("%Y-%m-%d")
    return texts.stored_conversation(place, conversation.turns, day)


def memory_listing(
    facts: list[Fact], conversations: list[StoredConversation], language: str = texts.ENGLISH
) -> str:
    def t(text: str) -> str:
        return texts.localize(language, text)

    lines = [t(texts.MEMORY_HEADER)]
    lines += [f"{i}. {fact.text}" for i, fact in enumerate(facts, 1)] or [t(texts.NO_FACTS)]
    if conversations:
        lines += ["", t(texts.CONVERSATIONS_HEADER)]
        lines += [f"- {t(_describe(c))}" for c in conversations]
    lines += ["", t(texts.MEMORY_FOOTER)]
    return "\n".join(lines)


async def remember(update: Update, context: Context) -> None:
    """Store a fact the user asks the bot to remember."""
    here = where(update)
    if not here.private:
        await replying.say(update, context, texts.PRIVATE_ONLY)
        return
    fact = _arguments(update)
    if not fact:
        await replying.say(update, context, texts.REMEMBER_USAGE)
        return
    try:
        count = await context.services.userdata.remember(here.key.user_id, fact)
    except MemoryUnavailable:
        await replying.say(update, context, texts.REMEMBER_FAILED)
        return
    await replying.say(update, context, texts.remembered(fact, count))


async def memory(update: Update, context: Context) -> None:
    """List the user's facts and stored conversations."""
    here = where(update)
    if not here.private:
        await replying.say(update, context, texts.PRIVATE_ONLY)
        return
    userdata = context.services.userdata
    try:
        facts = await userdata.facts(here.key.user_id)
        conversations = await userdata.conversations(here.key.user_id)
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN)
        return
    language = (await replying.language(update, context)).ui
    await replying.say(update, context, memory_listing(facts, conversations, language))


async def forget(update: Update, context: Context) -> None:
    """/forget <n> deletes one fact; /forget all asks for confirmation first."""
    here = where(update)
    if not here.private:
        await replying.say(update, context, texts.PRIVATE_ONLY)
        return
    argument = _arguments(update).lower()
    message = update.effective_message
    if argument == "all" and message is not None:
        t = replying.translator((await replying.language(update, context)).ui)
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(t(texts.FORGET_ALL_BUTTON), callback_data=FORGET_ALL),
                    InlineKeyboardButton(t(texts.CANCEL_BUTTON), callback_data=f"{FORGET_ALL}:no"),
                ]
            ]
        )
        await message.reply_text(t(texts.FORGET_ALL_CONFIRM), reply_markup=buttons)
        return
    if not argument.isdigit():
        await replying.say(update, context, texts.FORGET_USAGE)
        return
    try:
        fact = await context.services.userdata.forget_fact(here.key.user_id, int(argument))
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN)
        return
    if fact is None:
        await replying.say(update, context, texts.no_such_fact(argument))
    else:
        await replying.say(update, context, texts.forgotten(fact.text))


async def forget_all_button(update: Update, context: Context) -> None:
    """The confirmation button of /forget all; only the user who asked can press it."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    # The buttons live in the user's private chat, whose id is the user's id.
    t = replying.translator((await replying.language(update, context)).ui)
    if query.message.chat.id != query.from_user.id:
        await query.answer(t(texts.NOT_YOURS), show_alert=True)
        return
    if query.data != FORGET_ALL:
        text = texts.FORGET_ALL_CANCELLED
    else:
        try:
            await context.services.userdata.forget_everything(query.from_user.id)
            context.services.languages.forget(query.from_user.id)
            text = texts.FORGET_ALL_DONE
        except MemoryUnavailable:
            text = texts.MEMORY_DOWN
    await query.answer()
    try:
        await query.edit_message_text(t(text))
    except TelegramError:
        await context.bot.send_message(query.from_user.id, t(text))
