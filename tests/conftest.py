"""Fixtures: a real Redis, the fake Telegram Bot API and the fake LLM as real HTTP servers, and
the real bot (built by bot.app, long polling) talking to them."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from bot import logs
from bot.app import BotApp, build_application, running
from bot.settings import Settings, load_settings
from tests.fakes import FakeLLM, FakeTelegram
from tests.processes import free_port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when given (scripts/test starts a throwaway one); else a redis-server of ours."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.exit("no REDIS_URL and no redis-server: run the tests with scripts/test", 2)
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield url
        process.terminate()
        process.wait()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own: tests never see each other's keys, nothing is flushed."""
    return f"test{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


# The secrets every test's bot runs with: the fake Bot API's token and this API key.
TEST_API_KEY = "sk-test-secret-key-0123456789"


@pytest.fixture(autouse=True)
def secrets_stay_out_of_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test: nothing logged may contain the bot token or the model's API key."""
    logs.quiet_libraries()  # as the bot's entry point configures them
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="handlers")
    yield
    token_secret = FakeTelegram().token.split(":", 1)[1]
    for record in caplog.records:
        text = record.getMessage() + (caplog.text if record.exc_info else "")
        assert token_secret not in text, f"the bot token leaked into a log line: {record.name}"
        assert TEST_API_KEY not in text, f"the API key leaked into a log line: {record.name}"


@pytest.fixture
def make_settings(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "telegram_bot_token": tg.token,
            "telegram_api_base_url": tg.base_url,
            "llm_base_url": llm.base_url,
            "llm_model": "llama-3-8b-instruct",
            "llm_api_key": TEST_API_KEY,
            "redis_url": redis_url,
            "redis_key_prefix": prefix,
            "llm_first_token_timeout_s": 3,
            "llm_stall_timeout_s": 3,
            "stream_draft_interval_s": 0.05,
            "stream_edit_interval_s": 0.05,
            # Per-chat pacing (about one message a second) would make most tests wait; the
            # tests of pacing itself switch it back on.
            "telegram_chat_messages_per_s": 0,
            "data_dir": tmp_path,
            "_env_file": None,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


BotFactory = Callable[..., AbstractAsyncContextManager[BotApp]]


@pytest.fixture
def start_bot(make_settings: Callable[..., Settings]) -> BotFactory:
    """`async with start_bot(**settings) as app:` runs the real bot against the fakes."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[BotApp]:
        settings = make_settings(**overrides)
        async with running(build_application(settings), settings, poll_timeout=1) as app:
            yield app

    return start


@pytest.fixture
async def bot(start_bot: BotFactory) -> AsyncIterator[BotApp]:
    async with start_bot() as app:
        yield app


def is_summary_request(prompt: list[dict[str, Any]]) -> bool:
    return bool(prompt) and str(prompt[0]["content"]).startswith("You maintain the running summary")


def chat_prompts(llm: FakeLLM) -> list[list[dict[str, Any]]]:
    """The prompts of answers, without the background summary requests."""
    return [p for p in llm.prompts if not is_summary_request(p)]
