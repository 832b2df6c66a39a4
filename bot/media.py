"""Photos, voice and documents: from Telegram's files to what the engine takes (a picture's data
URL, a transcript, a document's text).

Sizes are checked before anything is downloaded (Telegram lets a bot download 20 MB at most),
only the one photo size needed is fetched, and the CPU-bound work (Pillow, pypdf) runs in a
worker thread. Every refusal is an InputRejected carrying the reply to give.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from telegram import Audio, Bot, Document, PhotoSize, Voice
from telegram.error import BadRequest, TelegramError

from bot import texts
from bot.conversation import SharedDocument
from bot.errors import InputRejected, LLMError
from bot.images import UnreadableImage, choose_size, prepare
from bot.llm import Transcriber
from bot.settings import TELEGRAM_DOWNLOAD_LIMIT
from bot.textfiles import UnreadableDocument, kind_of, read_text

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0


class _Downloadable(Protocol):
    @property
    def file_id(self) -> str: ...

    @property
    def file_size(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class MediaConfig:
    reads_images: bool
    image_max_side: int
    max_document_bytes: int


@dataclass(frozen=True, slots=True)
class ReadDocument:
    document: SharedDocument
    # How much was kept when the text had to be cut ("the first 7 of 300 pages"), else None.
    kept: str | None


def is_image(document: Document) -> bool:
    return (document.mime_type or "").startswith("image/")


def is_audio(document: Document) -> bool:
    return (document.mime_type or "").startswith("audio/")


class Media:
    def __init__(self, bot: Bot, config: MediaConfig, transcriber: Transcriber | None) -> None:
        self._bot = bot
        self._config = config
        self._transcriber = transcriber

    @property
    def reads_images(self) -> bool:
        return self._config.reads_images

    @property
    def hears_voice(self) -> bool:
        return self._transcriber is not None

    async def picture(self, sizes: Sequence[PhotoSize]) -> str:
        """The photo as a data URL for the vision model, from the largest size that fits."""
        self._need_images()
        max_side = self._config.image_max_side
        chosen = sizes[choose_size([(s.width, s.height) for s in sizes], max_side)]
        return await self._prepared(await self._download(chosen, "photo"))

    async def image_file(self, document: Document) -> str:
        """A picture sent as a file, as a data URL for the vision model."""
        self._need_images()
        return await self._prepared(await self._download(document, "picture"))

    async def transcript(self, audio: Voice | Audio | Document) -> str:
        """What is said in a voice message or audio file."""
        if self._transcriber is None:
            raise InputRejected(texts.NO_VOICE)
        data = await self._download(audio, "recording")
        name = getattr(audio, "file_name", None) or "voice.ogg"
        try:
            text = await self._transcriber.transcribe(
                bytes(data), name, audio.mime_type or "audio/ogg"
            )
        except LLMError as exc:
            log.warning("transcription failed: %s: %s", type(exc).__name__, exc)
            raise InputRejected(texts.TRANSCRIPTION_FAILED) from exc
        if not text:
            raise InputRejected(texts.NOTHING_HEARD)
        return text

    async def document(self, document: Document, max_chars: int) -> ReadDocument:
        """The text of a PDF, text, Markdown, CSV or JSON file, at most `max_chars` of it."""
        name = document.file_name or texts.YOUR_DOCUMENT
        kind = kind_of(document.file_name, document.mime_type)
        if kind is None:
            raise InputRejected(texts.document_unsupported(document.file_name or ""))
        data = await self._download(document, "document", self._config.max_document_bytes)
        try:
            read = await asyncio.to_thread(read_text, bytes(data), kind, max_chars)
        except UnreadableDocument as exc:
            raise InputRejected(texts.document_unreadable(name, exc.args[0])) from exc
        shared = SharedDocument(name, read.text, read.kept is not None, time.time())
        return ReadDocument(shared, read.kept)

    def _need_images(self) -> None:
        if not self._config.reads_images:
            raise InputRejected(texts.NO_IMAGES)

    async def _prepared(self, data: bytearray) -> str:
        try:
            prepared = await asyncio.to_thread(prepare, bytes(data), self._config.image_max_side)
        except UnreadableImage as exc:
            log.info("unreadable picture: %s", exc)
            raise InputRejected(texts.IMAGE_UNREADABLE) from exc
        return prepared.data_url

    async def _download(
        self, file: _Downloadable, what: str, limit: int = TELEGRAM_DOWNLOAD_LIMIT
    ) -> bytearray:
        """The file's bytes; refused up front when Telegram says it is larger than `limit`."""
        limit = min(limit, TELEGRAM_DOWNLOAD_LIMIT)
        if file.file_size is not None and file.file_size > limit:
            raise InputRejected(texts.too_big(what, file.file_size, limit))
        try:
            found = await self._bot.get_file(file.file_id)
            data = await found.download_as_bytearray(read_timeout=DOWNLOAD_TIMEOUT_S)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise InputRejected(texts.too_big(what, file.file_size, limit)) from exc
            log.warning("download refused: %s", exc.message)
            raise InputRejected(texts.DOWNLOAD_FAILED) from exc
        except TelegramError as exc:
            log.warning("download failed: %s", type(exc).__name__)
            raise InputRejected(texts.DOWNLOAD_FAILED) from exc
        if len(data) > limit:
            raise InputRejected(texts.too_big(what, len(data), limit))
        return data
