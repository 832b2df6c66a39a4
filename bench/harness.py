"""One measured run: fresh fakes, the subject (the bot or the floor) as a subprocess, warm-up,
the scenario's closed-loop users, and the counters read before and after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import procstat
from bench.fakes import BenchLLM, BenchTelegram, telegram_limits
from bench.figures import Snapshot, compute
from bench.redisproxy import RedisProxy
from bench.scenarios import FAST, Scenario, warm_up_conversations
from bench.tracking import MODEL, Conversation, Profile, Tracker, Turn
from bot.settings import Settings

# How long a user waits for any sign of an answer (beyond the earliest moment the subject could
# show one) before giving up on the conversation: long enough for a bot that paces 1,000 final
# messages at 30 a second to be measured as slow rather than as silent. In groups the wait is
# cut to --group-timeout while the bot has shown nothing in any group, so a bot that ignores
# groups is reported in seconds.
VISIBLE_TIMEOUT_S = 60.0
FINAL_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 10.0


@dataclass
class Environment:
    """What every run shares: the interpreter, Redis, the proxy, CPU placement, options."""

    python: str
    redis_url: str
    redis_pid: int | None
    proxy: RedisProxy | None
    workdir: Path
    subject_cpus: set[int] | None
    group_timeout_s: float = 5.0
    limit_drafts: bool = False
    bot_env: dict[str, str] = field(default_factory=dict)
    profile_dir: Path | None = None
    clean_env: dict[str, str] = field(default_factory=dict)


def subject_base_env() -> dict[str, str]:
    """This process's environment without anything that would configure the bot behind our back."""
    drop = {name.upper() for name in Settings.model_fields} | {"BENCH_REDIS_URL"}
    return {k: v for k, v in os.environ.items() if k not in drop}


UNPACED = {
    "TELEGRAM_MAX_MESSAGES_PER_S": "0",
    "TELEGRAM_CHAT_MESSAGES_PER_S": "0",
    "TELEGRAM_GROUP_MESSAGES_PER_MIN": "0",
}


class Subject:
    """The bot or the floor, running as a subprocess pinned to its core."""

    def __init__(
        self, kind: str, env: Environment, tg: BenchTelegram, llm: BenchLLM, *, paced: bool
    ) -> None:
        self.kind = kind
        self.prefix = f"bench{uuid.uuid4().hex[:8]}"
        self.log = env.workdir / f"{kind}-{self.prefix}.log"
        child_env = dict(env.clean_env)
        if kind == "bot":
            child_env |= {
                "TELEGRAM_BOT_TOKEN": tg.token,
                "TELEGRAM_API_BASE_URL": tg.base_url,
                "LLM_BASE_URL": llm.base_url,
                "LLM_MODEL": MODEL,
                "REDIS_URL": env.proxy.url if env.proxy else env.redis_url,
                "REDIS_KEY_PREFIX": self.prefix,
                "DATA_DIR": str(env.workdir / "data"),
                # Flood-limit pacing is for a server that enforces limits (the `limits`
                # scenario); elsewhere, like the floor, the bot sends as fast as it can.
                **({} if paced else UNPACED),
                **env.bot_env,
            }
            command = [env.python, "-m", "bot", "run"]
        else:
            child_env |= {
                "FLOOR_TELEGRAM_URL": f"{tg.api_url}{tg.token}",
                "FLOOR_LLM_URL": llm.base_url,
                "FLOOR_MODEL": MODEL,
            }
            command = [env.python, "-m", "bench.floor"]
        # Run from an empty directory so no stray .env configures the bot, with this checkout
        # first on the path: a stale editable install once resolved `handlers` to a namespace
        # package there (its __init__ never ran) and the bot died at start.
        root = str(Path(__file__).resolve().parent.parent)
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, child_env.get("PYTHONPATH", "")) if p
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=env.workdir, env=child_env, stdout=out, stderr=subprocess.STDOUT
            )
        procstat.pin(self.process.pid, env.subject_cpus)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            # Polled, not waited on: the fakes must keep answering while the subject shuts down.
            while self.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


async def _wait_ready(tg: BenchTelegram, subject: Subject) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not tg.calls_of("getUpdates"):
        if subject.process.poll() is not None:
            raise RuntimeError(f"the {subject.kind} exited at start:\n{subject.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {subject.kind} did not poll within {READY_TIMEOUT_S:.0f}s")
        await asyncio.sleep(0.05)


async def _wait_shown(
    tracker: Tracker, turn: Turn, timeout_s: float, group_timeout_s: float
) -> bool:
    """Wait for the turn's first visible output. In a group, give up after ``group_timeout_s``
    unless the bot has shown anything in any group by then: silent differs from slow."""
    if turn.conv.group:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(turn.shown.wait(), min(group_timeout_s, timeout_s))
            return True
        if not tracker.group_replies:
            return False
    try:
        await asyncio.wait_for(turn.shown.wait(), timeout_s - time.monotonic() + turn.t_sent)
    except TimeoutError:
        return False
    return True


async def _converse(
    tracker: Tracker,
    tg: BenchTelegram,
    *,
    conv: Conversation,
    turns: int,
    profile: Profile,
    earliest_s: float,
    group_timeout_s: float,
) -> None:
    """A closed-loop user: the next message only once the previous answer is fully shown.

    ``earliest_s`` is when the subject could first show something, after the message: the
    model's first token for the bot, its last token for the floor; timeouts count from there.
    """
    for _ in range(turns):
        turn = tracker.new_turn(conv, profile)
        turn.t_sent = time.monotonic()
        message_id = tg.send_text(
            conv.chat_id, turn.question(), user_id=conv.user_id, first_name=conv.first_name
        )
        tracker.sent(turn, message_id)
        shown = await _wait_shown(
            tracker,
            turn,
            earliest_s + VISIBLE_TIMEOUT_S,
            earliest_s + group_timeout_s,
        )
        if not shown:
            turn.outcome = "no answer"
            return
        try:
            await asyncio.wait_for(turn.done.wait(), profile.generation_s + FINAL_TIMEOUT_S)
        except TimeoutError:
            turn.outcome = "no final text"
            return


