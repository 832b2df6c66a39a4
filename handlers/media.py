"""Photos, voice and audio, documents, and texts that reply to one of them.

In a private chat every such message is read. In a group one is read when its caption addresses
the bot, or when a message replying to it does (handlers/addressing.py); otherwise it is a group
message like any other (kept for shared context where that is on).
"""

from __future__ import annotations

import contextlib
import logging

from telegram import Message, Update
from telegram.ext import filters

from bot import texts
from bot.errors import ChatUnavailable, InputRejected, MemoryUnavailable
from bot.media import Media, is_audio, is_image
from bot.render import Chunk, Entity, utf16_len
from handlers import messages, replying
from handlers.addressing import question_for_bot
from handlers.context import Context, where

log = logging.getLogger(__name__)

PHOTO, PICTURE, VOICE, DOCUMENT = "photo", "picture", "voice message", "document"


def kind_of(message: Message) -> str | None:
    """What the bot reads in this message: PHOTO, PICTURE (an image file), VOICE (voice or
    audio), DOCUMENT; None when it has none of these."""
    if message.photo:
        return PHOTO
    if message.voice is not None or message.audio is not None:
        return VOICE
    document = message.document
    if document is None or message.animation is not None:
        return None
    if is_image(document):
        return PICTURE
    return VOICE if is_audio(document) else DOCUMENT


class _RepliesToMedia(filters.MessageFilter):
    """A message replying to a photo, a voice message, an audio file or a document."""

    def filter(self, message: Message) -> bool:
        reply = message.reply_to_message
        return reply is not None and kind_of(reply) is not None


REPLIES_TO_MEDIA = _RepliesToMedia(name="REPLIES_TO_MEDIA")
READABLE = (
    filters.PHOTO | filters.VOICE | filters.AUDIO | (filters.Document.ALL & ~filters.ANIMATION)
)


async def private_media(update: Update, context: Context) -> None:
    """A photo, voice message, audio file or document in a private chat: read it, answer."""
    message = update.effective_message
    if message is not None:
        await _read(update, context, message, message.caption or "")


async def group_media(update: Update, context: Context) -> None:
    """A photo, voice, audio or document in a group: read when its caption addresses the bot."""
    message = update.effective_message
    if message is None or message.from_user is None or message.is_automatic_forward:
        return
    question = await _question(context, message)
    if question is None:
        await messages.group_message(update, context)
        return
    await _read(update, context, message, question)


async def reply_to_media(update: Update, context: Context) -> None:
    """A text replying to a photo, voice or document: read that (in a group, when addressed).

    When this deployment cannot read that kind (no vision model, no speech endpoint), the text
    is answered as any text is.
    """
    message = update.effective_message
    if message is None or message.reply_to_message is None or message.text is None:
        return
    source, private = message.reply_to_message, where(update).private
    if not _can_read(context.services.media, kind_of(source)):
        await (messages.private_text if private else messages.group_message)(update, context)
        return
    question: str | None = message.text
    if not private:
        if message.from_user is None or message.is_automatic_forward:
            return
        question = await _question(context, message)
    if question is None:
        await messages.group_message(update, context)
        return
    await _read(update, context, source, question, asker=message)


def _can_read(media: Media | None, kind: str | None) -> bool:
    if media is None or kind is None:
        return False
    if kind in (PHOTO, PICTURE):
        return media.reads_images
    return media.hears_voice if kind == VOICE else True


async def _question(context: Context, message: Message) -> str | None:
    me = context.bot.bot
    policy = await context.services.groups.policy(message.chat.id)
    return question_for_bot(
        message, username=me.username or "", bot_id=me.id, triggers=policy.triggers
    )


async def _read(
    update: Update,
    context: Context,
    source: Message,
    question: str,
    asker: Message | None = None,
) -> None:
    """Read what `source` carries, then answer `question` about it (admitted first: nothing is
    downloaded or transcribed for someone the bot would not answer)."""
    services, media, kind = context.services, context.services.media, kind_of(source)
    if media is None or kind is None:
        return
    key = where(update).key
    refused = await services.engine.admit(key)
    if refused is not None:
        await replying.say(update, context, refused)
        return
    label = _label(kind, source, asker or source)
    # The conversation is held from here on, so a message sent after this one (a question
    # typed while a document downloads) is answered after it.
    async with services.engine.ordered(key):
        try:
            if kind == DOCUMENT:
                await _document(update, context, media, source, label=label, question=question)
                return
            text, images = await _prepared(update, context, media, source, kind)
        except InputRejected as exc:
            await replying.say(update, context, exc.user_message)
            return
        text = f"{label} {text}\n{question}" if kind == VOICE else f"{label} {question}"
        await replying.answer(update, context, text.strip(), images=images, admitted=True)


async def _prepared(
    update: Update, context: Context, media: Media, source: Message, kind: str
) -> tuple[str, tuple[str, ...]]:
    """The transcript of a recording, or the data URL of a picture."""
    if kind == PHOTO:
        return "", (await media.picture(source.photo),)
    if kind == PICTURE and source.document is not None:
        return "", (await media.image_file(source.document),)
    recording = source.voice or source.audio or source.document
    if recording is None:
        raise InputRejected(texts.DOWNLOAD_FAILED)
    with contextlib.suppress(ChatUnavailable):
        await context.services.outbox.typing(where(update).target)
    transcript = await media.transcript(recording)
    await _quote(update, context, texts.transcript(transcript))
    return transcript, ()


async def _document(
    update: Update, context: Context, media: Media, source: Message, *, label: str, question: str
) -> None:
    """Keep the document with the conversation; answer the question about it, if there is one."""
    if source.document is None:
        return
    engine = context.services.engine
    read = await media.document(source.document, engine.document_chars())
    try:
        await engine.share_document(where(update).key, read.document)
    except MemoryUnavailable:
        await replying.say(update, context, texts.DOCUMENT_NOT_KEPT)
        return
    name, chars = read.document.name, len(read.document.text)
    if not question.strip():
        await replying.say(update, context, texts.document_read(name, chars, read.kept))
        return
    if read.kept is not None:
        await replying.say(update, context, texts.document_cut(name, read.kept))
    await replying.answer(update, context, f"{label} {question}", admitted=True)


def _label(kind: str, source: Message, asker: Message) -> str:
    """How the message reads in the conversation: "[photo]", "[document: a.pdf]", and whose it
    was when someone else's ("[voice message from Bob]")."""
    author, who = source.from_user, asker.from_user
    owner = ""
    if author is not None and who is not None and author.id != who.id:
        owner = f" from {author.first_name}"
    if kind == DOCUMENT and source.document is not None:
        return f"[document{owner}: {source.document.file_name or 'untitled'}]"
    return f"[{kind}{owner}]"


async def _quote(update: Update, context: Context, text: str) -> None:
    """Show `text` as a quote (the transcript of a voice message)."""
    chunk = Chunk(text, (Entity("blockquote", 0, utf16_len(text)),))
    try:
        await context.services.outbox.send(where(update).target, chunk)
    except ChatUnavailable as exc:
        log.info("transcript not delivered: %s", exc)
