"""A private chat: answers stream as drafts, then arrive as one final, formatted message."""

from __future__ import annotations

from bot.app import BotApp
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan

USER = 1001


async def test_streamed_reply_arrives_as_drafts_then_final_message(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    text = "Paris is the capital of France. " * 8
    llm.plan(Plan(text=text.strip(), first_token_delay=1.2, token_delay=0.02))
    tg.send_text(USER, "What is the capital of France?")

    [message] = await tg.wait_messages(USER, 1)

    assert message.text == text.strip()
    drafts = tg.chat(USER).drafts
    assert len(drafts) >= 3, "the answer should grow in several drafts"
    assert len({d.draft_id for d in drafts}) == 1, "one draft id per reply"
    assert all(text.strip().startswith(d.text) for d in drafts)
    assert "typing" in tg.chat(USER).actions


async def test_markdown_arrives_as_entities(tg: FakeTelegram, llm: FakeLLM, bot: BotApp) -> None:
    llm.plan(Plan(text="Use **bold** and `code`:\n\n```python\nprint('hi')\n```"))
    tg.send_text(USER, "format something")

    [message] = await tg.wait_messages(USER, 1)

    assert "**" not in message.text and "```" not in message.text
    kinds = {e["type"] for e in message.entities}
    assert {"bold", "code", "pre"} <= kinds
    bold = next(e for e in message.entities if e["type"] == "bold")
    assert message.text[bold["offset"] : bold["offset"] + bold["length"]] == "bold"


async def test_long_answer_is_split_into_three_messages_without_cutting_words(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    paragraph = "Streaming answers are split at paragraph breaks when they grow long. " * 10
    answer = "\n\n".join([paragraph.strip()] * 15)[:10_000].rsplit(" ", 1)[0]
    assert len(answer) > 9_900
    llm.plan(Plan(text=answer, chunks=[answer[i : i + 500] for i in range(0, len(answer), 500)]))
    tg.send_text(USER, "write a lot")

    messages = await tg.wait_messages(USER, 3)
    await tg.wait_idle()

    assert len(tg.texts(USER)) == 3
    assert all(len(m.text) <= 4096 for m in messages)
    assert " ".join(m.text for m in messages).split() == answer.split()


async def test_falls_back_to_edits_when_drafts_are_refused(
    llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with FakeTelegram(drafts_supported=False) as tg:
        llm.plan(Plan(text="one two three four five six seven eight", token_delay=0.03))
        async with start_bot(telegram_api_base_url=tg.base_url):
            tg.send_text(USER, "hi")
            await tg.wait_for(lambda: tg.texts(USER) == ["one two three four five six seven eight"])
            [message] = tg.chat(USER).messages
            assert message.edits >= 1, "the message should grow by edits"
