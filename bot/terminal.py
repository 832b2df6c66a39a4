"""`telellama chat`: the same engine and memory, in a terminal, as a local user."""

from __future__ import annotations

import asyncio
import sys

from bot.app import open_core
from bot.engine import Incoming
from bot.memory import ConversationKey
from bot.settings import Settings

LOCAL_USER = ConversationKey(user_id=0, chat_id=0)
PROMPT = "you> "


class TerminalSink:
    """Prints the answer as it grows."""

    def __init__(self) -> None:
        self._printed = 0

    def use_language(self, code: str) -> None:
        return None

    async def begin(self) -> None:
        sys.stdout.write("bot> ")
        sys.stdout.flush()

    def push(self, text: str) -> None:
        sys.stdout.write(text[self._printed :])
        sys.stdout.flush()
        self._printed = len(text)

    async def finish(self, text: str, note: str | None = None) -> None:
        self.push(text)
        sys.stdout.write(f"\n({note})\n\n" if note else "\n\n")

    async def fail(self, message: str) -> None:
        sys.stdout.write(("\n" if self._printed else "") + f"[{message}]\n\n")


async def chat(settings: Settings) -> None:
    core = await open_core(settings, "telellama")
    print(f"telellama chat (memory: {core.redis.description}). /new starts over, /quit leaves.")
    try:
        while True:
            try:
                line = await asyncio.to_thread(input, PROMPT)
            except EOFError:
                break
            command = line.strip().lower()
            if command in ("/quit", "/exit"):
                break
            if command in ("/new", "/reset"):
                await core.engine.reset(LOCAL_USER)
                print("(new conversation)\n")
            elif command == "/retry":
                await core.engine.retry(Incoming(LOCAL_USER, "", "you"), TerminalSink())
            else:
                await core.engine.answer(Incoming(LOCAL_USER, line, "you"), TerminalSink())
    finally:
        await core.close()
