"""`telellama doctor`: check each part the bot needs and say how to fix what fails."""

from __future__ import annotations

import io
import shutil
import wave
from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.app import connect_memory, llm_config, open_transcriber
from bot.errors import ConfigError, LLMError, MemoryUnavailable
from bot.llm import Answer, LLMClient
from bot.localredis import DEFAULT_URL, answers_ping
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
    await _media(settings, report)
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
            if settings.inline_mode and not me.supports_inline_queries:
                report.warn("inline", "INLINE_MODE is on but the bot's inline mode is off")
            if settings.webhook_url:
                await _webhook(bot, settings, report)
    except InvalidToken:
        report.fail("telegram", "the token was rejected", "copy the token again from @BotFather")
    except NetworkError as exc:
        report.fail("telegram", f"{base} unreachable ({exc})", "check TELEGRAM_API_BASE_URL")
    except TelegramError as exc:
        report.fail("telegram", str(exc), "check TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE_URL")


async def _webhook(bot: Bot, settings: Settings, report: Report) -> None:
    """What Telegram says about the webhook `run` registers (WEBHOOK_URL)."""
    info = await bot.get_webhook_info()
    waiting = f"{info.pending_update_count} update(s) waiting"
    if info.url != settings.webhook_url:
        found = info.url or "no webhook"
        report.warn("webhook", f"Telegram has {found}; `run` registers {settings.webhook_url}")
    elif info.last_error_message:
        report.warn("webhook", f"last delivery failed: {info.last_error_message}; {waiting}")
    else:
        report.ok("webhook", f"Telegram delivers to {info.url}; {waiting}")


async def _redis(settings: Settings, report: Report) -> None:
    url = settings.redis_url
    if settings.redis_sentinels:
        url = url or "redis://"
    elif url is None:
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
    memory = connect_memory(settings, url, 60)
    where = "REDIS_URL" if settings.redis_url else "localhost:6379 (REDIS_URL unset)"
    if settings.redis_sentinels:
        where = f"master {settings.redis_sentinel_master} (REDIS_SENTINELS)"
    elif settings.redis_cluster:
        where = "Redis Cluster (REDIS_URL)"
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


async def _media(settings: Settings, report: Report) -> None:
    """The vision model is listed; the speech endpoint transcribes half a second of silence."""
    if settings.vision_model:
        llm = LLMClient(llm_config(settings))
        try:
            if settings.vision_model not in await llm.list_models():
                report.warn("vision", f"{settings.vision_model!r} is not among the listed models")
            else:
                report.ok("vision", f"photos go to {settings.vision_model}")
        except LLMError:
            pass  # already reported by the llm check
        finally:
            await llm.close()
    transcriber = open_transcriber(settings)
    if transcriber is None:
        return
    try:
        heard = await transcriber.transcribe(_silence(), "doctor.wav", "audio/wav")
        report.ok("speech", f"{settings.stt_base_url} transcribed a test clip ({heard!r})")
    except LLMError as exc:
        report.fail(
            "speech", f"{type(exc).__name__}: {exc}", "check STT_BASE_URL, STT_API_KEY, STT_MODEL"
        )
    finally:
        await transcriber.close()


def _silence() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16000)
        clip.writeframes(b"\0\0" * 8000)
    return out.getvalue()
