"""What the bot says in its own words: every message, declared once in English.

Each message is a lazy `Text` (bot/i18n.py): English as written here, rendered in the reader's
language by `localize(language, text)` where it is delivered. The other languages' wording lives
in the gettext catalogues `bot/locales/<code>/LC_MESSAGES/messages.po`, whose msgids are the
English texts below; tests/test_i18n.py fails when a catalogue misses one or changes its
placeholders. Messages with parameters are templates (`{name}` placeholders, `str.format`
syntax); a message whose wording follows a number is a plural (`count`).
"""

from __future__ import annotations

from bot.i18n import ENGLISH, LANGUAGES, Text, localize, phrase, plural, supported, template

__all__ = ["ENGLISH", "LANGUAGES", "Text", "localize", "supported"]

Command = tuple[str, Text]

COMMANDS: tuple[Command, ...] = (
    ("new", phrase("Start a new conversation")),
    ("retry", phrase("Regenerate the last answer")),
    ("stop", phrase("Stop the answer being written")),
    ("help", phrase("What I can do")),
)
LANGUAGE_COMMAND: Command = ("language", phrase("Choose my language"))

_GREETING = template(
    "Hi {first_name}! I'm {bot_name}, an AI assistant running on a Llama model.\n\n"
    "Ask me anything: questions, writing, translations, code, ideas. I answer as I think, "
    "and I remember our conversation so you can follow up.\n\n"
    "/new starts over, /retry gives another answer, /stop interrupts me, /help shows more."
)


def greeting(first_name: str, bot_name: str) -> Text:
    return _GREETING(first_name=first_name, bot_name=bot_name)


HELP = phrase(
    "Just write to me and I'll answer.\n\n"
    "/new (or /reset) — forget this conversation and start over\n"
    "/retry — write the last answer again, differently\n"
    "/stop — stop the answer I'm writing\n"
    "/language — choose the language I speak\n"
    "/help — this message\n\n"
    "I remember our conversation for a while; after a long pause I start a fresh one. "
    "I'm an AI model, so double-check anything important."
)

RESET_DONE = phrase("Done: I've forgotten this conversation. What shall we talk about?")
MEMORY_DOWN_RESET = phrase(
    "I can't reach my memory right now, so I couldn't reset. Please try again."
)
INTERNAL_ERROR = phrase("Sorry, something went wrong on my side. Please try again.")
UNKNOWN_COMMAND = phrase("I don't know that command. Send /help to see what I can do.")

REMEMBER_FAILED = phrase(
    "I can't reach my memory right now, so I couldn't save that. Please try again."
)
_REMEMBERED = plural(
    "Got it, I'll remember that: {fact}\n\n(I remember {count} thing about you: /memory)",
    "Got it, I'll remember that: {fact}\n\n(I remember {count} things about you: /memory)",
)


def remembered(fact: str, count: int) -> Text:
    return _REMEMBERED(fact=fact, count=count)


GROUP_COMMANDS: tuple[Command, ...] = (
    ("ask", phrase("Ask me something")),
    ("new", phrase("Forget our conversation in this group")),
    ("retry", phrase("Regenerate my last answer to you")),
    ("stop", phrase("Stop the answer I'm writing for you")),
    ("help", phrase("How to talk to me here")),
    ("settings", phrase("Group settings (admins)")),
    LANGUAGE_COMMAND,
)

PRIVATE_COMMANDS: tuple[Command, ...] = (
    *COMMANDS,
    ("memory", phrase("What I remember about you")),
    ("remember", phrase("Remember a fact about you")),
    ("forget", phrase("Forget a fact, or everything")),
    ("export", phrase("A file with everything I keep about you")),
    LANGUAGE_COMMAND,
)

