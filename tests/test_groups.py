"""Groups: answered only when addressed, as a reply in the right topic, one conversation per
member, shared context only where switched on, settings for admins only."""

from __future__ import annotations

import json
from typing import Any

from bot import texts
from bot.app import BotApp
from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan, TelegramLimits

GROUP, OTHER_GROUP = -1001234, -1005678
ANN, BOB = 7001, 7002
BOT = "@telellama_bot"


def echo(body: dict[str, Any]) -> Plan:
    return Plan(text=f"re: {body['messages'][-1]['content']}")


async def quiet(tg: FakeTelegram) -> None:
    await tg.wait_idle(quiet=0.2)


async def test_a_mention_is_answered_as_a_reply_with_the_mention_removed(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = echo
    asked = tg.send_text(GROUP, f"{BOT} what is 2+2?", user_id=ANN)
    [reply] = await tg.wait_messages(GROUP, 1)
    assert reply.text == "re: what is 2+2?"
    assert reply.reply_to_message_id == asked
    assert tg.chat(GROUP).drafts == [], "drafts are for private chats only"


async def test_messages_not_for_the_bot_are_left_alone(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    tg.send_text(GROUP, "just chatting among ourselves", user_id=ANN)
    tg.send_text(GROUP, "/ask@otherbot what time is it?", user_id=ANN)
    tg.send_text(GROUP, "hey @someone_else look", user_id=BOB)
    code = f"look at `{BOT}` in the code"
    start = code.index("`")
    tg.send_text(
        GROUP,
        code,
        user_id=BOB,
        entities=[{"type": "code", "offset": start, "length": len(BOT) + 2}],
    )
    await quiet(tg)
    assert tg.texts(GROUP) == []
    assert llm.requests == []


async def test_every_way_of_addressing_the_bot_is_answered(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.responder = echo
    async with start_bot(group_trigger_words="llama, Assistant"):
        first = tg.send_text(GROUP, f"{BOT} hello", user_id=ANN)
        await tg.wait_messages(GROUP, 1)
        bot_message = tg.chat(GROUP).messages[0].message_id
        tg.send_text(GROUP, "and a follow-up", user_id=ANN, reply_to_message_id=bot_message)
        await tg.wait_messages(GROUP, 2)
        tg.send_text(GROUP, "/ask what is up", user_id=BOB)
        await tg.wait_messages(GROUP, 3)
        tg.send_text(GROUP, "/ask@telellama_bot spell it", user_id=BOB)
        await tg.wait_messages(GROUP, 4)
        tg.send_text(GROUP, "hey assistant, a question", user_id=BOB)
        await tg.wait_messages(GROUP, 5)
        tg.send_text(GROUP, "llamas are not a trigger", user_id=BOB)
        await quiet(tg)
    assert tg.texts(GROUP) == [
        "re: hello",
        "re: and a follow-up",
        "re: what is up",
        "re: spell it",
        "re: hey assistant, a question",
    ]
    assert tg.chat(GROUP).messages[0].reply_to_message_id == first


async def test_a_mention_in_a_photo_caption(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    llm.responder = echo
    caption = f"{BOT} what is in this picture?"
    tg.push_update(
        {
            "message": {
                "message_id": 500,
                "date": 1,
                "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
                "from": {"id": ANN, "is_bot": False, "first_name": "Ann"},
                "photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 9, "height": 9}],
                "caption": caption,
                "caption_entities": [{"type": "mention", "offset": 0, "length": len(BOT)}],
            }
        }
    )
    [reply] = await tg.wait_messages(GROUP, 1)
    # Addressed (by the caption's mention), and this deployment has no vision model.
    assert reply.text == texts.NO_IMAGES


async def test_answers_land_in_the_same_forum_topic(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = echo
    tg.send_text(
        GROUP, f"{BOT} in topic 42", user_id=ANN, message_thread_id=42, is_topic_message=True
    )
    [reply] = await tg.wait_messages(GROUP, 1)
    assert reply.message_thread_id == 42
    tg.send_text(
        GROUP, f"{BOT} in topic 43", user_id=ANN, message_thread_id=43, is_topic_message=True
    )
    replies = await tg.wait_messages(GROUP, 2)
    assert replies[1].message_thread_id == 43
    # Topics are separate conversations: topic 43 knows nothing of topic 42.
    assert "topic 42" not in json.dumps(chat_prompts(llm)[-1])


async def test_the_quoted_message_goes_into_the_prompt(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    claim = tg.send_text(GROUP, "The moon is made of cheese.", user_id=BOB, first_name="Bob")
    tg.send_text(GROUP, f"{BOT} is this true?", user_id=ANN, reply_to_message_id=claim)
    await tg.wait_messages(GROUP, 1)
    question = chat_prompts(llm)[-1][-1]["content"]
    assert "Bob" in question and "The moon is made of cheese." in question
    assert question.endswith("is this true?")


async def test_members_never_see_each_others_history(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = echo
    tg.send_text(ANN, "My private secret is 1234.")
    await tg.wait_messages(ANN, 1)
    tg.send_text(GROUP, f"{BOT} my favourite colour is teal", user_id=ANN)
    await tg.wait_messages(GROUP, 1)
    tg.send_text(GROUP, f"{BOT} mine is orange", user_id=BOB)
    await tg.wait_messages(GROUP, 2)
    tg.send_text(GROUP, f"{BOT} what's my colour?", user_id=BOB)
    await tg.wait_messages(GROUP, 3)
    bob = json.dumps(chat_prompts(llm)[-1])
    tg.send_text(GROUP, f"{BOT} what's my colour?", user_id=ANN)
    await tg.wait_messages(GROUP, 4)
    ann = json.dumps(chat_prompts(llm)[-1])
    tg.send_text(OTHER_GROUP, f"{BOT} what's my colour?", user_id=ANN)
    await tg.wait_messages(OTHER_GROUP, 1)
    elsewhere = json.dumps(chat_prompts(llm)[-1])

    assert "orange" in bob and "teal" not in bob
    assert "teal" in ann and "orange" not in ann
    assert "1234" not in ann, "private-chat history never reaches a group"
    assert "teal" not in elsewhere, "nothing from one group reaches another"


async def test_new_in_a_group_resets_only_the_callers_thread(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = echo
    tg.send_text(GROUP, f"{BOT} ann's topic", user_id=ANN)
    tg.send_text(GROUP, f"{BOT} bob's topic", user_id=BOB)
    await tg.wait_messages(GROUP, 2)
    tg.send_text(GROUP, "/new", user_id=ANN)
    await tg.wait_messages(GROUP, 3)
    tg.send_text(GROUP, f"{BOT} again", user_id=ANN)
    await tg.wait_messages(GROUP, 4)
    assert "ann's topic" not in json.dumps(chat_prompts(llm)[-1])
    tg.send_text(GROUP, f"{BOT} again", user_id=BOB)
    await tg.wait_messages(GROUP, 5)
    assert "bob's topic" in json.dumps(chat_prompts(llm)[-1])


async def test_help_in_a_group_explains_addressing_and_privacy_mode(
    tg: FakeTelegram, bot: BotApp
) -> None:
    tg.send_text(GROUP, "/help", user_id=ANN)
    [reply] = await tg.wait_messages(GROUP, 1)
    assert BOT in reply.text and "/ask" in reply.text and "Privacy mode" in reply.text


async def test_shared_context_brings_the_groups_recent_messages(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(group_context="shared"):
        tg.send_text(GROUP, "Let's meet on Friday at 6.", user_id=ANN, first_name="Ann")
        tg.send_text(GROUP, "Friday works, I'll book the room.", user_id=BOB, first_name="Bob")
        tg.send_text(OTHER_GROUP, "Secret plans of another group.", user_id=BOB)
        await quiet(tg)
        tg.send_text(GROUP, f"{BOT} what did we decide?", user_id=ANN, first_name="Ann")
        await tg.wait_messages(GROUP, 1)
    question = chat_prompts(llm)[-1][-1]["content"]
    assert "Ann: Let's meet on Friday at 6." in question
    assert "Bob: Friday works, I'll book the room." in question
    assert "Secret plans" not in question
    assert question.endswith("what did we decide?")


async def test_without_shared_context_other_messages_stay_out(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    tg.send_text(GROUP, "Let's meet on Friday at 6.", user_id=BOB)
    await quiet(tg)
    tg.send_text(GROUP, f"{BOT} what did we decide?", user_id=ANN)
    await tg.wait_messages(GROUP, 1)
    assert "Friday" not in json.dumps(chat_prompts(llm)[-1])


async def test_settings_are_for_admins_only(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    tg.send_text(GROUP, "/settings context on", user_id=BOB)
    [refusal] = await tg.wait_messages(GROUP, 1)
    assert "only the group's admins" in refusal.text

    tg.admins[GROUP] = {ANN}
    tg.send_text(GROUP, "/settings context on", user_id=ANN)
    [_, shown] = await tg.wait_messages(GROUP, 2)
    assert "Shared context: on" in shown.text
    tg.send_text(GROUP, "/settings triggers robot, helper", user_id=ANN)
    replies = await tg.wait_messages(GROUP, 3)
    assert "Trigger words: robot, helper" in replies[2].text

    tg.send_text(GROUP, "We agreed on blue.", user_id=BOB)
    await quiet(tg)
    tg.send_text(GROUP, "helper, what colour did we agree on?", user_id=ANN)
    await tg.wait_messages(GROUP, 4)
    assert "We agreed on blue." in chat_prompts(llm)[-1][-1]["content"]


async def test_group_replies_stay_within_telegrams_limits(
    llm: FakeLLM, start_bot: BotFactory
) -> None:
    words = [f"w{i} " for i in range(40)]
    llm.default = Plan(chunks=words, token_delay=0.03)
    async with FakeTelegram(limits=TelegramLimits()) as tg:
        async with start_bot(
            telegram_api_base_url=tg.base_url,
            stream_group_edit_interval_s=0.3,
            telegram_chat_messages_per_s=1,
        ):
            for member in range(4):
                tg.send_text(GROUP, f"{BOT} count please", user_id=ANN + member)
            messages = await tg.wait_messages(GROUP, 4, timeout=20)
            await tg.wait_for(lambda: all("w39" in m.text for m in messages), 20)
        assert tg.rate_limited == 0, [(c.method, c.t) for c in tg.calls if c.status == 429]
        assert all(m.text.startswith("w0 w1") for m in messages)
        assert len({m.reply_to_message_id for m in messages}) == 4
        assert tg.chat(GROUP).drafts == []


async def test_memory_follows_a_group_that_became_a_supergroup(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    old, new = -4001, -1004001
    llm.responder = echo
    tg.send_text(old, f"{BOT} remember the code word pineapple", user_id=ANN)
    await tg.wait_messages(old, 1)
    await tg.wait_idle(quiet=0.2)
    tg.push_update(
        {
            "message": {
                "message_id": 900,
                "date": 1,
                "chat": {"id": old, "type": "group", "title": "G"},
                "from": {"id": ANN, "is_bot": False, "first_name": "Ann"},
                "migrate_to_chat_id": new,
            }
        }
    )
    await tg.wait_idle(quiet=0.3)
    tg.send_text(new, f"{BOT} what was the code word?", user_id=ANN)
    await tg.wait_messages(new, 1)
    assert "pineapple" in json.dumps(chat_prompts(llm)[-1])
