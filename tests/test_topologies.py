"""Redis topologies: a 3-master Redis Cluster and a Sentinel-managed master with a replica, both
started by the test on loopback ports. The bot (in webhook mode, so the update queue's streams,
leases and scripts are exercised too) answers and remembers on each; under Sentinel it carries
on, memory intact, after a failover."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from bot.memory import Memory
from bot.updatequeue import UpdateQueue
from tests.conftest import BotFactory, chat_prompts
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import free_port

USER = 9301
SECRET = "topology-secret"


def _cluster_support() -> str | None:
    """Why the cluster test cannot run here, or None."""
    cli, server = shutil.which("redis-cli"), shutil.which("redis-server")
    if cli is None or server is None:
        return "redis-cli or redis-server is not installed"
    helped = subprocess.run([cli, "--cluster", "help"], capture_output=True, text=True, check=False)
    if "create" not in helped.stdout + helped.stderr:
        return "this redis-cli has no --cluster support (Redis 5 or newer needed)"
    return None


def _bus_free(port: int) -> bool:
    """A cluster node also listens on its port + 10000 (the cluster bus)."""
    if port + 10000 > 65535:
        return False
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port + 10000)) != 0


def _wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.025)
    raise AssertionError(f"nothing listens on {port}")


class Servers:
    """redis-server processes of one test, stopped together."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *arguments: str) -> int:
        port = free_port()
        while "--cluster-enabled" in arguments and not _bus_free(port):
            port = free_port()
        folder = self.directory / name
        folder.mkdir()
        command = ["redis-server", *arguments, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--dir", str(folder), "--save", "", "--appendonly", "no"]
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _wait_port(port)
        return port

    def kill(self, port: int) -> None:
        self.processes[port].kill()
        self.processes[port].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop()


@pytest.fixture
def cluster(servers: Servers) -> str:
    """A 3-master cluster (no replicas); the URL of its first node."""
    reason = _cluster_support()
    if reason is not None:
        pytest.skip(reason)
    ports = [servers.start(f"node{i}", "--cluster-enabled", "yes") for i in range(3)]
    nodes = [f"127.0.0.1:{port}" for port in ports]
    subprocess.run(
        ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        check=True,
    )
    deadline = time.monotonic() + 15
    for port in ports:
        client = redis.Redis(port=port, decode_responses=True)
        while client.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        client.close()
    return f"redis://{nodes[0]}/0"


def _replication(port: int) -> dict[str, object]:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return dict(client.info("replication"))
    finally:
        client.close()


def _role(port: int) -> str:
    return str(_replication(port)["role"])


@pytest.fixture
def sentinel(servers: Servers, tmp_path: Path) -> tuple[int, int, int]:
    """A master, its replica and one sentinel watching them: (master, replica, sentinel)."""
    master = servers.start("master")
    replica = servers.start("replica", "--replicaof", "127.0.0.1", str(master))
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"sentinel monitor mymaster 127.0.0.1 {master} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n",
        encoding="utf-8",
    )
    watcher = servers.start("sentinel", str(config), "--sentinel")
    deadline = time.monotonic() + 15
    while _role(replica) != "slave" or not _replica_known(watcher):
        assert time.monotonic() < deadline, "the replica or the sentinel did not come up"
        time.sleep(0.1)
    return master, replica, watcher


def _replica_known(sentinel_port: int) -> bool:
    client = redis.Redis(port=sentinel_port, decode_responses=True)
    try:
        return bool(client.sentinel_slaves("mymaster"))
    finally:
        client.close()


@asynccontextmanager
async def webhook_mode(start_bot: BotFactory, **settings: object) -> AsyncIterator[None]:
    port = free_port()
    async with start_bot(
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
        queue_lease_s=1.0,
        **settings,
    ):
        yield


async def ask(tg: FakeTelegram, text: str) -> str:
    before = len(tg.texts(USER))
    tg.send_text(USER, text)
    messages = await tg.wait_messages(USER, before + 1, timeout=10)
    await tg.wait_idle(quiet=0.1)
    return messages[-1].text


