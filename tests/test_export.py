"""/export: the user gets a file (JSON, or Markdown) with their facts and every stored
conversation; someone the bot keeps nothing about is told so."""

from __future__ import annotations

import json

from bot import texts
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan, SentMessage

ANN, BOB = 9601, 9602
GROUP = -1009600


async def ask(tg: FakeTelegram, chat: int, text: str, user: int | None = None) -> SentMessage:
    before = len(tg.chat(chat).messages)
    tg.send_text(chat, text, user_id=user)
    messages = await tg.wait_messages(chat, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1]


async def test_export_sends_the_users_facts_and_conversations_as_a_file(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="Try a lentil curry.")
    async with start_bot():
        await ask(tg, ANN, "remember that I am vegetarian")
        await ask(tg, ANN, "What should I cook tonight?")
        await ask(tg, GROUP, "/ask and for lunch?", user=ANN)

        exported = await ask(tg, ANN, "/export")
        assert exported.media is not None and exported.content is not None
        assert exported.media["document"]["file_name"].endswith(".json")
        assert exported.text == texts.EXPORT_CAPTION
        data = json.loads(exported.content)
        assert data["user_id"] == ANN
        assert [f["text"] for f in data["facts"]] == ["I am vegetarian"]
        conversations = {c["where"]: c["turns"] for c in data["conversations"]}
        [private] = conversations["private chat"]
        assert private["you"] == "What should I cook tonight?"
        assert private["assistant"] == "Try a lentil curry."
        [group] = conversations[f"group Group {GROUP}"]
        assert group["you"] == "and for lunch?"

        markdown = await ask(tg, ANN, "/export md")
        assert markdown.media is not None and markdown.content is not None
        assert markdown.media["document"]["file_name"].endswith(".md")
        text = markdown.content.decode()
        assert "1. I am vegetarian" in text
        assert "> What should I cook tonight?" in text and "> Try a lentil curry." in text

        assert (await ask(tg, BOB, "/export")).text == texts.EXPORT_NOTHING
        assert (await ask(tg, GROUP, "/export", user=ANN)).text == texts.PRIVATE_ONLY
