"""Health and metrics over HTTP on METRICS_LISTEN (aiohttp); off when the setting is empty.

GET /healthz   200 while the process runs.
GET /readyz    200 when Redis answers a ping and the model endpoint lists its models (checked
               at most once per READY_CACHE_S); 503 with a JSON reason otherwise, also while
               starting and once shutting down.
GET /metrics   Prometheus exposition of `bot.metrics.REGISTRY`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from bot import metrics
from bot.errors import LLMError, MemoryUnavailable
from bot.listening import listen

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.llm import LLMClient
    from bot.memory import Memory

log = logging.getLogger(__name__)

READY_CACHE_S = 2.0
CHECK_TIMEOUT_S = 3.0
OK = "ok"


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.reason is None

    @classmethod
    def of(cls, checks: dict[str, str]) -> Readiness:
        failing = [f"{name}: {state}" for name, state in checks.items() if state != OK]
        return cls(checks, "; ".join(failing) or None)

    def body(self) -> dict[str, object]:
        status = "ready" if self.ready else "unavailable"
        body: dict[str, object] = {"status": status, "checks": self.checks}
        if self.reason is not None:
            body["reason"] = self.reason
        return body


class Probe:
    """Redis and the model endpoint, asked at most once per READY_CACHE_S however many ask."""

    def __init__(self, memory: Memory, llm: LLMClient) -> None:
        self._memory = memory
        self._llm = llm
        self._lock = asyncio.Lock()
        self._last: Readiness | None = None
        self._at = 0.0

    async def check(self) -> Readiness:
        async with self._lock:
            if self._last is None or time.monotonic() - self._at >= READY_CACHE_S:
                redis, llm = await asyncio.gather(self._redis(), self._model())
                self._last, self._at = Readiness.of({"redis": redis, "llm": llm}), time.monotonic()
            return self._last

    async def _redis(self) -> str:
        try:
            await asyncio.wait_for(self._memory.ping(), CHECK_TIMEOUT_S)
        except MemoryUnavailable as exc:
            return f"unreachable ({exc})"
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:g}s"
        return OK

    async def _model(self) -> str:
        try:
            await asyncio.wait_for(self._llm.list_models(), CHECK_TIMEOUT_S)
        except LLMError as exc:
            return f"{type(exc).__name__} ({exc})"
        except TimeoutError:
            return f"/models did not answer within {CHECK_TIMEOUT_S:g}s"
        return OK


class HealthServer:
    """The three endpoints. Inert (nothing listens) when no address is given."""

    def __init__(self, address: tuple[str, int] | None) -> None:
        self._address = address
        self._runner: web.AppRunner | None = None
        self._probe: Probe | None = None
        self._engine: Engine | None = None
        self._draining = False

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        port: int = self._runner.addresses[0][1]
        return port

    def watch(self, memory: Memory, llm: LLMClient, engine: Engine) -> None:
        """The services are up: /readyz checks them from now on."""
        self._probe, self._engine = Probe(memory, llm), engine

    def draining(self) -> None:
        """Shutting down: /readyz says so, so no new work is routed here."""
        self._draining = True

    async def start(self) -> None:
        if self._address is None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        fix = "choose a free port, or leave METRICS_LISTEN empty."
        runner = await listen(app, self._address, "METRICS_LISTEN", fix)
        host = self._address[0]
        self._runner = runner
        log.info("health and metrics on http://%s:%s (/healthz /readyz /metrics)", host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._draining:
            readiness = Readiness({}, "shutting down")
        elif self._probe is None:
            readiness = Readiness({}, "starting")
        else:
            readiness = await self._probe.check()
        return web.json_response(readiness.body(), status=200 if readiness.ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._engine is not None:
            metrics.conversations_in_progress(self._engine.active)
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(metrics.REGISTRY), headers={"Content-Type": content_type})


@contextlib.asynccontextmanager
async def serving(address: tuple[str, int] | None) -> AsyncIterator[HealthServer]:
    """The endpoints, listening for the duration of the block (when `address` is set)."""
    server = HealthServer(address)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
