"""The model endpoint: the only module that imports `openai`.

Streams chat completions from any OpenAI-compatible server, enforces the first-token timeout,
retries only before the first token, and turns every failure into an `LLMError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from bot.errors import (
    LLMEmptyAnswer,
    LLMError,
    LLMRateLimited,
    LLMRejected,
    LLMServerError,
    LLMStreamCut,
    LLMTimeout,
    LLMUnavailable,
    PromptTooLong,
)

log = logging.getLogger(__name__)

# Longer waits than this are not worth holding a user for: say the model is busy instead.
MAX_RETRY_WAIT_S = 10.0
_CONTEXT_MARKERS = ("context length", "context_length", "context size", "maximum context")


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str
    api_key: str
    model: str
    temperature: float
    first_token_timeout_s: float
    stall_timeout_s: float
    max_retries: int


@dataclass(slots=True)
class Answer:
    """What a finished (or aborted) stream produced, beyond its text."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLMClient:
    def __init__(self, config: LLMConfig) -> None:
        self._config = config
        self._model = config.model
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            timeout=httpx2.Timeout(config.stall_timeout_s, connect=5.0),
        )

    async def close(self) -> None:
        await self._client.close()

    async def model(self) -> str:
        """LLM_MODEL, or the first model the server lists when it is not set."""
        if not self._model:
            models = await self.list_models()
            if not models:
                raise LLMRejected("the endpoint lists no models; set LLM_MODEL")
            self._model = models[0]
            log.info("using model %s (first listed by the endpoint)", self._model)
        return self._model

    async def list_models(self) -> list[str]:
        try:
            page = await self._client.models.list()
            return [m.id async for m in page]
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise _translate(exc, shown=False) from exc

    async def complete(self, messages: list[dict[str, str]], max_tokens: int) -> Answer:
        """One non-streaming completion (used by doctor and inline answers)."""
        try:
            result = await self._client.chat.completions.create(
                model=await self.model(),
                messages=_typed(messages),
                max_tokens=max_tokens,
                temperature=self._config.temperature,
            )
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=False) from exc
        choice = result.choices[0] if result.choices else None
        answer = Answer(text=(choice.message.content or "") if choice else "")
        answer.finish_reason = choice.finish_reason if choice else None
        if result.usage is not None:
            answer.prompt_tokens = result.usage.prompt_tokens
            answer.completion_tokens = result.usage.completion_tokens
        return answer

    async def stream(
        self, messages: list[dict[str, str]], max_tokens: int, answer: Answer
    ) -> AsyncGenerator[str, None]:
        """Yield text as it arrives, filling `answer`; raise an LLMError on failure.

        Failures before the first token are retried (with backoff, honouring Retry-After);
        after text has been shown nothing is retried: the caller keeps what was shown.
        """
        stream, first = await self._open_with_retries(messages, max_tokens, answer)
        try:
            yield first
            async for chunk in stream:
                text = _absorb(chunk, answer)
                if text:
                    yield text
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=True) from exc
        finally:
            await stream.close()
        if answer.finish_reason is None:
            raise LLMStreamCut("the stream ended without a finish reason")

    async def _open_with_retries(
        self, messages: list[dict[str, str]], max_tokens: int, answer: Answer
    ) -> tuple[AsyncStream[ChatCompletionChunk], str]:
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(
                    self._open(messages, max_tokens, answer), self._config.first_token_timeout_s
                )
            except TimeoutError:
                raise LLMTimeout(
                    f"no first token within {self._config.first_token_timeout_s:g}s"
                ) from None
            except (LLMUnavailable, LLMServerError, LLMRateLimited) as exc:
                wait = _backoff(attempt, exc)
                if attempt >= self._config.max_retries or wait > MAX_RETRY_WAIT_S:
                    raise
                attempt += 1
                log.info("llm attempt %d failed (%s); retrying in %.1fs", attempt, exc, wait)
                await asyncio.sleep(wait)

    async def _open(
        self, messages: list[dict[str, str]], max_tokens: int, answer: Answer
    ) -> tuple[AsyncStream[ChatCompletionChunk], str]:
        """Start a stream and read up to its first text; close it on any failure."""
        stream: AsyncStream[ChatCompletionChunk] | None = None
        try:
            stream = await self._client.chat.completions.create(
                model=await self.model(),
                messages=_typed(messages),
                max_tokens=max_tokens,
                temperature=self._config.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                text = _absorb(chunk, answer)
                if text:
                    return stream, text
            if answer.finish_reason is None:
                raise LLMServerError("the stream ended before any text")
            raise LLMEmptyAnswer("the model finished without any text")
        except BaseException as exc:
            if stream is not None:
                await asyncio.shield(stream.close())
            if isinstance(exc, (openai.OpenAIError, httpx2.HTTPError, ValueError)):
                raise _translate(exc, shown=False) from exc
            raise


def _typed(messages: list[dict[str, str]]) -> list[ChatCompletionMessageParam]:
    return messages  # type: ignore[return-value]


def _absorb(chunk: ChatCompletionChunk, answer: Answer) -> str:
    """Fold one chunk into `answer`; return its new text."""
    if chunk.usage is not None:
        answer.prompt_tokens = chunk.usage.prompt_tokens
        answer.completion_tokens = chunk.usage.completion_tokens
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    if choice.finish_reason is not None:
        answer.finish_reason = choice.finish_reason
    text = choice.delta.content if choice.delta is not None else None
    if text:
        answer.text += text
        return text
    return ""


def _backoff(attempt: int, exc: LLMError) -> float:
    if isinstance(exc, LLMRateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return min(0.5 * 2.0**attempt, 4.0) * (0.5 + random.random())


def _server_message(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    return str(exc.message)[:300]


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value: str | None = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _translate(exc: BaseException, *, shown: bool) -> LLMError:
    """One LLMError per cause, with a log line for the operator (never the prompt itself)."""
    if shown:
        log.warning("llm stream broke after text was shown: %s", type(exc).__name__)
        return LLMStreamCut(type(exc).__name__)
    if isinstance(exc, openai.APITimeoutError):
        log.warning("llm request timed out")
        return LLMTimeout("request timed out")
    if isinstance(exc, (openai.APIConnectionError, httpx2.HTTPError)):
        log.warning("llm endpoint unreachable: %s", type(exc).__cause__ or type(exc).__name__)
        return LLMUnavailable("endpoint unreachable")
    if isinstance(exc, openai.APIStatusError):
        return _translate_status(exc)
    log.warning("llm sent something unreadable: %s", type(exc).__name__)
    return LLMServerError(f"malformed response: {type(exc).__name__}")


def _translate_status(exc: openai.APIStatusError) -> LLMError:
    status, message = exc.status_code, _server_message(exc)
    log.warning("llm endpoint answered %d: %s", status, message)
    if status == 429:
        return LLMRateLimited(message, _retry_after(exc))
    if status >= 500:
        return LLMServerError(f"{status}: {message}")
    lowered = message.lower()
    if status in (400, 413, 422) and any(m in lowered for m in _CONTEXT_MARKERS):
        return PromptTooLong(message)
    return LLMRejected(f"{status}: {message}")