_PRIVACY_ON = phrase(
    "Privacy mode is on, so I only see messages addressed to me; a group admin can make me "
    "an admin (or turn privacy mode off in @BotFather) to let me see the conversation, which "
    "/settings can then use as shared context."
)
_PRIVACY_OFF = phrase(
    "I can see the messages in this group. With shared context on (/settings), I read "
    'the recent messages when answering, so "what did we decide?" works.'
)
_GROUP_HELP = template(
    "Talk to me here by mentioning @{username}, replying to one of my messages, or with "
    "/ask <question>.\n\nEach of you has your own conversation with me in this group: I don't "
    "mix yours with anyone else's. /new starts yours over.\n\n{privacy}"
)


def group_help(username: str, privacy_mode: bool) -> Text:
    return _GROUP_HELP(username=username, privacy=_PRIVACY_ON if privacy_mode else _PRIVACY_OFF)


ADDRESS_ME = phrase("Yes? Ask me something after the mention, or use /ask <question>.")
PRIVATE_ONLY = phrase("Let's do that in a private chat with me, so your memory stays private.")
NO_FACTS = phrase(
    'I don\'t remember any facts about you yet. Say "remember that ..." or use /remember.'
)
REMEMBER_USAGE = phrase("Tell me what to remember, e.g. /remember I'm vegetarian")
FORGET_USAGE = phrase("Use /forget <number> (see /memory) or /forget all.")
FORGET_ALL_CONFIRM = phrase(
    "This deletes everything I keep about you: every conversation, summary and fact. Sure?"
)
FORGET_ALL_BUTTON = phrase("Delete everything")
CANCEL_BUTTON = phrase("Cancel")
FORGET_ALL_DONE = phrase("Done. I've deleted everything I kept about you.")
FORGET_ALL_CANCELLED = phrase("Nothing was deleted.")
NOT_YOURS = phrase("This button isn't for you.")
MEMORY_DOWN = phrase("I can't reach my memory right now. Please try again in a moment.")
SETTINGS_ADMINS_ONLY = phrase("Sorry, only the group's admins can change my settings here.")
SETTINGS_IN_GROUPS = phrase("/settings is for group admins, inside their group.")
SETTINGS_USAGE = phrase(
    "/settings context on|off: use the group's recent messages as shared context\n"
    "/settings triggers word1, word2: words that call me without a mention (off: none)"
)
SETTINGS_ON = phrase("on")
SETTINGS_OFF = phrase("off")
SETTINGS_NO_TRIGGERS = phrase("none")
_SETTINGS = template("Shared context: {context}\nTrigger words: {triggers}\n\n{usage}")


def group_settings(shared_context: bool, triggers: str) -> Text:
    """A group's settings as /settings shows them (`triggers`: the words, comma-separated)."""
    return _SETTINGS(
        context=SETTINGS_ON if shared_context else SETTINGS_OFF,
        triggers=triggers or SETTINGS_NO_TRIGGERS,
        usage=SETTINGS_USAGE,
    )


STALE_BUTTON = phrase("This button has expired.")

_NO_SUCH_FACT = template("There is no fact number {number}. /memory lists them.")
_FORGOTTEN = template("Forgotten: {fact}")


def no_such_fact(number: str) -> Text:
    return _NO_SUCH_FACT(number=number)


def forgotten(fact: str) -> Text:
    return _FORGOTTEN(fact=fact)


# ---------------------------------------------------------------- /memory

MEMORY_HEADER = phrase("What I remember about you:")
CONVERSATIONS_HEADER = phrase("Conversations I keep:")
MEMORY_FOOTER = phrase("/forget <number> deletes a fact; /forget all deletes everything.")
PLACE_PRIVATE = phrase("our private chat")
_PLACE_GROUP = template("the group {title}")
_PLACE_BUSINESS = template("your chat with {title} (Telegram Business)")
_STORED = plural("{place}: {count} exchange", "{place}: {count} exchanges")
_STORED_ON = plural(
    "{place}: {count} exchange, last on {day}", "{place}: {count} exchanges, last on {day}"
)


def place_group(title: str) -> Text:
    return _PLACE_GROUP(title=title)


def place_business(title: str) -> Text:
    return _PLACE_BUSINESS(title=title)


