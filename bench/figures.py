"""From what was recorded during one run to the figures of issue 3 (a flat dict per run)."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from bench.redisproxy import BYTES_IN, CONNECTIONS, ROUND_TRIPS, SETUP_ROUND_TRIPS
from bench.stats import summary_ms
from bench.tracking import Conversation, Tracker, Turn
from tests.fakes.telegram import Call

# Commands the bench itself sends to Redis between the two snapshots.
_BENCH_COMMANDS = frozenset({"info"})
_USER_TAG = re.compile(r"\{u(-?\d+)\}")
_POINTS = ("p50", "p95", "p99")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters read right before and right after the measured users run."""

    t: float
    subject_cpu: float | None
    bench_cpu: float | None
    redis_cpu: float | None
    proxy_cpu: float | None
    proxy: list[int] | None
    commands: dict[str, int]
    rate_limited: int
    telegram_connections: int
    llm_connections: int


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _per(value: float | None, count: int, digits: int = 3) -> float | None:
    return None if value is None or count == 0 else round(value / count, digits)


def _cores(cpu_s: float | None, wall_s: float) -> float | None:
    return None if cpu_s is None or wall_s <= 0 else round(cpu_s / wall_s, 3)


def _llama3(messages: list[Any]) -> str:
    """The prompt as a Llama 3 server tokenizes it (chat template, no generation header)."""
    parts = ["<|begin_of_text|>"]
    for m in messages:
        if isinstance(m, dict):
            role, content = m.get("role", ""), m.get("content", "")
            parts.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>")
    return "".join(parts)


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    low, high = 0, min(len(a), len(b))
    # Binary search on slice equality: C-speed comparisons instead of a Python loop per char.
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def prefix_stability(turns: list[Turn]) -> list[float]:
    """For each prompt after a conversation's first: the share of the previous prompt that
    the new one starts with, byte for byte (what a server's prefix cache can reuse)."""
    by_conv: dict[Conversation, list[Turn]] = defaultdict(list)
    for turn in turns:
        if turn.prompt is not None:
            by_conv[turn.conv].append(turn)
    shares: list[float] = []
    for conv_turns in by_conv.values():
        conv_turns.sort(key=lambda t: t.id)
        texts = [_llama3(t.prompt or []) for t in conv_turns]
        for previous, current in itertools.pairwise(texts):
            shares.append(_common_prefix(previous, current) / len(previous) if previous else 1.0)
    return shares


def _gaps(turns: list[Turn]) -> tuple[list[float], list[float], list[float]]:
    """Gaps between visible updates of one reply; the same clipped to while tokens flow; and
    per reply the longest of those."""
    gaps: list[float] = []
    flowing: list[float] = []
    worst: list[float] = []
    for turn in turns:
        times = turn.visible
        gaps += [b - a for a, b in itertools.pairwise(times)]
        last = turn.t_llm_last
        if last is None:
            continue
        reply_flow = [min(b, last) - a for a, b in itertools.pairwise(times) if a < last]
        flowing += reply_flow
        if reply_flow:
            worst.append(max(reply_flow))
    return gaps, flowing, worst


def _calls(calls: list[Call], chats: set[int], replies: int) -> dict[str, Any]:
    methods: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    polls = 0
    for call in calls:
        if call.method == "getUpdates":
            polls += 1
        elif (chat_id := call.params.get("chat_id")) in chats:
            methods[call.method] += 1
            if call.status != 200:
                where = "group" if isinstance(chat_id, int) and chat_id < 0 else "private"
                failed[f"{call.method} {call.status} {where}"] += 1
    per_reply = {m: round(n / replies, 3) for m, n in methods.items()} if replies else {}
    return {
        "calls_per_reply": per_reply,
        "failed_calls": dict(failed),
        "get_updates_per_update": _per(polls, replies),
    }


