"""Every setting, read once from the environment and `.env`, validated, frozen, passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

DEFAULT_SYSTEM_PROMPT = (
    "You are {bot_name}, a helpful assistant inside Telegram. Answer clearly and concisely; "
    "use Markdown sparingly (bold, lists, code blocks) because Telegram renders it. "
    "Always answer in the language the user writes in."
)

# The fix shown next to a failing setting: what a user must do, not what pydantic thinks.
_HINTS = {
    "TELEGRAM_BOT_TOKEN": "create a bot with @BotFather and set TELEGRAM_BOT_TOKEN=<its token>",
    "TELEGRAM_API_BASE_URL": "use the Bot API server's root, e.g. https://api.telegram.org",
    "LLM_BASE_URL": (
        "set LLM_BASE_URL to an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:8080/v1 (llama.cpp server) or http://localhost:11434/v1 (Ollama)"
    ),
    "LLM_MAX_TOKENS": "keep LLM_MAX_TOKENS well below LLM_CONTEXT_TOKENS",
    "SYSTEM_PROMPT_FILE": "point SYSTEM_PROMPT_FILE at a readable UTF-8 text file, or unset it",
    "REDIS_URL": "use redis://host:6379/0, rediss://... or unix:///path/to/redis.sock",
    "LOG_LEVEL": "use one of DEBUG, INFO, WARNING, ERROR",
    "KNOWLEDGE_DIR": "point KNOWLEDGE_DIR at a folder of .md, .txt and .pdf files, or unset it",
    "ALLOWED_USER_IDS": "list numeric Telegram user ids separated by commas, e.g. 12345,67890",
    "ALLOWED_CHAT_IDS": "list numeric chat ids separated by commas, e.g. -1001234567890",
    "ADMIN_USER_IDS": "list numeric Telegram user ids separated by commas, e.g. 12345",
}

PositiveFloat = Annotated[float, Field(gt=0)]
# Comma-separated numbers in the environment ("123, -100456"), not JSON.
IdList = Annotated[tuple[int, ...], NoDecode]


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Settings(BaseSettings):
    """The bot's whole configuration; field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_drafts: bool = True
    telegram_max_messages_per_s: float = Field(30.0, ge=0)
    telegram_chat_messages_per_s: float = Field(1.0, ge=0)
    telegram_group_messages_per_min: float = Field(20.0, ge=0)

    llm_base_url: str
    llm_api_key: SecretStr = SecretStr("not-needed")
    llm_model: str = ""
    llm_context_tokens: int = Field(8192, ge=512)
    llm_max_tokens: int = Field(1024, ge=16)
    llm_temperature: float = Field(0.7, ge=0, le=2)
    llm_first_token_timeout_s: PositiveFloat = 30.0
    llm_stall_timeout_s: PositiveFloat = 60.0
    llm_max_retries: int = Field(2, ge=0, le=10)

    redis_url: str | None = None
    redis_wait_s: float = Field(30.0, ge=0)
    redis_key_prefix: str = Field("tl", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    memory_ttl_days: PositiveFloat = 30.0
    conversation_idle_minutes: float = Field(240.0, ge=0)
    summary_max_tokens: int = Field(400, ge=50)
    memory_facts_in_groups: bool = False

    group_context: Literal["private", "shared"] = "private"
    group_context_messages: int = Field(30, ge=1, le=200)
    group_trigger_words: str = ""

    system_prompt: str | None = None
    system_prompt_file: Path | None = None
    max_input_chars: int = Field(8000, ge=100)

    knowledge_dir: Path | None = None
    knowledge_top_k: int = Field(4, ge=1, le=20)
    knowledge_min_score: float = Field(0.5, ge=0)
    knowledge_min_similarity: float = Field(0.5, ge=-1, le=1)
    knowledge_strict: bool = False
    knowledge_check_s: PositiveFloat = 60.0
    embeddings_model: str = ""

    allowed_user_ids: IdList = ()
    allowed_chat_ids: IdList = ()
    admin_user_ids: IdList = ()
    rate_limit_per_minute: int = Field(0, ge=0)
    daily_token_quota: int = Field(0, ge=0)

    stream_draft_interval_s: PositiveFloat = 0.4
    stream_edit_interval_s: PositiveFloat = 1.0
    stream_group_edit_interval_s: PositiveFloat = 3.0
    max_concurrent_updates: int = Field(4096, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("telellama")))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("llm_base_url", "telegram_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _is_http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            bot_id, sep, rest = value.get_secret_value().partition(":")
            if not (sep and bot_id.isdigit() and rest):
                raise ValueError("does not look like a bot token (expected <digits>:<secret>)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{_redact_url(value)!r} is not a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("system_prompt_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                value.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {str(value)!r}: {exc}") from None
        return value

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _id_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        ids = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ids.append(int(part))
            except ValueError:
                raise ValueError(f"{part!r} is not a numeric Telegram id") from None
        return tuple(ids)

    @field_validator("knowledge_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a folder")
        return value

    @field_validator("knowledge_strict")
    @classmethod
    def _strict_needs_knowledge(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("knowledge_dir") is None and "knowledge_dir" in info.data:
            raise ValueError("is on without a knowledge base: set KNOWLEDGE_DIR, or turn it off")
        return value

    @model_validator(mode="after")
    def _answer_fits(self) -> Settings:
        if self.llm_max_tokens >= self.llm_context_tokens // 2:
            raise ValueError(
                f"LLM_MAX_TOKENS ({self.llm_max_tokens}) must be under half of "
                f"LLM_CONTEXT_TOKENS ({self.llm_context_tokens}) to leave room for the conversation"
            )
        return self

    def trigger_words(self) -> tuple[str, ...]:
        return split_words(self.group_trigger_words)

    def system_prompt_template(self) -> str:
        """The persona: SYSTEM_PROMPT_FILE wins over SYSTEM_PROMPT, then the default."""
        if self.system_prompt_file is not None:
            return self.system_prompt_file.read_text(encoding="utf-8").strip()
        return (self.system_prompt or DEFAULT_SYSTEM_PROMPT).strip()

    def require_telegram_token(self) -> str:
        if self.telegram_bot_token is None:
            raise ConfigError(
                f"Setting TELEGRAM_BOT_TOKEN is missing: {_HINTS['TELEGRAM_BOT_TOKEN']}."
            )
        return self.telegram_bot_token.get_secret_value()


def split_words(value: str) -> tuple[str, ...]:
    """Comma-separated trigger words, trimmed and lower-cased, empties dropped."""
    return tuple(dict.fromkeys(w.strip().lower() for w in value.split(",") if w.strip()))


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _describe(error: dict[str, Any]) -> str:
    name = str(error["loc"][0]).upper() if error.get("loc") else "configuration"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is missing"
    hint = _HINTS.get(name)
    if not error.get("loc") and "LLM_MAX_TOKENS" in message:
        name, hint = "LLM_MAX_TOKENS", _HINTS["LLM_MAX_TOKENS"]
        return f"Setting {name}: {message} ({hint})."
    return f"Setting {name} {message}" + (f": {hint}." if hint else ".")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise ConfigError naming each bad setting and its fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors(include_input=False)]
        raise ConfigError("\n".join(lines)) from None
