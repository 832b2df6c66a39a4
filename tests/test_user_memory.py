"""Facts the user controls, /memory, /forget, and "forget everything" leaving nothing behind."""

from __future__ import annotations

import json

import redis

from bot.app import BotApp
from tests.conftest import chat_prompts
from tests.fakes import FakeLLM, FakeTelegram

ANN, BOB = 8001, 8002
GROUP = -1009999


async def say(tg: FakeTelegram, text: str, n: int, chat: int = ANN, user: int = ANN) -> str:
    tg.send_text(chat, text, user_id=user)
    return (await tg.wait_messages(chat, n))[-1].text


async def test_remembered_facts_reach_private_prompts_only(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    assert "remember that: I'm vegetarian" in await say(tg, "/remember I'm vegetarian", 1)
    reply = await say(tg, "Please remember that my cat is called Miso.", 2)
    assert "my cat is called Miso" in reply
    assert llm.requests == [], "storing a fact needs no model call"

    await say(tg, "Suggest a dinner", 3)
    system = chat_prompts(llm)[-1][0]["content"]
    assert "I'm vegetarian" in system and "my cat is called Miso" in system

    tg.send_text(GROUP, "@telellama_bot suggest a dinner", user_id=ANN)
    await tg.wait_messages(GROUP, 1)
    assert "vegetarian" not in json.dumps(chat_prompts(llm)[-1])


async def test_memory_lists_facts_and_conversations_and_forget_deletes_one(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    await say(tg, "/remember I live in Lisbon", 1)
    await say(tg, "/remember I play the cello", 2)
    await say(tg, "hello", 3)
    tg.send_text(GROUP, "@telellama_bot hi", user_id=ANN)
    await tg.wait_messages(GROUP, 1)
    group_history = f"{prefix}:{{u{ANN}}}:h:g{GROUP}t0"
    await tg.wait_for(lambda: redis_client.exists(group_history) == 1)

    listing = await say(tg, "/memory", 4)
    assert "1. I live in Lisbon" in listing and "2. I play the cello" in listing
    assert "our private chat: 1 exchange" in listing and f"the group Group {GROUP}" in listing

    assert "Forgotten: I live in Lisbon" in await say(tg, "/forget 1", 5)
    listing = await say(tg, "/memory", 6)
    assert "Lisbon" not in listing and "1. I play the cello" in listing
    assert "no fact number 7" in await say(tg, "/forget 7", 7)


async def test_memory_commands_stay_out_of_groups(tg: FakeTelegram, bot: BotApp) -> None:
    tg.send_text(GROUP, "/memory", user_id=ANN)
    [reply] = await tg.wait_messages(GROUP, 1)
    assert "private chat" in reply.text


async def test_forget_all_leaves_no_key_behind(
    tg: FakeTelegram,
    llm: FakeLLM,
    bot: BotApp,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    await say(tg, "/remember I like tea", 1)
    await say(tg, "hello", 2)
    tg.send_text(GROUP, "@telellama_bot hi", user_id=ANN)
    await tg.wait_messages(GROUP, 1)
    await say(tg, "hi", 1, chat=BOB, user=BOB)
    assert redis_client.keys(f"{prefix}:{{u{ANN}}}:*")

    confirm = await say(tg, "/forget all", 3)
    assert "Sure?" in confirm
    question = tg.chat(ANN).messages[-1]
    assert question.reply_markup is not None

    tg.send_callback(ANN, ANN, question.message_id, "forget-all")
    await tg.wait_for(lambda: "deleted everything" in tg.chat(ANN).messages[-1].text)
    assert redis_client.keys(f"{prefix}:{{u{ANN}}}:*") == []
    assert redis_client.keys(f"{prefix}:{{u{BOB}}}:*"), "other users keep their memory"


async def test_forget_all_can_be_cancelled(
    tg: FakeTelegram, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    await say(tg, "/remember I like tea", 1)
    await say(tg, "/forget all", 2)
    question = tg.chat(ANN).messages[-1]
    tg.send_callback(ANN, ANN, question.message_id, "forget-all:no")
    await tg.wait_for(lambda: "Nothing was deleted" in tg.chat(ANN).messages[-1].text)
    assert redis_client.keys(f"{prefix}:{{u{ANN}}}:*")


async def test_a_forged_forget_button_deletes_nothing(
    tg: FakeTelegram, bot: BotApp, redis_client: redis.Redis, prefix: str
) -> None:
    await say(tg, "/remember I like tea", 1)
    await say(tg, "/forget all", 2)
    question = tg.chat(ANN).messages[-1]
    tg.send_callback(ANN, BOB, question.message_id, "forget-all")
    await tg.wait_for(lambda: len(tg.callback_answers) == 1)
    assert redis_client.keys(f"{prefix}:{{u{ANN}}}:*")
