"""Progressive delivery of one reply: drafts in private chats, throttled edits elsewhere.

A reply grows in three phases: a typing action until the first text; previews while the model
streams (at most one request in flight, the newest text wins, the first preview goes out at once
and later ones no more often than the interval); the final rendering, delivered reliably.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field

from telegram import InlineKeyboardMarkup

from bot import texts
from bot.engine import Report
from bot.errors import ChatUnavailable
from bot.outbox import Outbox, Target
from bot.render import TELEGRAM_LIMIT, Chunk, Entity, preview, render, utf16_len

log = logging.getLogger(__name__)

TYPING_REPEAT_S = 4.5
# Typing shows only when the first text is slow to come: a fast model needs no indicator, and
# each one is a request.
TYPING_DELAY_S = 1.0
# The first preview waits this long for more text: an answer that completes meanwhile goes out
# as its final message alone, without a preview that would be replaced at once.
FIRST_PREVIEW_DELAY_S = 0.02
# After this many refusals in a row, drafts are off for the whole process (e.g. an older Bot API
# server that does not know sendMessageDraft).
DRAFT_REFUSALS_TO_DISABLE = 3


@dataclass(slots=True)
class DraftSupport:
    """Process-wide: whether drafts work with this Bot API server."""

    enabled: bool = True
    refusals: int = 0

    def refused(self) -> None:
        self.refusals += 1
        if self.refusals >= DRAFT_REFUSALS_TO_DISABLE and self.enabled:
            self.enabled = False
            log.warning("sendMessageDraft keeps being refused: streaming with edits from now on")

    def accepted(self) -> None:
        self.refusals = 0


@dataclass(frozen=True, slots=True)
class StreamConfig:
    draft_interval_s: float
    edit_interval_s: float
    group_edit_interval_s: float

    def interval(self, *, draft: bool, private: bool) -> float:
        if draft:
            return self.draft_interval_s
        return self.edit_interval_s if private else self.group_edit_interval_s


def with_note(chunks: list[Chunk], note: str) -> list[Chunk]:
    """Append an italic note (stopped, cut off) after the answer, in a new chunk if need be."""
    if not chunks:
        return [Chunk(note, (Entity("italic", 0, utf16_len(note)),))]
    last = chunks[-1]
    joined = f"{last.text}\n\n{note}"
    if utf16_len(joined) > TELEGRAM_LIMIT:
        return [*chunks, Chunk(note, (Entity("italic", 0, utf16_len(note)),))]
    italic = Entity("italic", utf16_len(last.text) + 2, utf16_len(note))
    return [*chunks[:-1], Chunk(joined, (*last.entities, italic))]


@dataclass(frozen=True, slots=True)
class Buttons:
    """Inline buttons for the last message of a model's answer; `tag` names that answer."""

    tag: str
    markup: InlineKeyboardMarkup


