"""Webhook mode in one process: the secret token, deduplication, the durable queue, /stop, and
how fast Telegram gets its 200. The bot runs in the test's event loop against the fake Bot API
(delivering by webhook), the fake LLM and a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from bot import metrics, workers
from bot.app import ALLOWED_UPDATES
from bot.errors import ConfigError
from bot.memory import Memory
from bot.routing import route
from bot.settings import load_settings
from bot.updatequeue import GROUP, QueueKeys, UpdateQueue
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import RedisProcess, free_port, run_cli
from tests.test_ops import Samples, scrape, value

USER = 7301
SECRET = "s3cret_-Token"
SHARDS = 4
log = logging.getLogger(__name__)

Hook = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def webhook_bot(start_bot: BotFactory) -> Hook:
    """`async with webhook_bot() as url:` the bot in webhook mode; `url` is where it listens."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[str]:
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/{uuid.uuid4().hex[:8]}"
        settings: dict[str, Any] = {
            "webhook_url": url,
            "webhook_secret": SECRET,
            "webhook_listen": f"127.0.0.1:{port}",
            "queue_shards": SHARDS,
            "queue_lease_s": 1.0,
            **overrides,
        }
        async with start_bot(**settings):
            yield url

    return start


def private_update(update_id: int, text: str, user: int = USER) -> dict[str, Any]:
    person = {"id": user, "is_bot": False, "first_name": "Ann"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": person,
            "chat": {"id": user, "type": "private", "first_name": "Ann"},
            "date": int(time.time()),
            "text": text,
        },
    }


async def post(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=update, headers=headers) as r:
        return r.status


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition outside the fakes (Redis state), which no fake event announces."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.02)


def delivered(tg: FakeTelegram, count: int) -> bool:
    return len(tg.deliveries) >= count


def queued(client: redis.Redis, prefix: str) -> int:
    keys = QueueKeys(prefix)
    return sum(int(client.xlen(keys.stream(n))) for n in range(SHARDS))


async def test_registers_the_webhook_with_secret_kinds_and_connections(
    tg: FakeTelegram, webhook_bot: Hook
) -> None:
    async with webhook_bot(webhook_max_connections=7) as url:
        assert tg.webhook is not None
        assert tg.webhook["url"] == url
        assert tg.webhook["secret_token"] == SECRET
        assert tg.webhook["max_connections"] == 7
        assert tg.webhook["allowed_updates"] == [str(kind) for kind in ALLOWED_UPDATES]
        assert not tg.webhook.get("drop_pending_updates")
    assert tg.webhook is not None, "a stopping replica leaves the webhook to the others"


async def test_requests_without_the_right_secret_get_401_and_nothing_is_processed(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, redis_client: redis.Redis, prefix: str
) -> None:
    async with webhook_bot() as url:
        assert await post(url, private_update(1, "hello"), None) == 401
        assert await post(url, private_update(1, "hello"), "wrong") == 401
        assert await post(url, private_update(1, "hello"), SECRET[:-1]) == 401
        assert await post(url, private_update(1, "hello"), SECRET + "x") == 401
        await tg.wait_idle(quiet=0.3)
        assert queued(redis_client, prefix) == 0
        assert not redis_client.exists(QueueKeys(prefix).seen(USER % SHARDS, 1))
        assert llm.requests == [] and tg.texts(USER) == []

        # Not an update: refused before anything is stored.
        assert await post(url, {"message": {}}, SECRET) == 400

        assert await post(url, private_update(1, "hello"), SECRET) == 200
        [answer] = await tg.wait_messages(USER, 1)
        assert answer.text == Plan().text


async def test_an_update_delivered_twice_is_answered_once(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, redis_client: redis.Redis, prefix: str
) -> None:
    llm.default = Plan(text="Once.", token_delay=0.02)
    async with webhook_bot():
        tg.send_text(USER, "hi")
        update_id = tg.redeliver()  # while the first delivery is being answered
        await tg.wait_messages(USER, 1)
        tg.redeliver(update_id)  # after it was answered
        await tg.wait_idle(quiet=0.5)

        assert tg.texts(USER) == ["Once."]
        assert len(llm.requests) == 1
        statuses = [d.status for d in tg.deliveries if d.update_id == update_id]
        assert statuses == [200, 200, 200]

        # A redelivery from inside the queue (a replica claiming it after a crash between
        # answering and acknowledging) finds the update done and only acknowledges it.
        keys, shard = QueueKeys(prefix), USER % SHARDS
        payload = json.dumps(tg._sent[update_id])
        redis_client.xadd(
            keys.stream(shard), {"id": update_id, "l": f"{USER}:{USER}", "u": payload}
        )
        await eventually(lambda: queued(redis_client, prefix) == 0)
        await tg.wait_idle(quiet=0.3)
        assert tg.texts(USER) == ["Once."] and len(llm.requests) == 1
        assert redis_client.get(keys.seen(shard, update_id)) == "done"
        assert 0 < int(redis_client.ttl(keys.seen(shard, update_id))) <= 86400
        assert redis_client.xpending(keys.stream(shard), GROUP)["pending"] == 0


