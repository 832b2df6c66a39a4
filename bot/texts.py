"""What the bot says in its own words (English; more languages arrive with i18n)."""

from __future__ import annotations

COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", "Start a new conversation"),
    ("retry", "Regenerate the last answer"),
    ("stop", "Stop the answer being written"),
    ("help", "What I can do"),
)


def greeting(first_name: str, bot_name: str) -> str:
    return (
        f"Hi {first_name}! I'm {bot_name}, an AI assistant running on a Llama model.\n\n"
        "Ask me anything: questions, writing, translations, code, ideas. I answer as I think, "
        "and I remember our conversation so you can follow up.\n\n"
        "/new starts over, /retry gives another answer, /stop interrupts me, /help shows more."
    )


HELP = (
    "Just write to me and I'll answer.\n\n"
    "/new (or /reset) — forget this conversation and start over\n"
    "/retry — write the last answer again, differently\n"
    "/stop — stop the answer I'm writing\n"
    "/help — this message\n\n"
    "I remember our conversation for a while; after a long pause I start a fresh one. "
    "I'm an AI model, so double-check anything important."
)

RESET_DONE = "Done: I've forgotten this conversation. What shall we talk about?"
MEMORY_DOWN_RESET = "I can't reach my memory right now, so I couldn't reset. Please try again."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."
UNKNOWN_COMMAND = "I don't know that command. Send /help to see what I can do."

REMEMBER_FAILED = "I can't reach my memory right now, so I couldn't save that. Please try again."


def remembered(fact: str, count: int) -> str:
    return f"Got it, I'll remember that: {fact}\n\n(I remember {count} things about you: /memory)"


GROUP_COMMANDS: tuple[tuple[str, str], ...] = (
    ("ask", "Ask me something"),
    ("new", "Forget our conversation in this group"),
    ("retry", "Regenerate my last answer to you"),
    ("stop", "Stop the answer I'm writing for you"),
    ("help", "How to talk to me here"),
    ("settings", "Group settings (admins)"),
)

PRIVATE_COMMANDS: tuple[tuple[str, str], ...] = (
    *COMMANDS,
    ("memory", "What I remember about you"),
    ("remember", "Remember a fact about you"),
    ("forget", "Forget a fact, or everything"),
    ("export", "A file with everything I keep about you"),
)


def group_help(username: str, privacy_mode: bool) -> str:
    privacy = (
        "Privacy mode is on, so I only see messages addressed to me; a group admin can make me "
        "an admin (or turn privacy mode off in @BotFather) to let me see the conversation, which "
        "/settings can then use as shared context."
        if privacy_mode
        else "I can see the messages in this group. With shared context on (/settings), I read "
        'the recent messages when answering, so "what did we decide?" works.'
    )
    return (
        f"Talk to me here by mentioning @{username}, replying to one of my messages, or with "
        f"/ask <question>.\n\nEach of you has your own conversation with me in this group: I don't "
        f"mix yours with anyone else's. /new starts yours over.\n\n{privacy}"
    )


ADDRESS_ME = "Yes? Ask me something after the mention, or use /ask <question>."
PRIVATE_ONLY = "Let's do that in a private chat with me, so your memory stays private."
NO_FACTS = 'I don\'t remember any facts about you yet. Say "remember that ..." or use /remember.'
REMEMBER_USAGE = "Tell me what to remember, e.g. /remember I'm vegetarian"
FORGET_USAGE = "Use /forget <number> (see /memory) or /forget all."
FORGET_ALL_CONFIRM = (
    "This deletes everything I keep about you: every conversation, summary and fact. Sure?"
)
FORGET_ALL_DONE = "Done. I've deleted everything I kept about you."
FORGET_ALL_CANCELLED = "Nothing was deleted."
NOT_YOURS = "This button isn't for you."
MEMORY_DOWN = "I can't reach my memory right now. Please try again in a moment."
SETTINGS_ADMINS_ONLY = "Sorry, only the group's admins can change my settings here."
SETTINGS_USAGE = (
    "/settings context on|off: use the group's recent messages as shared context\n"
    "/settings triggers word1, word2: words that call me without a mention (off: none)"
)
STALE_BUTTON = "This button has expired."


def no_such_fact(number: str) -> str:
    return f"There is no fact number {number}. /memory lists them."


# ---------------------------------------------------------------- photos, voice, documents

DOCUMENT_KINDS = "PDF, text, Markdown, CSV or JSON"
NO_IMAGES = (
    "This deployment doesn't read images: its model reads text only. Please describe the "
    "picture, or ask your question as text."
)
NO_VOICE = "This deployment doesn't transcribe voice messages. Please write your question as text."
IMAGE_UNREADABLE = "I couldn't open that picture. Please send it again as a photo."
TRANSCRIPTION_FAILED = (
    "I couldn't transcribe that voice message right now. Please try again, or type it."
)
NOTHING_HEARD = "I couldn't make out any words in that recording. Please try again, or type it."
DOWNLOAD_FAILED = "I couldn't download that file from Telegram. Please send it again."
DOCUMENT_NOT_KEPT = (
    "I can't reach my memory right now, so I couldn't keep that document. Please send it "
    "again in a moment."
)
TRANSCRIPT_SHOWN_CHARS = 300


