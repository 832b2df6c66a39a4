"""Human handoff: a customer talks to people in the operators' forum (SUPPORT_CHAT_ID).

A handoff opens when the customer sends /human, or when the model ends an answer with the handoff
marker (bot.persona). The customer gets a forum topic of their own in the support chat (created
once, reused by later handoffs while it exists) where the bot posts who they are, the summary and
the recent transcript of their conversation with the assistant. From then on their private
messages are copied into the topic (copyMessage: text, photos, documents, voice alike), and every
message operators write in the topic is copied back to them; the model is not asked. An
operator's /resolve in the topic, or HANDOFF_IDLE_HOURS without a message either way, ends the
handoff and the customer is told the assistant is back.

State lives in Redis (bot.memory, "customer service"), so a restart or another replica carries
on: the customer's handoff (`{u<id>}:handoff`) and, on the support side (`{support}`), which
topic belongs to which customer and when each open handoff last saw a message (for the idle
timeout, swept by every replica; ending one is atomic, so the customer is told once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from telegram import Bot, User
from telegram.error import TelegramError

from bot import texts
from bot.conversation import Turn
from bot.errors import ChatUnavailable, MemoryUnavailable
from bot.feedback import day_of
from bot.languages import Languages
from bot.memory import ConversationKey, HandoffState, Memory
from bot.outbox import Outbox, Target
from bot.render import Chunk, split_plain

log = logging.getLogger(__name__)

TRANSCRIPT_TURNS = 10
MAX_QUOTE_CHARS = 1000
TOPIC_NAME_CHARS = 128


@dataclass(frozen=True, slots=True)
class Customer:
    """Who is handed over, as the operators see them."""

    user_id: int
    first_name: str
    last_name: str = ""
    username: str = ""
    language: str = ""

    @classmethod
    def of(cls, user: User) -> Customer:
        return cls(
            user.id,
            user.first_name,
            user.last_name or "",
            user.username or "",
            user.language_code or "",
        )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or str(self.user_id)

    def describe(self) -> str:
        handle = f" (@{self.username})" if self.username else ""
        language = f", language {self.language}" if self.language else ""
        return f"{self.name}{handle}, user id {self.user_id}{language}"

    def topic_name(self) -> str:
        return f"{self.name} · {self.user_id}"[:TOPIC_NAME_CHARS]


@dataclass(frozen=True, slots=True)
class DeskConfig:
    chat_id: int
    # A handoff with no message either way for this long ends by itself; 0: only /resolve.
    idle_s: float
    # How long Redis keeps a handoff without activity (beyond the idle timeout, for the sweep).
    ttl_s: int


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_QUOTE_CHARS else text[:MAX_QUOTE_CHARS] + "…"


def intro(
    customer: Customer,
    bot_name: str,
    summary: str,
    turns: Sequence[Turn],
    *,
    question: str,
    by_model: bool,
    now: float,
) -> str:
    """What the operators read first in the customer's topic: who, why, and what was said."""
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    why = (
        f"🤖 {bot_name} handed {customer.describe()} over to you."
        if by_model
        else f"🙋 {customer.describe()} asked for a person."
    )
    lines = [why, when]
    if question:
        lines += ["", f"Last question: {_clip(question)}"]
    if summary:
        lines += ["", "Summary of the earlier conversation:", summary.strip()]
    if turns:
        lines += ["", f"Recent conversation (last {len(turns)} exchanges):"]
        for turn in turns:
            lines += [
                f"{customer.first_name}: {_clip(turn.user)}",
                f"{bot_name}: {_clip(turn.assistant)}",
            ]
    else:
        lines += ["", "No earlier conversation with the assistant."]
    lines += ["", texts.topic_help(customer.first_name)]
    return "\n".join(lines)


