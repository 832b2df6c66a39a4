"""Command line: `telellama run | doctor | chat | kb` (also `python -m bot ...`)."""

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
    run = commands.add_parser("run", help="run the bot (long polling); the default")
    run.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates by webhook (needs WEBHOOK_URL and WEBHOOK_SECRET; "
        "WEBHOOK_URL alone also turns it on)",
    )
    commands.add_parser("doctor", help="check settings, Redis, the model endpoint and the token")
    commands.add_parser("chat", help="talk to the model in this terminal, with the same memory")
    knowledge = commands.add_parser("kb", help="the knowledge base (KNOWLEDGE_DIR)")
    actions = knowledge.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="index the folder (if it changed) and store it")
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    search = actions.add_parser("search", help="show the chunks a question retrieves")
    search.add_argument("query", help="the question, in quotes")
    return parser


def _settings() -> Settings:
    settings = load_settings()
    secrets = [
        s.get_secret_value() for s in (settings.telegram_bot_token, settings.llm_api_key) if s
    ]
    logs.configure(settings.log_level, secrets, settings.log_format)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    try:
        if command == "doctor":
            # The report says what failed; the adapters' own warnings would say it twice.
            logs.configure("ERROR")
            return asyncio.run(doctor())
        settings = _settings()
        if command == "chat":
            asyncio.run(chat(settings))
            return 0
        if command == "kb":
            from bot.kbcli import kb  # noqa: PLC0415 - the index's libraries only when asked

            query = getattr(args, "query", "")
            return asyncio.run(
                kb(settings, args.action, query, force=getattr(args, "force", False))
            )
        settings.require_telegram_token()
        if getattr(args, "webhook", False) or settings.webhook_url:
            settings.webhook_secret_value()
        asyncio.run(serve(settings))
        return 0
    except ConfigError as exc:
        print(f"telellama: configuration error\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
