"""The model endpoint: the only module that imports `openai`.

Streams chat completions from any OpenAI-compatible server, enforces the first-token timeout,
retries only before the first token, and turns every failure into an `LLMError`. Speech to text
(`Transcriber`) goes to an OpenAI-compatible `/audio/transcriptions` endpoint the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

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
from bot.llm_http import AiohttpTransport

log = logging.getLogger(__name__)

# Makes the client hand back the response unread, so the stream is parsed as it arrives.
_RAW_STREAM: Any = {"headers": {"X-Stainless-Raw-Response": "stream"}}

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
        timeout = httpx2.Timeout(config.stall_timeout_s, connect=5.0)
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            timeout=timeout,
            http_client=httpx2.AsyncClient(transport=AiohttpTransport(), timeout=timeout),
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
            raise _translate(exc, shown=False, secret=self._config.api_key) from exc

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text from `/v1/embeddings` (the knowledge base), in input order."""
        try:
            result = await self._client.embeddings.create(
                model=model, input=texts, encoding_format="float"
            )
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=False, secret=self._config.api_key) from exc
        if len(result.data) != len(texts):
            raise LLMServerError(f"{len(result.data)} embeddings for {len(texts)} texts")
        return [list(item.embedding) for item in sorted(result.data, key=lambda d: d.index)]

    async def complete(self, messages: list[dict[str, Any]], max_tokens: int) -> Answer:
        """One non-streaming completion (used by doctor and inline answers)."""
        try:
            result = await self._client.chat.completions.create(
                model=await self.model(),
                messages=_typed(messages),
                max_tokens=max_tokens,
                temperature=self._config.temperature,
            )
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=False, secret=self._config.api_key) from exc
        choice = result.choices[0] if result.choices else None
        answer = Answer(text=(choice.message.content or "") if choice else "")
        answer.finish_reason = choice.finish_reason if choice else None
        if result.usage is not None:
            answer.prompt_tokens = result.usage.prompt_tokens
            answer.completion_tokens = result.usage.completion_tokens
        return answer

    async def stream(
        self, messages: list[dict[str, Any]], max_tokens: int, answer: Answer
    ) -> AsyncGenerator[str, None]:
        """Yield text as it arrives, filling `answer`; raise an LLMError on failure.

        Failures before the first token are retried (with backoff, honouring Retry-After);
        after text has been shown nothing is retried: the caller keeps what was shown.
        """
        response, events, first = await self._open_with_retries(messages, max_tokens, answer)
        try:
            yield first
            async for event in events:
                text = _absorb(event, answer)
                if text:
                    yield text
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=True, secret=self._config.api_key) from exc
        finally:
            await events.aclose()
            await response.aclose()
        if answer.finish_reason is None:
            raise LLMStreamCut("the stream ended without a finish reason")

    async def _open_with_retries(
        self, messages: list[dict[str, Any]], max_tokens: int, answer: Answer
    ) -> tuple[httpx2.Response, AsyncGenerator[dict[str, Any], None], str]:
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self._config.first_token_timeout_s):
                    return await self._open(messages, max_tokens, answer)
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
        self, messages: list[dict[str, Any]], max_tokens: int, answer: Answer
    ) -> tuple[httpx2.Response, AsyncGenerator[dict[str, Any], None], str]:
        """Start a stream and read up to its first text; close it on any failure.

        The SSE body is parsed here rather than by openai's typed stream: building a pydantic
        model per token costs about five times more CPU than the JSON itself.
        """
        response: httpx2.Response | None = None
        events: AsyncGenerator[dict[str, Any], None] | None = None
        body = {
            "model": await self.model(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self._config.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            # The client's generic post (auth, base URL, status errors) without the typed
            # request layer, which costs milliseconds of CPU per request.
            response = await self._client.post(
                "/chat/completions", cast_to=httpx2.Response, body=body, options=_RAW_STREAM
            )
            events = _events(response)
            async for event in events:
                text = _absorb(event, answer)
                if text:
                    return response, events, text
            if answer.finish_reason is None:
                raise LLMServerError("the stream ended before any text")
            raise LLMEmptyAnswer("the model finished without any text")
        except BaseException as exc:
            if events is not None:
                await asyncio.shield(events.aclose())
            if response is not None:
                await asyncio.shield(response.aclose())
            if isinstance(exc, (openai.OpenAIError, httpx2.HTTPError, ValueError)):
                raise _translate(exc, shown=False, secret=self._config.api_key) from exc
            raise


@dataclass(frozen=True, slots=True)
class SpeechConfig:
    base_url: str
    api_key: str
    model: str
    timeout_s: float


class Transcriber:
    """Voice to text through `/audio/transcriptions` (OpenAI, whisper.cpp, faster-whisper...)."""

    def __init__(self, config: SpeechConfig) -> None:
        self._config = config
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=1,
            timeout=httpx2.Timeout(config.timeout_s, connect=5.0),
        )

    async def close(self) -> None:
        await self._client.close()

    async def transcribe(self, audio: bytes, filename: str, content_type: str) -> str:
        """The text spoken in `audio`; raises an LLMError when the endpoint fails."""
        try:
            result = await self._client.audio.transcriptions.create(
                file=(filename, audio, content_type),
                model=self._config.model,
                response_format="json",
            )
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise _translate(exc, shown=False, secret=self._config.api_key) from exc
        return result.text.strip()


def _typed(messages: list[dict[str, Any]]) -> list[ChatCompletionMessageParam]:
    return messages  # type: ignore[return-value]


async def _events(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON payloads of a server-sent-event stream, up to `[DONE]`.

    The body is still read to its end after `[DONE]` so the connection can be reused.
    """
    done = False
    async for line in response.aiter_lines():
        if done or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        if not isinstance(event, dict):
            raise ValueError("stream event is not a JSON object")
        if event.get("error"):
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            log.warning("llm stream reported an error: %s", str(message)[:300])
            raise openai.APIError(str(message), response.request, body=error)
        yield event


def _absorb(event: dict[str, Any], answer: Answer) -> str:
    """Fold one stream event into `answer`; return its new text."""
    usage = event.get("usage")
    if isinstance(usage, dict):
        answer.prompt_tokens = usage.get("prompt_tokens")
        answer.completion_tokens = usage.get("completion_tokens")
    choices = event.get("choices")
    if not choices:
        return ""
    choice = choices[0]
    if choice.get("finish_reason") is not None:
        answer.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    if text and isinstance(text, str):
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


def _translate(exc: BaseException, *, shown: bool, secret: str) -> LLMError:
    """One LLMError per cause, with a log line for the operator (never the prompt itself)."""
    if shown:
        log.warning("llm stream broke after text was shown: %s", type(exc).__name__)
        return LLMStreamCut(type(exc).__name__)
    if isinstance(exc, openai.APITimeoutError):
        log.warning("llm request timed out")
        return LLMTimeout("request timed out")
    if isinstance(exc, (openai.APIConnectionError, httpx2.HTTPError)):
        cause = exc.__cause__ or exc
        log.warning("llm endpoint unreachable: %s", type(cause).__name__)
        return LLMUnavailable("endpoint unreachable")
    if isinstance(exc, openai.APIStatusError):
        return _translate_status(exc, secret)
    log.warning("llm sent something unreadable: %s", type(exc).__name__)
    return LLMServerError(f"malformed response: {type(exc).__name__}")


def _translate_status(exc: openai.APIStatusError, secret: str) -> LLMError:
    status, message = exc.status_code, _server_message(exc)
    if len(secret) >= 6:
        # Some servers quote the key they were given in their 401 message.
        message = message.replace(secret, "***")
    log.warning("llm endpoint answered %d: %s", status, message)
    if status == 429:
        return LLMRateLimited(message, _retry_after(exc))
    if status >= 500:
        return LLMServerError(f"{status}: {message}")
    lowered = message.lower()
    if status in (400, 413, 422) and any(m in lowered for m in _CONTEXT_MARKERS):
        return PromptTooLong(message)
    return LLMRejected(f"{status}: {message}")
