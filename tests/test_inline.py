"""Inline mode: `@bot question` in any chat is answered with one inline result, within
Telegram's inline timeout, and nothing is written to memory."""

from __future__ import annotations

import redis

from bot import texts
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

USER = 7401


async def test_an_inline_query_is_answered_with_the_models_answer(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    tg.supports_inline_queries = True
    llm.default = Plan(text="**Lisbon** is the capital.")
    async with start_bot(inline_mode=True):
        query_id = tg.send_inline_query(USER, "capital of Portugal?")
        await tg.wait_for(lambda: query_id in tg.inline_answers)
        await tg.wait_idle()
    [polled] = {str(c.params.get("allowed_updates")) for c in tg.calls_of("getUpdates")}
    assert "inline_query" in polled
    answer = tg.inline_answers[query_id]
    [result] = answer["results"]
    content = result["input_message_content"]
    assert content["message_text"] == "Lisbon is the capital."
    assert content["entities"] == [{"type": "bold", "offset": 0, "length": 6}]
    assert result["title"] == "capital of Portugal?"
    assert 0 < answer["cache_time"] <= 30 and answer["is_personal"] is True
    # One completion, not streamed, with the persona and the question only.
    [request] = llm.requests
    assert not request.get("stream")
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][-1]["content"] == "capital of Portugal?"
    assert redis_client.keys(f"{prefix}:*") == []
    assert tg.texts(USER) == []


async def test_inline_queries_are_ignored_unless_inline_mode_is_on(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        tg.send_inline_query(USER, "capital of Portugal?")
        tg.send_text(USER, "hello")
        await tg.wait_messages(USER, 1)
        await tg.wait_idle()
    assert tg.inline_answers == {}
    assert tg.calls_of("answerInlineQuery") == []
    assert len(llm.requests) == 1
    polled = tg.calls_of("getUpdates")[-1].params["allowed_updates"]
    assert "inline_query" not in polled


async def test_a_newer_query_supersedes_the_one_being_typed(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.responder = lambda body: Plan(text=f"re: {body['messages'][-1]['content']}")
    async with start_bot(inline_mode=True):
        first = tg.send_inline_query(USER, "capital of")
        second = tg.send_inline_query(USER, "capital of Portugal?")
        await tg.wait_for(lambda: second in tg.inline_answers)
        await tg.wait_idle()
    assert first not in tg.inline_answers
    [result] = tg.inline_answers[second]["results"]
    assert result["input_message_content"]["message_text"] == "re: capital of Portugal?"
    # The superseded query never reached the model.
    assert [r["messages"][-1]["content"] for r in llm.requests] == ["capital of Portugal?"]


async def test_a_slow_model_gets_a_notice_within_the_inline_timeout(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="too late", first_token_delay=5)
    async with start_bot(inline_mode=True, inline_timeout_s=1):
        query_id = tg.send_inline_query(USER, "a hard question")
        await tg.wait_for(lambda: query_id in tg.inline_answers, timeout=3)
    answer = tg.inline_answers[query_id]
    assert answer["results"] == []
    assert answer["button"] == {"text": texts.INLINE_TIMEOUT, "start_parameter": "inline"}
    assert answer["cache_time"] == 0


async def test_inline_answers_respect_the_access_list(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(inline_mode=True, allowed_user_ids="1,2"):
        query_id = tg.send_inline_query(USER, "hello?")
        await tg.wait_for(lambda: query_id in tg.inline_answers)
    answer = tg.inline_answers[query_id]
    assert answer["results"] == []
    assert answer["button"]["text"] == texts.INLINE_REFUSED
    assert llm.requests == []
