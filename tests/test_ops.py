"""Operations: /healthz, /readyz and /metrics over HTTP, JSON logs, graceful shutdown on SIGTERM.

The bot runs against the fake Bot API and fake LLM with a real Redis; unreachable dependencies are
closed ports, which a small TCP forwarder opens later to show recovery.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import health, logs, metrics
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.processes import free_port

TOKEN_SECRET_MARK = "TEST-token"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def forwarding(port: int, target_port: int) -> AsyncIterator[None]:
    """Open `port` on loopback, forwarding every connection to `target_port`, for the block."""
    pipes: set[asyncio.Task[Any]] = set()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        for task in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            pipes.add(asyncio.ensure_future(task))

    server = await asyncio.start_server(connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


async def get(http: aiohttp.ClientSession, port: int, path: str) -> tuple[int, Any]:
    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def ready_within(http: aiohttp.ClientSession, port: int, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await get(http, port, "/readyz")
        if status == 200:
            return body
        assert time.monotonic() < deadline, f"/readyz still {status}: {body}"
        await asyncio.sleep(0.1)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, port: int) -> Samples:
    status, text = await get(http, port, "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape_until(
    http: aiohttp.ClientSession, port: int, name: str, at_least: float, **labels: str
) -> Samples:
    """Scrape until a sample reaches `at_least` (an update is counted when it is done)."""
    deadline = time.monotonic() + 5
    while True:
        samples = await scrape(http, port)
        if value(samples, name, **labels) >= at_least:
            return samples
        assert time.monotonic() < deadline, f"{name}{labels} stayed below {at_least}"
        await asyncio.sleep(0.05)


@pytest.fixture
def fast_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "READY_CACHE_S", 0.1)


async def test_healthz_and_readyz_with_redis_and_the_model_up(start_bot: BotFactory) -> None:
    port = free_port()
    async with start_bot(metrics_listen=f"127.0.0.1:{port}"), aiohttp.ClientSession() as http:
        assert await get(http, port, "/healthz") == (200, {"status": "ok"})
        status, body = await get(http, port, "/readyz")
        assert status == 200, body
        assert body == {"status": "ready", "checks": {"redis": "ok", "llm": "ok"}}


async def test_no_endpoints_when_metrics_listen_is_empty(start_bot: BotFactory) -> None:
    port = free_port()
    async with start_bot(metrics_listen=""), aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(http, port, "/healthz")


async def test_readyz_names_the_model_endpoint_when_it_is_down_and_recovers(
    start_bot: BotFactory, llm: FakeLLM, fast_readiness: None
) -> None:
    port, llm_port = free_port(), free_port()
    target = urlsplit(llm.base_url).port
    assert target is not None
    settings = {
        "metrics_listen": f"127.0.0.1:{port}",
        "llm_base_url": f"http://127.0.0.1:{llm_port}/v1",
    }
    async with start_bot(**settings), aiohttp.ClientSession() as http:
        status, body = await get(http, port, "/readyz")
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["llm"].startswith("LLMUnavailable")
        assert body["reason"].startswith("llm: ")
        assert (await get(http, port, "/healthz"))[0] == 200, "alive even when not ready"

        async with forwarding(llm_port, target):
            body = await ready_within(http, port, 5)
            assert body["checks"]["llm"] == "ok"
        await asyncio.sleep(0.2)
        status, body = await get(http, port, "/readyz")
        assert status == 503 and "llm" in body["reason"]


async def test_readyz_names_redis_when_it_is_down_and_recovers(
    start_bot: BotFactory, redis_url: str, fast_readiness: None
) -> None:
    port, redis_port = free_port(), free_port()
    target = urlsplit(redis_url).port
    assert target is not None
    settings = {
        "metrics_listen": f"127.0.0.1:{port}",
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "redis_wait_s": 0,
    }
    async with start_bot(**settings), aiohttp.ClientSession() as http:
        status, body = await get(http, port, "/readyz")
        assert status == 503
        assert body["checks"]["llm"] == "ok"
        assert body["checks"]["redis"].startswith("unreachable")
        assert body["reason"].startswith("redis: ")

        async with forwarding(redis_port, target):
            body = await ready_within(http, port, 5)
            assert body["checks"] == {"redis": "ok", "llm": "ok"}


async def test_metrics_count_what_happens_to_messages(
    start_bot: BotFactory, tg: FakeTelegram, llm: FakeLLM
) -> None:
    port = free_port()
    answer = "Two plus two is four, as far as I know."
    llm.plan(Plan(text=answer, token_delay=0.1), Plan(status=500))
    async with (
        start_bot(metrics_listen=f"127.0.0.1:{port}", llm_max_retries=0),
        aiohttp.ClientSession() as http,
    ):
        before = await scrape(http, port)
        tg.send_text(7001, "what is two plus two?")
        await tg.wait_for(lambda: tg.chat(7001).last_draft is not None)
        during = await scrape(http, port)
        assert value(during, "telellama_conversations_in_progress") == 1
        assert value(during, "telellama_updates_in_progress") >= 1
        [message] = await tg.wait_messages(7001, 1)
        assert message.text == answer
        name = "telellama_updates_processed_total"
        answered = {"kind": "text", "outcome": "answered"}
        after = await scrape_until(
            http, port, name, value(before, name, **answered) + 1, **answered
        )

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert grew("telellama_updates_received_total", kind="text") == 1
        assert grew("telellama_replies_delivered_total") == 1
        assert grew("telellama_update_duration_seconds_count", kind="text") == 1
        assert grew("telellama_llm_time_to_first_token_seconds_count") == 1
        assert grew("telellama_llm_tokens_per_second_count") == 1
        completion = len(answer.split())
        assert grew("telellama_llm_tokens_total", type="completion") == completion
        assert grew("telellama_llm_tokens_total", type="prompt") > 0
        assert grew("telellama_redis_duration_seconds_count", operation="load") == 1
        assert grew("telellama_redis_duration_seconds_count", operation="append") == 1
        assert value(after, "telellama_conversations_in_progress") == 0
        assert value(after, "process_cpu_seconds_total") > 0

        tg.send_text(7001, "and three plus three?")
        await tg.wait_messages(7001, 2)
        failed = {"kind": "text", "outcome": "failed"}
        final = await scrape_until(http, port, name, value(before, name, **failed) + 1, **failed)
        errors = "telellama_errors_total"
        assert value(final, errors, cause="LLMServerError") == 1 + value(
            before, errors, cause="LLMServerError"
        )
        assert value(final, "telellama_replies_delivered_total") == value(
            after, "telellama_replies_delivered_total"
        ), "a failure notice is not a reply"

        tg.send_text(7001, "/help")
        await tg.wait_messages(7001, 3)
        ok = {"kind": "command", "outcome": "ok"}
        await scrape_until(http, port, name, value(before, name, **ok) + 1, **ok)


# ---------------------------------------------------------------- logs


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_secrets_are_redacted_in_both_formats(formatter: logging.Formatter) -> None:
    secret = "123456:SECRET-token"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(logs.Redact([secret]))
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling %s", f"/bot{secret}/getMe", extra=logs.fields(url=f"/bot{secret}"))
        try:
            raise RuntimeError(f"boom at /bot{secret}/getUpdates")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert secret not in output and "SECRET" not in output
    assert output.count("***") >= 3
    if isinstance(formatter, logs.JsonFormatter):
        first, second = (json.loads(line) for line in output.splitlines())
        assert first["message"] == "calling /bot***/getMe" and first["url"] == "/bot***"
        assert "RuntimeError" in second["exception"] and second["level"] == "ERROR"


async def start_process(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, home: Path, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "LLM_BASE_URL": llm.base_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "STREAM_DRAFT_INTERVAL_S": "0.05",
            **env,
        },
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), timeout)
    return err.decode()


async def test_json_logs_one_line_per_update_with_ids_and_no_text(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    question, answer = "what do llamas eat for breakfast?", "Llamas graze on grass and hay."
    llm.plan(Plan(text=answer))
    process = await start_process(tg, llm, redis_url, prefix, tmp_path, LOG_FORMAT="json")
    try:
        tg.send_text(5201, question, user_id=5201)
        [message] = await tg.wait_messages(5201, 1, timeout=20)
        assert message.text == answer
        # The answer's update is done once its turn is written, just after the message shows.
        await tg.wait_idle(quiet=0.2)
        tg.send_text(5201, "/help", user_id=5201)
        await tg.wait_messages(5201, 2, timeout=20)
    finally:
        err = await stop_process(process)
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    updates = [line for line in lines if line["message"] == "update handled"]
    assert [(u["kind"], u["outcome"]) for u in updates] == [("text", "answered"), ("command", "ok")]
    first = updates[0]
    assert first["chat_id"] == 5201 and first["user_id"] == 5201
    assert isinstance(first["update_id"], int)
    assert isinstance(first["latency_ms"], int) and first["latency_ms"] >= 0
    assert first["logger"] == "bot.updates" and first["level"] == "INFO"
    assert tg.token not in err and TOKEN_SECRET_MARK not in err, "the token leaked into logs"
    assert question not in err and "llamas eat" not in err, "message text is never logged"
    assert answer not in err and "graze" not in err, "answer text is never logged"


# ---------------------------------------------------------------- graceful shutdown


async def test_sigterm_lets_the_answer_being_streamed_finish_and_exits_0(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    answer = " ".join(f"word{i}" for i in range(30))
    llm.plan(Plan(text=answer, token_delay=0.08))
    process = await start_process(tg, llm, redis_url, prefix, tmp_path, SHUTDOWN_GRACE_S="20")
    try:
        tg.send_text(5301, "tell me a long story")
        await tg.wait_for(lambda: tg.chat(5301).last_draft is not None, timeout=20)
        assert llm.in_flight == 1 and not tg.chat(5301).messages, "not streaming yet"
        process.send_signal(signal.SIGTERM)
    finally:
        err = await stop_process(process)
    assert process.returncode == 0, err
    assert tg.texts(5301) == [answer], "the answer in progress was finished and delivered"
    assert llm.completed == 1
    assert "cut off" not in err


async def test_answers_still_streaming_after_the_grace_period_are_cut_off(
    tg: FakeTelegram, llm: FakeLLM, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    llm.plan(Plan(text=" ".join(f"w{i}" for i in range(200)), token_delay=0.1))
    process = await start_process(tg, llm, redis_url, prefix, tmp_path, SHUTDOWN_GRACE_S="1")
    try:
        tg.send_text(5401, "tell me a very long story")
        await tg.wait_for(lambda: tg.chat(5401).last_draft is not None, timeout=20)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
    finally:
        err = await stop_process(process)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 10, "the grace period bounds the shutdown"
    assert "1 update(s) still in progress after 1s are cut off" in err
    assert llm.completed == 0
    await llm.wait_for(lambda: llm.cancelled == 1)


def test_every_metric_is_documented() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    names = [f.name for f in metrics.REGISTRY.collect() if f.name.startswith("telellama_")]
    assert len(names) >= 11
    for name in names:
        assert f"| `{name}" in readme, f"{name} is not in the README's metrics table"
