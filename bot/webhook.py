"""Webhook mode: Telegram posts each update to WEBHOOK_URL; the bot stores it in the durable
update queue (bot.updatequeue) and answers at once; bot.workers processes it, on whichever
replica owns its shard.

POST <the path of WEBHOOK_URL> answers:

    401  without the right X-Telegram-Bot-Api-Secret-Token (compared in constant time; the body
         is not even read)
    400  a body that is not a Telegram update (JSON with an integer update_id)
    503  Redis does not answer: nothing was stored, Telegram delivers the update again later
    200  the update is in Redis (deduplicated by update_id and queued in one script), or was
         already: a redelivery is dropped there

Every replica serves the same URL behind a load balancer, registers it with setWebhook at start
(the same call, so the last one wins harmlessly) and leaves it registered when it stops: the
other replicas keep receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot import metrics
from bot.errors import ConfigError, MemoryUnavailable
from bot.listening import listen
from bot.memory import Memory
from bot.routing import route
from bot.settings import Settings
from bot.tgbot import TolerantBot
from bot.updatequeue import UpdateQueue
from bot.workers import Handle, Workers, WorkersConfig

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_BODY = 4 * 1024 * 1024
REGISTER_ATTEMPTS = 6
AnyApp = Application[Any, Any, Any, Any, Any, Any]


def replica_name() -> str:
    """This process, as its consumer name and lease holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WebhookServer:
    """The endpoint Telegram posts to. Stores, never processes."""

    def __init__(self, queue: UpdateQueue, settings: Settings) -> None:
        self._queue = queue
        self._shards = settings.queue_shards
        self._path = urlsplit(settings.webhook_url).path or "/"
        self._secret = settings.webhook_secret_value().encode()
        self._address = settings.webhook_address()
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        port: int = self._runner.addresses[0][1]
        return port

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self._path, self._receive)
        runner = await listen(app, self._address, "WEBHOOK_LISTEN", "choose a free port.")
        self._runner = runner
        log.info("webhook: listening on %s:%d, path %s", *self._address, self._path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._secret):
            log.warning("webhook: refused a request without the right secret token")
            return web.Response(status=401)
        body = await request.read()
        try:
            found = route(json.loads(body))
        except ValueError:
            found = None
        if found is None:
            log.warning("webhook: refused a body that is not an update (%d bytes)", len(body))
            return web.Response(status=400)
        shard = found.shard(self._shards)
        try:
            new = await self._queue.accept(shard, found.update_id, found.lane, body)
        except MemoryUnavailable as exc:
            log.warning("webhook: update %d not stored (%s); answered 503", found.update_id, exc)
            return web.Response(status=503)
        if not new:
            log.info("webhook: update %d delivered again; dropped", found.update_id)
        seconds = time.perf_counter() - started
        metrics.webhook_answered(seconds)
        log.debug(
            "webhook: update %d stored in shard %d in %.1f ms",
            found.update_id,
            shard,
            seconds * 1000,
        )
        return web.Response(status=200)


async def register(bot: Bot, settings: Settings, allowed_updates: list[str]) -> None:
    """setWebhook with the secret, the update kinds and the connection limit; pending updates
    are kept. Network trouble is retried a few times; a refusal is a configuration error."""
    delay = 1.0
    for attempt in range(1, REGISTER_ATTEMPTS + 1):
        try:
            await bot.set_webhook(
                url=settings.webhook_url,
                secret_token=settings.webhook_secret_value(),
                allowed_updates=allowed_updates,
                max_connections=settings.webhook_max_connections,
                drop_pending_updates=False,
            )
            return
        except BadRequest as exc:
            raise _refused(settings, exc) from None
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait if isinstance(wait, int | float) else wait.total_seconds()
        except NetworkError as exc:
            if attempt == REGISTER_ATTEMPTS:
                raise ConfigError(
                    f"Telegram could not be reached to register the webhook ({exc.message}): "
                    "check the network and TELEGRAM_API_BASE_URL."
                ) from None
            log.warning("setWebhook failed (%s); retrying in %.0fs", exc, delay)
            seconds, delay = delay, min(delay * 2, 30.0)
        except TelegramError as exc:
            raise _refused(settings, exc) from None
        await asyncio.sleep(seconds)
    raise ConfigError("Setting WEBHOOK_URL: Telegram kept asking to wait; try again later.")


def _refused(settings: Settings, exc: TelegramError) -> ConfigError:
    return ConfigError(
        f"Setting WEBHOOK_URL: Telegram refused {settings.webhook_url} ({exc.message}): "
        "it must be a public https URL on port 443, 80, 88 or 8443 with a valid "
        "certificate, forwarded to WEBHOOK_LISTEN."
    )


def processor(app: AnyApp) -> Handle:
    """An update's JSON handed to PTB, through its update processor (concurrency limit,
    metrics, the one log line per update): every handler works as in polling mode."""
    bot = app.bot

    async def handle(payload: bytes) -> None:
        data = json.loads(payload)
        if isinstance(bot, TolerantBot):
            update = bot.parse_update(data)
            bot.insert_callback_data(update)
        else:
            update = Update.de_json(data, bot)
        await app.update_processor.process_update(update, app.process_update(update))

    return handle


@contextlib.asynccontextmanager
async def receiving(
    app: AnyApp,
    memory: Memory,
    settings: Settings,
    allowed_updates: list[str],
    draining: Callable[[], None],
) -> AsyncIterator[WebhookServer]:
    """Webhook mode for the block: the endpoint, this replica's workers, the registration. On
    exit the endpoint closes first, then updates in progress get SHUTDOWN_GRACE_S."""
    queue = UpdateQueue(memory, settings.redis_key_prefix, replica_name())
    config = WorkersConfig(settings.queue_shards, settings.queue_lease_s)
    workers = Workers(queue, processor(app), config)
    server = WebhookServer(queue, settings)
    await app.start()
    try:
        await workers.start()
        try:
            await server.start()
            try:
                await register(app.bot, settings, allowed_updates)
                log.info(
                    "@%s is running (webhook; replica %s, shards %s of %d)",
                    app.bot.username,
                    queue.consumer,
                    workers.owned,
                    settings.queue_shards,
                )
                yield server
            finally:
                draining()
                await server.stop()
        finally:
            await workers.stop(settings.shutdown_grace_s)
    finally:
        await app.stop()