class Desk:
    """The support side of handoffs: topics, relaying both ways, resolving, the idle sweep."""

    def __init__(
        self,
        bot: Bot,
        outbox: Outbox,
        memory: Memory,
        config: DeskConfig,
        bot_name: str,
        *,
        languages: Languages | None = None,
    ) -> None:
        self._bot = bot
        # The customers' languages, for the notices they get when a handoff ends.
        self._languages = languages
        self._outbox = outbox
        self._memory = memory
        self._config = config
        self._bot_name = bot_name
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def chat_id(self) -> int:
        return self._config.chat_id

    async def start(self) -> None:
        if self._config.idle_s > 0:
            self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ the customer's side

    async def current(self, user_id: int) -> HandoffState | None:
        """The customer's handoff in progress, if any (one idle too long ends here)."""
        state = await self._memory.handoff(user_id)
        if state is not None and self._idle(state, time.time()):
            await self._expire(user_id)
            return None
        return state

    async def open(self, customer: Customer, *, question: str = "", by_model: bool = False) -> str:
        """Hand the customer over to the operators; returns what to tell the customer."""
        now, ttl = time.time(), self._config.ttl_s
        try:
            if not await self._memory.claim_handoff(customer.user_id, customer.name, now, ttl):
                return texts.HANDOFF_ALREADY
        except MemoryUnavailable:
            return texts.HANDOFF_FAILED
        try:
            thread = await self._post_intro(customer, question, by_model=by_model, now=now)
            await self._memory.start_handoff(customer.user_id, thread, now, ttl)
        except (ChatUnavailable, TelegramError, MemoryUnavailable) as exc:
            log.warning(
                "handoff of user %s failed: %s (the bot must be an admin of SUPPORT_CHAT_ID "
                "%s, a supergroup with topics, allowed to manage topics)",
                customer.user_id,
                exc,
                self.chat_id,
            )
            with contextlib.suppress(MemoryUnavailable):
                await self._memory.end_handoff(customer.user_id)
            return texts.HANDOFF_FAILED
        log.info("handoff opened for user %s in topic %s", customer.user_id, thread)
        with contextlib.suppress(MemoryUnavailable):
            await self._memory.add_stats(day_of(now), {"handoffs": 1})
        return texts.HANDOFF_OPENED

    async def to_operators(self, state: HandoffState, message_id: int) -> bool:
        """Copy a customer's message into their topic; False when that failed. A topic the
        operators deleted ends the handoff (the customer is told the assistant is back)."""
        if not state.thread_id:
            return False
        try:
            await self._outbox.copy(self._topic(state.thread_id), state.user_id, message_id)
        except ChatUnavailable as exc:
            log.warning("message of user %s not relayed to the operators: %s", state.user_id, exc)
            if "thread" not in str(exc).lower():
                return False
            await self._end(state.user_id, texts.BACK_RESOLVED)
            return True
        await self._touch(state.user_id)
        return True

    # ------------------------------------------------------------------ the operators' side

    async def to_customer(self, thread_id: int, message_id: int) -> str | None:
        """Copy an operator's message in a topic to its customer; a note for the topic when
        it was not delivered (None when it was, or when the topic is no customer's)."""
        user_id = await self._memory.topic_user(thread_id)
        if user_id is None:
            return None
        state = await self._memory.handoff(user_id)
        if state is None or state.thread_id != thread_id:
            return texts.NOT_DELIVERED_RESOLVED
        try:
            await self._outbox.copy(Target(user_id), self.chat_id, message_id)
        except ChatUnavailable as exc:
            return texts.not_delivered(state.name, str(exc))
        await self._touch(user_id)
        return None

    async def resolve(self, thread_id: int, operator: str) -> str:
        """/resolve in a topic: the customer is back with the assistant. The note for the topic."""
        user_id = await self._memory.topic_user(thread_id)
        if user_id is None:
            return texts.RESOLVE_WHERE
        state = await self._end(user_id, texts.BACK_RESOLVED)
        if state is None:
            return texts.NOTHING_TO_RESOLVE
        log.info("handoff of user %s resolved", user_id)
        return texts.resolved(operator, state.name)

    # ------------------------------------------------------------------ internals

    def _topic(self, thread_id: int) -> Target:
        return Target(self.chat_id, thread_id, private=False)

    def _idle(self, state: HandoffState, now: float) -> bool:
        return self._config.idle_s > 0 and now - state.last > self._config.idle_s

    async def _touch(self, user_id: int) -> None:
        with contextlib.suppress(MemoryUnavailable):
            await self._memory.touch_handoff(user_id, time.time(), self._config.ttl_s)

    async def _post_intro(
        self, customer: Customer, question: str, *, by_model: bool, now: float
    ) -> int:
        """Post the introduction in the customer's topic (created if need be); its thread id."""
        key = ConversationKey(customer.user_id, customer.user_id)
        try:
            loaded = await self._memory.load(key, facts=False)
            summary, turns = loaded.summary, loaded.history[-TRANSCRIPT_TURNS:]
        except MemoryUnavailable:
            summary, turns = "", []
        text = intro(
            customer, self._bot_name, summary, turns, question=question, by_model=by_model, now=now
        )
        chunks = split_plain(text)
        thread = await self._memory.user_topic(customer.user_id)
        if thread is not None:
            try:
                await self._post(thread, chunks)
                return thread
            except ChatUnavailable as exc:
                if "thread" not in str(exc).lower():
                    raise
                log.info("the topic of user %s is gone: opening a new one", customer.user_id)
        topic = await self._bot.create_forum_topic(self.chat_id, customer.topic_name())
        thread = topic.message_thread_id
        await self._memory.link_topic(thread, customer.user_id)
        await self._post(thread, chunks)
        return thread

    async def _post(self, thread_id: int, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            await self._outbox.send(self._topic(thread_id), chunk)

    async def _say(self, target: Target, text: str) -> None:
        try:
            await self._outbox.send(target, Chunk(text, ()))
        except ChatUnavailable as exc:
            log.info("handoff notice not delivered: %s", exc)

    async def _end(self, user_id: int, message: str) -> HandoffState | None:
        """End the handoff (once, however many replicas try) and tell the customer."""
        state = await self._memory.end_handoff(user_id)
        if state is not None:
            if self._languages is not None:
                message = texts.localize(await self._languages.ui(user_id), message)
            await self._say(Target(user_id), message)
        return state

    async def _expire(self, user_id: int) -> None:
        state = await self._end(user_id, texts.BACK_IDLE)
        if state is not None and state.thread_id:
            log.info("handoff of user %s ended after %.0fs idle", user_id, self._config.idle_s)
            note = texts.handed_back_idle(state.name, self._config.idle_s / 3600)
            await self._say(self._topic(state.thread_id), note)

    async def _sweep(self) -> None:
        interval = min(60.0, max(0.5, self._config.idle_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                idle = await self._memory.idle_handoffs(time.time() - self._config.idle_s)
                for user_id in idle:
                    await self._expire(user_id)
            except MemoryUnavailable:
                continue
