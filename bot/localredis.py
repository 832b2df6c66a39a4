"""A Redis for a first run: the one on localhost:6379 if it answers, else a private one.

The private `redis-server` keeps its data (AOF) in the user's data directory and lives as long
as the bot. This module speaks just enough RESP to ping, so the redis client library stays in
`bot.memory` and `bot.updatequeue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@dataclass(slots=True)
class RedisChoice:
    url: str
    description: str
    process: asyncio.subprocess.Process | None = None

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


PING_TIMEOUT_S = 0.5


async def answers_ping(host: str, port: int) -> bool:
    timeout = PING_TIMEOUT_S
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), timeout)
        # "-NOAUTH" still means a Redis is there; it just needs REDIS_URL with a password.
        return reply.startswith((b"+PONG", b"-NOAUTH"))
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start_private(data_dir: Path) -> RedisChoice:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "no Redis answers on localhost:6379 and redis-server is not installed: "
            "install it (apt-get install redis-server) or set REDIS_URL"
        )
    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--save", "",
        "--protected-mode", "yes",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if await answers_ping("127.0.0.1", port):
            url = f"redis://127.0.0.1:{port}/0"
            return RedisChoice(url, f"private redis-server (data in {directory})", process)
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    choice = RedisChoice("", "", process)
    await choice.stop()
    raise RuntimeError(f"the private redis-server did not start (data dir {directory})")


async def choose(redis_url: str | None, data_dir: Path) -> RedisChoice:
    """REDIS_URL when set; otherwise localhost:6379 if it answers; otherwise a private server."""
    if redis_url:
        return RedisChoice(redis_url, "REDIS_URL")
    if await answers_ping("127.0.0.1", 6379):
        return RedisChoice(DEFAULT_URL, "the Redis on localhost:6379")
    log.info("no Redis on localhost:6379; starting a private redis-server")
    return await start_private(data_dir)
