"""A fake OpenAI-compatible chat-completions server (vLLM / OpenAI wire format).

The bot reaches it through the real ``openai.AsyncOpenAI(base_url=llm.base_url, ...)``, so SSE
framing, usage chunks and error bodies go through the same parsing as in production. What it
answers is scripted with :class:`Plan`::

    async with FakeLLM() as llm:
        llm.plan(Plan(text="Hi there"), Plan(status=429, headers={"Retry-After": "1"}))
        llm.default = Plan(token_delay=0.01)

Speech to text (``/v1/audio/transcriptions``, multipart like OpenAI's) answers ``transcript`` (or
``transcriber(audio)``), and records each upload in ``transcriptions``.

Token accounting is deliberately simple: one streamed chunk is one completion token, and prompt
tokens default to the characters of all message contents divided by four.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JSONDict = dict[str, Any]

_TOKEN = re.compile(r"\s*\S+|\s+")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


def split_tokens(text: str) -> list[str]:
    """Word-ish tokens with their leading spaces, like BPE output; ``"".join`` restores text."""
    return _TOKEN.findall(text)


@dataclass
class Plan:
    """How to answer one chat-completions request."""

    text: str = "Hello! How can I help?"
    # Explicit stream pieces; by default ``text`` is split with ``split_tokens``.
    chunks: list[str] | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    # Send the usage chunk (only ever when the request asked for it).
    usage: bool = True
    prompt_tokens: int | None = None
    finish_reason: str = "stop"
    # An HTTP error instead of an answer.
    status: int | None = None
    error_message: str = "The server had an error while processing your request."
    error_type: str | None = None
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Stream failure modes.
    cut_after: int | None = None
    no_done: bool = False
    malformed: bool = False
    hang: bool = False
    # After N content chunks, an in-band ``data: {"error": ...}`` event ends the stream.
    stream_error_after: int | None = None
    context_length_exceeded: bool = False

    def pieces(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else split_tokens(self.text)


class _Signal:
    """Wakes every waiter on each ``fire``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))


