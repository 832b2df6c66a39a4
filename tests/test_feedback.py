"""👍/👎 under answers: only under the model's answers (the last message of a long one), votes
stored with the question and answer, counted once, changeable, the asker's only; /stats for
admins with counts per day, the 👍 share, handoffs and the top unanswered questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from bot import texts
from bot.feedback import last_days
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

ANN, BOB, ADMIN = 9501, 9502, 9503
GROUP = -1009500
KB = Path(__file__).parent / "data" / "kb"


async def ask(tg: FakeTelegram, chat: int, text: str, user: int | None = None) -> str:
    before = len(tg.texts(chat))
    tg.send_text(chat, text, user_id=user)
    messages = await tg.wait_messages(chat, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


def votes(markup: dict[str, Any] | None) -> list[str]:
    assert markup is not None, "the answer has no buttons"
    [row] = markup["inline_keyboard"]
    assert [button["text"] for button in row] == ["👍", "👎"]
    return [button["callback_data"] for button in row]


async def press(tg: FakeTelegram, chat: int, user: int, message_id: int, data: str) -> str:
    query = tg.send_callback(chat, user, message_id, data)
    await tg.wait_for(lambda: query in tg.callback_answers)
    return str(tg.callback_answers[query].get("text"))


async def test_votes_are_stored_with_the_answer_and_counted_in_stats(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    llm.default = Plan(text="Paris.")
    async with start_bot(feedback_buttons=True, admin_user_ids=str(ADMIN)):
        assert await ask(tg, ANN, "What is the capital of France?") == "Paris."
        [answer] = tg.chat(ANN).messages
        up, down = votes(answer.reply_markup)

        assert await press(tg, ANN, ANN, answer.message_id, down) == texts.VOTE_THANKS
        assert await press(tg, ANN, ANN, answer.message_id, down) == texts.VOTE_NOTED
        raw = redis_client.hgetall(f"{prefix}:{{u{ANN}}}:fb")
        kept = {str(k): str(v) for k, v in raw.items()}  # decoded by the client already
        [record] = [json.loads(v) for k, v in kept.items() if not k.endswith(":v")]
        assert record["q"] == "What is the capital of France?" and record["a"] == "Paris."
        assert [v for k, v in kept.items() if k.endswith(":v")] == ["-"]

        stats = await ask(tg, ADMIN, "/stats")
        today = last_days(1, record["at"])[0]
        assert f"{today}: 1 answer, 👍 0, 👎 1, 0 don't know, 0 handoffs" in stats
        assert "1. what is the capital of france (1×)" in stats
        assert "👍 share: 0% of 1 vote" in stats

        assert await press(tg, ANN, ANN, answer.message_id, up) == texts.VOTE_THANKS
        stats = await ask(tg, ADMIN, "/stats")
        assert f"{today}: 1 answer, 👍 1, 👎 0" in stats and "capital of france" not in stats
        assert "👍 share: 100% of 1 vote" in stats

        assert await ask(tg, ANN, "/stats") == texts.STATS_ADMINS_ONLY


async def test_buttons_go_under_the_models_answers_only(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    long = "\n\n".join(f"Paragraph {n}: " + "wonderfully " * 100 for n in range(4))
    llm.plan(Plan(text=long), Plan(text="Hi all."))
    async with start_bot(feedback_buttons=True):
        tg.send_text(ANN, "Tell me a long story")
        await tg.wait_for(lambda: len(tg.texts(ANN)) >= 2 and "Paragraph 3" in tg.texts(ANN)[-1])
        await tg.wait_idle(quiet=0.05)
        *first, last = tg.chat(ANN).messages
        assert all(m.reply_markup is None for m in first)
        votes(last.reply_markup)

        remembered = await ask(tg, ANN, "remember that I like tea")
        assert remembered.startswith("Got it") and tg.chat(ANN).messages[-1].reply_markup is None

        await ask(tg, GROUP, "/ask hello?", user=ANN)
        [answer] = tg.chat(GROUP).messages
        _, down = votes(answer.reply_markup)
        assert await press(tg, GROUP, BOB, answer.message_id, down) == texts.NOT_YOURS
        assert await press(tg, GROUP, ANN, answer.message_id, down) == texts.VOTE_THANKS


async def test_no_buttons_unless_switched_on(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        await ask(tg, ANN, "hi")
        assert tg.chat(ANN).messages[0].reply_markup is None


async def test_dont_know_answers_count_as_unanswered(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(knowledge_dir=KB, knowledge_strict=True, admin_user_ids=str(ADMIN)):
        assert "/human" in await ask(tg, ANN, "Can you repair my bicycle?")
        assert "/human" in await ask(tg, BOB, "can you repair my bicycle")
        stats = await ask(tg, ADMIN, "/stats 3")
    assert llm.requests == []
    assert "The last 3 days (UTC)" in stats
    assert "0 answers, 👍 0, 👎 0, 2 don't know, 0 handoffs" in stats
    assert "1. can you repair my bicycle (2×)" in stats
