"""The rolling summary: made off the reply's path, rewritten rarely, prefix kept stable."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import redis

from tests.conftest import BotFactory, chat_prompts, is_summary_request
from tests.fakes import FakeLLM, FakeTelegram, Plan

ANN = 9001


async def test_overflow_is_summarised_without_delaying_the_reply(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    summary_asked: list[float] = []

    def respond(body: dict[str, Any]) -> Plan:
        if is_summary_request(body["messages"]):
            summary_asked.append(time.monotonic())
            return Plan(text="Ann asked many numbered questions.", first_token_delay=1.0)
        return Plan(text="ok " * 30)

    llm.responder = respond
    meta = f"{prefix}:{{u{ANN}}}:m:p"
    async with start_bot(llm_context_tokens=1024, llm_max_tokens=256):
        n = 0
        while not summary_asked:
            n += 1
            tg.send_text(ANN, f"question {n} " + "x" * 80)
            await tg.wait_messages(ANN, n)
            await tg.wait_idle(quiet=0.1)
            assert n < 30, "the history should have overflowed by now"
        # The reply that made the history overflow was on screen before its summary was asked for.
        assert tg.chat(ANN).messages[-1].history[0][0] <= summary_asked[0]
        assert redis_client.hget(meta, "summary") is None

        await tg.wait_for(lambda: redis_client.hget(meta, "summary") is not None, timeout=5)
        tg.send_text(ANN, "and now?")
        await tg.wait_messages(ANN, n + 1)
    system = chat_prompts(llm)[-1][0]["content"]
    assert "Ann asked many numbered questions." in system
    summary_request = next(p for p in llm.prompts if is_summary_request(p))
    assert "question 1 " in summary_request[1]["content"], "the oldest turns are summarised"
    assert redis_client.llen(f"{prefix}:{{u{ANN}}}:o:p") == 0


async def test_the_prompt_prefix_is_byte_identical_turn_to_turn(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.responder = lambda body: Plan(text="Sure, here is **one** answer.")
    async with start_bot():
        for n in range(1, 5):
            tg.send_text(ANN, f"turn {n}")
            await tg.wait_messages(ANN, n)
    prompts = [json.dumps(p, ensure_ascii=False) for p in chat_prompts(llm)]
    for previous, current in itertools.pairwise(prompts):
        # Everything but the closing "]" of the previous prompt is the start of the next one.
        assert current.startswith(previous[:-1])
