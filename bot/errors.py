"""The exception tree. Every error a user can run into carries the short message they see.

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


class TelellamaError(Exception):
    """Base of every error the bot raises on purpose."""

    user_message = "Something went wrong on my side. Please try again in a moment."


class ConfigError(TelellamaError):
    """A setting is missing or malformed; the message names it and the fix."""


class LLMError(TelellamaError):
    user_message = "I couldn't get an answer from the model right now. Please try again."


class LLMUnavailable(LLMError):
    user_message = "The language model is unreachable right now. Please try again in a minute."


class LLMTimeout(LLMError):
    user_message = "The language model took too long to start answering. Please try again."


class LLMRateLimited(LLMError):
    user_message = "The language model is busy right now. Please try again in a minute."

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMServerError(LLMError):
    user_message = "The language model had an internal error. Please try again."


class LLMRejected(LLMError):
    user_message = (
        "The language model rejected the request. The bot's operator has been notified in the logs."
    )


class PromptTooLong(LLMError):
    user_message = "This conversation is too long for the model. Send /new to start over."


class LLMStreamCut(LLMError):
    user_message = "⚠️ The answer was cut off because the connection to the model broke."


class LLMEmptyAnswer(LLMError):
    user_message = "The model returned an empty answer. Please rephrase or try /retry."


class MemoryUnavailable(TelellamaError):
    user_message = "⚠️ My memory is unavailable right now, so I won't remember this conversation."


class ChatUnavailable(TelellamaError):
    """Telegram refuses to deliver to the chat; nobody is there to tell, so it is only logged."""


class InputRejected(TelellamaError):
    """The message itself cannot be answered; user_message says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