async def test_an_update_cut_off_by_a_shutdown_is_answered_after_the_restart(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, redis_client: redis.Redis, prefix: str
) -> None:
    """Accepted means stored: an update still being answered when the grace period ends stays
    in Redis, and the next replica to own its shard (here: the bot, restarted) answers it."""
    llm.plan(Plan(text="Too slow.", first_token_delay=5), Plan(text="Answered after all."))
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    same = {"webhook_url": url, "webhook_listen": f"127.0.0.1:{port}", "shutdown_grace_s": 0}
    async with webhook_bot(**same):
        tg.send_text(USER, "are you there?")
        await llm.wait_requests(1)
    assert tg.texts(USER) == [] and queued(redis_client, prefix) == 1
    async with webhook_bot(**same):
        await tg.wait_messages(USER, 1)
        await tg.wait_idle(quiet=0.3)
    assert tg.texts(USER) == ["Answered after all."]
    assert queued(redis_client, prefix) == 0


async def test_updates_left_by_a_dead_replica_are_answered_and_a_poison_one_given_up(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, redis_client: redis.Redis, prefix: str
) -> None:
    """A replica read two updates and died; the first had already taken down 9 replicas."""
    keys, shard, lane = QueueKeys(prefix), USER % SHARDS, f"{USER}:{USER}"
    stream = keys.stream(shard)
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    ids = [
        redis_client.xadd(stream, {"id": n, "l": lane, "u": json.dumps(private_update(n, text))})
        for n, text in ((1, "crashes every replica"), (2, "an ordinary question"))
    ]
    redis_client.xreadgroup(GROUP, "dead:1:x", {stream: ">"})
    redis_client.xclaim(stream, GROUP, "dead:1:x", 0, [ids[0]], retrycount=9)
    llm.default = Plan(text="Answered.")
    async with webhook_bot():
        await tg.wait_messages(USER, 1)
        await tg.wait_idle(quiet=0.3)
        assert tg.texts(USER) == ["Answered."]
        [request] = llm.requests
        assert request["messages"][-1]["content"] == "an ordinary question"
        assert redis_client.get(keys.seen(shard, 1)) == "done"
        assert queued(redis_client, prefix) == 0