def stored_conversation(place: Text, turns: int, day: str | None) -> Text:
    """One line of /memory's list of conversations (`day`: of the last exchange, YYYY-MM-DD)."""
    if day is None:
        return _STORED(place=place, count=turns)
    return _STORED_ON(place=place, count=turns, day=day)


# ---------------------------------------------------------------- /language

_LANGUAGE_FROM_TELEGRAM = template(
    "I speak {name} with you: the language of your Telegram app.\n\n{choices}"
)
_LANGUAGE_CHOSEN = template("I speak {name} with you, as you chose.\n\n{choices}")
_LANGUAGE_CHOICES = template(
    "Choose a language below, or send /language with its code ({codes}). "
    "/language auto follows your Telegram app's language again."
)
_LANGUAGE_SET = template("Done: from now on I'll speak {name} with you.")
_LANGUAGE_AUTO = template("Done: I'll follow your Telegram app's language again ({name}).")
_LANGUAGE_UNKNOWN = template('I don\'t speak "{code}" yet. I can speak: {codes}.')
LANGUAGE_NOT_SAVED = phrase(
    "I can't reach my memory right now, so I couldn't save your language. Please try again."
)
AUTO = "auto"


def _codes() -> str:
    return ", ".join(LANGUAGES)


def language_choices(language: str, chosen: bool) -> Text:
    """/language alone: the language in use and how to change it (`language`: its code)."""
    current = _LANGUAGE_CHOSEN if chosen else _LANGUAGE_FROM_TELEGRAM
    return current(name=LANGUAGES[language], choices=_LANGUAGE_CHOICES(codes=_codes()))


def language_set(language: str) -> Text:
    return _LANGUAGE_SET(name=LANGUAGES[language])


def language_auto(language: str) -> Text:
    return _LANGUAGE_AUTO(name=LANGUAGES[language])


def language_unknown(code: str) -> Text:
    return _LANGUAGE_UNKNOWN(code=code, codes=_codes())


# ---------------------------------------------------------------- the engine's notes

STOPPED_NOTE = phrase("⏹ Stopped.")
LENGTH_NOTE = phrase("✂️ The answer reached its length limit.")
EMPTY_INPUT = phrase("Send me some text and I'll answer.")
NOTHING_TO_RETRY = phrase("There is nothing to retry yet: send me a message first.")
NOTHING_TO_STOP = phrase("Nothing is being generated right now.")
EMPTY_ANSWER = phrase("The model returned an empty answer. Please try /retry.")
HANDED_OVER = phrase("I'm passing you to a person from our team.")
_TOO_LONG = template(
    "Your message is too long ({length:,} characters); I can read up to {limit:,}. "
    "Please shorten it."
)


def too_long(length: int, limit: int) -> Text:
    return _TOO_LONG(length=length, limit=limit)


# ---------------------------------------------------------------- errors (bot/errors.py)

SOMETHING_WENT_WRONG = phrase("Something went wrong on my side. Please try again in a moment.")
LLM_FAILED = phrase("I couldn't get an answer from the model right now. Please try again.")
LLM_UNAVAILABLE = phrase(
    "The language model is unreachable right now. Please try again in a minute."
)
LLM_TIMEOUT = phrase("The language model took too long to start answering. Please try again.")
LLM_RATE_LIMITED = phrase("The language model is busy right now. Please try again in a minute.")
LLM_SERVER_ERROR = phrase("The language model had an internal error. Please try again.")
LLM_REJECTED = phrase(
    "The language model rejected the request. The bot's operator has been notified in the logs."
)
PROMPT_TOO_LONG = phrase("This conversation is too long for the model. Send /new to start over.")
LLM_STREAM_CUT = phrase("⚠️ The answer was cut off because the connection to the model broke.")
LLM_EMPTY_ANSWER = phrase("The model returned an empty answer. Please rephrase or try /retry.")
MEMORY_UNAVAILABLE = phrase(
    "⚠️ My memory is unavailable right now, so I won't remember this conversation."
)

# ---------------------------------------------------------------- access and limits

