"""The one composition root: settings in, a running bot (or terminal chat engine) out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

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
from bot import health, logs, texts, webhook
from bot.access import AccessPolicy
from bot.customer import CustomerService, open_customer_service
from bot.engine import Engine, EngineConfig
from bot.errors import LLMError, MemoryUnavailable
from bot.gate import Gate
from bot.groups import GroupPolicy, Groups
from bot.inline import INLINE_MAX_TOKENS, InlineAnswers, InlineConfig
from bot.languages import Languages
from bot.limits import Limits, LimitsConfig
from bot.llm import LLMClient, LLMConfig, SpeechConfig, Transcriber
from bot.localredis import RedisChoice, choose
from bot.media import Media, MediaConfig
from bot.memory import Memory
from bot.outbox import Outbox
from bot.pacing import Pacer
from bot.persona import Persona, template_of
from bot.services import BotData, Services
from bot.settings import Settings
from bot.stream import DraftSupport, StreamConfig
from bot.summarizer import Summarizer
from bot.telegram_http import AiohttpRequest
from bot.tgbot import TolerantBot
from bot.updates import UpdateTracker, drain
from bot.userdata import UserData
from handlers.context import Context

if TYPE_CHECKING:
    # Loaded only with KNOWLEDGE_DIR set: it brings numpy and bm25s (~20 MB of memory).
    from bot.knowledge import Knowledge, KnowledgeConfig

log = logging.getLogger(__name__)

# Edits are not asked for: the answer to the original message stands (see README).
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.CALLBACK_QUERY,
    Update.BUSINESS_CONNECTION,
    Update.BUSINESS_MESSAGE,
]
# Requests to the Bot API in flight at once; more wait for a free connection.
TELEGRAM_CONNECTIONS = 64
BotApp = Application[Any, Context, Any, Any, BotData, Any]


def allowed_updates(settings: Settings) -> list[str]:
    """The updates asked of Telegram: inline queries only in inline mode."""
    return [*ALLOWED_UPDATES, Update.INLINE_QUERY] if settings.inline_mode else ALLOWED_UPDATES


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
    # The model for photos (the main one with LLM_VISION, its own with VISION_MODEL), and
    # speech to text (STT_BASE_URL).
    vision: LLMClient | None = None
    transcriber: Transcriber | None = None
    # The persona, reloaded when its file changes; the customer-service parts (bot.customer),
    # set once the Telegram bot is connected.
    persona: Persona | None = None
    customer: CustomerService | None = None

    async def close(self) -> None:
        if self.customer is not None:
            await self.customer.close()
        if self.persona is not None:
            await self.persona.close()
        if self.knowledge is not None:
            await self.knowledge.close()
        await self.summarizer.close()
        await self.llm.close()
        if self.vision is not None and self.vision is not self.llm:
            await self.vision.close()
        if self.transcriber is not None:
            await self.transcriber.close()
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


def connect_memory(settings: Settings, url: str, ttl_seconds: int) -> Memory:
    """Memory on `url`, in the topology the settings name: one server, Cluster or Sentinel."""
    return Memory.from_url(
        url,
        settings.redis_key_prefix,
        ttl_seconds,
        cluster=settings.redis_cluster,
        sentinels=settings.redis_sentinels,
        master=settings.redis_sentinel_master,
    )


async def choose_redis(settings: Settings) -> RedisChoice:
    if settings.redis_sentinels:
        where = ", ".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        master = settings.redis_sentinel_master
        return RedisChoice(
            settings.redis_url or "redis://", f"master {master} via Sentinel {where}"
        )
    redis = await choose(settings.redis_url, settings.data_dir)
    if settings.redis_cluster:
        redis.description = "Redis Cluster (REDIS_URL)"
    return redis


async def open_core(settings: Settings, bot_name: str, *, watch_knowledge: bool = True) -> Core:
    redis = await choose_redis(settings)
    memory = connect_memory(settings, redis.url, int(settings.memory_ttl_days * 86400))
    await _wait_for_redis(memory, redis.description, settings.redis_wait_s)
    llm = LLMClient(llm_config(settings))
    try:
        log.info("model: %s at %s", await llm.model(), settings.llm_base_url)
    except LLMError as exc:
        log.warning("model endpoint %s not ready yet: %s", settings.llm_base_url, exc)
    config = EngineConfig(
        persona=template_of(settings),
        bot_name=bot_name,
        context_tokens=settings.llm_context_tokens,
        max_tokens=settings.llm_max_tokens,
        idle_minutes=settings.conversation_idle_minutes,
        max_input_chars=settings.max_input_chars,
        facts_in_groups=settings.memory_facts_in_groups,
    )
    summarizer = Summarizer(llm, memory, settings.summary_max_tokens)
    gate, knowledge = await open_gate(settings, memory, llm, watch=watch_knowledge)
    vision = open_vision(settings, llm)
    engine = Engine(config, llm, memory, summarizer, gate, vision=vision)
    persona = Persona(config.persona, settings.system_prompt_file, engine.use_persona)
    await persona.start()
    defaults = GroupPolicy(settings.group_context == "shared", settings.trigger_words())
    groups = Groups(memory, defaults, settings.group_context_messages)
    return Core(
        engine,
        UserData(memory),
        groups,
        llm,
        memory,
        summarizer,
        redis,
        knowledge,
        vision=vision,
        transcriber=open_transcriber(settings),
        persona=persona,
    )


def open_vision(settings: Settings, llm: LLMClient) -> LLMClient | None:
    """The model that reads photos: VISION_MODEL on the same endpoint, else the main model
    when LLM_VISION is on; None when this deployment does not read images."""
    if settings.vision_model:
        return LLMClient(replace(llm_config(settings), model=settings.vision_model))
    return llm if settings.llm_vision else None


def open_transcriber(settings: Settings) -> Transcriber | None:
    if not settings.hears_voice:
        return None
    return Transcriber(
        SpeechConfig(
            base_url=settings.stt_base_url,
            api_key=settings.stt_api_key.get_secret_value(),
            model=settings.stt_model,
            timeout_s=settings.stt_timeout_s,
        )
    )


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
        from bot.knowledge import Knowledge  # noqa: PLC0415 - see TYPE_CHECKING above

        knowledge = Knowledge(knowledge_config(settings), memory, llm)
        if watch:
            await knowledge.start()
    return Gate(access, Limits(limits, memory), knowledge), knowledge


def knowledge_config(settings: Settings) -> KnowledgeConfig:
    from bot.knowledge import KnowledgeConfig  # noqa: PLC0415 - see TYPE_CHECKING above

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
        request=AiohttpRequest(TELEGRAM_CONNECTIONS),
        # Long polling is one request at a time: PTB's own transport is fine for it.
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
    outbox = Outbox(app.bot, pacer)
    languages = Languages(core.memory, settings.default_language)
    core.customer = await open_customer_service(
        settings, core.memory, app.bot, outbox, me.first_name, languages=languages
    )
    app.bot_data.services = Services(
        engine=core.engine,
        userdata=core.userdata,
        groups=core.groups,
        outbox=outbox,
        drafts=DraftSupport(enabled=settings.telegram_drafts),
        stream_config=StreamConfig(
            settings.stream_draft_interval_s,
            settings.stream_edit_interval_s,
            settings.stream_group_edit_interval_s,
        ),
        bot_name=me.first_name,
        bot_username=me.username or "",
        customer=core.customer,
        languages=languages,
        media=Media(
            app.bot,
            MediaConfig(
                settings.reads_images, settings.image_max_side, settings.max_document_bytes
            ),
            core.transcriber,
        ),
        inline=open_inline(settings, core.engine, me.supports_inline_queries),
    )
    await _register_commands(app, settings.default_language)
    return core


def open_inline(settings: Settings, engine: Engine, supported: bool | None) -> InlineAnswers | None:
    if not settings.inline_mode:
        return None
    if not supported:
        log.warning(
            "INLINE_MODE is on but Telegram has inline mode off for this bot: "
            "send /setinline to @BotFather to switch it on"
        )
    max_tokens = min(settings.llm_max_tokens, INLINE_MAX_TOKENS)
    return InlineAnswers(engine, InlineConfig(settings.inline_timeout_s, max_tokens))


async def _register_commands(app: BotApp, default: str) -> None:
    """The command menus, per scope: described in the default language for everyone, and in
    each other language for the users whose Telegram app is set to it."""
    services = app.bot_data.services
    human = services is not None and services.customer.desk is not None
    private = (*texts.PRIVATE_COMMANDS, *([texts.HUMAN_COMMAND] if human else []))
    menus = (
        (private, BotCommandScopeAllPrivateChats()),
        (texts.GROUP_COMMANDS, BotCommandScopeAllGroupChats()),
    )
    languages = [("", default)] + [(code, code) for code in texts.LANGUAGES if code != default]
    for commands, scope in menus:
        for code, language in languages:
            menu = [BotCommand(name, texts.localize(language, about)) for name, about in commands]
            try:
                await app.bot.set_my_commands(menu, scope=scope, language_code=code or None)
            except TelegramError as exc:
                log.warning("could not register the command menu: %s", exc)
                return


@contextlib.asynccontextmanager
async def running(app: BotApp, settings: Settings, poll_timeout: int = 30) -> AsyncIterator[BotApp]:
    """The bot polling for updates (or, with WEBHOOK_URL, receiving them: bot.webhook) until
    the block exits; everything closed afterwards."""
    async with app, health.serving(settings.metrics_address()) as server:
        core = await _start_services(app, settings)
        server.watch(core.memory, core.llm, core.engine)
        try:
            if settings.webhook_url:
                async with webhook.receiving(
                    app, core.memory, settings, allowed_updates(settings), server.draining
                ):
                    yield app
                return
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0, timeout=poll_timeout, allowed_updates=allowed_updates(settings)
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
