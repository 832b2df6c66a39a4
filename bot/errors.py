"""The exception tree. Every error a user can run into carries the short message they see
(declared in bot/texts.py, so it is shown in the user's language).

TelellamaError                  user_message: what the chat shows
├── ConfigError                 bad or missing setting (raised at start, never in a chat)
├── LLMError                    the model endpoint failed; nothing was written to memory
│   ├── LLMUnavailable          refused, unreachable, DNS, TLS
│   ├── LLMTimeout              no first token within LLM_FIRST_TOKEN_TIMEOUT_S
│   ├── LLMRateLimited          429 from the endpoint (retry_after when it said)
│   ├── LLMServerError          5xx
│   ├── LLMRejected             400/401/403/404: configuration, not the user's fault
│   ├── PromptTooLong           the server says the prompt exceeds its context
│   ├── LLMStreamCut            the stream broke after text was shown
│   └── LLMEmptyAnswer          the model answered nothing
├── MemoryUnavailable           Redis failed; the bot answers without memory
├── ChatUnavailable             Telegram will not deliver to this chat (blocked, kicked, gone)
└── InputRejected               the user's message cannot be answered (too long, empty)
"""

from __future__ import annotations

from bot import texts


class TelellamaError(Exception):
    """Base of every error the bot raises on purpose."""

    user_message: str = texts.SOMETHING_WENT_WRONG


class ConfigError(TelellamaError):
    """A setting is missing or malformed; the message names it and the fix."""


class LLMError(TelellamaError):
    user_message = texts.LLM_FAILED


class LLMUnavailable(LLMError):
    user_message = texts.LLM_UNAVAILABLE


class LLMTimeout(LLMError):
    user_message = texts.LLM_TIMEOUT


class LLMRateLimited(LLMError):
    user_message = texts.LLM_RATE_LIMITED

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMServerError(LLMError):
    user_message = texts.LLM_SERVER_ERROR


class LLMRejected(LLMError):
    user_message = texts.LLM_REJECTED


class PromptTooLong(LLMError):
    user_message = texts.PROMPT_TOO_LONG


class LLMStreamCut(LLMError):
    user_message = texts.LLM_STREAM_CUT


class LLMEmptyAnswer(LLMError):
    user_message = texts.LLM_EMPTY_ANSWER


class MemoryUnavailable(TelellamaError):
    user_message = texts.MEMORY_UNAVAILABLE


class ChatUnavailable(TelellamaError):
    """Telegram refuses to deliver to the chat; nobody is there to tell, so it is only logged."""


class InputRejected(TelellamaError):
    """The message itself cannot be answered; user_message says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
