"""Human handoff: /human or the model's marker opens a topic in the support chat with the
transcript; messages are relayed both ways while the model stays silent; /resolve (or the idle
timeout) gives the customer back to the assistant; all of it survives a restart."""

from __future__ import annotations

import pytest
import redis

from bot import texts
from bot.errors import ConfigError
from bot.memory import Memory
from bot.settings import load_settings
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

SUPPORT = -1009300
ANN, BOB = 9301, 9302
OLGA, OSKAR = 9311, 9312
PHOTO = {"photo": [{"file_id": "P1", "file_unique_id": "UP1", "width": 90, "height": 90}]}
INVOICE = {"document": {"file_id": "D1", "file_unique_id": "UD1", "file_name": "invoice.pdf"}}


async def ask(tg: FakeTelegram, chat: int, text: str) -> str:
    before = len(tg.texts(chat))
    tg.send_text(chat, text)
    messages = await tg.wait_messages(chat, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


def topic(tg: FakeTelegram, thread: int) -> list[str]:
    """What the operators see in a customer's topic."""
    return [m.text for m in tg.chat(SUPPORT).messages if m.message_thread_id == thread]


def the_topic(tg: FakeTelegram) -> int:
    [thread] = tg.topics(SUPPORT)
    return thread


def operator(tg: FakeTelegram, thread: int, text: str, user: int = OLGA) -> None:
    name = "Olga" if user == OLGA else "Oskar"
    tg.send_text(
        SUPPORT,
        text,
        user_id=user,
        first_name=name,
        message_thread_id=thread,
        is_topic_message=True,
    )


async def shown(tg: FakeTelegram, chat: int, text: str) -> None:
    await tg.wait_for(lambda: text in tg.texts(chat))


async def test_a_whole_handoff_round_trip(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    tg.forum(SUPPORT)
    llm.default = Plan(text="We open at 9.")
    async with start_bot(support_chat_id=SUPPORT, admin_user_ids=str(BOB)):
        menu = [c["command"] for c in tg.commands({"type": "all_private_chats"})]
        assert "human" in menu
        assert await ask(tg, ANN, "When do you open?") == "We open at 9."
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OPENED

        thread = the_topic(tg)
        assert tg.topics(SUPPORT)[thread] == f"Ann · {ANN}"
        intro = "\n".join(topic(tg, thread))
        assert f"Ann, user id {ANN}, language en asked for a person" in intro
        assert "Ann: When do you open?\nTelellama: We open at 9." in intro
        asked = len(llm.requests)

        # The customer's messages, of any kind, go to the topic; the model stays silent.
        tg.send_text(ANN, "My order 1234 is late")
        tg.send_media(ANN, INVOICE, caption="the invoice")
        await tg.wait_for(lambda: "the invoice" in topic(tg, thread))
        assert topic(tg, thread)[-2:] == ["My order 1234 is late", "the invoice"]
        assert tg.chat(SUPPORT).messages[-1].media == INVOICE
        assert await ask(tg, ANN, "/retry") == texts.HANDOFF_PAUSED
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_ALREADY
        assert "Handoffs open now: 1" in await ask(tg, BOB, "/stats")

        # Operators' messages, text and photos, go to the customer; two at once both arrive.
        operator(tg, thread, "Sorry! Let me check.")
        await shown(tg, ANN, "Sorry! Let me check.")
        tg.send_media(SUPPORT, PHOTO, caption="Your parcel", user_id=OLGA, message_thread_id=thread)
        operator(tg, thread, "It ships today.", OLGA)
        operator(tg, thread, "And here is a voucher: SORRY10", OSKAR)
        await shown(tg, ANN, "It ships today.")
        await shown(tg, ANN, "And here is a voucher: SORRY10")
        await shown(tg, ANN, "Your parcel")
        [photo] = [m for m in tg.chat(ANN).messages if m.media]
        assert photo.media == PHOTO
        await tg.wait_idle(quiet=0.05)
        assert len(llm.requests) == asked, "no model call during the handoff"

        operator(tg, thread, "/resolve")
        await shown(tg, ANN, texts.BACK_RESOLVED)
        await tg.wait_for(lambda: texts.resolved("Olga", "Ann") in topic(tg, thread))
        assert await ask(tg, ANN, "Thanks, bye!") == "We open at 9."
        assert len(llm.requests) == asked + 1
        stats = await ask(tg, BOB, "/stats")
        assert "2 answers, 👍 0, 👎 0, 0 don't know, 1 handoff" in stats
        assert "Handoffs open now: 0" in stats

        operator(tg, thread, "One more thing!")
        await tg.wait_for(lambda: texts.NOT_DELIVERED_RESOLVED in topic(tg, thread))
        assert "One more thing!" not in tg.texts(ANN)


async def test_the_models_handoff_marker_opens_a_handoff_and_is_never_shown(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    tg.forum(SUPPORT)
    # Slow enough for a draft of every state, the marker half and wholly written included.
    pieces = ["I'll ask a colleague", " to help you.", "\n[[HAND", "OFF]]", "\n"]
    llm.plan(Plan(chunks=pieces, token_delay=0.12))
    async with start_bot(support_chat_id=SUPPORT):
        tg.send_text(ANN, "I want to complain about my bill")
        await shown(tg, ANN, texts.HANDOFF_OPENED)
        assert tg.texts(ANN) == ["I'll ask a colleague to help you.", texts.HANDOFF_OPENED]
        drafts = [d.text for d in tg.chat(ANN).drafts]
        assert drafts and not any("[" in d for d in drafts)
        assert "[[HANDOFF]]" in llm.last_prompt[0]["content"], "the default persona explains it"

        intro = "\n".join(topic(tg, the_topic(tg)))
        assert "Telellama handed Ann" in intro
        assert "Last question: I want to complain about my bill" in intro
        stored = redis_client.lrange(f"{prefix}:{{u{ANN}}}:h:p", 0, -1)
        assert "HANDOFF" not in str(stored) and "ask a colleague" in str(stored)

        tg.send_text(ANN, "Hello?")
        await tg.wait_for(lambda: "Hello?" in topic(tg, the_topic(tg)))
        assert len(llm.requests) == 1


async def test_a_handoff_survives_a_restart(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    tg.forum(SUPPORT)
    async with start_bot(support_chat_id=SUPPORT):
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OPENED
    thread = the_topic(tg)
    async with start_bot(support_chat_id=SUPPORT):
        tg.send_text(ANN, "Are you still there?")
        await tg.wait_for(lambda: "Are you still there?" in topic(tg, thread))
        operator(tg, thread, "Yes, we are.")
        await shown(tg, ANN, "Yes, we are.")
        operator(tg, thread, "/resolve")
        await shown(tg, ANN, texts.BACK_RESOLVED)
    assert llm.requests == []


async def test_an_idle_handoff_ends_by_itself_and_the_topic_is_reused(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    tg.forum(SUPPORT)
    async with start_bot(support_chat_id=SUPPORT, handoff_idle_hours=0.0003):
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OPENED
        thread = the_topic(tg)
        await shown(tg, ANN, texts.BACK_IDLE)
        await tg.wait_for(lambda: any("No messages for" in t for t in topic(tg, thread)))

        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OPENED
        assert the_topic(tg) == thread, "the customer's topic is reused"
        operator(tg, thread, "/resolve")
        await shown(tg, ANN, texts.BACK_RESOLVED)

        tg.delete_topic(SUPPORT, thread)
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OPENED
        [new] = tg.topics(SUPPORT)
        assert new != thread, "a deleted topic is replaced by a new one"

        tg.delete_topic(SUPPORT, new)  # mid-handoff: the customer is not left talking to no one
        assert await ask(tg, ANN, "Hello?") == texts.BACK_RESOLVED
        assert await ask(tg, ANN, "Hello?") == "Hello! How can I help?"


async def test_without_a_usable_support_chat_the_assistant_carries_on(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="Happy to help.")
    async with start_bot():
        assert await ask(tg, ANN, "/human") == texts.HANDOFF_OFF
        menu = [c["command"] for c in tg.commands({"type": "all_private_chats"})]
        assert "human" not in menu
        assert await ask(tg, ANN, "hi") == "Happy to help."
        assert "[[HANDOFF]]" not in llm.last_prompt[0]["content"]
    # The support chat is not a forum (or the bot may not create topics there).
    async with start_bot(support_chat_id=SUPPORT):
        assert await ask(tg, BOB, "/human") == texts.HANDOFF_FAILED
        assert await ask(tg, BOB, "hello") == "Happy to help."
        tg.send_text(-1009400, "/human", user_id=BOB)
        await shown(tg, -1009400, texts.HANDOFF_IN_PRIVATE)


def test_support_chat_id_must_be_a_supergroup() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(llm_base_url="http://x/v1", support_chat_id="12345", _env_file=None)
    assert "SUPPORT_CHAT_ID 12345 is not a supergroup id" in str(error.value)
    assert "manage topics" in str(error.value)


async def test_a_handoff_ends_once_and_a_late_message_does_not_bring_it_back(
    redis_url: str, prefix: str
) -> None:
    memory = Memory.from_url(redis_url, prefix, 3600)
    try:
        assert await memory.claim_handoff(ANN, "Ann", 1.0, 60)
        assert not await memory.claim_handoff(ANN, "Ann", 1.5, 60), "one handoff at a time"
        await memory.start_handoff(ANN, 7, 2.0, 60)
        state = await memory.handoff(ANN)
        assert state is not None and (state.thread_id, state.since, state.last) == (7, 1.0, 2.0)
        assert await memory.idle_handoffs(2.5) == [ANN]
        ended = await memory.end_handoff(ANN)
        assert ended is not None and ended.name == "Ann"
        assert await memory.end_handoff(ANN) is None, "the customer is told once"
        await memory.touch_handoff(ANN, 3.0, 60)  # an operator's message relayed meanwhile
        assert await memory.handoff(ANN) is None and await memory.idle_handoffs(10.0) == []
        assert await memory.claim_handoff(ANN, "Ann", 4.0, 60)
    finally:
        await memory.close()