async def test_the_bot_answers_and_remembers_on_a_three_master_cluster(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, cluster: str
) -> None:
    llm.responder = lambda body: Plan(text=f"Answer {len(chat_prompts(llm))}.")
    limits = {"rate_limit_per_minute": 100, "daily_token_quota": 100_000}
    async with webhook_mode(start_bot, redis_url=cluster, redis_cluster=True, **limits):
        assert await ask(tg, "My name is Ann.") == "Answer 1."
        assert await ask(tg, "What is my name?") == "Answer 2."
        assert "remember" in (await ask(tg, "remember that I am vegetarian")).lower()
        assert "vegetarian" in await ask(tg, "/memory")
        assert "vegetarian" in await ask(tg, "/forget 1")  # WATCH + MULTI on the user's slot
        assert "vegetarian" not in await ask(tg, "/memory")
        # Twenty users spread over the shards, hence over the three masters.
        for user in range(9400, 9420):
            tg.send_text(user, "hello")
        for user in range(9400, 9420):
            await tg.wait_messages(user, 1, timeout=10)
    contents = [m["content"] for m in chat_prompts(llm)[1][1:]]
    assert contents == ["My name is Ann.", "Answer 1.", "What is my name?"]

    node = redis.Redis.from_url(cluster)
    try:
        # [[first slot, last slot, [host, port, id], ...], ...]
        ranges = node.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
    finally:
        node.close()
    masters = {int(r[2][1]) for r in ranges}
    slots = [key_slot(f"{{q{n}}}".encode()) for n in range(16)]
    owners = {int(r[2][1]) for r in ranges for slot in slots if r[0] <= slot <= r[1]}
    assert len(masters) == 3 and owners == masters, "the queue's shards live on every master"


async def test_the_queue_backlog_is_sampled_across_the_masters(cluster: str, prefix: str) -> None:
    """The /metrics sample of the update queue is one pipeline over shards on every master."""
    memory = Memory.from_url(cluster, prefix, 3600, cluster=True)
    queue = UpdateQueue(memory, prefix, "replica:1:a")
    try:
        for shard in range(16):
            await queue.prepare(shard)
            for update_id in (1, 2):
                assert await queue.accept(shard, 100 * shard + update_id, "1:1", b"{}")
            assert len(await queue.read(shard, 1, 10)) == 1
        assert await queue.backlog(list(range(16))) == (32, 16)
    finally:
        await memory.close()


async def test_the_bot_follows_a_sentinel_failover_with_its_memory(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    servers: Servers,
    sentinel: tuple[int, int, int],
) -> None:
    """The master dies; Sentinel promotes the replica; the bot reconnects to it by itself."""
    master, replica, watcher = sentinel
    llm.responder = lambda body: Plan(text=f"Answer {len(chat_prompts(llm))}.")
    settings = {
        "redis_url": "redis:///0",
        "redis_sentinels": f"127.0.0.1:{watcher}",
        "redis_sentinel_master": "mymaster",
    }
    async with webhook_mode(start_bot, **settings):
        assert await ask(tg, "My name is Ann.") == "Answer 1."
        written = int(str(_replication(master)["master_repl_offset"]))
        while int(str(_replication(replica)["master_repl_offset"])) < written:
            await asyncio.sleep(0.05)

        servers.kill(master)
        deadline = time.monotonic() + 15
        while _role(replica) != "master":
            assert time.monotonic() < deadline, "no failover"
            await asyncio.sleep(0.1)

        assert await ask(tg, "What is my name?") == "Answer 2."
        assert await ask(tg, "Still there?") == "Answer 3."
    contents = [m["content"] for m in chat_prompts(llm)[2][1:]]
    assert contents == [
        "My name is Ann.",
        "Answer 1.",
        "What is my name?",
        "Answer 2.",
        "Still there?",
    ], "memory written before the failover is read after it, and written again"
