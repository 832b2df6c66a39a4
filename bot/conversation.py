"""Pure: token estimates, history packing within the budget, and prompt building. No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A chat-completions message: `content` is text, or a list of parts when it carries images.
Message = dict[str, Any]

# Chat templates add a few tokens per message (role headers, end-of-turn markers).
MESSAGE_OVERHEAD_TOKENS = 6
# When history overflows, trim down to this share of the budget rather than to the brim, so the
# prompt prefix then stays byte-identical for many turns and servers' prefix caches keep hitting.
LOW_WATER = 0.6
# What one image costs in the prompt, for the budget (vision models spend 500-1600 tokens on one).
IMAGE_TOKENS = 1024
# The share of the room left after the answer that a shared document may take.
DOCUMENT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange as stored: the user's text, the answer, their token cost, when it ended."""

    user: str
    assistant: str
    tokens: int
    at: float


@dataclass(frozen=True, slots=True)
class SharedDocument:
    """A document the user sent, kept with the conversation (its text within the budget)."""

    name: str
    text: str
    truncated: bool = False
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Budget:
    context_tokens: int
    answer_tokens: int

    def for_history(self, system_tokens: int, user_tokens: int) -> int:
        fixed = system_tokens + user_tokens + 3 * MESSAGE_OVERHEAD_TOKENS
        return self.context_tokens - self.answer_tokens - fixed


@dataclass(slots=True)
class TokenEstimator:
    """Characters per token, learned from the usage the server reports.

    Llama 3's tokenizer averages about 4 characters per token on English prose and fewer on
    other scripts; the learned ratio adapts to the model and the languages actually spoken.
    """

    chars_per_token: float = 3.5
    smoothing: float = 0.2

    def estimate(self, text: str) -> int:
        return int(len(text) / self.chars_per_token) + 1

    def learn(self, chars: int, tokens: int) -> None:
        if chars > 0 and tokens > 0:
            observed = min(max(chars / tokens, 1.0), 8.0)
            self.chars_per_token += self.smoothing * (observed - self.chars_per_token)


@dataclass(frozen=True, slots=True)
class Packed:
    """The turns that go into the prompt, and how many of the oldest must be dropped for good."""

    turns: tuple[Turn, ...]
    dropped: int


def history_tokens(turns: Sequence[Turn]) -> int:
    return sum(t.tokens + 2 * MESSAGE_OVERHEAD_TOKENS for t in turns)


def pack_history(history: Sequence[Turn], budget: int) -> Packed:
    """Keep the newest turns within `budget` tokens; the oldest go first.

    Everything is kept while it fits. On overflow the oldest turns are dropped until the rest
    fits within LOW_WATER of the budget, so the next several prompts share one prefix.
    """
    costs = [t.tokens + 2 * MESSAGE_OVERHEAD_TOKENS for t in history]
    total = sum(costs)
    if total <= budget:
        return Packed(tuple(history), 0)
    target = int(budget * LOW_WATER)
    dropped = 0
    while dropped < len(history) and total > target:
        total -= costs[dropped]
        dropped += 1
    return Packed(tuple(history[dropped:]), dropped)


def system_prompt(
    template: str, *, bot_name: str, user_name: str, now: datetime, language: str = ""
) -> str:
    """Fill the persona's placeholders ({bot_name}, {user_name}, {language}: the user's
    language code, "unknown" when Telegram does not say; {date}). The date has day precision
    so the prefix stays stable."""
    values = {
        "bot_name": bot_name,
        "user_name": user_name,
        "language": language or "unknown",
        "date": now.astimezone(UTC).strftime("%Y-%m-%d"),
    }
    try:
        return template.format_map(_Defaulting(values))
    except (ValueError, IndexError):
        # A persona file with stray braces is used as written rather than failing every message.
        return template


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def build_messages(
    system: str, turns: Sequence[Turn], user_text: str, images: Sequence[str] = ()
) -> list[Message]:
    """The chat-completions messages: system, then history oldest-first, then the new message.

    `images` (data URLs) go with the new message only, as `image_url` parts after its text:
    history keeps text, so the prompt prefix and memory stay small.
    """
    messages: list[Message] = [{"role": "system", "content": system}]
    for turn in turns:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    content: str | list[dict[str, Any]] = user_text
    if images:
        content = [{"type": "text", "text": user_text}]
        content += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    messages.append({"role": "user", "content": content})
    return messages


