"""Every Telegram handler, registered in one table."""

from __future__ import annotations

from typing import Any

from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from handlers import admin, commands, errors, memory, messages

NEW = filters.UpdateType.MESSAGE
PRIVATE = filters.ChatType.PRIVATE & NEW
GROUPS = filters.ChatType.GROUPS & NEW
ANY_CHAT = PRIVATE | GROUPS


def table() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("start", commands.start, filters=PRIVATE),
        CommandHandler("help", commands.help_, filters=ANY_CHAT),
        CommandHandler("ask", commands.ask, filters=ANY_CHAT),
        CommandHandler(["new", "reset"], commands.new, filters=ANY_CHAT),
        CommandHandler("retry", commands.retry, filters=ANY_CHAT),
        CommandHandler("stop", commands.stop, filters=ANY_CHAT),
        CommandHandler("remember", memory.remember, filters=ANY_CHAT),
        CommandHandler("memory", memory.memory, filters=ANY_CHAT),
        CommandHandler("forget", memory.forget, filters=ANY_CHAT),
        CommandHandler("settings", admin.settings, filters=ANY_CHAT),
        CallbackQueryHandler(memory.forget_all_button, pattern=f"^{memory.FORGET_ALL}"),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, messages.private_text),
        MessageHandler(PRIVATE & filters.COMMAND, messages.unknown_command),
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, messages.unsupported),
        MessageHandler(
            GROUPS & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND, messages.group_message
        ),
        MessageHandler(filters.StatusUpdate.MIGRATE, messages.migrated),
        CallbackQueryHandler(messages.stale_button),
    ]


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handlers(table())
    app.add_error_handler(errors.on_error)
