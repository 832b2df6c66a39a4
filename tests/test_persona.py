"""The persona: placeholders filled per message, and a SYSTEM_PROMPT_FILE reloaded when it
changes or on SIGHUP, without a restart."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from bot.persona import HANDOFF_MARKER, split_handoff, visible
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram

ANN = 9701


async def system_prompt_for(tg: FakeTelegram, llm: FakeLLM, text: str) -> str:
    asked = len(llm.requests)
    tg.send_text(ANN, text, language_code="de")
    await llm.wait_requests(asked + 1)
    await tg.wait_idle(quiet=0.05)
    return str(llm.last_prompt[0]["content"])


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in caplog.text:
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        await asyncio.sleep(0.05)


async def test_the_persona_file_is_reloaded_when_it_changes_and_on_sighup(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.persona")
    persona = tmp_path / "persona.txt"
    persona.write_text("You are {bot_name}; the user is {user_name} ({language}), on {date}.")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    async with start_bot(system_prompt_file=persona):
        system = await system_prompt_for(tg, llm, "hi")
        assert system == f"You are Telellama; the user is Ann (de), on {today}."

        persona.write_text("You are Max from ACME support. Greet {user_name} warmly.")
        await logged(caplog, "(file changed")
        assert await system_prompt_for(tg, llm, "hello") == (
            "You are Max from ACME support. Greet Ann warmly."
        )

        # An edit the file's size and time do not show is picked up on SIGHUP.
        stat = persona.stat()
        persona.write_text("You are Mia from ACME support. Greet {user_name} warmly.")
        os.utime(persona, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        os.kill(os.getpid(), signal.SIGHUP)
        await logged(caplog, "(SIGHUP")
        assert await system_prompt_for(tg, llm, "hey") == (
            "You are Mia from ACME support. Greet Ann warmly."
        )

        persona.unlink()
        os.kill(os.getpid(), signal.SIGHUP)
        await logged(caplog, "persona not reloaded (SIGHUP)")
        assert "You are Mia" in await system_prompt_for(tg, llm, "still there?")
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None), "handler removed at stop"


def test_the_handoff_marker_is_taken_out_of_what_is_shown() -> None:
    assert split_handoff(f"Let me get a colleague.\n{HANDOFF_MARKER}\n") == (
        "Let me get a colleague.",
        True,
    )
    assert split_handoff("Let me get a colleague. [[ handoff ]]") == (
        "Let me get a colleague.",
        True,
    )
    assert split_handoff(HANDOFF_MARKER)[0] and split_handoff(HANDOFF_MARKER)[1]
    assert split_handoff("A list: [[1, 2], [3]]") == ("A list: [[1, 2], [3]]", False)
    assert visible("Let me get a colleague.\n[[HAND") == "Let me get a colleague.\n"
    assert visible("Let me get a colleague.\n[[HANDOFF]]") == "Let me get a colleague.\n"
    assert visible("x = a[") == "x = a", "a lone bracket waits for the next preview"
    assert visible("x = a[1]") == "x = a[1]"
