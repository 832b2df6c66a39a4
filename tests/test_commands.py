"""Commands as a user types them: /start, /help, /retry, /stop, the command menu."""

from __future__ import annotations

import asyncio

from bot.app import BotApp
from tests.fakes import FakeLLM, FakeTelegram, Plan

USER = 3001


def prompt_contents(llm: FakeLLM) -> list[tuple[object, object]]:
    return [(m["role"], m["content"]) for m in llm.last_prompt if m["role"] != "system"]


async def test_commands_are_registered_per_scope(tg: FakeTelegram, bot: BotApp) -> None:
    private = [c["command"] for c in tg.commands({"type": "all_private_chats"})]
    groups = [c["command"] for c in tg.commands({"type": "all_group_chats"})]
    assert private == [
        *("new", "retry", "stop", "help", "memory", "remember", "forget", "export", "language"),
    ]
    assert groups == ["ask", "new", "retry", "stop", "help", "settings", "language"]


async def test_start_greets_and_says_what_the_bot_does(tg: FakeTelegram, bot: BotApp) -> None:
    tg.send_text(USER, "/start", first_name="Zoe")
    [message] = await tg.wait_messages(USER, 1)
    assert message.text.startswith("Hi Zoe!")
    assert "/new" in message.text and "/retry" in message.text and "/stop" in message.text


async def test_help_lists_the_commands(tg: FakeTelegram, bot: BotApp) -> None:
    tg.send_text(USER, "/help")
    [message] = await tg.wait_messages(USER, 1)
    for command in ("/new", "/reset", "/retry", "/stop"):
        assert command in message.text


async def test_unknown_command_points_to_help(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    tg.send_text(USER, "/frobnicate now")
    [message] = await tg.wait_messages(USER, 1)
    assert "/help" in message.text
    assert llm.requests == []


async def test_retry_regenerates_and_replaces_the_answer_in_memory(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.plan(Plan(text="First answer."), Plan(text="Second answer."), Plan(text="Sure."))
    tg.send_text(USER, "Tell me a joke")
    await tg.wait_messages(USER, 1)
    tg.send_text(USER, "/retry")
    messages = await tg.wait_messages(USER, 2)
    assert messages[1].text == "Second answer."
    assert prompt_contents(llm) == [("user", "Tell me a joke")]

    tg.send_text(USER, "Thanks")
    await tg.wait_messages(USER, 3)
    assert prompt_contents(llm) == [
        ("user", "Tell me a joke"),
        ("assistant", "Second answer."),
        ("user", "Thanks"),
    ]


async def test_retry_with_nothing_to_retry(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    tg.send_text(USER, "/retry")
    [message] = await tg.wait_messages(USER, 1)
    assert "nothing to retry" in message.text.lower()
    assert llm.requests == []


async def test_stop_keeps_what_was_shown_and_marks_it(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    words = [f"word{i} " for i in range(200)]
    llm.plan(Plan(chunks=words, token_delay=0.05), Plan(text="Next."))
    tg.send_text(USER, "Count forever")
    await tg.wait_for(lambda: len(tg.chat(USER).drafts) >= 2)
    tg.send_text(USER, "/stop")

    [message] = await tg.wait_messages(USER, 1)
    assert message.text.startswith("word0 word1")
    assert message.text.endswith("⏹ Stopped.")
    assert "word199" not in message.text
    await tg.wait_for(lambda: llm.cancelled == 1)

    tg.send_text(USER, "and now?")
    await tg.wait_messages(USER, 2)
    [(_, _), (role, shown), (_, _)] = prompt_contents(llm)
    assert role == "assistant" and str(shown).startswith("word0 word1")


async def test_stop_with_nothing_running(tg: FakeTelegram, bot: BotApp) -> None:
    tg.send_text(USER, "/stop")
    [message] = await tg.wait_messages(USER, 1)
    assert "Nothing is being generated" in message.text


async def test_messages_of_one_user_are_answered_in_order(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = lambda body: Plan(
        text=f"answer to {body['messages'][-1]['content']}", first_token_delay=0.05
    )
    for i in range(5):
        tg.send_text(USER, f"q{i}")
    messages = await tg.wait_messages(USER, 5)
    assert [m.text for m in messages] == [f"answer to q{i}" for i in range(5)]
    assert llm.max_in_flight == 1


async def test_a_slow_answer_never_holds_up_another_user(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    llm.responder = lambda body: Plan(
        text="slow" if body["messages"][-1]["content"] == "slow please" else "fast",
        first_token_delay=2.0 if body["messages"][-1]["content"] == "slow please" else 0,
    )
    tg.send_text(USER, "slow please")
    await asyncio.sleep(0.1)
    tg.send_text(USER + 1, "quick one")
    await tg.wait_messages(USER + 1, 1, timeout=1.0)
    assert tg.texts(USER) == []
    await tg.wait_messages(USER, 1, timeout=5)
