"""Whether a group message is for the bot, and what it asks.

A group message is for the bot when it @mentions the bot (`mention` or `text_mention` entity, in
text or a caption), replies to one of the bot's messages, or contains one of the group's trigger
words. Mentions are taken from Telegram's entities, so "@bot" inside a code span (which Telegram
does not mark as a mention) does not address the bot. `/ask` is a command, handled elsewhere.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity

MAX_QUOTE_CHARS = 1000


def _entities(message: Message) -> dict[MessageEntity, str]:
    if message.text is not None:
        return message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    return message.parse_caption_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])


def _is_bot(entity: MessageEntity, value: str, username: str, bot_id: int) -> bool:
    if entity.type == MessageEntity.MENTION:
        return value.lower() == f"@{username.lower()}"
    return entity.user is not None and entity.user.id == bot_id


def _has_trigger(text: str, triggers: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in triggers)


def question_for_bot(
    message: Message, *, username: str, bot_id: int, triggers: tuple[str, ...]
) -> str | None:
    """The text the bot should answer, without the mention; None when not addressed."""
    original = message.text or message.caption or ""
    text, addressed = original, False
    for entity, value in _entities(message).items():
        if _is_bot(entity, value, username, bot_id):
            addressed = True
            text = text.replace(value, " ", 1)
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot_id:
        addressed = True
    if not addressed and not (triggers and _has_trigger(original, triggers)):
        return None
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def with_quote(message: Message, question: str, *, bot_id: int) -> str:
    """Put the message being replied to (someone else's) in front of the question."""
    reply = message.reply_to_message
    if reply is None or reply.from_user is None or reply.from_user.id == bot_id:
        return question
    quoted = (reply.text or reply.caption or "").strip()
    if not quoted:
        return question
    if len(quoted) > MAX_QUOTE_CHARS:
        quoted = quoted[:MAX_QUOTE_CHARS] + "…"
    return f'(Replying to {reply.from_user.first_name}, who wrote: "{quoted}")\n{question}'
