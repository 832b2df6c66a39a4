"""What the benchmark knows about each turn: when it was sent, handed out, streamed and shown.

Every question carries a tag (``q17``) and the fake model answers it with a matching tag (``a17``)
as its first word, so anything the bot shows can be tied to its turn without trusting the bot's
reply threading. All bookkeeping here is a dict lookup and a few attribute writes per event:
the tracker runs inside the fakes' request handlers, on the bench's one core.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

QUESTION_TAG = re.compile(r"\bq(\d+)\b")
ANSWER_TAG = re.compile(r"\ba(\d+)\b")
# Plain words only: the bot's Markdown rendering must leave the final text byte-identical, so
# the bench can recognise "the final text is visible" by comparing strings.
_FILLER = [
    "the",
    "model",
    "answers",
    "every",
    "question",
    "with",
    "calm",
    "and",
    "useful",
    "words",
    "about",
    "daily",
    "life",
    "while",
    "keeping",
    "each",
    "sentence",
    "short",
    "so",
    "that",
    "people",
    "can",
    "read",
    "along",
]
MODEL = "llama-3-8b-instruct"
BOT_USERNAME = "telellama_bot"


@dataclass(frozen=True, slots=True)
class Profile:
    """How the fake model answers: delay to the first token, between tokens, and how many."""

    first_token_s: float
    token_s: float
    tokens: int

    @property
    def generation_s(self) -> float:
        """Configured time from the request to the last token."""
        return self.first_token_s + self.token_s * max(self.tokens - 1, 0)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One user in one chat (a private chat, or one member of a group)."""

    chat_id: int
    user_id: int
    measured: bool
    first_name: str = "Ann"

    @property
    def group(self) -> bool:
        return self.chat_id < 0


@dataclass(slots=True, eq=False)
class Turn:
    """One question and its reply, with every timestamp the figures are made of."""

    id: int
    conv: Conversation
    profile: Profile
    chunks: list[str]
    measured: bool
    t_sent: float = 0.0
    t_handed: float | None = None
    t_llm_request: float | None = None
    t_llm_first: float | None = None
    t_llm_last: float | None = None
    t_first_visible: float | None = None
    t_final: float | None = None
    llm_requests: int = 0
    prompt: list[Any] | None = None
    visible: list[float] = field(default_factory=list)
    shown: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str = "pending"

    @property
    def expected(self) -> str:
        return "".join(self.chunks)

    def question(self) -> str:
        text = f"q{self.id} could you tell me something about topic {self.id % 97}, please?"
        return f"@{BOT_USERNAME} {text}" if self.conv.group else text


def answer_chunks(turn_id: int, tokens: int) -> list[str]:
    """The streamed pieces of turn ``turn_id``'s answer: its tag, then filler words."""
    words = [f" {_FILLER[i % len(_FILLER)]}" for i in range(max(tokens - 1, 0))]
    return [f"a{turn_id}", *words]


class Tracker:
    """Turns by id, by the user's message and by the bot's message; updated by the fakes' hooks."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self._by_id: dict[int, Turn] = {}
        self._by_user_message: dict[tuple[int, int], Turn] = {}
        self._by_bot_message: dict[tuple[int, int], Turn] = {}
        # Private chats have at most one turn in flight (closed loop): anything shown there
        # belongs to it, even a draft that does not carry the tag yet.
        self._current: dict[int, Turn] = {}
        self.unattributed = 0
        self.late = 0
        self.untagged_llm_requests = 0
        # Visible outputs in groups so far: tells "slow in groups" from "silent in groups".
        self.group_replies = 0
        self._next_id = 1

    def new_turn(self, conv: Conversation, profile: Profile) -> Turn:
        turn_id = self._next_id
        self._next_id += 1
        turn = Turn(turn_id, conv, profile, answer_chunks(turn_id, profile.tokens), conv.measured)
        self.turns.append(turn)
        self._by_id[turn_id] = turn
        if not conv.group:
            self._current[conv.chat_id] = turn
        return turn

    def sent(self, turn: Turn, message_id: int) -> None:
        self._by_user_message[(turn.conv.chat_id, message_id)] = turn

    def handed(self, batch: list[dict[str, Any]], now: float) -> None:
        """getUpdates is returning ``batch`` to the client now."""
        for update in batch:
            message = update.get("message")
            if not message:
                continue
            turn = self._by_user_message.get((message["chat"]["id"], message["message_id"]))
            if turn is not None and turn.t_handed is None:
                turn.t_handed = now

    def visible(self, chat_id: int, text: str, method: str, message_id: int | None) -> None:
        """Something a user can see changed: a draft, a new message or an edit."""
        if not text.strip():
            # An empty draft is the client's "thinking" placeholder, not output.
            return
        turn = self._attribute(chat_id, text, message_id)
        if turn is None:
            self.unattributed += 1
            return
        if turn.t_final is not None or turn.outcome != "pending":
            # After the final text, or after the user gave up waiting: not part of the reply.
            self.late += 1
            return
        if chat_id < 0:
            self.group_replies += 1
        now = time.monotonic()
        turn.visible.append(now)
        if turn.t_first_visible is None:
            turn.t_first_visible = now
            turn.shown.set()
        if method == "sendMessage" and message_id is not None:
            self._by_bot_message[(chat_id, message_id)] = turn
        if method != "sendMessageDraft" and text == turn.expected:
            turn.t_final = now
            turn.outcome = "answered"
            turn.done.set()

    def _attribute(self, chat_id: int, text: str, message_id: int | None) -> Turn | None:
        match = ANSWER_TAG.search(text)
        if match is not None:
            turn = self._by_id.get(int(match.group(1)))
            if turn is not None and turn.conv.chat_id == chat_id:
                return turn
        if message_id is not None and (chat_id, message_id) in self._by_bot_message:
            return self._by_bot_message[(chat_id, message_id)]
        return self._current.get(chat_id) if chat_id > 0 else None

    def turn_for_prompt(self, messages: list[Any]) -> Turn | None:
        """The turn a chat-completions request answers: the tag in its last user message."""
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                match = QUESTION_TAG.search(content) if isinstance(content, str) else None
                return self._by_id.get(int(match.group(1))) if match else None
        return None