# C0/C1 control characters other than tab and newline, and format characters that render as
# nothing (zero-width spaces and joiners, direction marks): they carry no meaning for the model.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\s]")


def clean_input(text: str) -> str:
    """The user's text without control characters; empty when nothing visible is left."""
    cleaned = _CONTROL.sub("", text).strip()
    return cleaned if _INVISIBLE.sub("", cleaned) else ""


def is_idle(last_active: float | None, now: float, idle_minutes: float) -> bool:
    """True when the conversation has been quiet long enough to start afresh (0 = never)."""
    if last_active is None or idle_minutes <= 0:
        return False
    return now - last_active > idle_minutes * 60


def compose_system(
    persona: str, summary: str, facts: Sequence[str], document: SharedDocument | None = None
) -> str:
    """The system message: persona, then what the user asked to be remembered, then the summary,
    then the document the user shared.

    The additions change rarely (a new fact, a summary rewrite, a new document), so the prefix
    stays stable.
    """
    parts = [persona]
    if facts:
        listed = "\n".join(f"- {fact}" for fact in facts)
        parts.append(f"The user asked you to remember these facts about them:\n{listed}")
    if summary:
        parts.append(f"Summary of the earlier conversation with this user:\n{summary}")
    if document is not None:
        parts.append(document_section(document))
    return "\n\n".join(parts)


def document_section(document: SharedDocument) -> str:
    cut = " It was too long: only its beginning is included." if document.truncated else ""
    return (
        f'The user shared a document in this conversation, "{document.name}".{cut} Answer '
        f"questions about it from its text:\n<document>\n{document.text}\n</document>"
    )


def document_budget(context_tokens: int, answer_tokens: int) -> int:
    """The tokens a shared document may take in the prompt."""
    return int((context_tokens - answer_tokens) * DOCUMENT_SHARE)


def cut_text(text: str, max_chars: int) -> str:
    """`text` shortened to at most `max_chars`, at a line break (else a space) when one is near."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for separator in ("\n", " "):
        at = head.rfind(separator)
        if at >= max_chars * 0.8:
            return head[:at].rstrip()
    return head


SUMMARY_INSTRUCTIONS = (
    "You maintain the running summary of a chat between a user and an AI assistant. Rewrite the "
    "summary so it also covers the new exchanges below. Keep what matters later: facts about the "
    "user, names, decisions, preferences, open questions, promises. Drop small talk. Write in the "
    "language of the conversation, in short sentences, at most {words} words. Reply with the "
    "summary only."
)


def summary_prompt(summary: str, turns: Sequence[Turn], words: int) -> list[dict[str, str]]:
    """The request that folds `turns` into `summary`."""
    exchanges = "\n\n".join(f"User: {t.user}\nAssistant: {t.assistant}" for t in turns)
    body = f"Current summary:\n{summary or '(none yet)'}\n\nNew exchanges:\n{exchanges}"
    return [
        {"role": "system", "content": SUMMARY_INSTRUCTIONS.format(words=words)},
        {"role": "user", "content": body},
    ]


_REMEMBER = re.compile(
    r"^\s*(?:please\s+)?remember(?:\s+that|\s*:)\s+(?P<fact>.+?)\s*[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)
MAX_FACT_CHARS = 500


def parse_remember(text: str) -> str | None:
    """The fact in "remember that I'm vegetarian" / "remember: ...", else None."""
    match = _REMEMBER.match(text)
    if match is None:
        return None
    fact = " ".join(match.group("fact").split())
    return fact[:MAX_FACT_CHARS] if fact else None
