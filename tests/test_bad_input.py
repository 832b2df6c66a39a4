"""The bad-input catalogue: every odd thing a Telegram user (or client) can send, and what the
bot does with it. No case may crash a handler, show a traceback, or write garbage to memory.

Outcomes: ANSWER (the model is asked and its answer shown), NOTICE (the bot replies in its own
words, containing the given text, without asking the model), SILENT (nothing is sent).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from bot.app import BotApp
from tests.conftest import chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan

USER, GROUP = 6001, -1006001
BOT = "@telellama_bot"
ANSWER, SILENT = "answer", "silent"
_ids = itertools.count(50_000)


def notice(fragment: str) -> str:
    return f"notice:{fragment}"


def person(user_id: int = USER, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Ann", **extra}


def message(chat: int = USER, **fields: Any) -> dict[str, Any]:
    chat_info: dict[str, Any] = (
        {"id": chat, "type": "private", "first_name": "Ann"}
        if chat > 0
        else {"id": chat, "type": "supergroup", "title": "Group"}
    )
    body = {"message_id": next(_ids), "date": 1_700_000_000, "chat": chat_info, "from": person()}
    body.update(fields)
    return {"message": body}


def text(value: str, chat: int = USER, **fields: Any) -> dict[str, Any]:
    entities = []
    if value.startswith("/"):
        entities.append(
            {"type": "bot_command", "offset": 0, "length": len(value.split(maxsplit=1)[0])}
        )
    if value.startswith(BOT):
        entities.append({"type": "mention", "offset": 0, "length": len(BOT)})
    return message(chat, text=value, **({"entities": entities} if entities else {}), **fields)


PHOTO = [{"file_id": "p", "file_unique_id": "pu", "width": 90, "height": 90}]
STICKER = {
    "file_id": "s",
    "file_unique_id": "su",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
ANIMATION = {
    "file_id": "a",
    "file_unique_id": "au",
    "width": 1,
    "height": 1,
    "duration": 1,
}
POLL = {
    "id": "1",
    "question": "Tea or coffee?",
    "options": [
        {"persistent_id": "t", "text": "Tea", "voter_count": 0},
        {"persistent_id": "c", "text": "Coffee", "voter_count": 0},
    ],
    "total_voter_count": 0,
    "is_closed": False,
    "is_anonymous": True,
    "type": "regular",
    "allows_multiple_answers": False,
    "allows_revoting": False,
    "members_only": False,
}
# What this deployment reads (text and documents: no vision model, no speech endpoint here).
UNSUPPORTED = notice("I can read text messages and documents")
NO_IMAGES = notice("doesn't read images")


@dataclass(frozen=True)
class Case:
    name: str
    update: Callable[[], dict[str, Any]]
    outcome: str
    chat: int = USER
    # What the model must have received as the user's message, when it is asked.
    asked: str | None = None


CASES = [
    Case("empty text", lambda: text(""), UNSUPPORTED),
    Case("whitespace only", lambda: text("   \n\t  "), notice("Send me some text")),
    Case("zero-width only", lambda: text("\u200b\u200c\u2060"), notice("Send me some text")),
    Case("a single emoji", lambda: text("👍"), ANSWER, asked="👍"),
    Case("emoji ZWJ sequence and flags", lambda: text("👩‍👩‍👧 🇵🇹"), ANSWER),
    Case("4096 characters", lambda: text("a " * 2048), ANSWER),
    Case("100,000 characters", lambda: text("b" * 100_000), notice("too long")),
    Case("right-to-left text", lambda: text("مرحبا، كيف حالك؟"), ANSWER, asked="مرحبا، كيف حالك؟"),
    Case("mixed scripts", lambda: text("Привет 你好 नमस्ते hello"), ANSWER),
    Case("control characters", lambda: text("\x00\x01hello\x07\x1b"), ANSWER, asked="hello"),
    Case("broken markdown", lambda: text("**bold _italic `code"), ANSWER),
    Case("html and script", lambda: text("<b>x</b><script>alert(1)</script>"), ANSWER),
    Case("a 5000-char word", lambda: text("z" * 5000), ANSWER),
    Case("/retry with arguments", lambda: text("/retry now please"), notice("nothing to retry")),
    Case("/forget with a bad argument", lambda: text("/forget banana"), notice("/forget <number>")),
    Case("/remember with nothing", lambda: text("/remember"), notice("Tell me what to remember")),
    Case("/forget 0", lambda: text("/forget 0"), notice("no fact number 0")),
    Case("unknown command", lambda: text("/frobnicate"), notice("/help")),
    Case("command for another bot", lambda: text("/start@otherbot"), notice("/help")),
    Case(
        "forwarded message",
        lambda: text(
            "forwarded words",
            forward_origin={"type": "hidden_user", "date": 1, "sender_user_name": "X"},
        ),
        ANSWER,
    ),
    Case(
        "message via another bot",
        lambda: text("via bot", via_bot=person(99, is_bot=True, username="gif")),
        ANSWER,
    ),
    Case("user without username or last name", lambda: text("hi"), ANSWER),
    Case(
        "reply to a deleted message",
        lambda: text(
            "about that",
            external_reply={"origin": {"type": "hidden_user", "date": 1, "sender_user_name": "X"}},
        ),
        ANSWER,
    ),
    Case("sticker", lambda: message(sticker=STICKER), UNSUPPORTED),
    Case(
        "GIF",
        lambda: message(animation=ANIMATION, document={"file_id": "d", "file_unique_id": "du"}),
        UNSUPPORTED,
    ),
    Case("poll", lambda: message(poll=POLL), UNSUPPORTED),
    Case(
        "contact", lambda: message(contact={"phone_number": "+1", "first_name": "Bo"}), UNSUPPORTED
    ),
    Case("location", lambda: message(location={"latitude": 1.0, "longitude": 2.0}), UNSUPPORTED),
    Case("dice", lambda: message(dice={"emoji": "🎲", "value": 4}), UNSUPPORTED),
    Case(
        "voice note",
        lambda: message(voice={"file_id": "v", "file_unique_id": "vu", "duration": 2}),
        notice("doesn't transcribe voice messages"),
    ),
    Case("photo with a caption", lambda: message(photo=PHOTO, caption="what is this?"), NO_IMAGES),
    Case(
        "document without a name or type",
        lambda: message(document={"file_id": "d", "file_unique_id": "du"}),
        notice("I can't read that kind of file"),
    ),
    Case(
        "edited message",
        lambda: {"edited_message": text("edited")["message"] | {"edit_date": 2}},
        SILENT,
    ),
    Case(
        "channel post",
        lambda: {
            "channel_post": {
                "message_id": 1,
                "date": 1,
                "chat": {"id": -100777, "type": "channel", "title": "C"},
                "text": "news",
            }
        },
        SILENT,
    ),
    Case("group chatter", lambda: text("just talking", GROUP), SILENT, chat=GROUP),
    Case("group: only a mention", lambda: text(BOT, GROUP), notice("Ask me something"), chat=GROUP),
    Case(
        "group: /ask with nothing",
        lambda: text("/ask", GROUP),
        notice("Ask me something"),
        chat=GROUP,
    ),
    Case("group: sticker", lambda: message(GROUP, sticker=STICKER), SILENT, chat=GROUP),
    Case(
        "group: member joined",
        lambda: message(GROUP, new_chat_members=[person(5)]),
        SILENT,
        chat=GROUP,
    ),
    Case(
        "group: title changed",
        lambda: message(GROUP, new_chat_title="New name"),
        SILENT,
        chat=GROUP,
    ),
    Case(
        "group: member left", lambda: message(GROUP, left_chat_member=person(5)), SILENT, chat=GROUP
    ),
    Case(
        "group: anonymous admin",
        lambda: text(
            f"{BOT} hello",
            GROUP,
            sender_chat={"id": GROUP, "type": "supergroup", "title": "Group"},
            **{"from": person(1087968824, is_bot=True, username="GroupAnonymousBot")},
        ),
        ANSWER,
        chat=GROUP,
    ),
    Case(
        "group: channel's automatic forward",
        lambda: text(
            f"{BOT} news",
            GROUP,
            is_automatic_forward=True,
            sender_chat={"id": -100777, "type": "channel", "title": "C"},
        ),
        SILENT,
        chat=GROUP,
    ),
    Case(
        "group: mention in a caption",
        lambda: message(
            GROUP,
            photo=PHOTO,
            caption=f"{BOT} see",
            caption_entities=[{"type": "mention", "offset": 0, "length": len(BOT)}],
        ),
        NO_IMAGES,
        chat=GROUP,
    ),
]


def test_the_catalogue_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input(
    case: Case,
    tg: FakeTelegram,
    llm: FakeLLM,
    bot: BotApp,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm.responder = lambda body: Plan(text="An answer.")
    tg.push_update(case.update())
    if case.outcome == SILENT:
        await tg.wait_idle(quiet=0.3)
        assert tg.texts(case.chat) == []
        assert llm.requests == []
    else:
        [reply] = await tg.wait_messages(case.chat, 1)
        await tg.wait_idle(quiet=0.1)
        if case.outcome == ANSWER:
            assert reply.text == "An answer."
            if case.asked is not None:
                assert chat_prompts(llm)[-1][-1]["content"] == case.asked
        else:
            assert case.outcome.removeprefix("notice:") in reply.text
            assert llm.requests == []
    sent = " ".join(tg.texts(case.chat))
    assert "Traceback" not in sent and "Error" not in sent
    assert "ERROR" not in caplog.text, caplog.text
    for raw in redis_client.lrange(f"{prefix}:{{u{USER}}}:h:p", 0, -1):
        turn = json.loads(raw)
        assert turn["u"].strip() and "\x00" not in turn["u"]
