"""The test fakes with the benchmark's hooks: when updates are handed out, when text becomes
visible, when the model's first and last tokens leave, and which TCP connections clients open.

The fakes themselves are reused unchanged (tests/fakes); only the methods that mark those
instants are wrapped. The model's streaming loop is replaced by a leaner one for tracked turns:
the original sleeps through ``asyncio.wait_for`` (a task per token) so that tests can stop it
early, a needless cost on the bench's core at thousands of tokens a second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bench.tracking import MODEL, Tracker, Turn
from tests.fakes.llm import FakeLLM, Plan, _Completion, _sse, _sse_response
from tests.fakes.telegram import FakeTelegram, TelegramLimits

JSONDict = dict[str, Any]

# Flood limits the `limits` scenario enforces. Drafts are left out on purpose: they are
# ephemeral previews in the user's input area, not messages (nothing is stored, nobody is
# notified), and Bot API 9.5 introduced them precisely for streaming; counting them at
# 1/s per chat would forbid the smooth streaming the issue asks for. Chat actions are not
# messages either. `--limit-drafts` counts them anyway for a pessimistic run.
LIMITED_METHODS = frozenset(
    [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "sendPhoto",
        "sendDocument",
        "sendAudio",
        "sendVoice",
        "sendVideo",
        "sendSticker",
        "copyMessage",
        "forwardMessage",
    ]
)


def telegram_limits(*, drafts: bool = False) -> TelegramLimits:
    methods = LIMITED_METHODS | {"sendMessageDraft"} if drafts else LIMITED_METHODS
    return TelegramLimits(
        per_chat_per_s=1.0,
        per_chat_burst=3,
        per_group_per_min=20.0,
        global_per_s=30.0,
        methods=methods,
    )


def _note_peer(request: web.Request, ports: set[int]) -> None:
    """Remember the client's source port: distinct ports are TCP connections the client opened
    (ephemeral ports are not reused within a run of seconds)."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if peer:
        ports.add(peer[1])


class BenchTelegram(FakeTelegram):
    """FakeTelegram that reports hand-outs and visible changes to the tracker."""

    def __init__(self, tracker: Tracker, *, limits: TelegramLimits | None = None) -> None:
        super().__init__(limits=limits)
        self.tracker = tracker
        self.client_ports: set[int] = set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        _note_peer(request, self.client_ports)
        return await super()._handle(request)

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        batch = await super()._get_updates(params)
        if batch:
            self.tracker.handed(batch, time.monotonic())
        return batch

    async def _send_message(self, params: JSONDict) -> JSONDict:
        result = await super()._send_message(params)
        self.tracker.visible(
            result["chat"]["id"], result["text"], "sendMessage", result["message_id"]
        )
        return result

    async def _edit_message_text(self, params: JSONDict) -> JSONDict:
        result = await super()._edit_message_text(params)
        self.tracker.visible(
            result["chat"]["id"], result["text"], "editMessageText", result["message_id"]
        )
        return result

    async def _send_message_draft(self, params: JSONDict) -> bool:
        ok = await super()._send_message_draft(params)
        chat_id = params["chat_id"]
        self.tracker.visible(chat_id, str(params.get("text") or ""), "sendMessageDraft", None)
        return ok


@dataclass
class TurnPlan(Plan):
    """A plan that knows its turn, so the stream can stamp the first and last token."""

    turn: Turn | None = None


class BenchLLM(FakeLLM):
    """FakeLLM answering each tagged question with its tagged answer, on the turn's schedule."""

    def __init__(self, tracker: Tracker) -> None:
        super().__init__(models=[MODEL])
        self.tracker = tracker
        self.responder = self._respond
        self.client_ports: set[int] = set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        _note_peer(request, self.client_ports)
        return await super()._chat(request)

    def _respond(self, body: JSONDict) -> Plan:
        messages = body.get("messages")
        turn = self.tracker.turn_for_prompt(messages if isinstance(messages, list) else [])
        if turn is None:
            self.tracker.untagged_llm_requests += 1
            return Plan(text="I can only answer tagged questions in the benchmark.")
        turn.t_llm_request = time.monotonic()
        turn.llm_requests += 1
        turn.prompt = messages
        profile = turn.profile
        return TurnPlan(
            text=turn.expected,
            chunks=turn.chunks,
            first_token_delay=profile.first_token_s,
            token_delay=profile.token_s,
            turn=turn,
        )

    async def _stream(
        self, request: web.Request, plan: Plan, ctx: _Completion
    ) -> web.StreamResponse:
        turn = plan.turn if isinstance(plan, TurnPlan) else None
        if turn is None:
            return await super()._stream(request, plan, ctx)
        resp = _sse_response(plan.headers)
        await resp.prepare(request)
        try:
            if plan.first_token_delay > 0:
                await asyncio.sleep(plan.first_token_delay)
            await resp.write(ctx.chunk({"role": "assistant", "content": ""}))
            for i, piece in enumerate(ctx.pieces):
                if i and plan.token_delay > 0:
                    await asyncio.sleep(plan.token_delay)
                await resp.write(ctx.chunk({"content": piece}))
                if i == 0:
                    turn.t_llm_first = time.monotonic()
            turn.t_llm_last = time.monotonic()
            await resp.write(ctx.chunk({}, ctx.finish_reason))
            if ctx.include_usage and plan.usage:
                await resp.write(_sse(ctx.envelope([]) | {"usage": ctx.usage()}))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionError:
            self.cancelled += 1
            return resp
        self.completed += 1
        return resp
