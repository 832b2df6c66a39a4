"""The transport under the openai client: httpx2's interface, aiohttp's connection pool.

httpx2's pool re-checks every connection with system calls on each request and on each response
close; with a stream open per conversation that grows with the number of users and was a third
of the bot's CPU. This transport keeps the openai client (auth, base URL, status errors) and
hands the bytes to aiohttp, translating aiohttp's errors into httpx2's so openai still maps them
to its own (connection error, timeout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2


class _Body(httpx2.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as err:
            raise httpx2.ReadTimeout(str(err) or "read timed out") from err
        except aiohttp.ClientPayloadError as err:
            raise httpx2.RemoteProtocolError(str(err)) from err
        except aiohttp.ClientError as err:
            raise httpx2.ReadError(str(err)) from err

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    def __init__(self, connections: int = 1000, keepalive_s: float = 30.0) -> None:
        self._connections = connections
        self._keepalive = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connections, keepalive_timeout=self._keepalive, ttl_dns_cache=300
            )
            # Headers come from httpx2 as they are; aiohttp must not add or decode anything.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = _timeout(request.extensions.get("timeout", {}))
        body = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        except TimeoutError as err:
            raise httpx2.ConnectTimeout(str(err) or "connect timed out", request=request) from err
        except aiohttp.ClientConnectorError as err:
            raise httpx2.ConnectError(str(err), request=request) from err
        except aiohttp.ClientError as err:
            raise httpx2.NetworkError(str(err), request=request) from err
        return httpx2.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _timeout(values: dict[str, Any]) -> aiohttp.ClientTimeout:
    connect, read, pool = values.get("connect"), values.get("read"), values.get("pool")
    return aiohttp.ClientTimeout(
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )
