"""A first run needs no set-up: a private Redis when none is given, and a terminal chat."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.localredis import answers_ping, choose, start_private
from bot.memory import ConversationKey, Memory
from tests.fakes import FakeLLM, Plan


async def test_private_redis_keeps_memory_in_the_data_dir(tmp_path: Path) -> None:
    choice = await start_private(tmp_path)
    try:
        memory = Memory.from_url(choice.url, "t", 60)
        assert await memory.ping()
        await memory.forget_conversation(ConversationKey(1, 1))
        await memory.close()
        assert (tmp_path / "redis").is_dir()
        assert "private redis-server" in choice.description
    finally:
        await choice.stop()
    host_port = choice.url.removeprefix("redis://").split("/")[0].split(":")
    assert not await answers_ping(host_port[0], int(host_port[1])), "stopped with the bot"


async def test_redis_url_wins_when_given(tmp_path: Path) -> None:
    choice = await choose("redis://example.invalid:6379/0", tmp_path)
    assert choice.url == "redis://example.invalid:6379/0" and choice.process is None


async def test_terminal_chat_uses_the_engine_and_memory(
    llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    llm.plan(Plan(text="Hello, terminal."), Plan(text="You said hi."))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "LLM_BASE_URL": llm.base_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"hi\nwhat did I say?\n/quit\n"), 30)
    assert process.returncode == 0, err.decode()
    assert "Hello, terminal." in out.decode() and "You said hi." in out.decode()
    assert [m["content"] for m in llm.last_prompt[1:]] == [
        "hi",
        "Hello, terminal.",
        "what did I say?",
    ]
