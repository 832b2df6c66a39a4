"""Memory: what the model is sent on the next turn, across restarts, per user, within budget."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from bot.app import BotApp
from tests.conftest import BotFactory, chat_prompts, is_summary_request
from tests.fakes import FakeLLM, FakeTelegram, Plan

ANN, BOB = 2001, 2002


def contents(prompt: list[dict[str, Any]]) -> list[tuple[object, object]]:
    return [(m["role"], m["content"]) for m in prompt if m["role"] != "system"]


async def ask(tg: FakeTelegram, chat_id: int, text: str) -> str:
    before = len(tg.texts(chat_id))
    tg.send_text(chat_id, text)
    messages = await tg.wait_messages(chat_id, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


async def test_memory_survives_a_restart_and_reaches_the_model(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.plan(Plan(text="Nice to meet you, Ann."))
    async with start_bot():
        await ask(tg, ANN, "My name is Ann.")
    async with start_bot():
        llm.plan(Plan(text="Your name is Ann."))
        assert await ask(tg, ANN, "What is my name?") == "Your name is Ann."

    assert contents(llm.last_prompt) == [
        ("user", "My name is Ann."),
        ("assistant", "Nice to meet you, Ann."),
        ("user", "What is my name?"),
    ]


async def test_new_forgets_the_conversation(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    await ask(tg, ANN, "Remember the number 42.")
    tg.send_text(ANN, "/new")
    await tg.wait_for(lambda: any("forgotten" in t for t in tg.texts(ANN)))
    await ask(tg, ANN, "What number?")

    assert contents(llm.last_prompt) == [("user", "What number?")]


async def test_reset_is_an_alias_of_new(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    await ask(tg, ANN, "one")
    tg.send_text(ANN, "/reset")
    await tg.wait_for(lambda: any("forgotten" in t for t in tg.texts(ANN)))
    await ask(tg, ANN, "two")
    assert contents(llm.last_prompt) == [("user", "two")]


async def test_two_users_histories_never_mix(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    llm.responder = lambda body: Plan(text=f"echo: {body['messages'][-1]['content']}")
    await ask(tg, ANN, "Ann's secret is tulips.")
    await ask(tg, BOB, "Bob's secret is cactus.")
    await ask(tg, BOB, "What's my secret?")
    bob_prompt = json.dumps(llm.last_prompt)
    await ask(tg, ANN, "What's my secret?")
    ann_prompt = json.dumps(llm.last_prompt)

    assert "cactus" in bob_prompt and "tulips" not in bob_prompt
    assert "tulips" in ann_prompt and "cactus" not in ann_prompt


async def test_budget_drops_the_oldest_turns_first(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    # 1024 context - 256 answer leaves ~700 tokens: about 10 turns of ~70 tokens each fit.
    llm.responder = lambda body: Plan(text="ok " * 40, prompt_tokens=1)
    async with start_bot(llm_context_tokens=1024, llm_max_tokens=256):
        for i in range(25):
            await ask(tg, ANN, f"message number {i} " + "x" * 60)
    prompt = contents(llm.last_prompt)
    users = [str(c) for role, c in prompt if role == "user"]

    assert users[-1].startswith("message number 24")
    assert not any(u.startswith("message number 0 ") for u in users)
    numbers = [int(u.split()[2]) for u in users]
    assert numbers == sorted(numbers) and numbers == list(range(numbers[0], 25))
    assert len(numbers) < 25
    stored = redis_client.llen(f"{prefix}:{{u{ANN}}}:h:p")
    assert stored <= len(numbers), "memory is bounded by the budget, not kept forever"


async def test_keys_carry_a_ttl_and_a_per_user_hash_tag(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    async with start_bot(memory_ttl_days=2):
        await ask(tg, ANN, "hello")
    keys = redis_client.keys(f"{prefix}:*")
    # The /stats counters (bot.feedback) are the bot's, not the user's: they expire by day.
    user_keys = [key for key in keys if ":{stats}:" not in str(key)]
    assert user_keys and all(redis_client.ttl(key) > 0 for key in keys)
    for key in user_keys:
        assert f"{{u{ANN}}}" in str(key)
        assert 0 < redis_client.ttl(key) <= 2 * 86400


async def test_idle_timeout_starts_a_new_conversation_keeping_a_summary(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    def respond(body: dict[str, Any]) -> Plan:
        if is_summary_request(body["messages"]):
            return Plan(text="Ann talked about the old topic.")
        return Plan(text="Hello! How can I help?")

    llm.responder = respond
    meta = f"{prefix}:{{u{ANN}}}:m:p"
    async with start_bot(conversation_idle_minutes=10):
        await ask(tg, ANN, "old topic")
        # Pretend the last message was an hour ago.
        redis_client.hset(meta, "last", str(time.time() - 3600))
        await ask(tg, ANN, "new topic")
        assert contents(chat_prompts(llm)[-1]) == [("user", "new topic")]
        await tg.wait_for(lambda: redis_client.hget(meta, "summary") is not None)
        await ask(tg, ANN, "follow-up")
    last = chat_prompts(llm)[-1]
    assert [c for _, c in contents(last)] == ["new topic", "Hello! How can I help?", "follow-up"]
    assert "Ann talked about the old topic." in str(last[0]["content"])
    assert len(redis_client.lrange(f"{prefix}:{{u{ANN}}}:h:p", 0, -1)) == 2
    assert redis_client.llen(f"{prefix}:{{u{ANN}}}:o:p") == 0, "folded turns leave the list"
