"""Command line: `telellama run | doctor | chat` (also `python -m bot ...`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot import logs
from bot.app import serve
from bot.doctor import doctor
from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from bot.terminal import chat


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telellama", description="A Telegram assistant for Llama 3 with memory in Redis."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bot (long polling); the default")
    commands.add_parser("doctor", help="check settings, Redis, the model endpoint and the token")
    commands.add_parser("chat", help="talk to the model in this terminal, with the same memory")
    return parser


def _settings() -> Settings:
    settings = load_settings()
    secrets = [
        s.get_secret_value() for s in (settings.telegram_bot_token, settings.llm_api_key) if s
    ]
    logs.configure(settings.log_level, secrets)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    try:
        if command == "doctor":
            return asyncio.run(doctor())
        settings = _settings()
        if command == "chat":
            asyncio.run(chat(settings))
            return 0
        settings.require_telegram_token()
        asyncio.run(serve(settings))
        return 0
    except ConfigError as exc:
        print(f"telellama: configuration error\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