_NOT_APPROVED = template(
    "Sorry, I'm only available to approved users, so I can't answer you. If you think "
    "you should have access, ask the bot's operator to add your user id {user_id}."
)
_GROUP_NOT_ALLOWED = template(
    "Sorry, I'm not enabled in this group. The bot's operator can allow it by adding "
    "this chat's id ({chat_id}) to the list of allowed chats."
)
_OVER_QUOTA = template(
    "You've used today's allowance of {tokens:,} tokens. You can write again {when}."
)
_TOO_FAST = template(
    "You're sending messages faster than I can answer (at most {per_minute} a "
    "minute). Please write again {when}."
)
_WHEN = template("at {clock} UTC (in {duration})")
_SECONDS = plural("{count} second", "{count} seconds")
_MINUTES = plural("{count} minute", "{count} minutes")
_HOURS = template("{hours} h {minutes:02d} min")


def not_approved(user_id: int) -> Text:
    return _NOT_APPROVED(user_id=user_id)


def group_not_allowed(chat_id: int) -> Text:
    return _GROUP_NOT_ALLOWED(chat_id=chat_id)


def over_quota(tokens: int, when: Text) -> Text:
    return _OVER_QUOTA(tokens=tokens, when=when)


def too_fast(per_minute: int, when: Text) -> Text:
    return _TOO_FAST(per_minute=per_minute, when=when)


def write_again_at(clock: str, seconds: int) -> Text:
    """When a limited user may write again: a UTC clock time and how long that is from now."""
    return _WHEN(clock=clock, duration=duration(seconds))


