"""Pure: a user's stored data (`/export`) as a JSON or Markdown file.

Everything the bot keeps about the user, as memory holds it: the facts, and every stored
conversation (private chat, each group and topic, each business chat) with its summary, the
older turns waiting to be summarised, and the current turns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.conversation import Turn
from bot.memory import ExportedConversation, Fact

Format = Literal["json", "md"]


@dataclass(frozen=True, slots=True)
class ExportFile:
    name: str
    content: bytes


def _when(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def where(conversation: ExportedConversation) -> str:
    scope = conversation.scope
    if scope == "p":
        return "private chat"
    if scope.startswith("b"):
        return f"business chat with {conversation.title or 'a business'}"
    return f"group {conversation.title or scope}"


def _turn(turn: Turn) -> dict[str, Any]:
    return {"at": _when(turn.at), "you": turn.user, "assistant": turn.assistant}


def as_json(
    user_id: int, facts: list[Fact], conversations: list[ExportedConversation], now: float
) -> str:
    data = {
        "user_id": user_id,
        "exported_at": _when(now),
        "facts": [{"text": f.text, "at": _when(f.at)} for f in facts],
        "conversations": [
            {
                "where": where(c),
                "scope": c.scope,
                "last_active": _when(c.last_active),
                "summary": c.summary,
                "summarising": [_turn(t) for t in c.pending],
                "turns": [_turn(t) for t in c.turns],
            }
            for c in conversations
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def as_markdown(
    user_id: int,
    facts: list[Fact],
    conversations: list[ExportedConversation],
    now: float,
    bot_name: str,
) -> str:
    lines = [
        f"# What {bot_name} keeps about you",
        "",
        f"User {user_id}, exported {_when(now)}.",
        "",
    ]
    lines += ["## Facts you asked me to remember", ""]
    lines += [f"{i}. {f.text}" for i, f in enumerate(facts, 1)] or ["(none)"]
    for c in conversations:
        lines += ["", f"## Conversation: {where(c)}", ""]
        if c.last_active is not None:
            lines += [f"Last message: {_when(c.last_active)}", ""]
        if c.summary:
            lines += ["**Summary of the earlier conversation:**", "", _quote(c.summary), ""]
        for turn in [*c.pending, *c.turns]:
            lines += [f"**You** ({_when(turn.at)}):", "", _quote(turn.user), ""]
            lines += [f"**{bot_name}:**", "", _quote(turn.assistant), ""]
    return "\n".join(lines).rstrip() + "\n"


def export_file(
    fmt: Format,
    user_id: int,
    facts: list[Fact],
    conversations: list[ExportedConversation],
    *,
    now: float,
    bot_name: str,
) -> ExportFile:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    slug = re.sub(r"[^a-z0-9]+", "-", bot_name.lower()).strip("-") or "bot"
    name = f"{slug}-data-{user_id}-{stamp}.{fmt}"
    if fmt == "md":
        text = as_markdown(user_id, facts, conversations, now, bot_name)
    else:
        text = as_json(user_id, facts, conversations, now)
    return ExportFile(name, text.encode())
