"""The fakes checked against the real clients, so a fake that lies fails here first.

PTB is pointed at FakeTelegram with ``base_url=tg.base_url + "/bot"`` (PTB appends the token), and
openai at FakeLLM with ``base_url=llm.base_url``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
import telegram
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from tests.fakes import FakeLLM, FakeTelegram, Plan, TelegramLimits

MODEL = "llama-3-8b-instruct"


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


def make_bot(tg: FakeTelegram, timeout: float = 5.0) -> telegram.Bot:
    request = HTTPXRequest(read_timeout=timeout, write_timeout=timeout)
    return telegram.Bot(
        tg.token,
        base_url=tg.base_url + "/bot",
        base_file_url=tg.base_url + "/file/bot",
        request=request,
    )


def make_llm_client(llm: FakeLLM, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=llm.base_url, api_key="x", max_retries=0, timeout=timeout)


# ---------------------------------------------------------------------- Telegram


async def test_sent_message_is_what_the_user_sees(fake_tg: FakeTelegram) -> None:
    question = fake_tg.send_text(42, "What is 2+2?")
    async with make_bot(fake_tg) as bot:
        assert bot.username == "telellama_bot"
        sent = await bot.send_message(
            42,
            "It is *4*",
            entities=[MessageEntity(MessageEntity.BOLD, 6, 3)],
            reply_parameters=ReplyParameters(question),
        )

    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "What is 2+2?"
    [seen] = fake_tg.chat(42).messages
    assert seen.message_id == sent.message_id == question + 1
    assert seen.text == "It is *4*"
    assert seen.entities == [{"type": "bold", "offset": 6, "length": 3}]
    assert seen.reply_to_message_id == question
    assert fake_tg.texts(42) == ["It is *4*"]
    assert fake_tg.calls_of("SENDMESSAGE")[0].params["chat_id"] == 42


# PTB strips "Bad Request: " and then str.capitalize()s the rest, lowercasing it all: match
# descriptions case-insensitively.


async def test_edits_keep_history_and_identical_edit_is_not_modified(
    fake_tg: FakeTelegram,
) -> None:
    async with make_bot(fake_tg) as bot:
        msg = await bot.send_message(5, "Hel")
        await bot.edit_message_text("Hello", 5, msg.message_id)
        with pytest.raises(BadRequest, match=r"(?i)not modified"):
            await bot.edit_message_text("Hello", 5, msg.message_id)
        # Telegram trims, so trailing blanks do not make a new text either.
        with pytest.raises(BadRequest, match=r"(?i)not modified"):
            await bot.edit_message_text("Hello \n", 5, msg.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", 5, 999)
        await bot.delete_message(5, msg.message_id)

    [view] = fake_tg.chat(5).all_messages
    assert [text for _, text in view.history] == ["Hel", "Hello"]
    assert view.edits == 1 and view.deleted
    assert fake_tg.chat(5).messages == []


async def test_text_is_validated_in_utf16_units(fake_tg: FakeTelegram) -> None:
    async with make_bot(fake_tg) as bot:
        with pytest.raises(BadRequest, match=r"(?i)text is empty"):
            await bot.send_message(1, " \n ")
        # An emoji is two UTF-16 code units: 2048 of them are exactly 4096.
        await bot.send_message(1, "😀" * 2048)
        with pytest.raises(BadRequest, match=r"(?i)too long"):
            await bot.send_message(1, "😀" * 2048 + "a")
        await bot.send_message(1, "😀a", entities=[MessageEntity(MessageEntity.BOLD, 2, 1)])
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(1, "😀a", entities=[MessageEntity(MessageEntity.BOLD, 2, 2)])
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(1, "abc", entities=[MessageEntity(MessageEntity.BOLD, 0, 0)])
        trimmed = await bot.send_message(
            1, "  hi there", entities=[MessageEntity(MessageEntity.ITALIC, 5, 5)]
        )
    assert trimmed.text == "hi there"
    assert trimmed.entities == (MessageEntity(MessageEntity.ITALIC, 3, 5),)
    assert len(fake_tg.texts(1)) == 3


async def test_faults_become_ptb_exceptions(
    fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as timedelta, no warning
    fake_tg.fail("sendMessage", retry_after=7, chat_id=2)
    async with make_bot(fake_tg) as bot:
        await bot.send_message(1, "the 429 is only for chat 2")
        fake_tg.fail(
            "sendMessage", status=403, description="Forbidden: bot was blocked by the user"
        )
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(2, "hi")
        assert retry.value.retry_after.total_seconds() == 7  # type: ignore[union-attr]
        with pytest.raises(Forbidden, match=r"(?i)blocked"):
            await bot.send_message(3, "hi")
        await bot.send_message(3, "faults are consumed")
        fake_tg.block(4)
        with pytest.raises(Forbidden):
            await bot.send_chat_action(4, "typing")

    error = fake_tg.calls_of("sendMessage")[1]
    assert (error.status, error.description) == (429, "Too Many Requests: retry after 7")
    assert fake_tg.texts(2) == [] and fake_tg.texts(3) == ["faults are consumed"]


async def test_drafts_only_in_private_chats(fake_tg: FakeTelegram) -> None:
    async with make_bot(fake_tg) as bot:
        assert await bot.send_message_draft(7, 1, "Thinking")
        assert await bot.send_message_draft(7, 1)  # empty: the "thinking" placeholder
        with pytest.raises(BadRequest, match=r"(?i)TEXTDRAFT_PEER_INVALID"):
            await bot.send_message_draft(-100123, 1, "x")
        with pytest.raises(BadRequest):
            await bot.send_message_draft(7, 0, "x")
        fake_tg.drafts_supported = False
        with pytest.raises(BadRequest, match=r"(?i)method is not available"):
            await bot.send_message_draft(7, 2, "x")

    assert [(d.draft_id, d.text) for d in fake_tg.chat(7).drafts] == [(1, "Thinking"), (1, "")]
    assert fake_tg.chat(7).messages == []


async def test_get_updates_long_polls_and_confirms_by_offset(fake_tg: FakeTelegram) -> None:
    async with make_bot(fake_tg) as bot:
        answer = await bot.send_message(-100500, "I am the bot")
        started = time.monotonic()
        poll = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.1)
        fake_tg.send_text(
            -100500,
            "@telellama_bot what now? /ask@telellama_bot",
            user_id=9,
            reply_to_message_id=answer.message_id,
        )
        [update] = await poll
        assert time.monotonic() - started < 1.0, "a queued update must end the long poll"

        message = update.message
        assert message is not None and message.chat.type == "supergroup"
        assert message.reply_to_message is not None
        assert message.reply_to_message.from_user is not None
        assert message.reply_to_message.from_user.is_bot
        kinds = {e.type: message.parse_entity(e) for e in message.entities}
        assert kinds == {"mention": "@telellama_bot", "bot_command": "/ask@telellama_bot"}

        again = await bot.get_updates(timeout=0)
        assert [u.update_id for u in again] == [update.update_id], "unconfirmed updates repeat"
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
        assert fake_tg.pending_updates == 0


async def test_edits_callbacks_and_raw_updates_parse(fake_tg: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="up")]])
    async with make_bot(fake_tg) as bot:
        asked = fake_tg.send_text(8, "hello")
        answer = await bot.send_message(8, "Hi!", reply_markup=keyboard)
        assert answer.reply_markup == keyboard
        fake_tg.send_edit(8, asked, "hello again")
        query_id = fake_tg.send_callback(8, 8, answer.message_id, "up")
        raw_id = fake_tg.push_update({"my_chat_member": _MY_CHAT_MEMBER})
        updates = await bot.get_updates(timeout=0)
        assert await bot.answer_callback_query(query_id, text="Thanks")
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(query_id)
        await bot.edit_message_reply_markup(8, answer.message_id)

    message, edited, callback, member = updates
    assert [u.update_id for u in updates] == sorted(u.update_id for u in updates)
    assert member.update_id == raw_id and member.my_chat_member is not None
    assert message.message is not None and message.message.text == "hello"
    assert edited.edited_message is not None
    assert edited.edited_message.text == "hello again"
    assert edited.edited_message.edit_date is not None
    assert callback.callback_query is not None and callback.callback_query.data == "up"
    assert callback.callback_query.message is not None
    assert callback.callback_query.message.message_id == answer.message_id
    assert fake_tg.callback_answers[query_id]["text"] == "Thanks"
    [shown] = fake_tg.chat(8).messages
    assert shown.reply_markup is None and shown.edits == 1


_MY_CHAT_MEMBER = {
    "chat": {"id": -100777, "type": "supergroup", "title": "Team"},
    "from": {"id": 8, "is_bot": False, "first_name": "Ann"},
    "date": 1_700_000_000,
    "old_chat_member": {
        "status": "left",
        "user": {"id": 123456, "is_bot": True, "first_name": "T"},
    },
    "new_chat_member": {
        "status": "member",
        "user": {"id": 123456, "is_bot": True, "first_name": "T"},
    },
}


async def test_second_poller_terminates_the_first(fake_tg: FakeTelegram) -> None:
    async with make_bot(fake_tg) as first, make_bot(fake_tg) as second:
        poll = asyncio.create_task(first.get_updates(timeout=5))
        await asyncio.sleep(0.1)
        other = asyncio.create_task(second.get_updates(timeout=5))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await poll
        fake_tg.send_text(1, "hello")
        assert len(await other) == 1


async def test_raw_http_matches_the_bot_api(fake_tg: FakeTelegram) -> None:
    api = f"{fake_tg.base_url}/bot{fake_tg.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/SendMessage", json={"chat_id": 1, "text": "[1, 2]"}) as r:
            body = await r.json()
            assert r.status == 200 and body["result"]["text"] == "[1, 2]"
        form = {"chat_id": "1", "text": "x", "reply_markup": '{"inline_keyboard": []}'}
        async with http.post(f"{api}/sendMessage", data=form) as r:
            assert r.status == 200
        async with http.get(f"{api}/getme") as r:
            assert (await r.json())["result"]["can_read_all_group_messages"] is False
        async with http.get(f"{fake_tg.base_url}/bot1:wrong/getMe") as r:
            assert r.status == 401
            assert await r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{api}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.get(f"{fake_tg.base_url}/file/bot{fake_tg.token}/x.txt") as r:
            assert r.status == 404

    sent = fake_tg.calls_of("sendMessage")[1].params
    assert sent == {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": []}}


async def test_rate_limits_answer_429_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with FakeTelegram(limits=TelegramLimits()) as tg, make_bot(tg) as bot:
        for i in range(3):
            await bot.send_message(1, f"burst {i}")
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(1, "one too many")
        await bot.send_message(2, "other chats have their own bucket")
    assert retry.value.retry_after.total_seconds() == 1  # type: ignore[union-attr]
    assert tg.rate_limited == 1
    assert len(tg.texts(1)) == 3


async def test_hang_makes_the_client_time_out_after_delivery(fake_tg: FakeTelegram) -> None:
    fake_tg.hang("sendMessage", 3)
    async with make_bot(fake_tg, timeout=0.3) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(1, "slow")
    # Delivered even though the reply never arrived: a blind retry would duplicate it.
    assert fake_tg.texts(1) == ["slow"]


async def test_application_polls_and_replies(fake_tg: FakeTelegram) -> None:
    app: Application = (  # type: ignore[type-arg]
        ApplicationBuilder()
        .token(fake_tg.token)
        .base_url(fake_tg.base_url + "/bot")
        .base_file_url(fake_tg.base_url + "/file/bot")
        .build()
    )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5)
        fake_tg.send_text(77, "ping")
        [reply] = await fake_tg.wait_messages(77, 1)
        await fake_tg.wait_idle(quiet=0.1)
        started = time.monotonic()
        await app.updater.stop()
        await app.stop()
    assert time.monotonic() - started < 2, "stopping must not wait for the long poll"
    assert reply.text == "echo: ping"
    assert fake_tg.pending_updates == 0, "the final getUpdates confirmed everything"


async def test_wait_for_timeout_explains_itself(fake_tg: FakeTelegram) -> None:
    fake_tg.send_text(3, "anyone there?")
    with pytest.raises(AssertionError, match="anyone there"):
        await fake_tg.wait_messages(3, 1, timeout=0.1)


# ---------------------------------------------------------------------- LLM


async def test_stream_is_the_plan_text_with_usage(fake_llm: FakeLLM) -> None:
    fake_llm.plan(Plan(text="The capital of France is Paris."))
    client = make_llm_client(fake_llm)
    try:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "capital of France?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        deltas: list[str] = []
        finish: list[str | None] = []
        usage = None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                deltas.append(choice.delta.content or "")
                finish.append(choice.finish_reason)
    finally:
        await client.close()

    assert "".join(deltas) == "The capital of France is Paris."
    assert finish[-1] == "stop" and finish.count("stop") == 1
    assert usage is not None and usage.completion_tokens == 6
    assert usage.prompt_tokens == len("capital of France?") // 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert fake_llm.prompts == [[{"role": "user", "content": "capital of France?"}]]
    assert fake_llm.completed == 1 and fake_llm.in_flight == 0


async def test_errors_map_to_openai_exceptions(fake_llm: FakeLLM) -> None:
    fake_llm.plan(
        Plan(status=429, error_message="slow down", headers={"Retry-After": "1"}),
        Plan(context_length_exceeded=True),
        Plan(status=503),
    )
    client = make_llm_client(fake_llm)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]
    try:
        with pytest.raises(openai.RateLimitError, match="slow down") as limited:
            await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        assert limited.value.response.headers["retry-after"] == "1"
        with pytest.raises(openai.BadRequestError, match="maximum context length") as ctx:
            await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        assert ctx.value.code == "context_length_exceeded"
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model=MODEL, messages=messages)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="gpt-4", messages=messages)
    finally:
        await client.close()


async def test_broken_streams(fake_llm: FakeLLM) -> None:
    client = make_llm_client(fake_llm, timeout=0.3)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]

    async def collect() -> str:
        stream = await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        fake_llm.plan(Plan(text="one two three", cut_after=1))
        with pytest.raises(openai.APIConnectionError):
            await collect()
        # openai ends quietly when [DONE] is missing; the finish_reason is the only sign.
        fake_llm.plan(Plan(text="one two", no_done=True))
        assert await collect() == "one two"
        # Garbage in the stream escapes as a bare JSONDecodeError, not an openai error.
        fake_llm.plan(Plan(malformed=True))
        with pytest.raises(json.JSONDecodeError):
            await collect()
        fake_llm.plan(Plan(text="one two", stream_error_after=1, error_message="engine died"))
        with pytest.raises(openai.APIError, match="engine died"):
            await collect()
        fake_llm.plan(Plan(hang=True))
        with pytest.raises(openai.APITimeoutError):
            await collect()
        await fake_llm.wait_for(lambda: fake_llm.in_flight == 0)
        assert fake_llm.cancelled == 1
    finally:
        await client.close()


async def test_client_closing_a_stream_is_counted(fake_llm: FakeLLM) -> None:
    fake_llm.plan(Plan(text="a b c d e f g h", token_delay=0.05))
    client = make_llm_client(fake_llm)
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _ in stream:
            break
        await stream.close()  # what /stop does mid-answer
        await fake_llm.wait_for(lambda: fake_llm.in_flight == 0)
    finally:
        await client.close()
    assert (fake_llm.cancelled, fake_llm.completed) == (1, 0)


async def test_max_tokens_non_streaming_and_concurrency(fake_llm: FakeLLM) -> None:
    fake_llm.default = Plan(text="a b c d e f", token_delay=0.05)
    client = make_llm_client(fake_llm)
    try:
        done = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert done.choices[0].message.content == "a b c"
        assert done.choices[0].finish_reason == "length"
        assert done.usage is not None and done.usage.completion_tokens == 3

        fake_llm.responder = lambda body: Plan(text=str(body["messages"][-1]["content"]))
        answers = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"echo {i}"}]
                )
                for i in range(5)
            )
        )
        assert [a.choices[0].message.content for a in answers] == [f"echo {i}" for i in range(5)]
        models = await client.models.list()
        assert [m.id for m in models.data] == [MODEL]
    finally:
        await client.close()
    assert fake_llm.max_in_flight >= 1


async def test_concurrent_streams_are_counted_and_key_is_checked() -> None:
    async with FakeLLM(require_key="sk-good") as llm:
        llm.default = Plan(first_token_delay=0.2)
        good = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-good", max_retries=0)
        bad = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-bad", max_retries=0)
        try:
            with pytest.raises(openai.AuthenticationError):
                await bad.models.list()
            await asyncio.gather(
                *(
                    good.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": "x"}]
                    )
                    for _ in range(4)
                )
            )
        finally:
            await good.close()
            await bad.close()
        assert llm.max_in_flight == 4 and llm.in_flight == 0


async def test_topics_copies_documents_and_business_connections_as_telegram_has_them(
    fake_tg: FakeTelegram,
) -> None:
    support, customer = -1004242, 4243
    async with make_bot(fake_tg) as bot:
        with pytest.raises(BadRequest, match=r"(?i)not a forum"):
            await bot.create_forum_topic(support, "Ann")
        fake_tg.forum(support)
        topic = await bot.create_forum_topic(support, "Ann · 1")
        assert fake_tg.topics(support) == {topic.message_thread_id: "Ann · 1"}

        photo = {"photo": [{"file_id": "P", "file_unique_id": "UP", "width": 9, "height": 9}]}
        sent = fake_tg.send_media(customer, photo, caption="look")
        copied = await bot.copy_message(
            support, customer, sent, message_thread_id=topic.message_thread_id
        )
        [copy] = fake_tg.chat(support).messages
        assert copy.message_id == copied.message_id and copy.media == photo
        assert copy.text == "look" and copy.message_thread_id == topic.message_thread_id
        fake_tg.delete_topic(support, topic.message_thread_id)
        with pytest.raises(BadRequest, match=r"(?i)thread not found"):
            await bot.send_message(support, "hi", message_thread_id=topic.message_thread_id)

        document = await bot.send_document(
            customer, telegram.InputFile(b'{"a": 1}', filename="data.json"), caption="yours"
        )
        assert document.document is not None and document.document.file_name == "data.json"
        assert fake_tg.chat(customer).messages[-1].content == b'{"a": 1}'

        fake_tg.connect_business("c1", 4244, notify=False)
        connection = await bot.get_business_connection("c1")
        assert connection.user.id == 4244 and connection.is_enabled
        assert connection.rights is not None and connection.rights.can_reply
        message = await bot.send_message(customer, "Hello", business_connection_id="c1")
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("Hello!", chat_id=customer, message_id=message.message_id)
        await bot.edit_message_text(
            "Hello!", chat_id=customer, message_id=message.message_id, business_connection_id="c1"
        )
        fake_tg.connect_business("c1", 4244, enabled=False, notify=False)
        with pytest.raises(BadRequest, match=r"(?i)business_connection_invalid"):
            await bot.send_message(customer, "Hello", business_connection_id="c1")
