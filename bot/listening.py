"""Starting the bot's own aiohttp servers (health/metrics, webhook) on a configured address."""

from __future__ import annotations

from aiohttp import web

from bot.errors import ConfigError


async def listen(
    app: web.Application, address: tuple[str, int], setting: str, fix: str
) -> web.AppRunner:
    """Serve `app` on `address`; a port that cannot be bound is a configuration error."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host, port = address
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"Setting {setting}: cannot listen on {host}:{port} ({exc.strerror}): {fix}"
        ) from None
    return runner
