"""Configuration errors name the setting and the fix; the CLI runs the real bot process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import run_cli

GOOD = {"llm_base_url": "http://localhost:8000/v1", "_env_file": None}


@pytest.mark.parametrize(
    ("overrides", "named", "fix"),
    [
        ({"llm_base_url": None}, "LLM_BASE_URL", "OpenAI-compatible endpoint"),
        ({"llm_base_url": "localhost:8000"}, "LLM_BASE_URL", "http"),
        ({"telegram_bot_token": "not-a-token"}, "TELEGRAM_BOT_TOKEN", "@BotFather"),
        ({"llm_context_tokens": "lots"}, "LLM_CONTEXT_TOKENS", "integer"),
        ({"llm_max_tokens": 5000}, "LLM_MAX_TOKENS", "LLM_CONTEXT_TOKENS"),
        ({"redis_url": "http://x:secretpw@host"}, "REDIS_URL", "redis://"),
        ({"system_prompt_file": "/nonexistent/persona.txt"}, "SYSTEM_PROMPT_FILE", "readable"),
        ({"memory_ttl_days": 0}, "MEMORY_TTL_DAYS", "greater than 0"),
        ({"log_level": "LOUD"}, "LOG_LEVEL", "DEBUG"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(
    overrides: dict[str, object], named: str, fix: str
) -> None:
    values = {**GOOD, **overrides}
    if values["llm_base_url"] is None:
        del values["llm_base_url"]
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    assert named in str(caught.value)
    assert fix in str(caught.value)
    assert "secretpw" not in str(caught.value)


def test_persona_file_wins_over_the_prompt(tmp_path: Path) -> None:
    persona = tmp_path / "persona.txt"
    persona.write_text("You are Max from ACME support.\n", encoding="utf-8")
    settings = load_settings(**GOOD, system_prompt="ignored", system_prompt_file=persona)
    assert settings.system_prompt_template() == "You are Max from ACME support."


def test_token_is_never_shown() -> None:
    settings = load_settings(**GOOD, telegram_bot_token="123:supersecret", llm_api_key="sk-hidden")
    assert "supersecret" not in repr(settings) and "sk-hidden" not in repr(settings)


async def test_run_without_a_token_exits_with_the_fix(tmp_path: Path) -> None:
    code, _, err = await run_cli("run", env={"LLM_BASE_URL": "http://localhost:1/v1"})
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in err and "@BotFather" in err
    assert "Traceback" not in err


async def test_doctor_reports_each_part(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "LLM_BASE_URL": llm.base_url,
        "REDIS_URL": redis_url,
    }
    code, out, _ = await run_cli("doctor", env=env)
    assert code == 0, out
    for check in ("settings", "telegram", "redis", "llm /models", "llm completion", "llm usage"):
        assert f"OK    {check}" in out
    assert "@telellama_bot" in out

    code, out, _ = await run_cli("doctor", env={**env, "LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert code == 1
    assert "FAIL  llm" in out and "LLM_BASE_URL" in out


async def test_the_bot_process_answers_and_stops_on_sigterm(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    llm.plan(Plan(text="Hello from a real process."))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "LLM_BASE_URL": llm.base_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "LOG_LEVEL": "INFO",
        },
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        tg.send_text(5001, "hi there")
        [message] = await tg.wait_messages(5001, 1, timeout=20)
        assert message.text == "Hello from a real process."
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    log = err.decode()
    assert "is running" in log
    assert tg.token not in log and tg.token.split(":")[1] not in log, "the token leaked into logs"
    assert "hi there" not in log and "Hello from" not in log, "message text is not logged at INFO"
