"""Photos, voice messages and documents, end to end: the real bot downloads files from the fake
Bot API, sends pictures to the fake model as image parts, transcribes through the fake speech
endpoint, and keeps documents with the conversation in Redis."""

from __future__ import annotations

import base64
import itertools
import json
import time
from io import BytesIO
from typing import Any

import pytest
import redis
from PIL import Image

from bot import texts
from bot.images import UnreadableImage, choose_size, prepare
from bot.render import utf16_len
from bot.textfiles import PDF, TEXT, UnreadableDocument, kind_of, read_text
from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.test_knowledge import make_pdf

USER, BOB, GROUP = 7301, 7302, -1007301
BOT = "@telellama_bot"
VISION_MODEL = "llama3.2-vision"
_ids = itertools.count(1)


def jpeg(width: int, height: int, color: str = "red") -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG")
    return out.getvalue()


def push(tg: FakeTelegram, chat: int = USER, user: int = USER, **fields: Any) -> dict[str, Any]:
    """A user's message (any fields: photo, voice, document, caption...); returns it."""
    chat_info: dict[str, Any] = (
        {"id": chat, "type": "private", "first_name": "Ann"}
        if chat > 0
        else {"id": chat, "type": "supergroup", "title": "Group"}
    )
    message = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": chat_info,
        "from": {"id": user, "is_bot": False, "first_name": "Bob" if user == BOB else "Ann"},
        **fields,
    }
    tg.push_update({"message": message})
    return message


def photo_sizes(tg: FakeTelegram, *sizes: tuple[int, int]) -> list[dict[str, Any]]:
    """Telegram's PhotoSize list for one photo, smallest first, each a real JPEG to download."""
    found = []
    for width, height in sizes:
        data = jpeg(width, height)
        file_id = tg.add_file(data, file_path=f"photos/{width}x{height}.jpg")
        found.append(
            {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "width": width,
                "height": height,
                "file_size": len(data),
            }
        )
    return found


def mention(caption: str) -> dict[str, Any]:
    """A caption that starts by @mentioning the bot, with its entity."""
    return {
        "caption": f"{BOT} {caption}",
        "caption_entities": [{"type": "mention", "offset": 0, "length": len(BOT)}],
    }


def image_parts(prompt: list[dict[str, Any]]) -> tuple[str, list[Image.Image]]:
    """The last user message's text part and its pictures, decoded."""
    content = prompt[-1]["content"]
    assert isinstance(content, list), content
    text = next(p["text"] for p in content if p["type"] == "text")
    pictures: list[Image.Image] = []
    for part in content:
        if part["type"] == "image_url":
            header, encoded = part["image_url"]["url"].split(",", 1)
            assert header == "data:image/jpeg;base64"
            pictures.append(Image.open(BytesIO(base64.b64decode(encoded))))
    return text, pictures


def stored_turns(client: redis.Redis, prefix: str, user: int, scope: str = "p") -> list[Any]:
    return [json.loads(t) for t in client.lrange(f"{prefix}:{{u{user}}}:h:{scope}", 0, -1)]


# ---------------------------------------------------------------------- photos


