"""Every Telegram handler, registered in one table."""

from __future__ import annotations

from typing import Any

from telegram.ext import (
    Application,
    BaseHandler,
    BusinessConnectionHandler,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from handlers import (
    admin,
    business,
    commands,
    errors,
    export,
    feedback,
    inline,
    language,
    media,
    memory,
    messages,
    support,
)

NEW = filters.UpdateType.MESSAGE
PRIVATE = filters.ChatType.PRIVATE & NEW
GROUPS = filters.ChatType.GROUPS & NEW
ANY_CHAT = PRIVATE | GROUPS


def first() -> list[BaseHandler[Any, Any, Any]]:
    """Run before the table, and may stop it: a customer handed over to a person, and the
    support chat, are not answered by the model."""
    return [
        MessageHandler(PRIVATE, support.during_handoff),
        MessageHandler(
            filters.ChatType.SUPERGROUP & NEW & ~filters.StatusUpdate.ALL, support.support_chat
        ),
    ]


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
        CommandHandler("human", support.human, filters=ANY_CHAT),
        CommandHandler("export", export.export, filters=ANY_CHAT),
        CommandHandler("stats", feedback.stats, filters=ANY_CHAT),
        CommandHandler("language", language.choose, filters=ANY_CHAT),
        CallbackQueryHandler(memory.forget_all_button, pattern=f"^{memory.FORGET_ALL}"),
        CallbackQueryHandler(feedback.vote, pattern=r"^fb:"),
        CallbackQueryHandler(language.button, pattern=f"^{language.BUTTON}"),
        BusinessConnectionHandler(business.connection),
        MessageHandler(filters.UpdateType.BUSINESS_MESSAGE, business.message),
        MessageHandler(
            ANY_CHAT & filters.TEXT & ~filters.COMMAND & media.REPLIES_TO_MEDIA,
            media.reply_to_media,
        ),
        MessageHandler(PRIVATE & media.READABLE, media.private_media),
        MessageHandler(GROUPS & media.READABLE, media.group_media),
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, messages.private_text),
        MessageHandler(PRIVATE & filters.COMMAND, messages.unknown_command),
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, messages.unsupported),
        MessageHandler(
            GROUPS & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND, messages.group_message
        ),
        MessageHandler(filters.StatusUpdate.MIGRATE, messages.migrated),
        CallbackQueryHandler(messages.stale_button),
        InlineQueryHandler(inline.inline_query),
    ]


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handlers(first(), group=-1)
    app.add_handlers(table())
    app.add_error_handler(errors.on_error)