def unsupported(*, images: bool, voice: bool) -> str:
    """What this deployment reads, for a message it cannot (a sticker, a GIF, a poll...)."""
    kinds = ["text messages"]
    if images:
        kinds.append("photos")
    if voice:
        kinds.append("voice messages")
    kinds.append(f"documents ({DOCUMENT_KINDS})")
    listed = ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return f"I can read {listed}, but not this kind of message. Please send me one of those."


def too_big(what: str, size: int | None, limit: int) -> str:
    megabyte = 1 << 20
    shown = f" ({size / megabyte:.1f} MB)" if size else ""
    return (
        f"That {what} is too big for me{shown}: I can read files up to "
        f"{limit / megabyte:.0f} MB. Please send a smaller one."
    )


def document_unsupported(name: str) -> str:
    return (
        f"I can't read {name or 'that kind of file'}. I read {DOCUMENT_KINDS} documents: "
        "please send one of those, or paste the text."
    )


def document_unreadable(name: str, reason: str) -> str:
    return f"I couldn't read {name}: {reason}."


def document_read(name: str, chars: int, kept: str | None) -> str:
    """After a document without a question: it was read, and how much of it is kept."""
    if kept is None:
        return f"📄 I've read {name} ({chars:,} characters). Ask me anything about it."
    return f"{document_cut(name, kept)} Ask me anything about that part."


def document_cut(name: str, kept: str) -> str:
    return f"✂️ {name} is too long for me to keep whole: I kept {kept}."


def transcript(text: str) -> str:
    """The transcript of a voice message as shown to the user: short, as a quote."""
    if len(text) > TRANSCRIPT_SHOWN_CHARS:
        text = text[:TRANSCRIPT_SHOWN_CHARS].rstrip() + "…"
    return f"🎙 {text}"


# ---------------------------------------------------------------- inline mode

INLINE_TIMEOUT = "That takes too long to answer here: ask me in a private chat"
INLINE_FAILED = "I can't answer right now: try again, or ask me in a private chat"
INLINE_REFUSED = "I can't answer you here: open a private chat with me"


# ---------------------------------------------------------------- customer service

HUMAN_COMMAND = ("human", "Talk to a person from our team")

HANDOFF_OFF = "There's no one from a team I could pass you to here, sorry: I'll do my best myself."
HANDOFF_IN_PRIVATE = "Send me /human in a private chat and a person from our team will help you."
HANDOFF_OPENED = (
    "I've asked a person from our team to take over. They'll answer right here; until then "
    "I'll stay quiet, and everything you send goes to them."
)
HANDOFF_ALREADY = "You're already connected to our team: just write here and they'll read it."
HANDOFF_FAILED = (
    "Sorry, I couldn't reach our team right now. Please try /human again in a few minutes."
)
HANDOFF_PAUSED = (
    "A person from our team is helping you right now, so I'm paused. Just write here and "
    "they'll answer."
)
RELAY_FAILED = "Sorry, I couldn't pass that on to our team. Please send it again in a moment."
BACK_RESOLVED = (
    "Our team has finished, so I'm back: ask me anything. If you need a person again, send /human."
)
BACK_IDLE = (
    "It's been a while since our team wrote, so I'm back: ask me anything. If you still "
    "need a person, send /human."
)
RESOLVE_WHERE = "Send /resolve inside a customer's topic."
NOTHING_TO_RESOLVE = "Nothing to resolve: this customer is already talking to the assistant."
NOT_DELIVERED_RESOLVED = (
    "⚠️ Not delivered: this conversation was resolved, and the customer is talking to the "
    "assistant again. They can ask for a person with /human."
)


def topic_help(first_name: str) -> str:
    return (
        f"Reply in this topic: your messages (text, photos, files) go to {first_name}; "
        f"commands don't. /resolve hands {first_name} back to the assistant."
    )


def resolved(operator: str, customer: str) -> str:
    return f"✅ Resolved by {operator}: {customer} is talking to the assistant again."


def handed_back_idle(customer: str, hours: float) -> str:
    return f"⏱ No messages for {hours:g} h: {customer} was handed back to the assistant."


def not_delivered(customer: str, reason: str) -> str:
    return f"⚠️ Not delivered to {customer}: {reason}"


VOTE_THANKS = "Thanks for the feedback!"
VOTE_NOTED = "Already noted, thanks."
VOTE_EXPIRED = "This answer is too old to rate."
STATS_ADMINS_ONLY = "Sorry, /stats is for the bot's admins."
EXPORT_NOTHING = "I don't keep anything about you right now: no conversations, no facts."
EXPORT_CAPTION = "Everything I keep about you: your facts and our conversations."
