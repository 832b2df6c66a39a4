"""Several replicas, as real processes (`python -m bot run --webhook`), on one Redis, behind a
load balancer: the fake Bot API posts each update to the replicas in turn. Every update is
answered exactly once, each user's answers in order, and an update whose replica is killed
(SIGKILL) mid-answer is answered by the other."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from bot.updatequeue import QueueKeys
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "replicas-secret"
SHARDS = 8
LEASE_S = 1.5
log = logging.getLogger(__name__)


class Replica:
    """One bot process in webhook mode, its log (JSON lines) in a file."""

    def __init__(self, env: dict[str, str], directory: Path, name: str) -> None:
        self.port = free_port()
        self.log_path = directory / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--webhook"],
            env={**env, "WEBHOOK_LISTEN": f"127.0.0.1:{self.port}"},
            cwd=directory,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def handled(self) -> list[int]:
        """The update ids this replica finished (from its one line per update)."""
        return [int(r["update_id"]) for r in self.lines() if r.get("message") == "update handled"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def replica_env(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "LLM_BASE_URL": llm.base_url,
        "LLM_MODEL": "llama-3-8b-instruct",
        "LLM_FIRST_TOKEN_TIMEOUT_S": "5",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        # The public URL; the fake's load balancer sends its path to each replica in turn.
        "WEBHOOK_URL": "http://127.0.0.1:1/telegram/hook",
        "WEBHOOK_SECRET": SECRET,
        "QUEUE_SHARDS": str(SHARDS),
        "QUEUE_LEASE_S": str(LEASE_S),
        "TELEGRAM_MAX_MESSAGES_PER_S": "0",
        "TELEGRAM_CHAT_MESSAGES_PER_S": "0",
        "STREAM_DRAFT_INTERVAL_S": "0.05",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_S": "5",
        "DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def replicas(
    replica_env: dict[str, str], tg: FakeTelegram, tmp_path: Path
) -> Iterator[list[Replica]]:
    started = [Replica(replica_env, tmp_path, f"replica{i}") for i in range(2)]
    tg.webhook_origins = [r.origin for r in started]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def owners(client: redis.Redis, prefix: str) -> dict[int, str]:
    keys = QueueKeys(prefix)
    found = {n: client.get(keys.lease(n)) for n in range(SHARDS)}
    return {n: str(owner) for n, owner in found.items() if owner is not None}


async def shared_out(
    replicas: list[Replica], tg: FakeTelegram, client: redis.Redis, prefix: str
) -> dict[int, str]:
    """Wait until both replicas registered the webhook and own half the shards each."""
    deadline = time.monotonic() + 20
    while True:
        for replica in replicas:
            assert replica.process.poll() is None, replica.log_path.read_text()
        held = owners(client, prefix)
        pids = {owner.split(":")[1] for owner in held.values()}
        if len(tg.calls_of("setWebhook")) >= 2 and len(held) == SHARDS and len(pids) == 2:
            counts = [list(held.values()).count(o) for o in set(held.values())]
            if max(counts) == SHARDS // 2:
                return held
        assert time.monotonic() < deadline, f"shards not shared out: {held}"
        await asyncio.sleep(0.1)


async def test_two_replicas_answer_200_updates_from_20_users_once_each_in_order(
    tg: FakeTelegram,
    llm: FakeLLM,
    replicas: list[Replica],
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    llm.responder = lambda body: Plan(
        text=f"answer to {body['messages'][-1]['content']}", token_delay=0.005
    )
    await shared_out(replicas, tg, redis_client, prefix)
    users = [8100 + i for i in range(20)]
    for i in range(10):
        for user in users:
            tg.send_text(user, f"q{i} from {user}")
            await asyncio.sleep(0.002)

    for user in users:
        await tg.wait_messages(user, 10, timeout=30)
    await tg.wait_idle(quiet=0.5, timeout=10)

    for user in users:
        assert tg.texts(user) == [f"answer to q{i} from {user}" for i in range(10)]
    prompts = [r for r in llm.requests if "summary" not in str(r["messages"][0]["content"])]
    assert len(prompts) == 200
    handled = [replica.handled() for replica in replicas]
    assert sorted(handled[0] + handled[1]) == sorted({d.update_id for d in tg.deliveries})
    assert all(len(h) >= 40 for h in handled), "both replicas did a share of the work"
    assert {d.status for d in tg.deliveries} == {200}
    seconds = sorted(d.seconds for d in tg.deliveries)
    log.info(
        "receipt -> 200 over %d deliveries: median %.2f ms, p95 %.2f ms, max %.2f ms",
        len(seconds),
        statistics.median(seconds) * 1e3,
        seconds[int(len(seconds) * 0.95)] * 1e3,
        seconds[-1] * 1e3,
    )
    assert statistics.median(seconds) < 0.05


async def test_an_update_of_a_replica_killed_mid_answer_is_answered_by_the_other(
    tg: FakeTelegram,
    llm: FakeLLM,
    replicas: list[Replica],
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    story = " ".join(f"word{i}" for i in range(60))
    llm.default = Plan(text=story, token_delay=0.05)
    held = await shared_out(replicas, tg, redis_client, prefix)
    user = 8200
    owner = held[user % SHARDS]
    victim = next(r for r in replicas if str(r.process.pid) == owner.split(":")[1])
    survivor = next(r for r in replicas if r is not victim)

    tg.send_text(user, "tell me a story")
    await tg.wait_for(lambda: len(tg.chat(user).drafts) >= 3, timeout=10)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    assert tg.texts(user) == [], "killed before the answer was finished"

    [answer] = await tg.wait_messages(user, 1, timeout=15)
    await tg.wait_idle(quiet=0.5, timeout=10)
    assert answer.text == story
    assert tg.texts(user) == [story], "answered exactly once"
    assert len(llm.requests) == 2, "the first attempt died with its replica"
    assert owners(redis_client, prefix)[user % SHARDS] != owner
    assert [r for r in survivor.lines() if r.get("message") == "update handled"]

    # The conversation goes on with memory: the survivor wrote the turn.
    llm.default = Plan(text="The end.")
    tg.send_text(user, "and then?")
    await tg.wait_messages(user, 2, timeout=10)
    assert story in str(llm.requests[-1]["messages"])
