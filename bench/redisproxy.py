"""A TCP proxy in front of Redis that counts round trips, in a process of its own.

A round trip is a request burst followed by waiting for the reply: on each connection, the
first bytes the client sends after the server last answered start a new one. A pipeline
(MULTI/EXEC or not) written in one go is therefore one round trip however many commands it
holds, and a burst split into several TCP segments is still one. ``INFO commandstats`` cannot
tell those apart: it sees commands, not the waits between them.

Connection set-up and health checks (HELLO, AUTH, SELECT, CLIENT SETINFO, PING) are counted
apart: redis-py pays them once per pooled connection (and PING after an idle spell), not per
message. Both counts are reported, so a PING per message would still show.

It runs in its own process so that forwarding is not queued behind the bench's event loop
(which serves hundreds of fake HTTP requests at once) and does not inflate the bot's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

ROUND_TRIPS, SETUP_ROUND_TRIPS, CONNECTIONS, BYTES_IN = range(4)
_SETUP_COMMANDS = frozenset({b"HELLO", b"AUTH", b"SELECT", b"CLIENT", b"READONLY", b"PING"})


def _command(data: bytes) -> bytes:
    """The first command name of a RESP request (``*2\\r\\n$6\\r\\nCLIENT\\r\\n...``)."""
    parts = data.split(b"\r\n", 3)
    return parts[2].upper() if len(parts) > 2 else b""


@dataclass
class _Link:
    awaiting_reply: bool = False


class _Counters:
    def __init__(self, shared: Any) -> None:
        self._shared = shared

    def add(self, index: int, amount: int = 1) -> None:
        self._shared[index] += amount


async def _pump_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link, counters: _Counters
) -> None:
    while data := await reader.read(262144):
        if not link.awaiting_reply:
            link.awaiting_reply = True
            setup = _command(data) in _SETUP_COMMANDS
            counters.add(SETUP_ROUND_TRIPS if setup else ROUND_TRIPS)
        counters.add(BYTES_IN, len(data))
        writer.write(data)
        await writer.drain()
    writer.close()


async def _pump_replies(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
) -> None:
    while data := await reader.read(262144):
        link.awaiting_reply = False
        writer.write(data)
        await writer.drain()
    writer.close()


async def _serve(upstream: tuple[str, int], counters: _Counters, port: Any) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        counters.add(CONNECTIONS)
        try:
            server_r, server_w = await asyncio.open_connection(*upstream)
        except OSError:
            client_w.close()
            return
        link = _Link()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(
                _pump_requests(client_r, server_w, link, counters),
                _pump_replies(server_r, client_w, link),
            )
        client_w.close()
        server_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port.value = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def _main(host: str, upstream_port: int, shared: Any, port: Any, cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    asyncio.run(_serve((host, upstream_port), _Counters(shared), port))


class RedisProxy:
    """``start()`` it, point the bot at ``url``, read ``counts()`` before and after."""

    def __init__(self, host: str, port: int, cpus: set[int] | None = None) -> None:
        # spawn, not fork: the bench may already run threads and an event loop.
        ctx = multiprocessing.get_context("spawn")
        self._shared = ctx.RawArray("q", 4)
        self._port = ctx.RawValue("i", 0)
        self._process = ctx.Process(
            target=_main,
            args=(host, port, self._shared, self._port, cpus),
            name="bench-redis-proxy",
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> None:
        self._process.start()
        end = time.monotonic() + timeout
        while self._port.value == 0:
            if time.monotonic() > end or not self._process.is_alive():
                raise RuntimeError("the Redis counting proxy did not start")
            time.sleep(0.01)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port.value}/0"

    def counts(self) -> list[int]:
        return list(self._shared)

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