def _redis(
    before: Snapshot, after: Snapshot, answered: int, key_bytes: dict[str, int], users: set[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if before.proxy is not None and after.proxy is not None:
        diff = [b - a for a, b in zip(before.proxy, after.proxy, strict=True)]
        out["redis_round_trips_per_turn"] = _per(diff[ROUND_TRIPS], answered)
        out["redis_setup_round_trips"] = diff[SETUP_ROUND_TRIPS]
        out["redis_round_trips_per_turn_with_setup"] = _per(
            diff[ROUND_TRIPS] + diff[SETUP_ROUND_TRIPS], answered
        )
        out["redis_connections_opened"] = diff[CONNECTIONS]
        out["redis_bytes_sent_per_turn"] = _per(diff[BYTES_IN], answered, 1)
    commands = {
        name: after.commands.get(name, 0) - before.commands.get(name, 0)
        for name in after.commands
        if name not in _BENCH_COMMANDS
    }
    commands = {k: v for k, v in commands.items() if v}
    if after.commands:
        out["redis_commands_per_turn"] = {k: _per(v, answered) for k, v in commands.items()}
    if key_bytes:
        per_user: Counter[str] = Counter()
        user_keys = other = 0
        for key, size in key_bytes.items():
            match = _USER_TAG.search(key)
            if match is None:
                # Not one user's (a group's settings, a dedup set...): reported on its own.
                other += size
                continue
            if match.group(1) in users:
                per_user[match.group(1)] += size
                user_keys += 1
        if per_user:
            out["redis_bytes_per_user"] = round(statistics.fmean(per_user.values()))
            out["redis_bytes_per_user_max"] = max(per_user.values())
            out["redis_keys_per_user"] = round(user_keys / len(per_user), 2)
        out["redis_bytes_not_per_user"] = other
    elif after.commands:
        out["redis_bytes_per_user"] = 0 if users else None
    return out


def _latencies(kind: str, turns: list[Turn]) -> dict[str, Any]:
    added: list[float] = []
    after_first_token: list[float] = []
    final_after_last: list[float] = []
    end_to_end: list[float] = []
    for t in turns:
        if t.t_first_visible is not None and t.t_handed is not None:
            # The floor's one message can only carry the whole answer, so the model's whole
            # generation time is what it could not avoid; the bot can show the first token.
            model_s = t.profile.generation_s if kind == "floor" else t.profile.first_token_s
            added.append(t.t_first_visible - t.t_handed - model_s)
        if kind == "bot" and t.t_first_visible is not None and t.t_llm_first is not None:
            after_first_token.append(t.t_first_visible - t.t_llm_first)
        if t.t_final is not None:
            end_to_end.append(t.t_final - t.t_sent)
            if t.t_llm_last is not None:
                final_after_last.append(t.t_final - t.t_llm_last)
    return (
        summary_ms("added_latency", added, _POINTS)
        | summary_ms("first_visible_after_first_token", after_first_token, ("p50", "p95", "max"))
        | summary_ms("final_after_last_token", final_after_last, ("p50", "p95", "max"))
        | summary_ms("end_to_end", end_to_end, _POINTS)
    )


def compute(
    kind: str,
    tracker: Tracker,
    calls: list[Call],
    before: Snapshot,
    after: Snapshot,
    *,
    rss_mb: tuple[float | None, float | None],
    redis_key_bytes: dict[str, int],
    subject_alive: bool,
    last_busy: float,
) -> dict[str, Any]:
    turns = [t for t in tracker.turns if t.measured]
    answered = [t for t in turns if t.outcome == "answered"]
    group_turns = [t for t in turns if t.conv.group]
    outcomes = Counter(t.outcome for t in turns)
    n = len(answered)
    start = min((t.t_sent for t in turns), default=before.t)
    end = max((t.t_final or 0.0 for t in answered), default=after.t)
    # Counters are read once the subject went quiet; the quiet wait itself is not busy time.
    wall = max(last_busy, end) - before.t
    subject_cpu = _delta(before.subject_cpu, after.subject_cpu)
    bench_cpu = _delta(before.bench_cpu, after.bench_cpu)
    gaps, flowing, worst = _gaps(answered)
    # The floor keeps no history: its prompts have nothing to share.
    stability = prefix_stability(turns) if kind == "bot" else []
    users = {t.conv for t in turns}
    figures: dict[str, Any] = {
        "turns": len(turns),
        "answered": n,
        "answered_share": round(n / len(turns), 4) if turns else None,
        "not_answered": outcomes.get("no answer", 0),
        "no_final_text": outcomes.get("no final text", 0),
        "group_turns": len(group_turns),
        "group_answered": sum(1 for t in group_turns if t.outcome == "answered"),
        "updates_per_s": round(n / (end - start), 1) if n and end > start else None,
        "wall_s": round(wall, 2),
        "cpu_ms_per_update": _per(None if subject_cpu is None else subject_cpu * 1000, n),
        "cores": _cores(subject_cpu, wall),
        # Resident set after warm-up (imports, pools) and its peak over the whole run.
        "rss_after_warm_up_mb": None if rss_mb[0] is None else round(rss_mb[0], 1),
        "peak_rss_mb": None if rss_mb[1] is None else round(rss_mb[1], 1),
        "bench_cores": _cores(bench_cpu, wall),
        "redis_cores": _cores(_delta(before.redis_cpu, after.redis_cpu), wall),
        "proxy_cores": _cores(_delta(before.proxy_cpu, after.proxy_cpu), wall),
        "visible_updates_per_reply": (
            round(statistics.fmean(len(t.visible) for t in answered), 2) if answered else None
        ),
        "llm_requests_per_turn": _per(sum(t.llm_requests for t in turns), len(turns)),
        "http_429": after.rate_limited - before.rate_limited,
        "new_telegram_connections_per_update": _per(
            after.telegram_connections - before.telegram_connections, n
        ),
        "new_llm_connections_per_update": _per(after.llm_connections - before.llm_connections, n),
        "prefix_stability_mean": round(statistics.fmean(stability), 4) if stability else None,
        "prefix_stability_min": round(min(stability), 4) if stability else None,
        "prefix_pairs": len(stability),
        "unattributed_updates": tracker.unattributed,
        "updates_after_final": tracker.late,
        "subject_survived": subject_alive,
    }
    figures |= _latencies(kind, answered)
    figures |= summary_ms("update_gap", gaps, ("p50", "p95", "max"))
    figures |= summary_ms("streaming_gap", flowing, ("p50", "p95", "p99", "max"))
    figures |= summary_ms("worst_streaming_gap_per_reply", worst, ("p50", "p95"))
    figures |= _calls(calls, {t.conv.chat_id for t in turns}, n)
    if kind == "bot":
        measured = {str(conv.user_id) for conv in users}
        figures |= _redis(before, after, n, redis_key_bytes, measured)
        figures["turns_per_user"] = round(len(turns) / max(len(users), 1), 2)
    return figures
