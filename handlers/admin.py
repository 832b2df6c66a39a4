"""/settings: group admins switch shared context and trigger words for their group."""

from __future__ import annotations

from telegram import ChatMember, Update

from bot import texts
from bot.errors import MemoryUnavailable
from bot.groups import GroupPolicy
from bot.settings import split_words
from handlers import replying
from handlers.context import Context, where

ADMIN_STATUSES = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def is_admin(update: Update, context: Context) -> bool:
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or chat is None or user is None:
        return False
    if message.sender_chat is not None and message.sender_chat.id == chat.id:
        return True  # an anonymous admin, posting as the group itself
    member = await context.bot.get_chat_member(chat.id, user.id)
    return member.status in ADMIN_STATUSES


def _describe(policy: GroupPolicy) -> str:
    return texts.group_settings(policy.shared_context, ", ".join(policy.triggers))


async def settings(update: Update, context: Context) -> None:
    """Show or change this group's settings (admins only)."""
    here = where(update)
    if here.private:
        await replying.say(update, context, texts.SETTINGS_IN_GROUPS)
        return
    if not await is_admin(update, context):
        await replying.say(update, context, texts.SETTINGS_ADMINS_ONLY)
        return
    message = update.effective_message
    words = (message.text or "").split(maxsplit=2) if message is not None else []
    groups = context.services.groups
    chat_id = here.key.chat_id
    try:
        if len(words) >= 3 and words[1].lower() == "context" and words[2] in ("on", "off"):
            policy = await groups.update(chat_id, shared=words[2] == "on")
        elif len(words) >= 3 and words[1].lower() == "triggers":
            value = "" if words[2].strip().lower() == "off" else words[2]
            policy = await groups.update(chat_id, triggers=split_words(value))
        else:
            policy = await groups.policy(chat_id)
    except MemoryUnavailable:
        await replying.say(update, context, texts.MEMORY_DOWN)
        return
    await replying.say(update, context, _describe(policy))
