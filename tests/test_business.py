"""Telegram Business: customers of a connected business are answered on the owner's behalf
(`business_connection_id`, streamed by edits), the bot steps back when the owner writes, and
stays silent for disabled connections, connections without reply rights and its own messages."""

from __future__ import annotations

import asyncio

import redis

from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

OWNER, CUSTOMER, OTHER = 9401, 9402, 9403
SHOP = "shop-connection-1"


async def answered(tg: FakeTelegram, chat: int, n: int) -> str:
    messages = await tg.wait_messages(chat, n)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


async def silent(tg: FakeTelegram) -> None:
    await tg.wait_idle(quiet=0.15)


async def test_customers_are_answered_through_the_connection_and_the_owner_pauses_the_bot(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    slow = Plan(text="Yes, we have size M in stock.", token_delay=0.04)
    llm.default = Plan(text="Hello again!")
    llm.plan(slow)
    async with start_bot(business_pause_minutes=0.02):
        tg.connect_business(SHOP, OWNER, owner_name="Bea")
        tg.send_business_text(SHOP, CUSTOMER, "Do you have size M?", first_name="Cy")
        await tg.wait_for(lambda: tg.texts(CUSTOMER) == ["Yes, we have size M in stock."])
        await tg.wait_idle(quiet=0.1)

        [reply] = tg.chat(CUSTOMER).messages
        assert reply.business_connection_id == SHOP
        edits = tg.calls_of("editMessageText")
        assert edits, "streamed by editing the message"
        sends = tg.calls_of("sendMessage") + edits + tg.calls_of("sendChatAction")
        to_customer = [c for c in sends if c.params.get("chat_id") == CUSTOMER]
        assert all(c.params.get("business_connection_id") == SHOP for c in to_customer)
        assert all(c.ok for c in to_customer)
        assert tg.chat(CUSTOMER).drafts == [], "drafts cannot be sent as a business"
        stored = f"{prefix}:{{u{CUSTOMER}}}:h:b{SHOP}"
        assert redis_client.llen(stored) == 1, "a memory of its own, apart from a private chat"

        # The owner writes: the bot leaves that chat to them for the pause, others still get
        # answers, and the bot's own messages (reported back by Telegram) change nothing.
        tg.send_business_text(SHOP, CUSTOMER, "I'll take this one, Cy!", from_owner=True)
        tg.send_business_text(SHOP, CUSTOMER, "Thanks Bea! And size L?", first_name="Cy")
        tg.send_business_text(SHOP, OTHER, "Are you open today?", sent_by_bot=True)
        await silent(tg)
        assert len(llm.requests) == 1
        tg.send_business_text(SHOP, OTHER, "Are you open today?")
        assert await answered(tg, OTHER, 1) == "Hello again!"

        await asyncio.sleep(1.3)  # BUSINESS_PAUSE_MINUTES=0.02 is 1.2 s
        tg.send_business_text(SHOP, CUSTOMER, "Hello?", first_name="Cy")
        assert await answered(tg, CUSTOMER, 2) == "Hello again!"


async def test_disabled_connections_and_ones_without_reply_rights_get_no_answer(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        tg.connect_business(SHOP, OWNER, can_reply=False)
        tg.send_business_text(SHOP, CUSTOMER, "Hi!")
        await silent(tg)
        tg.connect_business(SHOP, OWNER)
        tg.send_business_text(SHOP, CUSTOMER, "Hi again!")
        await answered(tg, CUSTOMER, 1)
        tg.connect_business(SHOP, OWNER, enabled=False)
        tg.send_business_text(SHOP, CUSTOMER, "Anyone?")
        await silent(tg)
    assert len(llm.requests) == 1
    assert len(tg.texts(CUSTOMER)) == 1


async def test_a_connection_made_earlier_is_looked_up_and_the_owner_must_be_allowed(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    tg.connect_business(SHOP, OWNER, notify=False)
    async with start_bot(allowed_user_ids=str(OTHER)):
        tg.send_business_text(SHOP, CUSTOMER, "Hi!")
        await silent(tg)
    assert len(tg.calls_of("getBusinessConnection")) == 1
    assert llm.requests == [], "the owner is not allowed to use the bot"
    async with start_bot(allowed_user_ids=str(OWNER)):
        tg.send_business_text(SHOP, CUSTOMER, "Hi again!")
        await answered(tg, CUSTOMER, 1)
    assert len(tg.calls_of("getBusinessConnection")) == 1, "stored after the first look-up"
    assert len(llm.requests) == 1, "the owner's customers need not be on the list"
