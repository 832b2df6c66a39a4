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
