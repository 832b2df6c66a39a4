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
UNSUPPORTED = "I can only read text messages for now. Please write your question as text."
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
