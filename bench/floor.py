"""The reference floor: the least a client can do to answer through the same fakes.

Raw aiohttp, no framework, no memory, no rendering: long-poll ``getUpdates``; for each text
message stream a completion from the model (the same request shape the bot sends, so the fake
model costs the same on both sides) and, once it ends, send the text with one ``sendMessage``.
A 429 is waited out and retried, so that under flood limits every reply is still delivered.

Run by the bench as a subprocess: ``python -m bench.floor`` with FLOOR_TELEGRAM_URL
(``<root>/bot<token>``), FLOOR_LLM_URL (``.../v1``) and FLOOR_MODEL in the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import aiohttp

JSONDict = dict[str, Any]


async def _complete(session: aiohttp.ClientSession, llm: str, model: str, text: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    parts: list[str] = []
    async with session.post(f"{llm}/chat/completions", json=body) as response:
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            for choice in json.loads(data).get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


async def _send(session: aiohttp.ClientSession, api: str, chat_id: int, text: str) -> None:
    while True:
        async with session.post(
            f"{api}/sendMessage", json={"chat_id": chat_id, "text": text}
        ) as response:
            reply: JSONDict = await response.json()
        if reply.get("ok"):
            return
        retry = (reply.get("parameters") or {}).get("retry_after")
        if retry is None:
            return
        await asyncio.sleep(float(retry))


async def _answer(
    session: aiohttp.ClientSession, api: str, llm: str, model: str, message: JSONDict
) -> None:
    text = await _complete(session, llm, model, message["text"])
    await _send(session, api, message["chat"]["id"], text or "…")


async def main() -> None:
    api = os.environ["FLOOR_TELEGRAM_URL"]
    llm = os.environ["FLOOR_LLM_URL"]
    model = os.environ["FLOOR_MODEL"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    # The same connection ceiling as the bot's Bot API pool, and no per-request timeout: a long
    # poll or a long stream is not an error.
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        offset = 0

        async def poll() -> None:
            nonlocal offset
            while True:
                async with session.post(
                    f"{api}/getUpdates", json={"offset": offset, "timeout": 30}
                ) as response:
                    reply: JSONDict = await response.json()
                for update in reply.get("result") or ():
                    offset = update["update_id"] + 1
                    message = update.get("message")
                    if message and "text" in message:
                        task = loop.create_task(_answer(session, api, llm, model, message))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)

        poller = loop.create_task(poll())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({poller, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (poller, stopping, *tasks):
            task.cancel()
        if poller.done() and not poller.cancelled() and poller.exception() is not None:
            raise poller.exception()  # type: ignore[misc]


if __name__ == "__main__":
    asyncio.run(main())
