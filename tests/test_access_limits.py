"""Access lists, rate limits and daily token quotas: refusals are polite, say when to come back,
never reach the model, exempt admins, and hold across replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import redis

from bot.access import AccessPolicy, refusal
from bot.errors import ConfigError
from bot.limits import Limits, LimitsConfig
from bot.memory import Memory
from bot.settings import load_settings
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

ANN, BOB, ADMIN = 9101, 9102, 9103
GROUP, OTHER_GROUP = -1009100, -1009200
AGAIN = re.compile(r"write again at (\d\d:\d\d(?::\d\d)?) UTC \(in (.+)\)\.$")


async def ask(tg: FakeTelegram, chat: int, text: str, user: int | None = None) -> str:
    before = len(tg.texts(chat))
    tg.send_text(chat, text, user_id=user)
    messages = await tg.wait_messages(chat, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


def test_the_access_decision() -> None:
    everyone = AccessPolicy()
    assert refusal(everyone, ANN, ANN) is None and refusal(everyone, ANN, GROUP) is None

    users = AccessPolicy.of((ANN,), (), (ADMIN,))
    assert refusal(users, ANN, ANN) is None and refusal(users, ANN, GROUP) is None
    refused = refusal(users, BOB, BOB)
    assert refused is not None and str(BOB) in refused and "Sorry" in refused
    assert refusal(users, ADMIN, OTHER_GROUP) is None, "admins are always allowed"

    groups = AccessPolicy.of((), (GROUP,), ())
    assert refusal(groups, BOB, GROUP) is None
    assert refusal(groups, BOB, BOB) is None, "a private chat is governed by the user list"
    refused = refusal(groups, BOB, OTHER_GROUP)
    assert refused is not None and "not enabled in this group" in refused
    assert str(OTHER_GROUP) in refused

    both = AccessPolicy.of((ANN,), (GROUP,), ())
    assert refusal(both, ANN, GROUP) is None
    assert refusal(both, ANN, OTHER_GROUP) is not None
    assert refusal(both, BOB, GROUP) is not None


async def test_refused_users_get_a_polite_refusal_and_no_model_call(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="Hello!")
    async with start_bot(allowed_user_ids=f"{ANN}", admin_user_ids=str(ADMIN)):
        answer = await ask(tg, BOB, "hi there")
        assert answer.startswith("Sorry, I'm only available to approved users")
        assert str(BOB) in answer
        assert "only available" in await ask(tg, BOB, "/retry")
        assert "only available" in await ask(tg, BOB, "/ask what is 2+2?")
        assert llm.requests == [], "no model call for a refused user"

        assert await ask(tg, ANN, "hi there") == "Hello!"
        assert await ask(tg, ADMIN, "hi there") == "Hello!"
        assert len(llm.requests) == 2


async def test_the_bot_answers_only_in_allowed_groups(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="Hello!")
    async with start_bot(allowed_chat_ids=str(GROUP)):
        answer = await ask(tg, OTHER_GROUP, "/ask hello?", user=ANN)
        assert "not enabled in this group" in answer and str(OTHER_GROUP) in answer
        assert llm.requests == []
        assert await ask(tg, GROUP, "/ask hello?", user=ANN) == "Hello!"
        assert await ask(tg, ANN, "hello?") == "Hello!", "private chats need only the user list"


async def test_over_the_rate_limit_the_reply_says_when_to_write_again(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(rate_limit_per_minute=2, admin_user_ids=str(ADMIN)):
        started = time.time()
        await ask(tg, ANN, "one")
        await ask(tg, ANN, "two")
        refused = await ask(tg, ANN, "three")
        assert refused.startswith("You're sending messages faster than I can answer")
        match = AGAIN.search(refused)
        assert match is not None, refused
        wait = int(match.group(2).split()[0])
        assert 55 <= wait <= 60 and match.group(2).endswith("seconds")
        expected = time.strftime("%H:%M:%S", time.gmtime(started + 60))
        assert abs(_seconds(match.group(1)) - _seconds(expected)) <= 2
        assert len(llm.requests) == 2, "no model call over the limit"

        assert "faster" not in await ask(tg, BOB, "one"), "the limit is per user"
        for n in range(4):
            assert "faster" not in await ask(tg, ADMIN, f"admin {n}"), "admins are exempt"


def _seconds(clock: str) -> int:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds


async def test_over_the_daily_quota_the_reply_says_when_to_write_again(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    llm.default = Plan(text="A short answer.")
    async with start_bot(daily_token_quota=50, admin_user_ids=str(ADMIN)):
        assert await ask(tg, ANN, "What is a token?") == "A short answer."
        # The fake reports prompt tokens as characters / 4 and one token per streamed piece.
        [request] = llm.requests
        prompt = sum(len(m["content"]) for m in request["messages"]) // 4
        used = redis_client.hget(f"{prefix}:{{u{ANN}}}:quota", "used")
        assert used is not None and int(used) == prompt + 3 > 50

        refused = await ask(tg, ANN, "And another question?")
        assert refused.startswith("You've used today's allowance of 50 tokens.")
        match = AGAIN.search(refused)
        assert match is not None and match.group(1) == "00:00", refused
        assert len(llm.requests) == 1, "no model call over the quota"

        for n in range(3):
            assert await ask(tg, ADMIN, f"admin {n}") == "A short answer."
        assert redis_client.hget(f"{prefix}:{{u{ADMIN}}}:quota", "used") is None


async def test_the_rate_limit_holds_across_two_replicas(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    # Two bots (two Telegram fakes) on one Redis and one key prefix, like two replicas.
    llm.default = Plan(text="ok")
    async with FakeTelegram() as tg2, start_bot(rate_limit_per_minute=3):
        second = {"telegram_bot_token": tg2.token, "telegram_api_base_url": tg2.base_url}
        async with start_bot(rate_limit_per_minute=3, **second):
            assert await ask(tg, ANN, "one") == "ok"
            assert await ask(tg2, ANN, "two") == "ok"
            assert await ask(tg, ANN, "three") == "ok"
            assert "faster" in await ask(tg2, ANN, "four")
            assert "faster" in await ask(tg, ANN, "five")
    assert len(llm.requests) == 3


async def test_concurrent_requests_never_pass_the_limit(redis_url: str, prefix: str) -> None:
    replicas = 2  # two clients with their own connections, as two processes would have
    memories = [Memory.from_url(redis_url, prefix, 3600) for _ in range(replicas)]
    try:
        limits = [Limits(LimitsConfig(per_minute=5), m) for m in memories]
        verdicts = await asyncio.gather(*(limits[i % replicas].check(ANN) for i in range(40)))
        assert sum(v is None for v in verdicts) == 5
        quota = [Limits(LimitsConfig(daily_tokens=100), m) for m in memories]
        await asyncio.gather(*(quota[i % replicas].charge(BOB, 10) for i in range(10)))
        assert await quota[0].check(BOB) is not None, "10 charges of 10 reach a quota of 100"
    finally:
        for memory in memories:
            await memory.close()


@pytest.mark.parametrize(
    ("overrides", "named", "fix"),
    [
        ({"allowed_user_ids": "123, abc"}, "ALLOWED_USER_IDS", "numeric Telegram user ids"),
        ({"allowed_chat_ids": "@mygroup"}, "ALLOWED_CHAT_IDS", "-1001234567890"),
        ({"admin_user_ids": "1;2"}, "ADMIN_USER_IDS", "separated by commas"),
        ({"rate_limit_per_minute": -1}, "RATE_LIMIT_PER_MINUTE", "greater than or equal to 0"),
        ({"knowledge_dir": "/nonexistent/kb"}, "KNOWLEDGE_DIR", "folder of .md, .txt and .pdf"),
        ({"knowledge_strict": True}, "KNOWLEDGE_STRICT", "set KNOWLEDGE_DIR"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(
    overrides: dict[str, object], named: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(llm_base_url="http://localhost:8000/v1", _env_file=None, **overrides)
    assert f"Setting {named}" in str(caught.value) and fix in str(caught.value)


def test_id_lists_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", " 12, 34 ,")
    monkeypatch.setenv("ALLOWED_CHAT_IDS", "-1001234567890")
    settings = load_settings(llm_base_url="http://localhost:8000/v1", _env_file=None)
    assert settings.allowed_user_ids == (12, 34)
    assert settings.allowed_chat_ids == (-1001234567890,)
    assert settings.admin_user_ids == ()