async def test_while_redis_is_down_telegram_gets_503_and_delivers_again_later(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        async with webhook_bot(redis_url=server.url):
            server.stop()
            tg.send_text(USER, "hello?")
            await tg.wait_for(lambda: [d.status for d in tg.deliveries][:2] == [503, 503])
            assert tg.texts(USER) == []
            server.start()
            [answer] = await tg.wait_messages(USER, 1, timeout=15)
            assert answer.text == Plan().text
            assert [d.status for d in tg.deliveries][-1] == 200
            assert tg.pending_updates == 0
    finally:
        server.stop()


async def test_stop_acts_at_once_in_webhook_mode(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook
) -> None:
    llm.plan(Plan(chunks=[f"word{i} " for i in range(200)], token_delay=0.05))
    async with webhook_bot():
        tg.send_text(USER, "Count forever")
        await tg.wait_for(lambda: len(tg.chat(USER).drafts) >= 2)
        tg.send_text(USER, "/stop")
        [message] = await tg.wait_messages(USER, 1, timeout=3)
        assert message.text.endswith("⏹ Stopped.") and "word199" not in message.text


async def test_one_users_messages_are_answered_in_order_and_users_concurrently(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook
) -> None:
    llm.responder = lambda body: Plan(
        text=f"answer to {body['messages'][-1]['content']}", first_token_delay=0.05
    )
    users = [USER + i for i in range(6)]
    async with webhook_bot():
        for i in range(4):
            for user in users:
                tg.send_text(user, f"q{i} of {user}")
        for user in users:
            await tg.wait_messages(user, 4)
        for user in users:
            assert tg.texts(user) == [f"answer to q{i} of {user}" for i in range(4)]
        assert llm.max_in_flight > 1, "different users are answered concurrently"


async def test_telegram_gets_its_200_within_milliseconds(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook
) -> None:
    """Receipt to 200 is one Redis script; the answers (here ~1 s each) come later."""
    llm.default = Plan(text="Slow answer.", first_token_delay=1.0)
    async with webhook_bot():
        for i in range(50):
            tg.send_text(USER + i, "hi")
            await tg.wait_for(partial(delivered, tg, i + 1))
            await asyncio.sleep(0.01)
        seconds = sorted(d.seconds for d in tg.deliveries if d.status == 200)
        assert len(seconds) == 50
        median, p95 = statistics.median(seconds), seconds[47]
        log.info("webhook receipt -> 200: median %.2f ms, p95 %.2f ms", median * 1e3, p95 * 1e3)
        assert median < 0.02 and p95 < 0.1, (median, p95)
        assert tg.texts(USER + 49) == [], "the 200 came before the answer"
        for i in range(50):
            await tg.wait_messages(USER + i, 1, timeout=10)


async def sampled(http: aiohttp.ClientSession, port: int, depth: int, pending: int) -> Samples:
    """Scrape until the queue gauges read `depth` and `pending` (sampled in the background)."""
    deadline = time.monotonic() + 5
    while True:
        samples = await scrape(http, port)
        found = value(samples, "telellama_queue_depth"), value(samples, "telellama_queue_pending")
        if found == (depth, pending):
            return samples
        assert time.monotonic() < deadline, f"queue depth, pending stayed {found}"
        await asyncio.sleep(0.05)


async def test_queue_depth_pending_and_receipt_time_are_on_metrics(
    tg: FakeTelegram, llm: FakeLLM, webhook_bot: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three updates of one user: the first is answered slowly, the other two wait in its lane,
    so all three are in the queue and read (pending) until answered. Each 200 is timed."""
    monkeypatch.setattr(workers, "SAMPLE_S", 0.05)
    llm.plan(Plan(text="Slowly.", first_token_delay=1.5))
    llm.default = Plan(text="Quickly.")
    port = free_port()
    receipt = "telellama_webhook_receipt_seconds"
    async with (
        webhook_bot(metrics_listen=f"127.0.0.1:{port}") as url,
        aiohttp.ClientSession() as http,
    ):
        before = await sampled(http, port, 0, 0)
        assert await post(url, private_update(1, "hi"), "wrong") == 401  # refused: not timed
        for text in ("one", "two", "three"):
            tg.send_text(USER, text)
        await llm.wait_requests(1)
        await sampled(http, port, 3, 3)

        await tg.wait_messages(USER, 3)
        await tg.wait_idle(quiet=0.2)
        after = await sampled(http, port, 0, 0)
        assert tg.texts(USER) == ["Slowly.", "Quickly.", "Quickly."]

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert [d.status for d in tg.deliveries] == [200, 200, 200]
        assert grew(f"{receipt}_count") == 3
        assert grew(f"{receipt}_bucket", le="+Inf") == 3
        # Timed inside the bot, so within what the sender measured from request to response.
        assert 0 < grew(f"{receipt}_sum") <= sum(d.seconds for d in tg.deliveries)
        assert grew(f"{receipt}_bucket", le="0.25") == 3, "stored in milliseconds"
    assert metrics.REGISTRY.get_sample_value("telellama_queue_depth") == 0, "reset when stopped"


async def test_queue_backlog_counts_the_shards_asked_for(redis_url: str, prefix: str) -> None:
    """Depth (accepted, not finished) and pending (read, not acknowledged) of the given shards
    only: each replica asks for the shards it owns, so summed over replicas each counts once."""
    memory = Memory.from_url(redis_url, prefix, 3600)
    queue = UpdateQueue(memory, prefix, "replica:1:a")
    try:
        for update_id in (101, 102, 103):
            assert await queue.accept(0, update_id, "1:1", b"{}")
        assert await queue.accept(1, 201, "2:2", b"{}")
        assert await queue.accept(2, 301, "3:3", b"{}")  # no consumer group yet
        await queue.prepare(0)
        await queue.prepare(1)
        read = await queue.read(0, 2, 10)
        assert len(read) == 2
        assert await queue.backlog([]) == (0, 0)
        assert await queue.backlog([0]) == (3, 2)
        assert await queue.backlog([1]) == (1, 0)
        assert await queue.backlog([2]) == (1, 0)
        assert await queue.backlog([3]) == (0, 0)  # no stream at all
        assert await queue.backlog([0, 1, 2, 3]) == (5, 2)
        await queue.finish(0, read[0])
        assert await queue.backlog([0, 1]) == (3, 1)
    finally:
        await memory.close()


def test_route_names_chat_user_lane_and_shard() -> None:
    found = route(private_update(5, "hello", user=42))
    assert found is not None
    assert (found.update_id, found.chat_id, found.user_id, found.lane) == (5, 42, 42, "42:42")
    assert found.shard(16) == 42 % 16
    stop = route(private_update(6, "/stop@telellama_bot", user=42))
    assert stop is not None and stop.immediate and stop.lane == ""
    not_stop = route(private_update(7, "/stopwatch", user=42))
    assert not_stop is not None and not not_stop.immediate
    button = route(
        {
            "update_id": 8,
            "callback_query": {"id": "1", "from": {"id": 7}, "message": {"chat": {"id": -100}}},
        }
    )
    assert button is not None and button.lane == "-100:7"
    assert route({"message": {}}) is None and route([1]) is None


GOOD: dict[str, Any] = {"llm_base_url": "http://localhost:8000/v1", "_env_file": None}
HOOK = "https://bot.example.com/telegram"


@pytest.mark.parametrize(
    ("overrides", "named", "fix"),
    [
        ({"webhook_url": HOOK}, "WEBHOOK_SECRET is missing", "openssl rand"),
        (
            {"webhook_url": "http://bot.example.com/t", "webhook_secret": "x"},
            "WEBHOOK_URL",
            "https",
        ),
        (
            {"webhook_url": "https://bot.example.com:9000/t", "webhook_secret": "x"},
            "WEBHOOK_URL",
            "8443",
        ),
        ({"webhook_secret": "has spaces"}, "WEBHOOK_SECRET", "A-Z, a-z, 0-9, _ and -"),
        ({"webhook_secret": "x" * 257}, "WEBHOOK_SECRET", "1-256"),
        ({"webhook_listen": "8080"}, "WEBHOOK_LISTEN", "host:port"),
        ({"webhook_max_connections": 101}, "WEBHOOK_MAX_CONNECTIONS", "100"),
        ({"queue_shards": 0}, "QUEUE_SHARDS", "greater than or equal to 1"),
        ({"redis_cluster": True, "redis_url": None}, "REDIS_CLUSTER", "REDIS_URL"),
        ({"redis_cluster": True, "redis_url": "unix:///tmp/r.sock"}, "REDIS_CLUSTER", "unix"),
        ({"redis_sentinels": "s1:26379"}, "REDIS_SENTINEL_MASTER is missing", "master's name"),
        ({"redis_sentinels": "s1"}, "REDIS_SENTINELS", "host:port"),
        (
            {"redis_url": "redis://a", "redis_cluster": True, "redis_sentinels": "s1:1"},
            "REDIS_SENTINELS",
            "choose one",
        ),
    ],
)
def test_bad_webhook_and_redis_settings_name_the_setting_and_the_fix(
    overrides: dict[str, object], named: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**GOOD, **overrides)
    assert named in str(caught.value) and fix in str(caught.value)


def test_good_webhook_and_redis_settings() -> None:
    settings = load_settings(
        **GOOD, webhook_url=HOOK + "/", webhook_secret="A-z_0" * 50 + "123456", redis_sentinels=""
    )
    assert settings.webhook_address() == ("0.0.0.0", 8080)
    assert len(settings.webhook_secret_value()) == 256
    # A self-hosted Bot API server (telegram-bot-api --local) may post over plain http.
    local = load_settings(
        **GOOD,
        telegram_api_base_url="http://127.0.0.1:8081",
        webhook_url="http://bot:8080/hook",
        webhook_secret="s",
    )
    assert local.webhook_url == "http://bot:8080/hook"
    sentinels = load_settings(
        **GOOD, redis_sentinels="10.0.0.1:26379, s2:26380", redis_sentinel_master="mymaster"
    )
    assert sentinels.redis_sentinels == (("10.0.0.1", 26379), ("s2", 26380))


async def test_run_webhook_without_a_url_exits_with_the_fix() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "123:abc", "LLM_BASE_URL": "http://localhost:1/v1"}
    code, _, err = await run_cli("run", "--webhook", env=env)
    assert code == 2
    assert "WEBHOOK_URL is missing" in err and "https://" in err and "Traceback" not in err