@dataclass(slots=True)
class ReplyStream:
    """One reply to one message. Implements the engine's Sink.

    `buttons` go under the last message of a model's answer (the engine's `report` has its
    answer by then), never under the bot's own notices; `rated` says they were delivered.
    The bot's own messages (notices, notes: bot.texts) are shown in `language`.
    """

    outbox: Outbox
    target: Target
    config: StreamConfig
    drafts: DraftSupport
    report: Report | None = None
    buttons: Buttons | None = None
    rated: bool = False
    language: str = texts.ENGLISH
    _use_draft: bool = False
    _draft_id: int = 0
    _latest: str = ""
    _shown: str = ""
    _message_ids: list[int] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _pump: asyncio.Task[None] | None = None
    _typing: asyncio.Task[None] | None = None
    _closed: bool = False
    _sending: bool = False
    _dead: BaseException | None = None

    def __post_init__(self) -> None:
        # Drafts cannot be sent on a business's behalf.
        business = self.target.business_connection_id is not None
        self._use_draft = self.target.private and self.drafts.enabled and not business
        self._draft_id = random.randint(1, 2**31 - 1)

    def use_language(self, code: str) -> None:
        self.language = code

    async def begin(self) -> None:
        self._typing = asyncio.create_task(self._keep_typing())

    def push(self, text: str) -> None:
        if self._dead is not None:
            raise ChatUnavailable("chat stopped accepting messages") from self._dead
        self._latest = text
        if self._pump is None:
            self._stop_typing()
            self._pump = asyncio.create_task(self._run_pump())
        self._wake.set()

    async def finish(self, text: str, note: str | None = None) -> None:
        await self._close()
        chunks = render(texts.localize(self.language, text))
        if note:
            chunks = with_note(chunks, texts.localize(self.language, note))
        answered = self.report is not None and bool(self.report.answer)
        markup = self.buttons.markup if self.buttons is not None and answered else None
        await self._deliver(chunks, markup)
        self.rated = markup is not None and bool(self._message_ids)

    async def fail(self, message: str) -> None:
        """Say what went wrong; whatever preview was shown is kept above the notice."""
        await self._close()
        message = texts.localize(self.language, message)
        shown = render(self._shown) if self._shown else []
        await self._deliver(with_note(shown, message) if shown else [Chunk(message, ())])

    async def _keep_typing(self) -> None:
        await asyncio.sleep(TYPING_DELAY_S)
        with contextlib.suppress(ChatUnavailable):
            while True:
                await self.outbox.typing(self.target)
                await asyncio.sleep(TYPING_REPEAT_S)

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _close(self) -> None:
        """Stop previews: a pending wait is cut short, a request in flight is let finish."""
        self._stop_typing()
        self._closed = True
        if self._pump is not None:
            if not self._sending:
                self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._dead is not None:
            raise ChatUnavailable("chat stopped accepting messages") from self._dead

    async def _run_pump(self) -> None:
        await asyncio.sleep(FIRST_PREVIEW_DELAY_S)
        last = float("-inf")
        self._wake.set()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            interval = self.config.interval(draft=self._use_draft, private=self.target.private)
            delay = last + interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            text = self._latest
            if self._closed or text == self._shown:
                continue
            last = time.monotonic()
            self._sending = True
            try:
                await self._show(text)
            except ChatUnavailable as exc:
                self._dead = exc
                return
            finally:
                self._sending = False
            self._shown = text

    async def _show(self, text: str) -> None:
        if self._use_draft:
            chunk = preview(text)
            if chunk is None:
                return
            if await self.outbox.draft(self.target, self._draft_id, chunk):
                self.drafts.accepted()
                return
            self.drafts.refused()
            self._use_draft = False
        await self._sync(render(text), final=False)

    async def _deliver(
        self, chunks: list[Chunk], markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """The final messages; `markup` goes with the last one."""
        if self._use_draft or not self._message_ids:
            for i, chunk in enumerate(chunks):
                last = markup if i == len(chunks) - 1 else None
                message_id = await self.outbox.send(self.target, chunk, reply=i == 0, markup=last)
                if message_id is not None:
                    self._message_ids.append(message_id)
            return
        await self._sync(chunks, final=True, markup=markup)

    async def _sync(
        self, chunks: list[Chunk], *, final: bool, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """Make the reply's messages show `chunks`: edit what exists, send what is new."""
        for i, chunk in enumerate(chunks):
            last = markup if i == len(chunks) - 1 else None
            if i < len(self._message_ids):
                await self.outbox.edit(
                    self.target, self._message_ids[i], chunk, final=final, markup=last
                )
                continue
            message_id = await self.outbox.send(
                self.target, chunk, reply=i == 0, final=final, markup=last
            )
            if message_id is None:
                return  # a preview with no room in the budget: the next one catches up
            self._message_ids.append(message_id)
        if final:
            for message_id in self._message_ids[len(chunks) :]:
                await self.outbox.delete(self.target, message_id)
            del self._message_ids[len(chunks) :]
