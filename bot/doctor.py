"""`telellama doctor`: check each part the bot needs and say how to fix what fails."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.app import llm_config
from bot.errors import ConfigError, LLMError, MemoryUnavailable
from bot.llm import Answer, LLMClient
from bot.localredis import DEFAULT_URL, answers_ping
from bot.memory import Memory
from bot.settings import Settings, load_settings


@dataclass(slots=True)
class Report:
    lines: list[str] = field(default_factory=list)
    failed: bool = False
    out: Callable[[str], None] = print

    def ok(self, check: str, detail: str) -> None:
        self.out(f"OK    {check}: {detail}")

    def warn(self, check: str, detail: str) -> None:
        self.out(f"WARN  {check}: {detail}")

    def fail(self, check: str, detail: str, fix: str) -> None:
        self.failed = True
        self.out(f"FAIL  {check}: {detail}\n      fix: {fix}")


async def doctor(out: Callable[[str], None] = print) -> int:
    report = Report(out=out)
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            report.fail("settings", line, "set it in the environment or in .env")
        return 1
    report.ok("settings", "all settings valid")
    await _telegram(settings, report)
    await _redis(settings, report)
    await _llm(settings, report)
    return 1 if report.failed else 0


async def _telegram(settings: Settings, report: Report) -> None:
    if settings.telegram_bot_token is None:
        report.fail("telegram", "TELEGRAM_BOT_TOKEN is not set", "get a token from @BotFather")
        return
    base = settings.telegram_api_base_url
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
    )
    try:
        async with bot:
            me = bot.bot
            report.ok("telegram", f"token valid for @{me.username} at {base}")
    except InvalidToken:
        report.fail("telegram", "the token was rejected", "copy the token again from @BotFather")
    except NetworkError as exc:
        report.fail("telegram", f"{base} unreachable ({exc})", "check TELEGRAM_API_BASE_URL")
    except TelegramError as exc:
        report.fail("telegram", str(exc), "check TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE_URL")


async def _redis(settings: Settings, report: Report) -> None:
    url = settings.redis_url
    if url is None:
        if not await answers_ping("127.0.0.1", 6379):
            if shutil.which("redis-server"):
                report.ok("redis", "none on localhost:6379; `run` starts a private redis-server")
            else:
                report.fail(
                    "redis",
                    "REDIS_URL unset, nothing on localhost:6379, redis-server not installed",
                    "set REDIS_URL or install redis-server (apt-get install redis-server)",
                )
            return
        url = DEFAULT_URL
    memory = Memory.from_url(url, settings.redis_key_prefix, 60)
    where = "REDIS_URL" if settings.redis_url else "localhost:6379 (REDIS_URL unset)"
    try:
        report.ok("redis", f"{where} answers, version {await memory.ping()}")
    except MemoryUnavailable as exc:
        report.fail("redis", f"{where} does not answer ({exc})", "start Redis or fix REDIS_URL")
    finally:
        await memory.close()


async def _llm(settings: Settings, report: Report) -> None:
    llm = LLMClient(llm_config(settings))
    try:
        models = await llm.list_models()
        report.ok("llm /models", f"{settings.llm_base_url} lists {', '.join(models[:5]) or 'none'}")
        if settings.llm_model and models and settings.llm_model not in models:
            report.warn("llm model", f"{settings.llm_model!r} is not among the listed models")
        answer = Answer()
        messages = [{"role": "user", "content": "Say OK."}]
        chunks = 0
        async for _ in llm.stream(messages, 8, answer):
            chunks += 1
        report.ok("llm completion", f"model {await llm.model()} answered {answer.text.strip()!r}")
        (report.ok if chunks > 1 else report.warn)("llm streaming", f"{chunks} streamed chunks")
        if answer.prompt_tokens is None:
            report.warn("llm usage", "the server reports no usage; token counts are estimated")
        else:
            report.ok("llm usage", f"reported ({answer.prompt_tokens} prompt tokens)")
    except LLMError as exc:
        report.fail(
            "llm", f"{type(exc).__name__}: {exc}", "check LLM_BASE_URL, LLM_API_KEY, LLM_MODEL"
        )
    finally:
        await llm.close()
