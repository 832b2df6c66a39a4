"""Every failure gets a clear reply, a log line, and leaves memory exactly as it was."""

from __future__ import annotations

import logging
import socket

import pytest
import redis

from bot.app import BotApp
from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan

USER = 4001


def stored_turns(redis_client: redis.Redis, prefix: str, user: int = USER) -> int:
    return int(redis_client.llen(f"{prefix}:{{u{user}}}:h:p"))


async def last_reply(tg: FakeTelegram, text: str, n: int = 1) -> str:
    tg.send_text(USER, text)
    messages = await tg.wait_messages(USER, n, timeout=10)
    await tg.wait_idle(quiet=0.1)
    return messages[-1].text


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_llm_unreachable(
    tg: FakeTelegram,
    start_bot: BotFactory,
    closed_port_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_bot(llm_base_url=closed_port_url, llm_max_retries=1):
        reply = await last_reply(tg, "hello?")
    assert "unreachable" in reply
    assert stored_turns(redis_client, prefix) == 0
    assert "llm endpoint unreachable: ConnectError" in caplog.text


async def test_slow_first_token(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(text="too late", first_token_delay=3))
    async with start_bot(llm_first_token_timeout_s=0.5):
        reply = await last_reply(tg, "hello?")
    assert "took too long" in reply
    assert stored_turns(redis_client, prefix) == 0


async def test_rate_limited_then_recovers_before_the_first_token(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(
        Plan(status=429, error_message="slow down", headers={"Retry-After": "0.2"}),
        Plan(text="Here you go."),
    )
    assert await last_reply(tg, "hello?") == "Here you go."
    assert len(llm.requests) == 2
    assert stored_turns(redis_client, prefix) == 1


async def test_rate_limited_for_long(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(status=429, error_message="quota", headers={"Retry-After": "120"}))
    reply = await last_reply(tg, "hello?")
    assert "busy" in reply
    assert len(llm.requests) == 1, "a long Retry-After is not waited out while the user waits"
    assert stored_turns(redis_client, prefix) == 0


async def test_server_errors_are_retried_then_reported(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm.default = Plan(status=503, error_message="overloaded")
    async with start_bot(llm_max_retries=2):
        reply = await last_reply(tg, "hello?")
    assert "internal error" in reply
    assert len(llm.requests) == 3
    assert stored_turns(redis_client, prefix) == 0
    assert "llm endpoint answered 503: overloaded" in caplog.text


async def test_cut_mid_stream_keeps_what_was_shown(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(chunks=["The answer ", "is ", "forty", " two"], cut_after=3, token_delay=0.05))
    reply = await last_reply(tg, "what is it?")
    assert reply.startswith("The answer is forty")
    assert "cut off" in reply
    assert len(llm.requests) == 1, "nothing is retried once text was shown"
    assert stored_turns(redis_client, prefix) == 0


async def test_stream_ending_without_done(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(chunks=["partial ", "answer"], cut_after=2))
    reply = await last_reply(tg, "hi")
    assert reply.startswith("partial answer") and "cut off" in reply
    assert stored_turns(redis_client, prefix) == 0


async def test_empty_answer(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(text="", chunks=[]))
    reply = await last_reply(tg, "hi")
    assert "empty answer" in reply
    assert stored_turns(redis_client, prefix) == 0


async def test_malformed_stream(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.default = Plan(malformed=True)
    reply = await last_reply(tg, "hi")
    assert "error" in reply.lower()
    assert "Traceback" not in reply
    assert stored_turns(redis_client, prefix) == 0


async def test_prompt_too_long_is_trimmed_harder_and_retried_once(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    for i in range(6):
        await last_reply(tg, f"question {i} " + "words " * 200, n=i + 1)
    llm.plan(Plan(context_length_exceeded=True), Plan(text="Fits now."))
    assert await last_reply(tg, "and finally?", n=7) == "Fits now."
    first, second = chat_prompts(llm)[-2:]
    assert len(second) < len(first)
    assert second[-1]["content"] == "and finally?"


async def test_prompt_too_long_twice(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    await last_reply(tg, "first")
    llm.default = Plan(context_length_exceeded=True)
    reply = await last_reply(tg, "second", n=2)
    assert "too long" in reply and "/new" in reply
    assert len(llm.requests) == 3, "one normal turn, then one attempt and one tighter retry"
    assert stored_turns(redis_client, prefix) == 1


async def test_prompt_too_long_without_history_is_not_retried(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.default = Plan(context_length_exceeded=True)
    reply = await last_reply(tg, "hi")
    assert "too long" in reply
    assert len(llm.requests) == 1


async def test_message_over_the_input_limit(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(max_input_chars=1000):
        reply = await last_reply(tg, "x" * 1500)
    assert "too long" in reply and "1,000" in reply
    assert llm.requests == []


async def test_telegram_429_on_the_final_message_is_waited_out(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    tg.fail(
        "sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    llm.plan(Plan(text="Delivered anyway."))
    assert await last_reply(tg, "hi") == "Delivered anyway."
    attempts = tg.calls_of("sendMessage")
    assert len(attempts) == 2
    assert attempts[1].t - attempts[0].t >= 1.0
    assert stored_turns(redis_client, prefix) == 1


async def test_rejected_entities_fall_back_to_plain_text(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    tg.fail("sendMessage", status=400, description="Bad Request: can't parse entities: oops")
    llm.plan(Plan(text="Some **bold** words"))
    assert await last_reply(tg, "hi") == "Some bold words"
    [message] = tg.chat(USER).messages
    assert message.entities == []


async def test_user_who_blocked_the_bot_is_logged_not_retried(
    tg: FakeTelegram,
    llm: FakeLLM,
    bot: BotApp,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    tg.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    llm.plan(Plan(text="Nobody will read this."))
    tg.send_text(USER, "hi")
    await tg.wait_for(lambda: len(tg.calls_of("sendMessage")) == 1)
    await tg.wait_idle(quiet=0.3)
    assert len(tg.calls_of("sendMessage")) == 1
    assert "blocked" in caplog.text
    assert stored_turns(redis_client, prefix) == 0


async def test_not_modified_is_not_an_error(
    llm: FakeLLM, start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeTelegram(drafts_supported=False) as tg:
        llm.plan(Plan(chunks=["plain ", "words"], token_delay=0.1))
        async with start_bot(telegram_api_base_url=tg.base_url):
            tg.send_text(USER, "hi")
            await tg.wait_for(lambda: tg.texts(USER) == ["plain words"])
            await tg.wait_idle(quiet=0.2)
    assert "not modified" not in caplog.text.lower() and "ERROR" not in caplog.text
    assert not any("wrong" in t for t in tg.texts(USER))


async def test_error_event_mid_stream(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    llm.plan(Plan(chunks=["Half ", "an ", "answer"], stream_error_after=2, token_delay=0.02))
    reply = await last_reply(tg, "hi")
    assert reply.startswith("Half an") and "cut off" in reply
    assert stored_turns(redis_client, prefix) == 0


async def test_wrong_api_key_is_reported_without_retrying(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    llm.require_key = "sk-right"
    async with start_bot(llm_api_key="sk-wrong"):
        reply = await last_reply(tg, "hi")
    assert "rejected" in reply
    assert len(llm.requests) <= 1
    assert "401" in caplog.text and "sk-wrong" not in caplog.text