async def test_a_photo_reaches_the_vision_model_as_an_image_part(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    llm.default = Plan(text="A red square.")
    async with start_bot(llm_vision=True, image_max_side=256):
        sizes = photo_sizes(tg, (90, 45), (240, 120), (1280, 640))
        push(tg, photo=sizes, caption="what is this?")
        [reply] = await tg.wait_messages(USER, 1)
        await tg.wait_idle()
    assert reply.text == "A red square."
    # Only the largest size within IMAGE_MAX_SIDE was fetched.
    assert [c.params["file_id"] for c in tg.calls_of("getFile")] == [sizes[1]["file_id"]]
    assert tg.downloads == ["photos/240x120.jpg"]
    text, [picture] = image_parts(chat_prompts(llm)[-1])
    assert text == "[photo] what is this?"
    assert picture.size == (240, 120)
    # Memory keeps the words, never the picture.
    [turn] = stored_turns(redis_client, prefix, USER)
    assert turn["u"] == "[photo] what is this?"
    assert "base64" not in json.dumps(turn)


async def test_a_large_photo_is_downscaled_before_it_is_sent(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(llm_vision=True, image_max_side=256):
        push(tg, photo=photo_sizes(tg, (1000, 500)))
        await tg.wait_messages(USER, 1)
    text, [picture] = image_parts(chat_prompts(llm)[-1])
    assert text == "[photo]"
    assert picture.size == (256, 128)


async def test_a_vision_model_of_its_own_answers_photos(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.models.append(VISION_MODEL)
    async with start_bot(vision_model=VISION_MODEL):
        push(tg, photo=photo_sizes(tg, (320, 240)), caption="describe it")
        await tg.wait_messages(USER, 1)
        tg.send_text(USER, "thanks! and in one word?")
        await tg.wait_messages(USER, 2)
    photo, text = chat_prompts(llm)[-2:], llm.requests[-1]
    assert llm.requests[-2]["model"] == VISION_MODEL
    assert text["model"] == "llama-3-8b-instruct"
    # The follow-up sees the photo's turn as text.
    assert {"role": "user", "content": "[photo] describe it"} in text["messages"]
    assert isinstance(photo[0][-1]["content"], list)


async def test_without_vision_a_photo_gets_a_clear_reply_and_no_model_call(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        push(tg, photo=photo_sizes(tg, (320, 240)), caption="what is this?")
        [reply] = await tg.wait_messages(USER, 1)
        await tg.wait_idle()
    assert reply.text == texts.NO_IMAGES
    assert llm.requests == []
    assert tg.calls_of("getFile") == []


async def test_group_photos_count_only_when_they_address_the_bot(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="A cat.")
    async with start_bot(llm_vision=True):
        # Not addressed: nothing is downloaded, nothing said.
        bobs = push(tg, GROUP, BOB, photo=photo_sizes(tg, (320, 240)), caption="my cat")
        await tg.wait_idle()
        assert tg.texts(GROUP) == []
        assert tg.calls_of("getFile") == []
        # A caption that mentions the bot.
        push(tg, GROUP, USER, photo=photo_sizes(tg, (200, 100)), **mention("what is it?"))
        await tg.wait_messages(GROUP, 1)
        text, [picture] = image_parts(chat_prompts(llm)[-1])
        assert (text, picture.size) == ("[photo] what is it?", (200, 100))
        # Someone replies to Bob's photo while addressing the bot.
        question = f"{BOT} what breed?"
        entities = [{"type": "mention", "offset": 0, "length": len(BOT)}]
        push(tg, GROUP, USER, text=question, entities=entities, reply_to_message=bobs)
        await tg.wait_messages(GROUP, 2)
    text, [picture] = image_parts(chat_prompts(llm)[-1])
    assert (text, picture.size) == ("[photo from Bob] what breed?", (320, 240))
    assert tg.texts(GROUP) == ["A cat.", "A cat."]


# ---------------------------------------------------------------------- voice


def voice(tg: FakeTelegram, size: int | None = None) -> dict[str, Any]:
    file_id = tg.add_file(b"OggS fake opus", file_path="voice/file_1.oga")
    note = {"file_id": file_id, "file_unique_id": "uv", "duration": 3, "mime_type": "audio/ogg"}
    return note | {"file_size": size or 14}


async def test_a_voice_note_is_transcribed_shown_and_answered(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    llm.transcript = "What is the capital of Portugal?"
    llm.default = Plan(text="Lisbon.")
    async with start_bot(stt_base_url=llm.base_url, stt_model="whisper-small"):
        push(tg, voice=voice(tg))
        shown, answer = await tg.wait_messages(USER, 2)
        await tg.wait_idle()
    assert shown.text == "🎙 What is the capital of Portugal?"
    length = utf16_len(shown.text)
    assert shown.entities == [{"type": "blockquote", "offset": 0, "length": length}]
    assert answer.text == "Lisbon."
    [upload] = llm.transcriptions
    assert upload["model"] == "whisper-small"
    assert upload["filename"] == "voice.ogg"
    assert upload["size"] == len(b"OggS fake opus")
    asked = "[voice message] What is the capital of Portugal?"
    assert chat_prompts(llm)[-1][-1]["content"] == asked
    [turn] = stored_turns(redis_client, prefix, USER)
    assert turn["u"] == asked


async def test_a_file_over_telegrams_download_limit_gets_a_clear_reply(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(stt_base_url=llm.base_url):
        push(tg, voice=voice(tg, size=25 * 1024 * 1024))
        [reply] = await tg.wait_messages(USER, 1)
        await tg.wait_idle()
    assert reply.text == texts.too_big("recording", 25 * 1024 * 1024, 20 * 1024 * 1024)
    assert "too big" in reply.text and "20 MB" in reply.text
    assert tg.calls_of("getFile") == []
    assert llm.transcriptions == [] and llm.requests == []


async def test_voice_without_a_speech_endpoint_or_a_failing_one(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        push(tg, voice=voice(tg))
        [reply] = await tg.wait_messages(USER, 1)
    assert reply.text == texts.NO_VOICE
    llm.transcription_status = 500
    async with start_bot(stt_base_url=llm.base_url):
        push(tg, voice=voice(tg))
        replies = await tg.wait_messages(USER, 2)
        await tg.wait_idle()
    assert replies[1].text == texts.TRANSCRIPTION_FAILED
    assert llm.requests == []


# ---------------------------------------------------------------------- documents


def document(
    tg: FakeTelegram, content: bytes, name: str, mime: str, size: int | None = None
) -> dict[str, Any]:
    file_id = tg.add_file(content, file_path=f"documents/{name}")
    return {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "file_name": name,
        "mime_type": mime,
        "file_size": size or len(content),
    }


NOTES = b"Project notes\n\nThe first code word is PELICAN.\nThe second code word is WALRUS.\n"


async def test_a_documents_text_reaches_the_prompt_and_stays_for_follow_ups(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, redis_client: redis.Redis, prefix: str
) -> None:
    async with start_bot():
        push(
            tg,
            document=document(tg, NOTES, "notes.txt", "text/plain"),
            caption="What is the first code word?",
        )
        await tg.wait_messages(USER, 1)
        tg.send_text(USER, "And the second one?")
        await tg.wait_messages(USER, 2)
    first, follow_up = chat_prompts(llm)
    assert first[-1]["content"] == "[document: notes.txt] What is the first code word?"
    for prompt in (first, follow_up):
        system = prompt[0]["content"]
        assert '"notes.txt"' in system and "The second code word is WALRUS." in system
    # The document is stored once, with the conversation; the turns keep only its name.
    turns = stored_turns(redis_client, prefix, USER)
    assert [t["u"] for t in turns] == [
        "[document: notes.txt] What is the first code word?",
        "And the second one?",
    ]
    assert "PELICAN" not in json.dumps(turns)


async def test_a_question_sent_while_a_document_downloads_waits_for_it(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot():
        tg.hang("getFile", 0.5)
        push(tg, document=document(tg, NOTES, "notes.txt", "text/plain"))
        tg.send_text(USER, "What is the first code word?")
        read, _answer = await tg.wait_messages(USER, 2)
    assert read.text.startswith("📄 I've read notes.txt")
    [prompt] = chat_prompts(llm)
    assert "The first code word is PELICAN." in prompt[0]["content"]


async def test_a_pdf_without_a_question_is_read_then_asked_about(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    pdf = make_pdf([(None, ["Invoice 2291: total due 480 EUR by 30 June."])])
    async with start_bot():
        push(tg, document=document(tg, pdf, "invoice.pdf", "application/pdf"))
        [notice] = await tg.wait_messages(USER, 1)
        await tg.wait_idle()
        assert llm.requests == []
        tg.send_text(USER, "How much is due?")
        await tg.wait_messages(USER, 2)
    assert notice.text.startswith("📄 I've read invoice.pdf")
    system = chat_prompts(llm)[-1][0]["content"]
    assert "[page 1]\nInvoice 2291: total due 480 EUR by 30 June." in system


async def test_an_overlong_document_is_truncated_with_a_notice(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    lines = [f"Line {n:05d} of the long report." for n in range(2000)]
    content = "\n".join(lines).encode()
    async with start_bot(llm_context_tokens=2048, llm_max_tokens=256):
        push(
            tg,
            document=document(tg, content, "report.md", "text/markdown"),
            caption="Summarise it",
        )
        notice, _answer = await tg.wait_messages(USER, 2)
    assert notice.text.startswith("✂️ report.md is too long for me to keep whole: I kept the first")
    system = chat_prompts(llm)[-1][0]["content"]
    assert "only its beginning is included" in system
    assert "Line 00000 of the long report." in system
    assert "Line 01999" not in system
    kept = system.split("<document>\n", 1)[1].split("\n</document>", 1)[0]
    # Within its share of the budget: half of (context - answer) tokens, ~3.5 characters each.
    assert 0 < len(kept) <= (2048 - 256) // 2 * 4


async def test_documents_too_big_or_of_unknown_kinds_get_a_clear_reply(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    async with start_bot(max_document_bytes=10_000):
        push(tg, document=document(tg, b"x" * 50, "big.txt", "text/plain", size=50_000))
        push(tg, document=document(tg, b"PK\x03\x04", "archive.zip", "application/zip"))
        big, unknown = await tg.wait_messages(USER, 2)
        await tg.wait_idle()
    assert big.text == texts.too_big("document", 50_000, 10_000)
    assert unknown.text == texts.document_unsupported("archive.zip")
    assert tg.calls_of("getFile") == [] and llm.requests == []


# ---------------------------------------------------------------------- everything else


async def test_the_unsupported_reply_says_what_this_deployment_reads(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    sticker = {
        "file_id": "s",
        "file_unique_id": "su",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    async with start_bot():
        push(tg, sticker=sticker)
        [plain] = await tg.wait_messages(USER, 1)
    async with start_bot(llm_vision=True, stt_base_url=llm.base_url):
        push(tg, sticker=sticker)
        everything = (await tg.wait_messages(USER, 2))[1]
    assert "photos" not in plain.text and "voice" not in plain.text
    assert "documents (PDF" in plain.text
    assert "photos" in everything.text and "voice messages" in everything.text
    assert llm.requests == []


# ---------------------------------------------------------------------- the pure parts


def test_photo_size_choice_and_preparation() -> None:
    sizes = [(90, 60), (320, 213), (800, 533), (1280, 853)]
    assert choose_size(sizes, 1024) == 2
    assert choose_size(sizes, 50) == 0  # none fits: the smallest, downscaled after download
    out = BytesIO()
    Image.new("RGBA", (600, 300), (0, 0, 0, 0)).save(out, "PNG")
    prepared = prepare(out.getvalue(), 200)
    picture = Image.open(BytesIO(base64.b64decode(prepared.data_url.split(",", 1)[1])))
    assert (picture.format, picture.size) == ("JPEG", (200, 100))
    # Transparent parts turn white, not black.
    assert picture.convert("RGB").getpixel((100, 50)) == (255, 255, 255)
    with pytest.raises(UnreadableImage):
        prepare(b"not a picture", 200)


def test_document_kinds_and_text() -> None:
    assert kind_of("report.PDF", None) == PDF
    assert kind_of("data.csv", "application/octet-stream") == TEXT
    assert kind_of(None, "application/json") == TEXT
    assert kind_of("photo.heic", "image/heic") is None
    assert read_text("café\r\nline two\x00".encode(), TEXT, 100).text == "café\nline two"
    assert read_text("café".encode("cp1252"), TEXT, 100).text == "café"
    for data, reason in ((b"", "empty"), (b"\xff\x00\xfe" * 10, "not a text file")):
        with pytest.raises(UnreadableDocument, match=reason):
            read_text(data, TEXT, 100)
    with pytest.raises(UnreadableDocument, match="not a readable PDF"):
        read_text(b"%PDF-1.4 garbage", PDF, 100)
    pages = [(None, [f"Page {n} says something."]) for n in range(1, 31)]
    cut = read_text(make_pdf(pages), PDF, 200)
    assert cut.kept is not None and cut.kept.endswith("of 30 pages")
    assert cut.text.startswith("[page 1]\nPage 1 says something.") and len(cut.text) <= 200
