"""The one composition root: settings in, a running bot (or terminal chat engine) out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes
from telegram.request import HTTPXRequest

import handlers
from bot import health, logs, texts
from bot.access import AccessPolicy
from bot.engine import Engine, EngineConfig
from bot.errors import LLMError, MemoryUnavailable
from bot.gate import Gate
from bot.groups import GroupPolicy, Groups
from bot.knowledge import Knowledge, KnowledgeConfig
from bot.limits import Limits, LimitsConfig
from bot.llm import LLMClient, LLMConfig
from bot.localredis import RedisChoice, choose
from bot.memory import Memory
from bot.outbox import Outbox
from bot.pacing import Pacer
from bot.services import BotData, Services
from bot.settings import Settings
from bot.stream import DraftSupport, StreamConfig
from bot.summarizer import Summarizer
from bot.tgbot import TolerantBot
from bot.updates import UpdateTracker, drain
from bot.userdata import UserData
from handlers.context import Context

log = logging.getLogger(__name__)

# Edits are not asked for: the answer to the original message stands (see README).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
BotApp = Application[Any, Context, Any, Any, BotData, Any]


@dataclass(slots=True)
class Core:
    """The engine and the adapters it owns: what both the bot and the terminal chat need."""

    engine: Engine
    userdata: UserData
    groups: Groups
    llm: LLMClient
    memory: Memory
    summarizer: Summarizer
    redis: RedisChoice
    knowledge: Knowledge | None = None

    async def close(self) -> None:
        if self.knowledge is not None:
            await self.knowledge.close()
        await self.summarizer.close()
        await self.llm.close()
        await self.memory.close()
        await self.redis.stop()


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        first_token_timeout_s=settings.llm_first_token_timeout_s,
        stall_timeout_s=settings.llm_stall_timeout_s,
        max_retries=settings.llm_max_retries,
    )


async def open_core(settings: Settings, bot_name: str, *, watch_knowledge: bool = True) -> Core:
    redis = await choose(settings.redis_url, settings.data_dir)
    memory = Memory.from_url(
        redis.url, settings.redis_key_prefix, int(settings.memory_ttl_days * 86400)
    )
    await _wait_for_redis(memory, redis.description, settings.redis_wait_s)
    llm = LLMClient(llm_config(settings))
    try:
        log.info("model: %s at %s", await llm.model(), settings.llm_base_url)
    except LLMError as exc:
        log.warning("model endpoint %s not ready yet: %s", settings.llm_base_url, exc)
    config = EngineConfig(
        persona=settings.system_prompt_template(),
        bot_name=bot_name,
        context_tokens=settings.llm_context_tokens,
        max_tokens=settings.llm_max_tokens,
        idle_minutes=settings.conversation_idle_minutes,
        max_input_chars=settings.max_input_chars,
        facts_in_groups=settings.memory_facts_in_groups,
    )
    summarizer = Summarizer(llm, memory, settings.summary_max_tokens)
    gate, knowledge = await open_gate(settings, memory, llm, watch=watch_knowledge)
    engine = Engine(config, llm, memory, summarizer, gate)
    defaults = GroupPolicy(settings.group_context == "shared", settings.trigger_words())
    groups = Groups(memory, defaults, settings.group_context_messages)
    return Core(engine, UserData(memory), groups, llm, memory, summarizer, redis, knowledge)


async def open_gate(
    settings: Settings, memory: Memory, llm: LLMClient, *, watch: bool = True
) -> tuple[Gate, Knowledge | None]:
    """Access lists, limits and the knowledge base (indexed before the first message, then
    watched for changes; without `watch`, left for the caller to refresh)."""
    access = AccessPolicy.of(
        settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids
    )
    limits = LimitsConfig(settings.rate_limit_per_minute, settings.daily_token_quota, access.admins)
    knowledge = None
    if settings.knowledge_dir is not None:
        knowledge = Knowledge(knowledge_config(settings), memory, llm)
        if watch:
            await knowledge.start()
    return Gate(access, Limits(limits, memory), knowledge), knowledge


def knowledge_config(settings: Settings) -> KnowledgeConfig:
    assert settings.knowledge_dir is not None
    return KnowledgeConfig(
        root=settings.knowledge_dir,
        top_k=settings.knowledge_top_k,
        min_score=settings.knowledge_min_score,
        min_similarity=settings.knowledge_min_similarity,
        check_s=settings.knowledge_check_s,
        embeddings_model=settings.embeddings_model,
        strict=settings.knowledge_strict,
        # About a quarter of the context window (at ~3.5 characters a token).
        max_chars=settings.llm_context_tokens * 7 // 8,
    )


async def _wait_for_redis(memory: Memory, where: str, patience_s: float) -> None:
    """Give Redis a while to come up (it often starts alongside the bot), then go on without."""
    deadline = time.monotonic() + patience_s
    delay = 0.5
    for attempt in itertools.count(1):
        try:
            log.info("memory: %s, redis %s", where, await memory.ping())
            return
        except MemoryUnavailable:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "memory: %s does not answer; answering without memory until it does "
                    "(check REDIS_URL, or run `telellama doctor`)",
                    where,
                )
                return
            log.warning(
                "waiting for Redis (%s), attempt %d; retrying in %.1fs", where, attempt, delay
            )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def build_application(settings: Settings) -> BotApp:
    base = settings.telegram_api_base_url
    bot = TolerantBot(
        settings.require_telegram_token(),
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=HTTPXRequest(connection_pool_size=512, pool_timeout=30),
        get_updates_request=HTTPXRequest(read_timeout=10),
    )
    app: BotApp = (
        ApplicationBuilder()
        .bot(bot)
        .context_types(ContextTypes(context=Context, bot_data=BotData))
        .concurrent_updates(UpdateTracker(settings.max_concurrent_updates))
        .build()
    )
    handlers.register(app)
    return app


async def _start_services(app: BotApp, settings: Settings) -> Core:
    me = app.bot.bot
    core = await open_core(settings, me.first_name)
    pacer = Pacer(
        settings.telegram_max_messages_per_s,
        settings.telegram_chat_messages_per_s,
        settings.telegram_group_messages_per_min,
    )
    app.bot_data.services = Services(
        engine=core.engine,
        userdata=core.userdata,
        groups=core.groups,
        outbox=Outbox(app.bot, pacer),
        drafts=DraftSupport(enabled=settings.telegram_drafts),
        stream_config=StreamConfig(
            settings.stream_draft_interval_s,
            settings.stream_edit_interval_s,
            settings.stream_group_edit_interval_s,
        ),
        bot_name=me.first_name,
        bot_username=me.username or "",
    )
    await _register_commands(app)
    return core


async def _register_commands(app: BotApp) -> None:
    menus = (
        (texts.PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats()),
        (texts.GROUP_COMMANDS, BotCommandScopeAllGroupChats()),
    )
    for commands, scope in menus:
        try:
            await app.bot.set_my_commands([BotCommand(*c) for c in commands], scope=scope)
        except TelegramError as exc:
            log.warning("could not register the command menu: %s", exc)


@contextlib.asynccontextmanager
async def running(app: BotApp, settings: Settings, poll_timeout: int = 30) -> AsyncIterator[BotApp]:
    """The bot polling for updates until the block exits; everything closed afterwards."""
    async with app, health.serving(settings.metrics_address()) as server:
        core = await _start_services(app, settings)
        server.watch(core.memory, core.llm, core.engine)
        try:
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0, timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
            await app.start()
            log.info("@%s is running (long polling)", app.bot.username)
            try:
                yield app
            finally:
                server.draining()
                await app.updater.stop()
                await drain(app, settings.shutdown_grace_s)
                await app.stop()
        finally:
            await core.close()


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM; answers in progress then get SHUTDOWN_GRACE_S to finish."""
    logs.use_format(settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(build_application(settings), settings):
        await stop.wait()
    log.info("stopped")
