"""Real HTTP fakes of the Telegram Bot API and of an OpenAI-compatible LLM server."""

from tests.fakes.llm import FakeLLM, Plan
from tests.fakes.telegram import (
    Call,
    ChatView,
    Delivery,
    Draft,
    FakeTelegram,
    SentMessage,
    TelegramLimits,
    UserMessage,
)

__all__ = [
    "Call",
    "ChatView",
    "Delivery",
    "Draft",
    "FakeLLM",
    "FakeTelegram",
    "Plan",
    "SentMessage",
    "TelegramLimits",
    "UserMessage",
]
