"""Inline mode: `@bot question` in any chat, answered as one inline result (INLINE_MODE=true).

Telegram sends a query at each pause in typing. A newer query from the same person supersedes
the older one (its model call is cancelled), and a short pause before the model is asked lets
typing settle, so most superseded queries never reach it. Telegram drops an answer that comes
later than about 10 s, so the whole answer gets INLINE_TIMEOUT_S. Nothing is read from or
written to memory: an inline answer is not part of any conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from telegram import InlineQueryResultArticle, InputTextMessageContent

from bot.engine import Engine, Incoming
from bot.errors import InputRejected, LLMTimeout
from bot.outbox import telegram_entities
from bot.render import Chunk, render

# Typing settles before the model is asked; a newer query in this time costs nothing.
SETTLE_S = 0.4
# An inline result is one message, and it has a few seconds: answers are kept short.
INLINE_MAX_TOKENS = 512
# Telegram may show the same answer again for this long to the same person (is_personal).
CACHE_TIME_S = 10
TITLE_CHARS = 64
DESCRIPTION_CHARS = 160


@dataclass(frozen=True, slots=True)
class InlineConfig:
    timeout_s: float
    max_tokens: int


class InlineAnswers:
    def __init__(self, engine: Engine, config: InlineConfig) -> None:
        self._engine = engine
        self._config = config
        self._running: dict[int, asyncio.Task[str]] = {}

    async def answer(self, incoming: Incoming) -> str | None:
        """The answer's text; None when a newer query of the same person superseded this one.

        Raises InputRejected when the gate refuses the person, an LLMError when the model
        fails (LLMTimeout past INLINE_TIMEOUT_S).
        """
        user = incoming.key.user_id
        previous = self._running.get(user)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._ask(incoming))
        self._running[user] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                return None
            raise
        finally:
            if self._running.get(user) is task:
                del self._running[user]

    async def _ask(self, incoming: Incoming) -> str:
        try:
            async with asyncio.timeout(self._config.timeout_s):
                await asyncio.sleep(SETTLE_S)
                refused = await self._engine.admit(incoming.key)
                if refused is not None:
                    raise InputRejected(refused)
                answer = await self._engine.answer_once(incoming, self._config.max_tokens)
        except TimeoutError:
            raise LLMTimeout(f"no inline answer within {self._config.timeout_s:g}s") from None
        return answer.text


def article(question: str, answer: str) -> InlineQueryResultArticle:
    """The answer as a result to pick: titled by the question, sending the formatted answer
    (its first message's worth, when it would need several)."""
    chunks = render(answer)
    chunk = chunks[0] if chunks else Chunk(answer.strip(), ())
    preview = " ".join(chunk.text.split())
    return InlineQueryResultArticle(
        id=hashlib.sha256(f"{question}\0{answer}".encode()).hexdigest()[:32],
        title=_shorten(question, TITLE_CHARS),
        description=_shorten(preview, DESCRIPTION_CHARS),
        input_message_content=InputTextMessageContent(
            chunk.text, entities=telegram_entities(chunk)
        ),
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
