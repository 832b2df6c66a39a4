"""The user's language through the real bot: Telegram's language_code, /language, the menus and
the model's system prompt."""

from __future__ import annotations

import redis

from bot import texts
from bot.app import BotApp
from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan, SentMessage

ANA = 8101
GROUP = -1008100


async def ask(
    tg: FakeTelegram,
    text: str,
    *,
    language: str | None = "es",
    chat: int = ANA,
    user: int | None = None,
) -> SentMessage:
    before = len(tg.chat(chat).messages)
    tg.send_text(chat, text, user_id=user, first_name="Ana", language_code=language)
    messages = await tg.wait_messages(chat, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1]


def system_prompt(llm: FakeLLM) -> str:
    return str(chat_prompts(llm)[-1][0]["content"])


async def test_a_spanish_user_gets_spanish_greeting_help_and_error_notices(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    start = await ask(tg, "/start")
    assert start.text == texts.localize("es", texts.greeting("Ana", "Telellama"))
    assert start.text.startswith("¡Hola, Ana!")

    assert (await ask(tg, "/help")).text == texts.localize("es", texts.HELP)
    assert (await ask(tg, "/frobnicate")).text.startswith("No conozco ese comando.")

    llm.plan(Plan(status=401, error_message="bad key"))
    assert (await ask(tg, "¿Hola?")).text == texts.localize("es", texts.LLM_REJECTED)
    assert texts.LLM_REJECTED.startswith("The language model rejected")
    assert texts.localize("es", texts.LLM_REJECTED).startswith("El modelo de lenguaje rechazó")
    assert "(their preferred language: es)" in system_prompt(llm)

    # The same user in a group: the group's help, in their language.
    help_ = await ask(tg, "/help", chat=GROUP, user=ANA)
    assert help_.text.startswith("Para hablar conmigo aquí, menciona a @")


async def test_language_switches_persists_across_a_restart_and_goes_with_forget_all(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    key, index = f"{prefix}:{{u{ANA}}}:lang", f"{prefix}:{{u{ANA}}}:keys"
    async with start_bot():
        switched = await ask(tg, "/language ru")
        assert switched.text == "Готово: теперь я говорю с вами на языке «Русский»."
        assert redis_client.get(key) == "ru"
        assert key in redis_client.smembers(index)
        assert 0 < redis_client.ttl(key) <= 30 * 86400

    async with start_bot():
        assert (await ask(tg, "/help")).text == texts.localize("ru", texts.HELP)
        await ask(tg, "Привет")
        assert "(their preferred language: ru)" in system_prompt(llm)

        assert (await ask(tg, "/language klingon")).text.startswith("Я пока не говорю на «klingon»")
        await ask(tg, "/forget all")
        question = tg.chat(ANA).messages[-1]
        tg.send_callback(ANA, ANA, question.message_id, "forget-all")
        await tg.wait_for(lambda: tg.chat(ANA).messages[-1].text.startswith("Готово. Я удалил"))
        assert redis_client.get(key) is None
        # Back to the language of the Telegram app.
        assert (await ask(tg, "/help")).text == texts.localize("es", texts.HELP)


async def test_language_alone_lists_the_choices_and_a_button_switches(
    tg: FakeTelegram, bot: BotApp
) -> None:
    listing = await ask(tg, "/language", language="pt-br")
    assert listing.text.startswith("Falo com você em Português: o idioma do seu app do Telegram.")
    assert "(en, hi, es, pt, ru, ar, id)" in listing.text
    assert listing.reply_markup is not None
    buttons = [b for row in listing.reply_markup["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == list(texts.LANGUAGES.values())
    assert [b["callback_data"] for b in buttons] == [f"lang:{code}" for code in texts.LANGUAGES]

    tg.send_callback(ANA, ANA, listing.message_id, "lang:ar")
    await tg.wait_for(lambda: tg.chat(ANA).messages[-1].text.startswith("تم:"))
    assert tg.chat(ANA).messages[-1].text == "تم: من الآن ستكون لغتي معك العربية."
    assert (await ask(tg, "/language", language="pt-br")).text.startswith(
        "لغتي معك: العربية، كما اخترت."
    )
    auto = await ask(tg, "/language auto", language="pt-br")
    assert auto.text == "Pronto: volto a seguir o idioma do seu app do Telegram (Português)."


async def test_an_unsupported_language_falls_back_to_english_and_reaches_the_model(
    tg: FakeTelegram, llm: FakeLLM, bot: BotApp
) -> None:
    assert (await ask(tg, "/start", language="de")).text.startswith("Hi Ana!")
    assert (await ask(tg, "/start", language=None)).text.startswith("Hi Ana!")
    await ask(tg, "Hallo, wie geht's?", language="de")
    assert "(their preferred language: de)" in system_prompt(llm)


async def test_default_language_and_localized_command_menus(
    tg: FakeTelegram, start_bot: BotFactory
) -> None:
    async with start_bot(default_language="id"):
        assert (await ask(tg, "/start", language="de")).text.startswith("Hai Ana!")
        assert (await ask(tg, "/start", language="en")).text.startswith("Hi Ana!")
    private = {"type": "all_private_chats"}
    menu = {c["command"]: c["description"] for c in tg.commands(private)}
    assert menu["language"] == "Pilih bahasa saya"
    for code in set(texts.LANGUAGES) - {"id"}:
        localized = {c["command"]: c["description"] for c in tg.commands(private, code)}
        assert localized["language"] == texts.localize(code, texts.LANGUAGE_COMMAND[1])
    groups = tg.commands({"type": "all_group_chats"}, "ru")
    assert {"command": "ask", "description": "Спросить меня"} in groups


async def test_limits_and_the_engines_notes_follow_the_users_language(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory
) -> None:
    llm.default = Plan(text="Una respuesta muy larga", finish_reason="length")
    async with start_bot(rate_limit_per_minute=1):
        answered = await ask(tg, "Cuéntame algo")
        assert answered.text.endswith("✂️ La respuesta llegó a su límite de longitud.")
        refused = await ask(tg, "¿Y otra cosa?")
        assert refused.text.startswith(
            "Envías mensajes más rápido de lo que puedo responder (como máximo 1 por minuto)."
        )