def _earliest(kind: str, profile: Profile) -> float:
    return profile.generation_s if kind == "floor" else profile.first_token_s


async def _settle(tg: BenchTelegram, llm: BenchLLM, env: Environment) -> float:
    """Wait until the subject has gone quiet (its last memory writes and sends land after the
    user saw the final text); return when it was last seen busy."""
    quiet_s, poll_s = 0.3, 0.05
    deadline = time.monotonic() + SETTLE_TIMEOUT_S

    def state() -> tuple[Any, ...]:
        proxy = tuple(env.proxy.counts()) if env.proxy else ()
        return (len(tg.calls), llm.in_flight, len(llm.requests), proxy)

    last, last_change = state(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        now, current = time.monotonic(), state()
        if current != last:
            last, last_change = current, now
        elif now - last_change >= quiet_s:
            break
    return last_change


async def _warm_up(tracker: Tracker, tg: BenchTelegram, subject: Subject) -> None:
    convs = warm_up_conversations()
    await asyncio.gather(
        *(
            _converse(
                tracker,
                tg,
                conv=c,
                turns=1,
                profile=FAST,
                earliest_s=_earliest(subject.kind, FAST),
                group_timeout_s=READY_TIMEOUT_S,
            )
            for c in convs
        )
    )
    failed = [t for t in tracker.turns if t.outcome != "answered"]
    if failed:
        raise RuntimeError(
            f"the {subject.kind} did not answer the warm-up users ({failed[0].outcome}):\n"
            f"{subject.log_tail()}"
        )


async def _snapshot(
    env: Environment,
    subject: Subject,
    fakes: tuple[BenchTelegram, BenchLLM],
    client: aioredis.Redis | None,
) -> Snapshot:
    tg, llm = fakes
    commands: dict[str, int] = {}
    if client is not None:
        stats = await client.info("commandstats")
        commands = {
            name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
        }
    return Snapshot(
        t=time.monotonic(),
        subject_cpu=procstat.cpu_seconds(subject.pid),
        bench_cpu=procstat.cpu_seconds(os.getpid()),
        redis_cpu=procstat.cpu_seconds(env.redis_pid),
        proxy_cpu=procstat.cpu_seconds(env.proxy.pid if env.proxy else None),
        proxy=env.proxy.counts() if env.proxy else None,
        commands=commands,
        rate_limited=tg.rate_limited,
        telegram_connections=len(tg.client_ports),
        llm_connections=len(llm.client_ports),
    )


async def _redis_bytes(client: aioredis.Redis, prefix: str) -> dict[str, int]:
    """MEMORY USAGE of every key the run wrote, then the keys deleted (ours by prefix only)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    sizes: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        async with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=0)
            for key, size in zip(batch, await pipe.execute(), strict=True):
                sizes[key.decode() if isinstance(key, bytes) else str(key)] = int(size or 0)
        await client.delete(*batch)
    return sizes


class _Profiler:
    """py-spy on the bot during the measured window (``--profile``); best effort."""

    def __init__(self, pid: int, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[bytes] | None = None
        command = ["py-spy", "record", "-r", "250", "--format", "raw"]
        with contextlib.suppress(OSError):
            self.process = subprocess.Popen(
                [*command, "-o", str(path), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


async def run_once(scenario: Scenario, kind: str, env: Environment, index: int) -> dict[str, Any]:
    """Run ``scenario`` once against the ``kind`` ("bot" or "floor"); return its figures."""
    tracker = Tracker()
    limits = telegram_limits(drafts=env.limit_drafts) if scenario.limits else None
    client = aioredis.Redis.from_url(env.redis_url) if kind == "bot" else None
    async with BenchTelegram(tracker, limits=limits) as tg, BenchLLM(tracker) as llm:
        subject = Subject(kind, env, tg, llm, paced=scenario.limits)
        profiler: _Profiler | None = None
        try:
            await _wait_ready(tg, subject)
            await _warm_up(tracker, tg, subject)
            warm_calls = len(tg.calls)
            if env.profile_dir is not None and kind == "bot":
                # Started as a child of the bench, it inherits the bench's core, not the bot's.
                path = env.profile_dir / f"{scenario.name}-{index}.txt"
                profiler = _Profiler(subject.pid, path)
            baseline_rss = procstat.memory_mb(subject.pid, "VmRSS")
            before = await _snapshot(env, subject, (tg, llm), client)
            await asyncio.gather(
                *(
                    _converse(
                        tracker,
                        tg,
                        conv=conv,
                        turns=turns,
                        profile=profile,
                        earliest_s=_earliest(kind, profile),
                        group_timeout_s=env.group_timeout_s,
                    )
                    for conv, turns, profile in scenario.conversations()
                )
            )
            last_busy = await _settle(tg, llm, env)
            after = await _snapshot(env, subject, (tg, llm), client)
            peak_rss = procstat.memory_mb(subject.pid, "VmHWM")
            alive = subject.process.poll() is None
            sizes = await _redis_bytes(client, subject.prefix) if client is not None else {}
        finally:
            if profiler is not None:
                await profiler.stop()
            await subject.stop()
            if client is not None:
                await client.aclose()
        return compute(
            kind,
            tracker,
            tg.calls[warm_calls:],
            before,
            after,
            rss_mb=(baseline_rss, peak_rss),
            redis_key_bytes=sizes,
            subject_alive=alive,
            last_busy=last_busy,
        )
