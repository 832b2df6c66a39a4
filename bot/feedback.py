"""👍/👎 on answers, and the figures admins see with /stats.

With FEEDBACK_BUTTONS=true the last message of every model answer (not the bot's own notices,
not in business chats) carries 👍 and 👎 buttons. The answer is kept with its question under
the asker's key (`{u<id>}:fb`, the newest MAX_RECORDS, deleted by /forget all), and a vote is
stored on it: only the asker's count, a vote can be changed, pressing the same button twice
counts once.

/stats counts per UTC day: answers, 👍, 👎, "don't know" (strict knowledge-base mode found
nothing) and handoffs; the 👍 share of votes; handoffs open now; and the top unanswered
questions, those that got "don't know" or 👎 (kept as text, lower-cased, without who asked).
Answers are counted in the process and written every FLUSH_S (no Redis round trip per
message); the rest is written when it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.engine import Report
from bot.errors import MemoryUnavailable
from bot.memory import ConversationKey, DayCounts, Memory
from bot.stream import Buttons

log = logging.getLogger(__name__)

CALLBACK = "fb"
UP, DOWN = "+", "-"
FLUSH_S = 10.0
MAX_RECORDS = 200
MAX_QUESTION_CHARS = 200
TOP_QUESTIONS = 10
MAX_DAYS = 31


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def last_days(days: int, now: float) -> list[str]:
    """The UTC days from `days - 1` days ago to today, newest first."""
    today = datetime.fromtimestamp(now, UTC)
    return [(today - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(days)]


def normalized(question: str) -> str:
    """A question as /stats groups it: lower case, single spaces, no trailing punctuation."""
    return " ".join(question.lower().split()).rstrip(" ?!.…")[:MAX_QUESTION_CHARS]


@dataclass(frozen=True, slots=True)
class Vote:
    value: str
    user_id: int
    tag: str


def parse_vote(data: str) -> Vote | None:
    """The vote in a button's callback data (`fb:<+|->:<asker>:<tag>`)."""
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != CALLBACK or parts[1] not in (UP, DOWN):
        return None
    if not parts[2].lstrip("-").isdigit() or not parts[3].isalnum():
        return None
    return Vote(parts[1], int(parts[2]), parts[3])


def buttons(user_id: int, tag: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("👍", callback_data=f"{CALLBACK}:{UP}:{user_id}:{tag}"),
                InlineKeyboardButton("👎", callback_data=f"{CALLBACK}:{DOWN}:{user_id}:{tag}"),
            ]
        ]
    )


@dataclass(frozen=True, slots=True)
class Stats:
    days: list[DayCounts]
    unanswered: list[tuple[str, int]]
    open_handoffs: int


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _day_line(counts: DayCounts) -> str:
    return (
        f"{_plural(counts.answers, 'answer')}, 👍 {counts.up}, 👎 {counts.down}, "
        f"{counts.unknown} don't know, {_plural(counts.handoffs, 'handoff')}"
    )


def format_stats(stats: Stats, days: int) -> str:
    active = [d for d in stats.days if d.answers or d.up or d.down or d.unknown or d.handoffs]
    lines = [f"📊 The last {_plural(days, 'day')} (UTC)"]
    if not active:
        lines.append("No answers yet.")
    lines += [f"{d.day}: {_day_line(d)}" for d in active]
    if len(active) > 1:
        total = DayCounts(
            "total",
            *(sum(getattr(d, name) for d in active) for name in DayCounts.COUNTERS),
        )
        lines.append(f"Total: {_day_line(total)}")
    up, down = (sum(d.up for d in active), sum(d.down for d in active))
    if up + down:
        lines.append(f"👍 share: {round(100 * up / (up + down))}% of {_plural(up + down, 'vote')}")
    lines.append(f"Handoffs open now: {stats.open_handoffs}")
    if stats.unanswered:
        lines += ["", "Top unanswered questions (don't know or 👎):"]
        lines += [f"{i}. {q} ({n}×)" for i, (q, n) in enumerate(stats.unanswered, 1)]
    return "\n".join(lines)


class Feedback:
    def __init__(
        self, memory: Memory, *, buttons: bool, admins: frozenset[int], ttl_s: int
    ) -> None:
        self._memory = memory
        self._buttons = buttons
        self._admins = admins
        self._ttl = ttl_s
        self._answers: Counter[str] = Counter()
        self._flusher: asyncio.Task[None] | None = None

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._admins

    def rating(self, user_id: int) -> Buttons | None:
        """The buttons for an answer to `user_id`; None when FEEDBACK_BUTTONS is off."""
        if not self._buttons:
            return None
        tag = f"{time.time_ns() // 1_000_000:011x}{secrets.token_hex(2)}"
        return Buttons(tag, buttons(user_id, tag))

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_every())

    async def close(self) -> None:
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush()

    async def after(self, key: ConversationKey, report: Report, rated: str | None) -> None:
        """Count what became of a message; keep a rated answer for its votes."""
        now = time.time()
        if report.answer:
            self._answers[day_of(now)] += 1
        try:
            if report.unknown:
                await self._memory.add_stats(
                    day_of(now), {"unknown": 1}, {normalized(report.question): 1}
                )
            if rated is not None and report.answer:
                record = {"q": report.question, "a": report.answer, "c": key.chat_id, "at": now}
                await self._memory.keep_answer(key.user_id, rated, record, MAX_RECORDS, self._ttl)
        except MemoryUnavailable:
            log.warning("feedback not recorded: memory unavailable")

    async def vote(self, vote: Vote, voter_id: int) -> str:
        """Record a button press; what the button's toast says."""
        if voter_id != vote.user_id:
            return texts.NOT_YOURS
        try:
            record, before = await self._memory.vote(vote.user_id, vote.tag, vote.value)
            if record is None:
                return texts.VOTE_EXPIRED
            if before == vote.value:
                return texts.VOTE_NOTED
            counts = {_counter(vote.value): 1}
            questions: dict[str, int] = {}
            if before:
                counts[_counter(before)] = -1
            question = normalized(str(record.get("q", "")))
            if question and DOWN in (vote.value, before):
                questions[question] = 1 if vote.value == DOWN else -1
            day = day_of(float(record.get("at", time.time())))
            await self._memory.add_stats(day, counts, questions)
        except MemoryUnavailable:
            return texts.MEMORY_DOWN
        return texts.VOTE_THANKS

    async def stats(self, days: int) -> Stats:
        """The figures of the last `days` UTC days (this replica's latest answers included)."""
        await self._flush()
        days = max(1, min(days, MAX_DAYS))
        counts, top, open_handoffs = await self._memory.read_stats(
            last_days(days, time.time()), TOP_QUESTIONS
        )
        return Stats(counts, top, open_handoffs)

    async def _flush(self) -> None:
        pending, self._answers = self._answers, Counter()
        for day, n in pending.items():
            try:
                await self._memory.add_stats(day, {"answers": n})
            except MemoryUnavailable:
                self._answers[day] += n  # counted at the next flush

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self._flush()


def _counter(value: str) -> str:
    return "up" if value == UP else "down"
