"""The bot's own words in every language it speaks: gettext catalogues, rendered lazily.

The format: GNU gettext. Every message is declared once, in English, in bot/texts.py; English is
the msgid (gettext's convention, so a message reads as itself in the code and English needs no
catalogue) and each other language has one catalogue,
`bot/locales/<code>/LC_MESSAGES/messages.po`. It is the format every translation tool knows
(Poedit, Weblate, Crowdin, Lokalize), it marks translations "fuzzy" when the English changes, and
its Plural-Forms header carries each language's plural rule (Russian has three forms, Arabic six,
Indonesian one), applied by the standard library's `gettext`. Babel reads a catalogue and compiles
it in memory the first time its language is needed (`catalogue`), so there are no `.mo` files to
build, commit or forget; the babel import itself waits for that moment too.

Lazy texts: a message is a `Text`, a `str` holding its English rendering plus what it was made of
(the message and its parameters). Code that builds a message does not need to know who reads it
(the access lists, the limits, the model's errors, a document reader); the edge that delivers it
to a person does: `localize(language, text)` renders it in that person's language, and passes
anything else (a model's answer) through untouched. Parameters that are themselves `Text` are
rendered in the same language.

Adding or changing a message (tests/test_i18n.py fails until every language has it, with the
same placeholders)::

    pybabel extract -k phrase -k template -k plural:1,2 --no-location --omit-header \\
        -o bot/locales/messages.pot bot/texts.py
    pybabel update -i bot/locales/messages.pot -d bot/locales --no-wrap
    # translate the new or fuzzy entries in each messages.po, removing the fuzzy flag
"""

from __future__ import annotations

import gettext
import logging
import string
from collections.abc import Mapping
from functools import cache
from importlib import resources
from io import BytesIO

log = logging.getLogger(__name__)

ENGLISH = "en"
# Every language the bot speaks, by ISO 639-1 code, with its name in itself.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "hi": "हिन्दी",
    "es": "Español",
    "pt": "Português",
    "ru": "Русский",
    "ar": "العربية",
    "id": "Bahasa Indonesia",
}
DOMAIN = "messages"

# Every message bot/texts.py declares, in order (what each catalogue must translate).
MESSAGES: list[Message] = []


def supported(code: str | None) -> str | None:
    """The language a Telegram language code names when the bot speaks it ("pt-br" → "pt"),
    else None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in LANGUAGES else None


def placeholders(template: str) -> frozenset[str]:
    """The `{name}` and `{name:spec}` fields of a template, as written."""
    return frozenset(
        f"{name}:{spec}" if spec else name
        for _, name, spec, _ in string.Formatter().parse(template)
        if name is not None
    )


class Message:
    """A message as declared: its English text (the msgid), and with a plural the English
    plural form too, chosen by the number in the parameter `count`."""

    __slots__ = ("count", "msgid", "plural")

    def __init__(self, msgid: str, plural: str | None = None, count: str = "count") -> None:
        self.msgid, self.plural, self.count = msgid, plural, count
        MESSAGES.append(self)

    def __call__(self, **params: object) -> Text:
        return Text(self, params)

    def render(self, translations: gettext.NullTranslations, params: Mapping[str, object]) -> str:
        if self.plural is None:
            template = translations.gettext(self.msgid)
        else:
            number = params[self.count]
            assert isinstance(number, int)
            template = translations.ngettext(self.msgid, self.plural, number)
        return template.format_map(params) if params else template


class Text(str):
    """One of the bot's messages: its English text, renderable in any language (`localize`)."""

    message: Message
    params: Mapping[str, object]

    def __new__(cls, message: Message, params: Mapping[str, object]) -> Text:
        self = super().__new__(cls, message.render(catalogue(ENGLISH), params))
        self.message, self.params = message, params
        return self

    def render(self, language: str) -> str:
        params = {
            k: localize(language, v) if isinstance(v, Text) else v for k, v in self.params.items()
        }
        try:
            return self.message.render(catalogue(language), params)
        except (KeyError, ValueError, IndexError, AssertionError):
            log.warning(
                "the %s translation of %r is broken: English used", language, self.message.msgid
            )
            return str(self)


def phrase(msgid: str) -> Text:
    """A message without parameters."""
    return Message(msgid)()


def template(msgid: str) -> Message:
    """A message with `{name}` parameters: call it with them."""
    return Message(msgid)


def plural(singular: str, plural: str, count: str = "count") -> Message:
    """A message whose wording follows the number in the parameter `count`."""
    return Message(singular, plural, count)


def localize(language: str, text: str) -> str:
    """`text` in `language` when it is one of the bot's messages; anything else as it is."""
    if isinstance(text, Text) and language != ENGLISH:
        return text.render(language)
    return text


def catalogue_path(language: str) -> resources.abc.Traversable:
    return resources.files(__package__ or "bot").joinpath(
        "locales", language, "LC_MESSAGES", f"{DOMAIN}.po"
    )


@cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The translations of `language` (English, and a language without a catalogue: the
    messages as declared)."""
    if language == ENGLISH or language not in LANGUAGES:
        return gettext.NullTranslations()
    # Babel (~20 ms to import) only once a language other than English is needed.
    from babel.messages.mofile import write_mo  # noqa: PLC0415
    from babel.messages.pofile import read_po  # noqa: PLC0415

    try:
        with catalogue_path(language).open("rb") as source:
            catalog = read_po(source, locale=language, domain=DOMAIN)
    except OSError as exc:
        log.error("no catalogue for %s (%s): its users get English", language, exc)
        return gettext.NullTranslations()
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def load_all() -> None:
    """Compile every catalogue now (at start), rather than on its first user's message."""
    for language in LANGUAGES:
        catalogue(language)
