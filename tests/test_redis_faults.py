"""Redis failing under a running bot: it keeps answering without memory, says so once, and
recovers by itself when Redis is back; unreachable at start, it waits, then runs degraded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import RedisProcess

USER = 9501


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


async def ask(tg: FakeTelegram, text: str) -> str:
    before = len(tg.texts(USER))
    tg.send_text(USER, text)
    messages = await tg.wait_messages(USER, before + 1, timeout=15)
    await tg.wait_idle(quiet=0.1)
    return messages[-1].text


async def test_redis_stopping_and_coming_back(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, own_redis: RedisProcess
) -> None:
    llm.responder = lambda body: Plan(text=f"Answer {len(llm.requests)}.")
    async with start_bot(redis_url=own_redis.url):
        assert await ask(tg, "first") == "Answer 1."

        own_redis.stop()
        degraded = await ask(tg, "second")
        assert degraded.startswith("Answer 2.") and "memory is unavailable" in degraded
        assert await ask(tg, "third") == "Answer 3.", "the notice is given once"

        own_redis.start()
        await asyncio.sleep(0.2)
        assert await ask(tg, "fourth") == "Answer 4."
        assert await ask(tg, "fifth") == "Answer 5."
    # Memory holds exactly the turns that completed while Redis was up.
    contents = [m["content"] for m in chat_prompts(llm)[-1][1:]]
    assert contents == ["first", "Answer 1.", "fourth", "Answer 4.", "fifth"]


async def test_redis_unreachable_at_start(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisProcess(tmp_path)
    async with start_bot(redis_url=server.url, redis_wait_s=1.0):
        assert "waiting for Redis" in caplog.text
        reply = await ask(tg, "hello")
        assert "memory is unavailable" in reply
        server.start()
        try:
            await asyncio.sleep(0.2)
            assert "memory is unavailable" not in await ask(tg, "again")
        finally:
            server.stop()
