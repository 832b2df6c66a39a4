"""``python -m bench.soak``: a bounded soak run with faults injected (bench/README.md).

A few hundred simulated users talk to the real bot (a subprocess) for a few minutes through the
fake Bot API and the fake model, in closed loops, while faults are injected at random: the model
erroring, rate-limiting, cutting streams, stalling past the first-token timeout; Telegram
answering 429, 5xx and rejecting entities; Redis stopped and started again. Every message must
end in a visible reply — an answer, or a clear notice — within the deadline; one that does not is
*lost*. The report gives sent, answered, failed-with-a-clear-reply, lost (must be 0) and the bot's
memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import RedisProcess

DEADLINE_S = 45.0
ANSWER = "All good: here is your answer."
USER_BASE = 700_000


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    failed_clearly: int = 0
    lost: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def model_plan(rng: random.Random, tally: Tally) -> Plan:
    roll = rng.random()
    faults = [
        (0.04, "llm 500", Plan(status=500, error_message="boom")),
        (0.03, "llm 429", Plan(status=429, error_message="busy", headers={"Retry-After": "30"})),
        (0.03, "llm cut mid-stream", Plan(chunks=["Half ", "an ", "answer"], cut_after=2)),
        (0.02, "llm too slow", Plan(text=ANSWER, first_token_delay=4.0)),
        (0.02, "llm malformed", Plan(malformed=True)),
        (0.02, "llm empty", Plan(text="", chunks=[])),
    ]
    for share, name, plan in faults:
        if roll < share:
            tally.fault(name)
            return plan
        roll -= share
    return Plan(text=ANSWER, first_token_delay=rng.uniform(0, 0.3), token_delay=0.01)


async def user(
    uid: int, tg: FakeTelegram, stop_at: float, tally: Tally, rng: random.Random
) -> None:
    while time.monotonic() < stop_at:
        before = len(tg.chat(uid).messages)
        tg.send_text(uid, f"question {tally.sent} from {uid}")
        tally.sent += 1
        asked = time.monotonic()
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and len(tg.chat(uid).messages) <= before:
            await asyncio.sleep(0.05)
        new = tg.chat(uid).messages[before:]
        if not new:
            tally.lost += 1
            print(f"soak: lost: user {uid}, asked at {asked:.1f}", file=sys.stderr)
        elif any(m.text.startswith(ANSWER) or m.text == ANSWER for m in new):
            tally.answered += 1
        else:
            tally.failed_clearly += 1
        await asyncio.sleep(rng.uniform(0.2, 1.5))


def telegram_faults(tg: FakeTelegram, rng: random.Random, tally: Tally, users: list[int]) -> None:
    chat = rng.choice(users)
    roll = rng.random()
    if roll < 0.4:
        flood = "Too Many Requests: retry after 1"
        tg.fail("sendMessage", status=429, description=flood, retry_after=1, chat_id=chat)
        tally.fault("telegram 429")
    elif roll < 0.7:
        tg.fail("sendMessage", status=502, description="Bad Gateway", chat_id=chat)
        tally.fault("telegram 502")
    else:
        # Entities rejected by Telegram are covered by tests/test_failures.py: here a fault
        # would hit plain answers too, which Telegram never rejects that way.
        tg.fail("sendMessage", status=500, description="Internal Server Error", chat_id=chat)
        tally.fault("telegram 500")


async def soak(users: int, minutes: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        redis = RedisProcess(directory)
        redis.start()
        async with FakeTelegram() as tg, FakeLLM() as llm:
            llm.responder = lambda body: model_plan(rng, tally)
            env = {
                "PATH": os.environ["PATH"],
                "HOME": directory,
                "TELEGRAM_BOT_TOKEN": tg.token,
                "TELEGRAM_API_BASE_URL": tg.base_url,
                "LLM_BASE_URL": llm.base_url,
                "LLM_MODEL": "llama-3-8b-instruct",
                "LLM_FIRST_TOKEN_TIMEOUT_S": "2",
                "LLM_MAX_RETRIES": "1",
                "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                "LOG_LEVEL": "WARNING",
            }
            log = Path(os.environ.get("SOAK_LOG", Path(directory) / "bot.log"))
            with log.open("wb") as out:
                bot = subprocess.Popen(
                    [sys.executable, "-m", "bot", "run"], env=env, stdout=out, stderr=out
                )
                try:
                    await asyncio.sleep(2)
                    tally.rss_mb.append(_rss_mb(bot.pid))
                    ids = [USER_BASE + i for i in range(users)]
                    stop_at = time.monotonic() + minutes * 60
                    loops = [user(u, tg, stop_at, tally, rng) for u in ids]
                    chaos = asyncio.create_task(_chaos(tg, redis, rng, tally, ids, stop_at, bot))
                    await asyncio.gather(*loops)
                    chaos.cancel()
                    tally.rss_mb.append(_rss_mb(bot.pid))
                    alive = bot.poll() is None
                finally:
                    bot.send_signal(signal.SIGTERM)
                    bot.wait(30)
                    redis.stop()
            tracebacks = log.read_text(errors="replace").count("Traceback")
    return {
        **asdict(tally),
        "users": users,
        "minutes": minutes,
        "bot_alive_at_end": alive,
        "tracebacks_in_log": tracebacks,
        "rss_growth_mb": round(tally.rss_mb[-1] - tally.rss_mb[0], 1),
    }


async def _chaos(  # noqa: PLR0917
    tg: FakeTelegram,
    redis: RedisProcess,
    rng: random.Random,
    tally: Tally,
    users: list[int],
    stop_at: float,
    bot: subprocess.Popen[bytes],
) -> None:
    redis_down_once = False
    while time.monotonic() < stop_at:
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        telegram_faults(tg, rng, tally, users)
        halfway = stop_at - time.monotonic() < 0.5 * (stop_at - time.monotonic() + 1)
        if not redis_down_once and halfway:
            redis_down_once = True
            redis.stop()
            tally.fault("redis stopped for 5 s")
            await asyncio.sleep(5)
            redis.start()
        tally.rss_mb.append(_rss_mb(bot.pid))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/soak", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(soak(args.users, args.minutes, args.seed))
    rss = result.pop("rss_mb")
    result["rss_mb_start_peak_end"] = [round(rss[0], 1), round(max(rss), 1), round(rss[-1], 1)]
    print(json.dumps(result, indent=2))
    ok = result["lost"] == 0 and result["bot_alive_at_end"]
    print(f"soak: {'PASS' if ok else 'FAIL'}: {result['lost']} lost of {result['sent']} sent")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