class FakeLLM:
    """``/v1/models``, ``/v1/chat/completions`` (by :class:`Plan`), ``/v1/embeddings`` and
    ``/v1/audio/transcriptions``."""

    def __init__(
        self,
        *,
        models: list[str] | None = None,
        require_key: str | None = None,
        context_window: int = 8192,
        enforce_context: bool = False,
    ) -> None:
        self.models = models if models is not None else ["llama-3-8b-instruct"]
        self.require_key = require_key
        self.context_window = context_window
        # When set, requests whose estimated prompt + max_tokens exceed context_window fail like
        # vLLM does, without a scripted plan.
        self.enforce_context = enforce_context
        self.default = Plan()
        self.responder: Callable[[JSONDict], Plan] | None = None
        self.requests: list[JSONDict] = []
        # /v1/embeddings: one vector per input from `embedder`; `embeddings_status` fails them.
        self.embedder: Callable[[str], list[float]] = bag_of_words
        self.embedding_requests: list[JSONDict] = []
        self.embeddings_status: int | None = None
        # /v1/audio/transcriptions: the text of every upload (or `transcriber(audio)`);
        # `transcription_status` fails them; `transcriptions` records model, file and size.
        self.transcript = "Hello from a voice message."
        self.transcriber: Callable[[bytes], str] | None = None
        self.transcription_status: int | None = None
        self.transcriptions: list[JSONDict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled = 0
        self.completed = 0
        self._plans: deque[Plan] = deque()
        self._ids = itertools.count(1)
        self._signal = _Signal()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeLLM already started")
        self._signal = _Signal()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation turns a client hanging up into CancelledError in the handler, which
        # is how `cancelled` is counted and how `hang` plans end.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        self._signal.fire()
        await runner.cleanup()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeLLM is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    # ------------------------------------------------------------------ scripting and views

    def plan(self, *plans: Plan) -> None:
        """Queue plans, consumed one per request before ``default`` applies."""
        self._plans.extend(plans)

    @property
    def pending_plans(self) -> int:
        return len(self._plans)

    @property
    def prompts(self) -> list[list[JSONDict]]:
        return [r.get("messages", []) for r in self.requests]

    @property
    def last_prompt(self) -> list[JSONDict]:
        if not self.requests:
            raise AssertionError("the LLM received no request")
        messages: list[JSONDict] = self.requests[-1].get("messages", [])
        return messages

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met within {timeout}s: {len(self.requests)} requests, "
                    f"in_flight={self.in_flight}, completed={self.completed}, "
                    f"cancelled={self.cancelled}"
                )
            await self._signal.wait(remaining)

    async def wait_requests(self, n: int, timeout: float = 5.0) -> list[JSONDict]:
        await self.wait_for(lambda: len(self.requests) >= n, timeout)
        return self.requests

    # ------------------------------------------------------------------ HTTP

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.require_key is None:
            return None
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip()
        if header.startswith("Bearer ") and given == self.require_key:
            return None
        shown = f"{given[:3]}...{given[-4:]}" if len(given) > 8 else given
        return _error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(
            404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
        )

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "telellama-fake"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body of your request.")
        self.requests.append(body)
        self._signal.fire()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array", param="messages")
        model = body.get("model")
        if self.models and model not in self.models:
            return _error(
                404, f"The model `{model}` does not exist.", "NotFoundError", "model_not_found"
            )

        plan = self._choose(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body, plan)
        except asyncio.CancelledError:
            if not self._closing.is_set():
                self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
            self._signal.fire()

    async def _embeddings(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        body = json.loads(await request.read())
        self.embedding_requests.append(body)
        if self.embeddings_status is not None:
            return _error(self.embeddings_status, "embeddings are unavailable", "server_error")
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts:
            return _error(400, "'input' must be a string or a non-empty array", param="input")
        data = [
            {"object": "embedding", "index": i, "embedding": self.embedder(str(text))}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(str(t)) // 4 for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = body.get("model")
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

    async def _transcriptions(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        if request.content_type != "multipart/form-data":
            return _error(400, "expected a multipart/form-data upload")
        form = await request.post()
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, web.FileField) or not isinstance(model, str) or not model:
            return _error(400, "'file' (an upload) and 'model' are required", param="file")
        audio = upload.file.read()
        self.transcriptions.append(
            {
                "model": model,
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(audio),
                "response_format": form.get("response_format", "json"),
            }
        )
        self._signal.fire()
        if self.transcription_status is not None:
            return _error(self.transcription_status, "transcription failed", "server_error")
        text = self.transcriber(audio) if self.transcriber is not None else self.transcript
        if form.get("response_format") == "text":
            return web.Response(text=text)
        return web.json_response({"text": text})

    def _choose(self, body: JSONDict) -> Plan:
        if self.responder is not None:
            return self.responder(body)
        if self._plans:
            return self._plans.popleft()
        return self.default

    async def _answer(self, request: web.Request, body: JSONDict, plan: Plan) -> web.StreamResponse:
        stream = bool(body.get("stream"))
        prompt_tokens = plan.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = _estimate_prompt_tokens(body["messages"])
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None

        if plan.hang:
            if stream:
                resp = _sse_response()
                await resp.prepare(request)
            await self._closing.wait()
            raise asyncio.CancelledError
        if plan.first_token_delay and (plan.status or plan.context_length_exceeded):
            await self._sleep(plan.first_token_delay)

        requested = prompt_tokens + (limit or 0)
        if plan.context_length_exceeded or (
            self.enforce_context and requested > self.context_window
        ):
            return self._context_error(prompt_tokens, limit)
        if plan.status is not None:
            return _error(
                plan.status,
                plan.error_message,
                plan.error_type or _ERROR_TYPES.get(plan.status, "server_error"),
                plan.error_code or ("rate_limit_exceeded" if plan.status == 429 else None),
                headers=plan.headers,
            )

        pieces = plan.pieces()
        finish = plan.finish_reason
        if limit is not None and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        opts = body.get("stream_options")
        ctx = _Completion(
            id=f"chatcmpl-fake{next(self._ids):08d}",
            created=int(time.time()),
            model=str(body.get("model", "")),
            prompt_tokens=prompt_tokens,
            pieces=pieces,
            finish_reason=finish,
            include_usage=stream and isinstance(opts, dict) and bool(opts.get("include_usage")),
        )
        if stream:
            return await self._stream(request, plan, ctx)
        return await self._complete(plan, ctx)

    async def _complete(self, plan: Plan, ctx: _Completion) -> web.StreamResponse:
        await self._sleep(plan.first_token_delay + plan.token_delay * len(ctx.pieces))
        if plan.malformed:
            return web.Response(text="{not json", content_type="application/json")
        body = {
            "id": ctx.id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(ctx.pieces)},
                    "logprobs": None,
                    "finish_reason": ctx.finish_reason,
                }
            ],
            "usage": ctx.usage(),
        }
        self.completed += 1
        return web.json_response(body, headers=plan.headers)

    async def _stream(
        self, request: web.Request, plan: Plan, ctx: _Completion
    ) -> web.StreamResponse:
        resp = _sse_response(plan.headers)
        await resp.prepare(request)
        stop = plan.cut_after if plan.cut_after is not None else plan.stream_error_after
        try:
            await self._sleep(plan.first_token_delay)
            await resp.write(ctx.chunk({"role": "assistant", "content": ""}))
            if plan.malformed:
                await resp.write(b"data: {not json\n\n")
                await resp.write_eof()
                return resp
            for i, piece in enumerate(ctx.pieces[:stop]):
                if i and plan.token_delay:
                    await self._sleep(plan.token_delay)
                await resp.write(ctx.chunk({"content": piece}))
            if plan.cut_after is not None:
                # Closing the socket mid chunked-body is what a crashed upstream looks like.
                if request.transport is not None:
                    request.transport.close()
                return resp
            if plan.stream_error_after is not None:
                error = {
                    "message": plan.error_message,
                    "type": plan.error_type or "server_error",
                    "param": None,
                    "code": plan.error_code,
                }
                await resp.write(_sse({"error": error}))
                await resp.write_eof()
                return resp
            await resp.write(ctx.chunk({}, ctx.finish_reason))
            if ctx.include_usage and plan.usage:
                await resp.write(_sse(ctx.envelope([]) | {"usage": ctx.usage()}))
            if not plan.no_done:
                await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionError:
            # The client hung up between chunks; aiohttp's own finish path stays quiet for this.
            self.cancelled += 1
            return resp
        self.completed += 1
        return resp

    def _context_error(self, prompt_tokens: int, limit: int | None) -> web.Response:
        completion = limit or max(self.context_window // 8, 1)
        requested = max(prompt_tokens + completion, self.context_window + 1)
        prompt_part = requested - completion
        message = (
            f"This model's maximum context length is {self.context_window} tokens. However, you "
            f"requested {requested} tokens ({prompt_part} in the messages, {completion} in the "
            "completion). Please reduce the length of the messages or completion."
        )
        return _error(400, message, "invalid_request_error", "context_length_exceeded", "messages")

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)


@dataclass
class _Completion:
    id: str
    created: int
    model: str
    prompt_tokens: int
    pieces: list[str]
    finish_reason: str
    include_usage: bool

    def envelope(self, choices: list[JSONDict]) -> JSONDict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def chunk(self, delta: JSONDict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out = self.envelope([choice])
        if self.include_usage:
            # OpenAI puts "usage": null on every chunk once include_usage is on.
            out["usage"] = None
        return _sse(out)

    def usage(self) -> JSONDict:
        """One streamed piece counts as one completion token."""
        completion = len(self.pieces)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def _sse(payload: JSONDict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _sse_response(headers: dict[str, str] | None = None) -> web.StreamResponse:
    return web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            **(headers or {}),
        }
    )


def bag_of_words(text: str, dimensions: int = 64) -> list[float]:
    """A deterministic stand-in for an embedding: lower-cased words hashed into buckets."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % dimensions] += 1.0
    return vector


def _estimate_prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(
                len(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return chars // 4


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)
