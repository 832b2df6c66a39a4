"""Medians over runs, ratios to the floor, the issue's targets, and the human table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.stats import median_of

Figures = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    """A goal from issue 3; ``scenario`` None applies it wherever the figure exists."""

    scenario: str | None
    figure: str
    op: str
    limit: float
    label: str
    vs_floor: bool = False

    def check(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit


TARGETS = (
    Target("overhead", "cpu_ms_per_update", "<=", 3, "CPU per update <= 3 ms"),
    Target("overhead", "cpu_ms_per_update", "<=", 3, "CPU per update <= 3x floor", True),
    Target("overhead", "updates_per_s", ">=", 300, ">= 300 updates/s"),
    Target("overhead", "added_latency_p50", "<=", 2, "added latency p50 <= 2x floor", True),
    Target(
        "streaming",
        "first_visible_after_first_token_p95",
        "<=",
        50,
        "first visible output p95 <= 50 ms after the first token",
    ),
    Target(
        "streaming",
        "final_after_last_token_p95",
        "<=",
        300,
        "final text p95 <= 300 ms after the last token",
    ),
    Target(
        "streaming",
        "streaming_gap_max",
        "<=",
        500,
        "drafts updated at least every 500 ms while tokens flow (max gap)",
    ),
    Target("burst", "answered_share", ">=", 1, "every user answered"),
    Target("burst", "added_latency_p99", "<=", 2000, "added latency p99 <= 2 s"),
    Target("burst", "peak_rss_mb", "<=", 100, "RSS <= 100 MB with every user in flight"),
    Target("groups", "answered_share", ">=", 1, "every mention answered"),
    Target("limits", "http_429", "<=", 0, "zero 429s"),
    Target("limits", "answered_share", ">=", 1, "every reply delivered"),
    Target(None, "redis_round_trips_per_turn", "<=", 2, "Redis <= 2 round trips per turn"),
    Target(None, "prefix_stability_mean", ">=", 0.95, "prompt-prefix stability >= 95%"),
)

# (label, figure keys shown "a / b / c")
_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("updates/s", ("updates_per_s",)),
    ("answered / turns", ("answered", "turns")),
    (
        "added latency p50/p95/p99 ms",
        ("added_latency_p50", "added_latency_p95", "added_latency_p99"),
    ),
    ("end-to-end p50/p95/p99 ms", ("end_to_end_p50", "end_to_end_p95", "end_to_end_p99")),
    (
        "1st visible - 1st token p50/p95 ms",
        ("first_visible_after_first_token_p50", "first_visible_after_first_token_p95"),
    ),
    (
        "final - last token p50/p95/max ms",
        ("final_after_last_token_p50", "final_after_last_token_p95", "final_after_last_token_max"),
    ),
    ("update gap p50/p95/max ms", ("update_gap_p50", "update_gap_p95", "update_gap_max")),
    ("gap while streaming p95/max ms", ("streaming_gap_p95", "streaming_gap_max")),
    ("visible updates / reply", ("visible_updates_per_reply",)),
    ("CPU ms / update", ("cpu_ms_per_update",)),
    ("cores used", ("cores",)),
    ("RSS after warm-up / peak MB", ("rss_after_warm_up_mb", "peak_rss_mb")),
    ("429s received", ("http_429",)),
    (
        "new TCP conns / update: Bot API, LLM",
        ("new_telegram_connections_per_update", "new_llm_connections_per_update"),
    ),
    ("Redis round trips / turn", ("redis_round_trips_per_turn",)),
    ("Redis bytes / user (turns)", ("redis_bytes_per_user", "turns_per_user")),
    ("prefix stability mean/min", ("prefix_stability_mean", "prefix_stability_min")),
    ("bench / proxy / Redis cores", ("bench_cores", "proxy_cores", "redis_cores")),
)


def medians(runs: list[Figures]) -> Figures:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run if k not in keys]
    return {k: median_of(run.get(k) for run in runs) for k in keys}


# The bench's own processes and counters: comparing them between runs says nothing of the bot.
_NO_RATIO = frozenset(
    {"bench_cores", "proxy_cores", "redis_cores", "wall_s", "unattributed_updates", "prefix_pairs"}
)


def ratios(bot: Figures, floor: Figures) -> Figures:
    out: Figures = {}
    for key, value in bot.items():
        base = floor.get(key)
        if key in _NO_RATIO:
            continue
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and isinstance(base, int | float)
            and not isinstance(base, bool)
            and base
        ):
            out[key] = round(value / base, 3)
    return out


def evaluate(scenario: str, bot: Figures, ratio: Figures) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for target in TARGETS:
        if target.scenario not in (None, scenario):
            continue
        if target.figure == "prefix_stability_mean" and not bot.get("prefix_pairs"):
            continue
        value = (ratio if target.vs_floor else bot).get(target.figure)
        if value is None and target.scenario is None:
            continue
        result = "n/a" if value is None else ("PASS" if target.check(value) else "FAIL")
        results.append(
            {
                "target": target.label,
                "figure": target.figure + (" (bot/floor)" if target.vs_floor else ""),
                "value": value,
                "result": result,
            }
        )
    return results


def flags(scenario: str, bot: Figures, floor: Figures | None, group_timeout_s: float) -> list[str]:
    out: list[str] = []
    if bot.get("group_turns") and not bot.get("group_answered"):
        out.append(
            f"NOT ANSWERED: no group mention got any reply within {group_timeout_s:g} s "
            f"(0 of {bot['group_turns']}); the bot does not answer in groups yet"
        )
    for who, figures in (("bot", bot), ("floor", floor or {})):
        if (figures.get("bench_cores") or 0) >= 0.9:
            out.append(
                f"bench saturated its core during the {who} run "
                f"({figures['bench_cores']} cores): that run's figures may be bench-bound"
            )
        if figures.get("subject_survived") is False:
            out.append(f"the {who} process died during the run")
    if bot.get("unattributed_updates"):
        out.append(f"{bot['unattributed_updates']} visible updates could not be tied to a turn")
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _joined(figures: Figures, keys: tuple[str, ...]) -> str:
    values = [figures.get(k) for k in keys]
    return "-" if all(v is None for v in values) else " / ".join(_fmt(v) for v in values)


def _calls(figures: Figures) -> str:
    calls = figures.get("calls_per_reply") or {}
    return ", ".join(f"{m} {_fmt(n)}" for m, n in sorted(calls.items())) or "-"


def table(summary: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, scenario in summary["scenarios"].items():
        bot: Figures = scenario.get("bot") or {}
        floor: Figures = scenario.get("floor") or {}
        ratio: Figures = scenario.get("ratio") or {}
        lines.append(f"\n== {name}: {scenario['about']} (median of {scenario['runs']} runs)")
        if scenario.get("error"):
            lines.append(f"   ERROR: {scenario['error']}")
        lines.append(f"   {'figure':34} {'bot':>24} {'floor':>22} {'bot/floor':>16}")
        for label, keys in _ROWS:
            b, f, r = _joined(bot, keys), _joined(floor, keys), _joined(ratio, keys)
            if b == "-" and f == "-":
                continue
            lines.append(f"   {label:34} {b:>24} {f:>22} {r:>16}")
        lines.append(f"   Telegram calls / reply, bot:   {_calls(bot)}")
        if floor:
            lines.append(f"   Telegram calls / reply, floor: {_calls(floor)}")
        for check in scenario.get("targets", ()):
            lines.append(
                f"   [{check['result']:4}] {check['target']}: {_fmt(check['value'])}"
                f"{'x' if '(bot/floor)' in check['figure'] else ''}"
            )
        lines += [f"   ! {flag}" for flag in scenario.get("flags", ())]
    return "\n".join(lines)