def duration(seconds: int) -> Text:
    if seconds < 90:
        return _SECONDS(count=seconds)
    minutes = -(-seconds // 60)
    if minutes < 90:
        return _MINUTES(count=minutes)
    return _HOURS(hours=minutes // 60, minutes=minutes % 60)


# ---------------------------------------------------------------- photos, voice, documents

DOCUMENT_KINDS = phrase("PDF, text, Markdown, CSV or JSON")
NO_IMAGES = phrase(
    "This deployment doesn't read images: its model reads text only. Please describe the "
    "picture, or ask your question as text."
)
NO_VOICE = phrase(
    "This deployment doesn't transcribe voice messages. Please write your question as text."
)
IMAGE_UNREADABLE = phrase("I couldn't open that picture. Please send it again as a photo.")
TRANSCRIPTION_FAILED = phrase(
    "I couldn't transcribe that voice message right now. Please try again, or type it."
)
NOTHING_HEARD = phrase(
    "I couldn't make out any words in that recording. Please try again, or type it."
)
DOWNLOAD_FAILED = phrase("I couldn't download that file from Telegram. Please send it again.")
DOCUMENT_NOT_KEPT = phrase(
    "I can't reach my memory right now, so I couldn't keep that document. Please send it "
    "again in a moment."
)
YOUR_DOCUMENT = phrase("your document")
TRANSCRIPT_SHOWN_CHARS = 300

_UNSUPPORTED = {
    (False, False): template(
        "I can read text messages and documents ({kinds}), but not this kind of message. "
        "Please send me one of those."
    ),
    (True, False): template(
        "I can read text messages, photos and documents ({kinds}), but not this kind of "
        "message. Please send me one of those."
    ),
    (False, True): template(
        "I can read text messages, voice messages and documents ({kinds}), but not this kind "
        "of message. Please send me one of those."
    ),
    (True, True): template(
        "I can read text messages, photos, voice messages and documents ({kinds}), but not "
        "this kind of message. Please send me one of those."
    ),
}


def unsupported(*, images: bool, voice: bool) -> Text:
    """What this deployment reads, for a message it cannot (a sticker, a GIF, a poll...)."""
    return _UNSUPPORTED[images, voice](kinds=DOCUMENT_KINDS)


# What is too big, by the kind of file (bot/media.py), with and without its size.
_TOO_BIG = {
    "photo": (
        template(
            "That photo is too big for me ({size:.1f} MB): I can read files up to "
            "{limit:.0f} MB. Please send a smaller one."
        ),
        template(
            "That photo is too big for me: I can read files up to {limit:.0f} MB. "
            "Please send a smaller one."
        ),
    ),
    "picture": (
        template(
            "That picture is too big for me ({size:.1f} MB): I can read files up to "
            "{limit:.0f} MB. Please send a smaller one."
        ),
        template(
            "That picture is too big for me: I can read files up to {limit:.0f} MB. "
            "Please send a smaller one."
        ),
    ),
    "recording": (
        template(
            "That recording is too big for me ({size:.1f} MB): I can read files up to "
            "{limit:.0f} MB. Please send a smaller one."
        ),
        template(
            "That recording is too big for me: I can read files up to {limit:.0f} MB. "
            "Please send a smaller one."
        ),
    ),
    "document": (
        template(
            "That document is too big for me ({size:.1f} MB): I can read files up to "
            "{limit:.0f} MB. Please send a smaller one."
        ),
        template(
            "That document is too big for me: I can read files up to {limit:.0f} MB. "
            "Please send a smaller one."
        ),
    ),
}


def too_big(what: str, size: int | None, limit: int) -> Text:
    """`what` ("photo", "picture", "recording", "document") is over `limit` bytes."""
    megabyte = 1 << 20
    sized, unsized = _TOO_BIG[what]
    if size:
        return sized(size=size / megabyte, limit=limit / megabyte)
    return unsized(limit=limit / megabyte)


_DOCUMENT_UNSUPPORTED = template(
    "I can't read {name}. I read {kinds} documents: please send one of those, or paste the text."
)
_KIND_UNSUPPORTED = template(
    "I can't read that kind of file. I read {kinds} documents: please send one of those, or "
    "paste the text."
)
_DOCUMENT_UNREADABLE = template("I couldn't read {name}: {reason}.")
_DOCUMENT_READ = template("📄 I've read {name} ({chars:,} characters). Ask me anything about it.")
_DOCUMENT_CUT = template("✂️ {name} is too long for me to keep whole: I kept {kept}.")
_DOCUMENT_CUT_ASK = template(
    "✂️ {name} is too long for me to keep whole: I kept {kept}. Ask me anything about that part."
)
# Why a document could not be read (bot/textfiles.py), and how much of a long one was kept.
NOT_TEXT = phrase("it is not a text file")
EMPTY_DOCUMENT = phrase("it is empty")
PASSWORD_PROTECTED = phrase("it is protected by a password")
NOT_A_PDF = phrase("it is not a readable PDF")
NO_TEXT_IN_PDF = phrase("it has no text I can read (a scan, perhaps)")
_KEPT_SHARE = template("the first {share}% ({kept:,} of {total:,} characters)")
_KEPT_PAGES = plural(
    "about the first {read} of {total} page", "about the first {read} of {total} pages", "total"
)


def document_unsupported(name: str) -> Text:
    if not name:
        return _KIND_UNSUPPORTED(kinds=DOCUMENT_KINDS)
    return _DOCUMENT_UNSUPPORTED(name=name, kinds=DOCUMENT_KINDS)


def document_unreadable(name: str, reason: str) -> Text:
    return _DOCUMENT_UNREADABLE(name=name, reason=reason)


def document_read(name: str, chars: int, kept: str | None) -> Text:
    """After a document without a question: it was read, and how much of it is kept."""
    if kept is None:
        return _DOCUMENT_READ(name=name, chars=chars)
    return _DOCUMENT_CUT_ASK(name=name, kept=kept)


def document_cut(name: str, kept: str) -> Text:
    return _DOCUMENT_CUT(name=name, kept=kept)


def kept_share(share: int, kept: int, total: int) -> Text:
    return _KEPT_SHARE(share=share, kept=kept, total=total)


def kept_pages(read: int, total: int) -> Text:
    return _KEPT_PAGES(read=read, total=total)


def transcript(text: str) -> str:
    """The transcript of a voice message as shown to the user: short, as a quote."""
    if len(text) > TRANSCRIPT_SHOWN_CHARS:
        text = text[:TRANSCRIPT_SHOWN_CHARS].rstrip() + "…"
    return f"🎙 {text}"


# ---------------------------------------------------------------- inline mode

INLINE_TIMEOUT = phrase("That takes too long to answer here: ask me in a private chat")
INLINE_FAILED = phrase("I can't answer right now: try again, or ask me in a private chat")
INLINE_REFUSED = phrase("I can't answer you here: open a private chat with me")


# ---------------------------------------------------------------- customer service

HUMAN_COMMAND: Command = ("human", phrase("Talk to a person from our team"))

UNKNOWN_REPLY = phrase(
    "I'm sorry, I couldn't find that in the information I have, and I'd rather not guess. "
    "Would you like to talk to a person? Send /human and someone from our team will help you."
)
HANDOFF_OFF = phrase(
    "There's no one from a team I could pass you to here, sorry: I'll do my best myself."
)
HANDOFF_IN_PRIVATE = phrase(
    "Send me /human in a private chat and a person from our team will help you."
)
HANDOFF_OPENED = phrase(
    "I've asked a person from our team to take over. They'll answer right here; until then "
    "I'll stay quiet, and everything you send goes to them."
)
HANDOFF_ALREADY = phrase(
    "You're already connected to our team: just write here and they'll read it."
)
HANDOFF_FAILED = phrase(
    "Sorry, I couldn't reach our team right now. Please try /human again in a few minutes."
)
HANDOFF_PAUSED = phrase(
    "A person from our team is helping you right now, so I'm paused. Just write here and "
    "they'll answer."
)
RELAY_FAILED = phrase(
    "Sorry, I couldn't pass that on to our team. Please send it again in a moment."
)
BACK_RESOLVED = phrase(
    "Our team has finished, so I'm back: ask me anything. If you need a person again, send /human."
)
BACK_IDLE = phrase(
    "It's been a while since our team wrote, so I'm back: ask me anything. If you still "
    "need a person, send /human."
)
RESOLVE_WHERE = phrase("Send /resolve inside a customer's topic.")
NOTHING_TO_RESOLVE = phrase(
    "Nothing to resolve: this customer is already talking to the assistant."
)
NOT_DELIVERED_RESOLVED = phrase(
    "⚠️ Not delivered: this conversation was resolved, and the customer is talking to the "
    "assistant again. They can ask for a person with /human."
)
AN_OPERATOR = phrase("an operator")
_TOPIC_HELP = template(
    "Reply in this topic: your messages (text, photos, files) go to {first_name}; "
    "commands don't. /resolve hands {first_name} back to the assistant."
)
_RESOLVED = template("✅ Resolved by {operator}: {customer} is talking to the assistant again.")
_HANDED_BACK_IDLE = template(
    "⏱ No messages for {hours:g} h: {customer} was handed back to the assistant."
)
_NOT_DELIVERED = template("⚠️ Not delivered to {customer}: {reason}")


def topic_help(first_name: str) -> Text:
    return _TOPIC_HELP(first_name=first_name)


def resolved(operator: str, customer: str) -> Text:
    return _RESOLVED(operator=operator, customer=customer)


def handed_back_idle(customer: str, hours: float) -> Text:
    return _HANDED_BACK_IDLE(customer=customer, hours=hours)


def not_delivered(customer: str, reason: str) -> Text:
    return _NOT_DELIVERED(customer=customer, reason=reason)


VOTE_THANKS = phrase("Thanks for the feedback!")
VOTE_NOTED = phrase("Already noted, thanks.")
VOTE_EXPIRED = phrase("This answer is too old to rate.")
STATS_ADMINS_ONLY = phrase("Sorry, /stats is for the bot's admins.")
EXPORT_NOTHING = phrase("I don't keep anything about you right now: no conversations, no facts.")
EXPORT_CAPTION = phrase("Everything I keep about you: your facts and our conversations.")
