"""Every Telegram handler, registered in one table."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, BaseHandler, CommandHandler, MessageHandler, filters

from handlers import commands, errors, messages

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def table() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("start", commands.start, filters=PRIVATE),
        CommandHandler("help", commands.help_, filters=PRIVATE),
        CommandHandler(["new", "reset"], commands.new, filters=PRIVATE),
        CommandHandler("retry", commands.retry, filters=PRIVATE),
        CommandHandler("stop", commands.stop, filters=PRIVATE),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, messages.text),
        MessageHandler(PRIVATE & filters.COMMAND, messages.unknown_command),
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, messages.unsupported),
    ]


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handlers(table())
    app.add_error_handler(errors.on_error)
