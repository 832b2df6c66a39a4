"""Real processes the tests (and the soak run) start: a redis-server they can stop and start
again on the same port, and the bot's command line."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """A redis-server of the caller's own (AOF on, in `directory`), restartable on its port."""

    def __init__(self, directory: Path | str) -> None:
        self.port = free_port()
        self.directory = str(directory)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/test installs it)")
        options = {"port": self.port, "bind": "127.0.0.1", "appendonly": "yes", "save": ""}
        arguments = [part for k, v in options.items() for part in (f"--{k}", str(v))]
        self.process = subprocess.Popen(
            [binary, *arguments, "--dir", self.directory], stdout=subprocess.DEVNULL
        )
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`python -m bot <args>` with only `env` (and PATH, HOME): exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()
