"""Every setting, read once from the environment and `.env`, validated, frozen, passed down."""

from __future__ import annotations

import re
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
from bot.i18n import LANGUAGES, supported

DEFAULT_SYSTEM_PROMPT = (
    "You are {bot_name}, a helpful assistant inside Telegram. Answer clearly and concisely; "
    "use Markdown sparingly (bold, lists, code blocks) because Telegram renders it. "
    "Always answer in the language the user writes in (their preferred language: {language})."
)

# The largest file the Bot API lets a bot download (getFile).
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024

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
    "REDIS_SENTINELS": "list the sentinels as host:port, separated by commas: s1:26379,s2:26379",
    "REDIS_SENTINEL_MASTER": "set it to the master's name in the sentinels' configuration",
    "WEBHOOK_URL": (
        "use the public https:// URL Telegram posts updates to, e.g. "
        "https://bot.example.com/telegram (its path is where the bot serves them)"
    ),
    "WEBHOOK_SECRET": "generate one with `openssl rand -hex 32`",
    "WEBHOOK_LISTEN": "use host:port, e.g. 0.0.0.0:8080",
    "LOG_LEVEL": "use one of DEBUG, INFO, WARNING, ERROR",
    "LOG_FORMAT": "use text or json",
    "METRICS_LISTEN": (
        "use host:port, e.g. 127.0.0.1:9090 (0.0.0.0:9090 in a container), or leave it empty"
    ),
    "KNOWLEDGE_DIR": "point KNOWLEDGE_DIR at a folder of .md, .txt and .pdf files, or unset it",
    "ALLOWED_USER_IDS": "list numeric Telegram user ids separated by commas, e.g. 12345,67890",
    "ALLOWED_CHAT_IDS": "list numeric chat ids separated by commas, e.g. -1001234567890",
    "ADMIN_USER_IDS": "list numeric Telegram user ids separated by commas, e.g. 12345",
    "SUPPORT_CHAT_ID": (
        "use the id of a supergroup with topics enabled where the bot is an admin allowed to "
        "manage topics, e.g. -1001234567890, or leave it empty (no human handoff)"
    ),
    "HANDOFF_IDLE_HOURS": "use a number of hours, e.g. 24 (0: only /resolve ends a handoff)",
    "BUSINESS_PAUSE_MINUTES": "use a number of minutes, e.g. 30 (0: never pause)",
    "STT_BASE_URL": (
        "set STT_BASE_URL to an OpenAI-compatible speech-to-text endpoint, e.g. "
        "http://localhost:8000/v1 (faster-whisper-server) or http://localhost:8080/v1 "
        "(whisper.cpp server), or leave it empty"
    ),
    "STT_MODEL": "name the model the speech endpoint serves, e.g. whisper-1",
    "IMAGE_MAX_SIDE": "use a number of pixels between 128 and 4096, e.g. 1024",
    "MAX_DOCUMENT_BYTES": (
        f"use a number of bytes up to {TELEGRAM_DOWNLOAD_LIMIT} (bots may download 20 MB at most)"
    ),
    "INLINE_TIMEOUT_S": "Telegram drops inline answers after about 10 s: use at most 9",
    "DEFAULT_LANGUAGE": f"use one of {', '.join(LANGUAGES)}",
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
    redis_cluster: bool = Field(False, validate_default=True)
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = ()
    redis_sentinel_master: str = Field("", validate_default=True)
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
    default_language: str = "en"

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

    support_chat_id: int | None = None
    handoff_idle_hours: float = Field(24.0, ge=0)
    business_pause_minutes: float = Field(30.0, ge=0)
    feedback_buttons: bool = False

    llm_vision: bool = False
    vision_model: str = ""
    image_max_side: int = Field(1024, ge=128, le=4096)
    stt_base_url: str = ""
    stt_api_key: SecretStr = SecretStr("not-needed")
    stt_model: str = Field("whisper-1", validate_default=True)
    stt_timeout_s: PositiveFloat = 120.0
    max_document_bytes: int = Field(10_000_000, ge=1000, le=TELEGRAM_DOWNLOAD_LIMIT)
    inline_mode: bool = False
    inline_timeout_s: float = Field(7.0, gt=0, le=9)

    stream_draft_interval_s: PositiveFloat = 0.35
    stream_edit_interval_s: PositiveFloat = 1.0
    stream_group_edit_interval_s: PositiveFloat = 3.0
    max_concurrent_updates: int = Field(4096, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_listen: str = ""
    shutdown_grace_s: float = Field(25.0, ge=0)

    webhook_url: str = ""
    webhook_secret: SecretStr | None = Field(None, validate_default=True)
    webhook_listen: str = "0.0.0.0:8080"
    webhook_max_connections: int = Field(40, ge=1, le=100)
    queue_shards: int = Field(16, ge=1, le=1024)
    queue_lease_s: float = Field(10.0, ge=0.5, le=600)
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("telellama")))

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("metrics_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_listen(value)
        return value

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

    @field_validator("redis_cluster")
    @classmethod
    def _cluster_seed(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("redis_url", "")
        if value and url is None:
            raise ValueError(
                "is on without REDIS_URL: set REDIS_URL to any node of the cluster, "
                "e.g. redis://10.0.0.1:6379"
            )
        if value and urlsplit(url).scheme == "unix":
            raise ValueError("needs a redis:// or rediss:// REDIS_URL (no unix sockets)")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinels(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        found = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            host, port = parse_listen(part)
            if part.startswith(":"):
                raise ValueError(f"{part!r} is not host:port")
            found.append((host, port))
        if found and info.data.get("redis_cluster"):
            raise ValueError("and REDIS_CLUSTER=true exclude each other: choose one")
        return tuple(found)

    @field_validator("redis_sentinel_master")
    @classmethod
    def _master(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("redis_sentinels") and not value.strip():
            raise ValueError("is missing (REDIS_SENTINELS is set)")
        return value.strip()

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        official = urlsplit(info.data.get("telegram_api_base_url", "")).hostname in (
            None,
            "api.telegram.org",
        )
        if not _is_http_url(value) or (official and parts.scheme != "https"):
            raise ValueError(f"{value!r} is not an https:// URL")
        if official and (parts.port or 443) not in (443, 80, 88, 8443):
            raise ValueError(f"uses port {parts.port}; Telegram posts only to 443, 80, 88 or 8443")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("may only hold 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if value is None and info.data.get("webhook_url"):
            raise ValueError("is missing (WEBHOOK_URL is set: webhook mode needs a secret)")
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, value: str) -> str:
        parse_listen(value.strip())
        return value.strip()

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

    @field_validator("stt_base_url")
    @classmethod
    def _stt_url(cls, value: str) -> str:
        value = value.strip()
        if value and not _is_http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("stt_model")
    @classmethod
    def _stt_model(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("stt_base_url") and not value.strip():
            raise ValueError("is empty (STT_BASE_URL is set)")
        return value.strip()

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        language = supported(value)
        if language is None:
            raise ValueError(f"{value!r} is not a language the bot speaks")
        return language

    @field_validator("vision_model")
    @classmethod
    def _vision_model(cls, value: str) -> str:
        return value.strip()

    @field_validator("knowledge_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a folder")
        return value

    @field_validator("support_chat_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("support_chat_id")
    @classmethod
    def _supergroup(cls, value: int | None) -> int | None:
        if value is not None and value >= 0:
            raise ValueError(f"{value} is not a supergroup id (those are negative)")
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

    @property
    def reads_images(self) -> bool:
        """Photos go to a vision model: LLM_VISION, or a separate VISION_MODEL."""
        return self.llm_vision or bool(self.vision_model)

    @property
    def hears_voice(self) -> bool:
        """Voice and audio are transcribed (STT_BASE_URL is set)."""
        return bool(self.stt_base_url)

    def system_prompt_template(self) -> str:
        """The persona: SYSTEM_PROMPT_FILE wins over SYSTEM_PROMPT, then the default."""
        if self.system_prompt_file is not None:
            return self.system_prompt_file.read_text(encoding="utf-8").strip()
        return (self.system_prompt or DEFAULT_SYSTEM_PROMPT).strip()

    def metrics_address(self) -> tuple[str, int] | None:
        """Where /healthz, /readyz and /metrics listen; None when METRICS_LISTEN is empty."""
        return parse_listen(self.metrics_listen) if self.metrics_listen else None

    def webhook_address(self) -> tuple[str, int]:
        return parse_listen(self.webhook_listen)

    def webhook_secret_value(self) -> str:
        """The secret of webhook mode; ConfigError when webhook mode is not configured."""
        if not self.webhook_url or self.webhook_secret is None:
            missing = "WEBHOOK_URL" if not self.webhook_url else "WEBHOOK_SECRET"
            raise ConfigError(f"Setting {missing} is missing (webhook mode): {_HINTS[missing]}.")
        return self.webhook_secret.get_secret_value()

    def require_telegram_token(self) -> str:
        if self.telegram_bot_token is None:
            raise ConfigError(
                f"Setting TELEGRAM_BOT_TOKEN is missing: {_HINTS['TELEGRAM_BOT_TOKEN']}."
            )
        return self.telegram_bot_token.get_secret_value()


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:9090` for IPv6, `:9090` for every interface) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (":port" asks for all)


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
