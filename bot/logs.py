"""Logging, configured once by the entry point. Secrets never reach a log line.

Two formats (LOG_FORMAT): `text`, one readable line per record, and `json`, one JSON object per
line. Structured values go in `extra=fields(...)`: ids, counts, durations; never message text.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# These log request URLs, and Bot API URLs carry the token.
_NOISY = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "telegram.ext.ExtBot", "telegram")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def fields(**values: object) -> dict[str, Any]:
    """`extra=` for a structured line: `log.info("update handled", extra=fields(chat_id=1))`."""
    return {"fields": values}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    values = getattr(record, "fields", None)
    return values if isinstance(values, dict) else {}


class Redact(logging.Filter):
    """Replaces each secret in a record's final message with a placeholder."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self._scrub(message)
        if redacted != message or record.exc_info:
            record.msg, record.args = redacted, None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text, record.exc_info = self._scrub(text), None
        values = _fields(record)
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = self._scrub(value)
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with structured fields appended as `name=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        values = _fields(record)
        if not values:
            return line
        pairs = " ".join(f"{k}={v}" for k, v in values.items() if v is not None)
        head, newline, rest = line.partition("\n")
        return f"{head} {pairs}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _fields(record).items():
            payload.setdefault(name, value)
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, secrets: Iterable[str] = (), fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries(root.level)


def quiet_libraries(level: int = logging.INFO) -> None:
    """Libraries that log request URLs (Bot API URLs carry the token) speak only at WARNING."""
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))


def use_format(fmt: str) -> None:
    """Switch the handlers `configure` installed to `text` or `json`, keeping their filters."""
    for handler in logging.getLogger().handlers:
        if any(isinstance(f, Redact) for f in handler.filters):
            handler.setFormatter(formatter(fmt))
