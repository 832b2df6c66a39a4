"""The message path: memory in, prompt packed, model streamed to a sink, turn written back.

The engine knows nothing of Telegram: a `Sink` shows the reply (a Telegram chat, a terminal).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from bot import metrics, texts
from bot.conversation import (
    IMAGE_TOKENS,
    Budget,
    Packed,
    SharedDocument,
    TokenEstimator,
    Turn,
    build_messages,
    clean_input,
    compose_system,
    document_budget,
    history_tokens,
    is_idle,
    pack_history,
    parse_remember,
    system_prompt,
)
from bot.errors import (
    ChatUnavailable,
    LLMError,
    LLMStreamCut,
    MemoryUnavailable,
    PromptTooLong,
)
from bot.gate import Gate, tokens_spent
from bot.groups import format_context
from bot.llm import Answer, LLMClient
from bot.memory import ConversationKey, Fact, Loaded, Memory
from bot.ordering import KeyedLocks
from bot.persona import split_handoff, visible
from bot.summarizer import Summarizer

log = logging.getLogger(__name__)

STOPPED_NOTE = texts.STOPPED_NOTE
LENGTH_NOTE = texts.LENGTH_NOTE
EMPTY_INPUT = texts.EMPTY_INPUT
NOTHING_TO_RETRY = texts.NOTHING_TO_RETRY
NOTHING_TO_STOP = texts.NOTHING_TO_STOP


class Sink(Protocol):
    """Where a reply is shown as it grows. The engine's own messages (notices, notes) are
    English `bot.texts` messages: the sink shows them in its reader's language."""

    async def begin(self) -> None: ...

    def push(self, text: str) -> None: ...

    async def finish(self, text: str, note: str | None = None) -> None: ...

    async def fail(self, message: str) -> None: ...

    def use_language(self, code: str) -> None:
        """The user's /language choice, read with their memory: notices from now on in it."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    persona: str
    bot_name: str
    context_tokens: int
    max_tokens: int
    idle_minutes: float
    max_input_chars: int
    facts_in_groups: bool = False


@dataclass(slots=True)
class _Generation:
    task: asyncio.Task[None] | None = None
    stopped: bool = False


@dataclass(slots=True)
class Report:
    """What became of a message, filled in by the engine for its caller (feedback, /stats,
    handoffs)."""

    question: str = ""
    # The model's answer as delivered (without the handoff marker); "" when there was none.
    answer: str = ""
    # The model asked for the user to be handed over to a person (bot.persona).
    handoff: bool = False
    # Strict knowledge-base mode found nothing: the user was told "I don't know".
    unknown: bool = False
    # The user's /language choice as memory holds it (None: none made, or memory unreadable).
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message to answer."""

    key: ConversationKey
    text: str
    user_name: str
    # How many recent group messages to show the model before the question (shared context);
    # they are not stored with the turn.
    group_lines: int = 0
    # The chat's title, kept so /memory can say which conversations are stored.
    title: str | None = None
    # Pictures (data URLs) shown to a vision model with this message only; `text` says what
    # they were ("[photo] caption") and is all that memory keeps.
    images: tuple[str, ...] = ()
    # The access lists and limits were already checked (before a download or transcription).
    admitted: bool = False
    # The user's language for the persona's {language}: their /language choice, else the code
    # Telegram gives (bot/languages.py).
    language: str = ""
    # Where the engine reports what became of the message, when the caller wants to know.
    report: Report | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class _Request:
    incoming: Incoming
    loaded: Loaded
    history: list[Turn]
    memory_ok: bool
    replace_last: bool = False
    fresh: bool = False
    # Knowledge-base excerpts for the prompt (bot.knowledge); not stored with the turn.
    knowledge: str = ""

    @property
    def key(self) -> ConversationKey:
        return self.incoming.key

    @property
    def text(self) -> str:
        return self.incoming.text


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        llm: LLMClient,
        memory: Memory,
        summarizer: Summarizer,
        gate: Gate | None = None,
        *,
        vision: LLMClient | None = None,
    ) -> None:
        self._config = config
        self._llm = llm
        # The model for messages with pictures (the main one with LLM_VISION, or VISION_MODEL).
        self._vision = vision
        self._memory = memory
        self._summarizer = summarizer
        self._gate = gate or Gate()
        self._locks = KeyedLocks()
        self._running: dict[ConversationKey, _Generation] = {}
        self._warned_memory: set[ConversationKey] = set()
        self.estimator = TokenEstimator()

    @property
    def active(self) -> int:
        return len(self._running)

    def use_persona(self, template: str) -> None:
        """A new persona (bot.persona reloaded it), used from the next message on."""
        self._config = replace(self._config, persona=template)

    async def answer(self, incoming: Incoming, sink: Sink) -> None:
        """Answer one message, after any earlier message of the same conversation."""
        text = clean_input(incoming.text)
        if not text:
            await sink.fail(EMPTY_INPUT)
            return
        if not incoming.admitted and not await self._admitted(incoming.key, sink):
            return
        if incoming.images and self._vision is None:
            await sink.fail(texts.NO_IMAGES)
            return
        if len(text) > self._config.max_input_chars:
            await sink.fail(texts.too_long(len(text), self._config.max_input_chars))
            return
        fact = None if incoming.images else parse_remember(text)
        if fact is not None:
            await self._remember(incoming.key.user_id, fact, sink)
            return
        incoming = replace(incoming, text=text)
        knowledge = await self._consult(text, sink, incoming.report)
        if knowledge is None:
            return
        async with self._locks.hold(incoming.key):
            loaded, memory_ok = await self._load(incoming.key, incoming.group_lines)
            incoming = self._in_chosen_language(incoming, loaded, sink)
            fresh = is_idle(loaded.last_active, time.time(), self._config.idle_minutes)
            history = [] if fresh else loaded.history
            request = _Request(
                incoming, loaded, history, memory_ok, fresh=fresh, knowledge=knowledge
            )
            await self._run(request, sink)

    async def retry(self, incoming: Incoming, sink: Sink) -> None:
        """Regenerate the last answer; the new one replaces it in memory."""
        key = incoming.key
        if not await self._admitted(key, sink):
            return
        async with self._locks.hold(key):
            loaded, memory_ok = await self._load(key, incoming.group_lines)
            incoming = self._in_chosen_language(incoming, loaded, sink)
            if not loaded.history or is_idle(
                loaded.last_active, time.time(), self._config.idle_minutes
            ):
                await sink.fail(NOTHING_TO_RETRY)
                return
            *previous, last = loaded.history
            again = replace(incoming, text=last.user)
            knowledge = await self._consult(last.user, sink, incoming.report)
            if knowledge is None:
                return
            request = _Request(
                again, loaded, previous, memory_ok, replace_last=True, knowledge=knowledge
            )
            await self._run(request, sink)

    async def admit(self, key: ConversationKey) -> str | None:
        """Access lists and limits, before work done for a message (a download, a
        transcription): None when admitted (pass `admitted=True` on), else the refusal."""
        return await self._gate.admit(key)

    def ordered(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """Hold the conversation, in arrival order, while a message is prepared (a download, a
        transcription) and answered: a message sent after it waits its turn."""
        return self._locks.hold(key)

    def document_chars(self) -> int:
        """How many characters of a shared document fit its share of the prompt."""
        tokens = document_budget(self._config.context_tokens, self._config.max_tokens)
        return int(tokens * min(self.estimator.chars_per_token, 4.0))

    async def share_document(self, key: ConversationKey, document: SharedDocument) -> None:
        """Keep a document with the conversation (after anything in progress for it)."""
        async with self._locks.hold(key):
            await self._memory.store_document(key, document)

    async def answer_once(self, incoming: Incoming, max_tokens: int) -> Answer:
        """One answer, not streamed, from the persona and the knowledge base only: no memory
        is read or written (inline mode). Raises an LLMError; the caller admitted it."""
        found = await self._gate.lookup(incoming.text)
        if found.reply is not None:
            return Answer(text=found.reply, finish_reason="stop")
        persona = self._persona(incoming)
        messages = build_messages(persona, (), found.prompt + incoming.text)
        answer = Answer()
        try:
            answer = await self._llm.complete(messages, max_tokens)
        finally:
            spent = tokens_spent(answer, self.estimator, incoming.text, [])
            await self._gate.charge(incoming.key, spent)
        answer.text = split_handoff(answer.text)[0]
        return answer

    @staticmethod
    def _in_chosen_language(incoming: Incoming, loaded: Loaded, sink: Sink) -> Incoming:
        """Apply the /language choice that came with the memory read (no extra round trip)."""
        if incoming.report is not None:
            incoming.report.language = loaded.language
        if loaded.language is None:
            return incoming
        sink.use_language(loaded.language)
        return replace(incoming, language=loaded.language)

    def _persona(self, incoming: Incoming) -> str:
        return system_prompt(
            self._config.persona,
            bot_name=self._config.bot_name,
            user_name=incoming.user_name,
            language=incoming.language,
            now=datetime.now(UTC),
        )

    async def _admitted(self, key: ConversationKey, sink: Sink) -> bool:
        """Access lists and limits (bot.gate); a refused message gets the refusal, no model."""
        refused = await self._gate.admit(key)
        if refused is not None:
            await self._fail(sink, refused)
        return refused is None

    async def _consult(self, question: str, sink: Sink, report: Report | None) -> str | None:
        """The knowledge-base excerpts for the prompt; None when the gate replied instead."""
        found = await self._gate.lookup(question)
        if found.reply is not None:
            if report is not None:
                report.question, report.unknown = question, True
            await self._close(sink, found.reply, None)
            return None
        return found.prompt

    async def reset(self, key: ConversationKey) -> None:
        """Forget the conversation (after anything in progress for it has finished)."""
        self.stop(key)
        async with self._locks.hold(key):
            await self._memory.forget_conversation(key)

    def stop(self, key: ConversationKey) -> bool:
        """Cancel the generation in progress; what was shown stays. False if there was none."""
        generation = self._running.get(key)
        if generation is None or generation.task is None or generation.stopped:
            return False
        generation.stopped = True
        generation.task.cancel()
        return True

    async def _remember(self, user_id: int, fact: str, sink: Sink) -> None:
        try:
            count = await self._memory.add_fact(user_id, Fact(fact, time.time()))
        except MemoryUnavailable:
            await sink.fail(texts.REMEMBER_FAILED)
            return
        await self._close(sink, texts.remembered(fact, count), None)

    @metrics.timed_redis("load")
    async def _load(self, key: ConversationKey, group_lines: int) -> tuple[Loaded, bool]:
        facts = key.private or (self._config.facts_in_groups and not key.business)
        try:
            loaded = await self._memory.load(key, facts=facts, group_lines=group_lines)
        except MemoryUnavailable:
            metrics.error(MemoryUnavailable)
            return Loaded([], None), False
        self._warned_memory.discard(key)
        return loaded, True

    async def _run(self, request: _Request, sink: Sink) -> None:
        generation = _Generation()
        self._running[request.key] = generation
        generation.task = asyncio.current_task()
        answer = Answer()
        try:
            await sink.begin()
            packed = await self._generate(request, sink, answer)
        except asyncio.CancelledError:
            if not generation.stopped:
                raise
            # /stop cancelled this task; the cancellation is consumed so the reply can close.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._finish_stopped(request, sink, answer)
            return
        except LLMStreamCut as exc:
            metrics.error(exc)
            log.warning("answer cut mid-stream for %s: %s", request.key.scope, exc)
            await self._close(sink, visible(answer.text), exc.user_message)
            return
        except LLMError as exc:
            metrics.error(exc)
            log.warning("no answer for %s: %s: %s", request.key.scope, type(exc).__name__, exc)
            await self._fail(sink, exc.user_message)
            return
        except ChatUnavailable as exc:
            metrics.error(exc)
            log.info("stopped answering: %s", exc)
            return
        finally:
            generation.task = None
            self._running.pop(request.key, None)
            spent = tokens_spent(answer, self.estimator, request.text, request.history)
            await self._gate.charge(request.key, spent)
        note = LENGTH_NOTE if answer.finish_reason == "length" else None
        await self._complete(request, sink, answer, packed, note)

    async def _generate(self, request: _Request, sink: Sink, answer: Answer) -> Packed:
        persona = self._persona(request.incoming)
        facts = [f.text for f in request.loaded.facts]
        system = compose_system(persona, request.loaded.summary, facts, request.loaded.document)
        question = request.knowledge + format_context(request.loaded.group_lines) + request.text
        images = request.incoming.images
        llm = self._vision if images and self._vision is not None else self._llm
        budget = Budget(self._config.context_tokens, self._config.max_tokens)
        room = budget.for_history(
            self.estimator.estimate(system),
            self.estimator.estimate(question) + IMAGE_TOKENS * len(images),
        )
        if room < 0:
            raise PromptTooLong("the message alone exceeds the context budget")
        retried = False
        while True:
            packed = pack_history(request.history, room)
            messages = build_messages(system, packed.turns, question, images)
            stream = llm.stream(messages, self._config.max_tokens, answer)
            stream = metrics.observe_stream(stream, answer)
            try:
                async with aclosing(stream):
                    async for _ in stream:
                        sink.push(visible(answer.text))
            except PromptTooLong:
                # Our estimate was short of the server's count: halve the history, once.
                if retried or answer.text or not packed.turns:
                    raise
                log.info("prompt too long for the server; retrying with half the history")
                room, retried = history_tokens(packed.turns) // 2, True
                continue
            if answer.prompt_tokens and not images:
                self.estimator.learn(sum(len(m["content"]) for m in messages), answer.prompt_tokens)
            return packed

    async def _complete(
        self, request: _Request, sink: Sink, answer: Answer, packed: Packed, note: str | None
    ) -> None:
        answer.text, handoff = split_handoff(answer.text)
        if not answer.text.strip():
            await self._fail(sink, texts.EMPTY_ANSWER)
            return
        if not request.memory_ok and request.key not in self._warned_memory:
            self._warned_memory.add(request.key)
            note = MemoryUnavailable.user_message
        report = request.incoming.report
        if report is not None:
            report.question, report.answer, report.handoff = request.text, answer.text, handoff
        if not await self._close(sink, answer.text, note):
            if report is not None:
                report.answer, report.handoff = "", False
            return
        if request.memory_ok:
            await self._write_turn(request, answer, packed.dropped)

    async def _finish_stopped(self, request: _Request, sink: Sink, answer: Answer) -> None:
        log.info("generation stopped by the user for %s", request.key.scope)
        answer.text = visible(answer.text)
        if not answer.text.strip():
            await self._fail(sink, STOPPED_NOTE)
            return
        if await self._close(sink, answer.text, STOPPED_NOTE) and request.memory_ok:
            # What the user saw is what the model said: the next turn must know it.
            await self._write_turn(request, answer, 0)

    @metrics.timed_redis("append")
    async def _write_turn(self, request: _Request, answer: Answer, dropped: int) -> None:
        now = time.time()
        tokens = self.estimator.estimate(request.text) + (
            answer.completion_tokens or self.estimator.estimate(answer.text)
        )
        turn = Turn(request.text, answer.text, tokens, now)
        fold = request.loaded.history if request.fresh else request.history[:dropped]
        group = not request.key.private and not request.key.business
        try:
            await self._memory.append(
                request.key,
                turn,
                fold=fold,
                replace_last=request.replace_last,
                fresh=request.fresh,
                title=request.incoming.title,
                joins_group=group and request.loaded.last_active is None,
            )
        except MemoryUnavailable:
            metrics.error(MemoryUnavailable)
            log.warning("turn not saved for %s: memory unavailable", request.key.scope)
            return
        if fold:
            self._summarizer.schedule(request.key)

    @staticmethod
    async def _close(sink: Sink, text: str, note: str | None) -> bool:
        try:
            await sink.finish(text, note)
        except ChatUnavailable as exc:
            log.info("reply not delivered: %s", exc)
            metrics.error(exc)
            return False
        metrics.reply_delivered()
        return True

    @staticmethod
    async def _fail(sink: Sink, message: str) -> None:
        try:
            await sink.fail(message)
        except ChatUnavailable as exc:
            log.info("error notice not delivered: %s", exc)
            metrics.error(exc)
