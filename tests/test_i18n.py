"""The catalogues: every message of bot/texts.py in every language, with the same placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from bot import i18n, texts
from bot.i18n import LANGUAGES, MESSAGES, placeholders, supported

TRANSLATED = sorted(set(LANGUAGES) - {i18n.ENGLISH})
ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"phrase": None, "template": None, "plural": (1, 2)}


def catalog(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as source:
        return read_po(source, locale=language)


def msgid(message: i18n.Message) -> str | tuple[str, str]:
    return message.msgid if message.plural is None else (message.msgid, message.plural)


def test_every_message_is_declared_once() -> None:
    ids = [message.msgid for message in MESSAGES]
    assert len(ids) == len(set(ids))
    assert len(ids) > 100


def test_the_template_lists_exactly_the_declared_messages() -> None:
    """bot/locales/messages.pot is what `pybabel extract` makes of bot/texts.py today."""
    extracted = {
        message
        for _, message, _, _ in extract_from_file("python", ROOT / "bot" / "texts.py", KEYWORDS)
    }
    declared = {msgid(m) for m in MESSAGES}
    assert extracted == declared
    with (ROOT / "bot" / "locales" / "messages.pot").open("rb") as source:
        template = read_po(source)
    assert {m.id if isinstance(m.id, str) else tuple(m.id) for m in template if m.id} == declared


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    translations = catalog(language)
    entries: dict[str | tuple[str, ...], Message] = {
        m.id if isinstance(m.id, str) else tuple(m.id): m for m in translations if m.id
    }
    problems = []
    for message in MESSAGES:
        entry = entries.pop(msgid(message), None)
        if entry is None:
            problems.append(f"missing: {message.msgid!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {message.msgid!r}")
        problems += _compare(message, entry, translations.num_plurals)
    problems += [f"not in bot/texts.py: {key!r}" for key in entries]
    assert problems == [], f"{language}: " + "\n".join(problems)


def _compare(message: i18n.Message, entry: Message, forms: int) -> list[str]:
    expected = placeholders(message.msgid)
    if message.plural is None:
        assert isinstance(entry.string, str)
        if not entry.string:
            return [f"untranslated: {message.msgid!r}"]
        found = placeholders(entry.string)
        return (
            [] if found == expected else [f"placeholders {found} != {expected}: {entry.string!r}"]
        )
    assert isinstance(entry.string, (list, tuple))
    strings = list(entry.string)
    if len(strings) != forms or not all(strings):
        return [f"needs {forms} plural forms: {message.msgid!r}"]
    problems = []
    for string in strings:
        # A form may leave the number out ("one", "two" in Arabic); nothing else.
        found = placeholders(string)
        if not (expected - {message.count} <= found <= expected):
            problems.append(f"placeholders {found} != {expected}: {string!r}")
    return problems


def test_english_and_plural_forms_render() -> None:
    assert texts.remembered("tea", 1).endswith("(I remember 1 thing about you: /memory)")
    assert texts.remembered("tea", 3).endswith("(I remember 3 things about you: /memory)")
    forms = {n: texts.localize("ru", texts.duration(n)) for n in (1, 2, 5, 21, 22, 25)}
    assert forms == {
        1: "1 секунду",
        2: "2 секунды",
        5: "5 секунд",
        21: "21 секунду",
        22: "22 секунды",
        25: "25 секунд",
    }
    assert texts.localize("ar", texts.duration(2)) == "ثانيتين"
    assert texts.localize("ar", texts.duration(11)) == "11 ثانية"


def test_nested_messages_are_rendered_in_the_same_language() -> None:
    refusal = texts.too_fast(3, texts.write_again_at("12:00:00", 40))
    assert refusal.startswith("You're sending messages faster")
    assert texts.localize("es", refusal) == (
        "Envías mensajes más rápido de lo que puedo responder (como máximo 3 por minuto). "
        "Vuelve a escribir a las 12:00:00 UTC (dentro de 40 segundos)."
    )
    assert texts.localize("es", "the model's own answer") == "the model's own answer"


def test_each_language_greets_in_its_own_words() -> None:
    greetings = {code: texts.localize(code, texts.greeting("Ann", "Bot")) for code in LANGUAGES}
    assert len(set(greetings.values())) == len(LANGUAGES)
    assert all("Ann" in text and "Bot" in text for text in greetings.values())


@pytest.mark.parametrize(
    ("code", "language"),
    [("es", "es"), ("pt-br", "pt"), ("PT_BR", "pt"), ("ar-SA", "ar"), ("de", None), ("", None)],
)
def test_telegram_language_codes(code: str, language: str | None) -> None:
    assert supported(code) == language
