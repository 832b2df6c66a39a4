"""A fake Telegram Bot API server that the real bot reaches over HTTP.

The bot talks to it through its normal PTB client, so the wire format (form encoding, JSON-encoded
nested fields, error payloads) is exercised exactly as in production::

    async with FakeTelegram() as tg:
        bot = telegram.Bot(
            tg.token, base_url=tg.base_url + "/bot", base_file_url=tg.base_url + "/file/bot"
        )
        # or: ApplicationBuilder().token(tg.token).base_url(tg.base_url + "/bot")
        #         .base_file_url(tg.base_url + "/file/bot").build()
        tg.send_text(42, "hi")               # a user writes; the bot gets it from getUpdates
        [reply] = await tg.wait_messages(42, 1)

PTB appends the token to ``base_url`` itself (``base_url + token``), so the ``/bot`` suffix is
part of what we pass and the token is not (``tg.api_url`` / ``tg.file_url`` are those values).

State is kept as the user would see the chat (``chat(chat_id)``), plus the raw ``calls`` log.
Everything is O(1) per request so the same server can carry the benchmark.

Customer service: ``forum`` makes a supergroup with topics (``createForumTopic``,
``delete_topic``), ``send_media`` injects a photo or document (``copyMessage`` copies any message),
``connect_business`` and ``send_business_text`` play a Telegram Business account and its
customers (sends and edits through ``business_connection_id`` are checked against the connection).

Webhooks: once the bot calls ``setWebhook`` with a URL, queued updates are POSTed to it (JSON,
with ``X-Telegram-Bot-Api-Secret-Token`` when a secret was set) as Telegram's Bot API server
does: one update of a chat at a time, in order, chats concurrently up to ``max_connections``,
each retried with a growing delay until it gets a 200. ``webhook_origins`` stands in for a load
balancer (the registered URL's path on each origin in turn); ``redeliver`` sends an update again,
as Telegram does when it did not get the 200; ``deliveries`` records every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

JSONDict = dict[str, Any]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MAX_TEXT_UTF16 = 4096
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_CHAT_ACTIONS = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note"
)
_PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})
# Telegram only delivers these when a bot asks for them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_ENTITY_TYPES = _words(
    "mention hashtag cashtag bot_command url email phone_number bold italic underline "
    "strikethrough spoiler blockquote expandable_blockquote code pre text_link text_mention "
    "custom_emoji date_time"
)
# Free-text or opaque-string parameters: never JSON-decoded or coerced, even when a user's message
# happens to look like "[1, 2]" or "42".
_TEXT_PARAMS = _words(
    "text caption data description short_description name title query url secret_token "
    "parse_mode action language_code emoji username first_name last_name file_id "
    "custom_emoji_id callback_query_id inline_query_id inline_message_id "
    "business_connection_id message_effect_id ip_address question explanation"
)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
# Telegram's own autodetection of commands and @mentions in incoming text; tests rely on it to
# look like real clients' messages without spelling entities out.
_AUTO_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")
_AUTO_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w)")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Telegram offset and limit."""
    return len(text.encode("utf-16-le")) // 2


def _is_stripped_char(ch: str) -> bool:
    # Approximates tdlib's strip_empty_characters: whitespace plus zero-width characters.
    return ch.isspace() or ch in "\u200b\u200c\u200d\u2060\ufeff"


class ApiError(Exception):
    """An error reply of the Bot API; raised inside method handlers."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        out: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Call:
    """One request as received; ``status`` is filled in when the reply is sent."""

    method: str
    params: JSONDict
    t: float
    status: int = 0
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class SentMessage:
    """A message the bot sent, in its current state."""

    message_id: int
    text: str
    entities: list[JSONDict] = field(default_factory=list)
    reply_to_message_id: int | None = None
    message_thread_id: int | None = None
    reply_markup: JSONDict | None = None
    edits: int = 0
    deleted: bool = False
    history: list[tuple[float, str]] = field(default_factory=list)
    chat_id: int = 0
    date: int = 0
    parse_mode: str | None = None
    # A photo, document...: the Message fields ({"photo": [...]}); `text` is then the caption.
    media: JSONDict | None = None
    # The bytes of a file the bot uploaded (sendDocument).
    content: bytes | None = None
    business_connection_id: str | None = None


@dataclass
class UserMessage:
    """A message a user sent (injected with ``send_text``)."""

    message_id: int
    text: str
    user_id: int
    entities: list[JSONDict] = field(default_factory=list)
    reply_to_message_id: int | None = None
    message_thread_id: int | None = None
    edits: int = 0
    deleted: bool = False
    chat_id: int = 0
    date: int = 0
    # A photo, document...: the Message fields; `text` is then the caption.
    media: JSONDict | None = None


@dataclass
class Delivery:
    """One webhook POST: the update, where it went, the answer (0: no answer) and how long it
    took from sending to the answer."""

    update_id: int
    url: str
    status: int
    seconds: float


@dataclass
class Draft:
    draft_id: int
    text: str
    entities: list[JSONDict]
    t: float
    message_thread_id: int | None = None


@dataclass
class ChatView:
    """A chat as its user sees it."""

    chat_id: int
    all_messages: list[SentMessage] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    user_messages: list[UserMessage] = field(default_factory=list)

    @property
    def messages(self) -> list[SentMessage]:
        """Bot messages still visible (not deleted), oldest first."""
        return [m for m in self.all_messages if not m.deleted]

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    @property
    def last_draft(self) -> Draft | None:
        return self.drafts[-1] if self.drafts else None

    def dump(self) -> str:
        lines = [f"chat {self.chat_id}:"]
        events: list[tuple[int, str]] = [
            (m.message_id, f"  user #{m.message_id}: {m.text!r}") for m in self.user_messages
        ]
        events += [
            (
                m.message_id,
                f"  bot  #{m.message_id}{' (deleted)' if m.deleted else ''}"
                f"{f' edits={m.edits}' if m.edits else ''}: {m.text!r}",
            )
            for m in self.all_messages
        ]
        lines += [line for _, line in sorted(events)]
        if self.drafts:
            lines.append(f"  drafts: {len(self.drafts)}, last: {self.drafts[-1].text!r}")
        return "\n".join(lines)


@dataclass
class TelegramLimits:
    """Flood limits modelled on Telegram's published guidance (token buckets)."""

    per_chat_per_s: float = 1.0
    per_chat_burst: int = 3
    per_group_per_min: float = 20.0
    global_per_s: float = 30.0
    # Methods that count against the buckets: those that put or change text in a chat.
    methods: frozenset[str] = _words(
        "sendMessage editMessageText sendMessageDraft editMessageReplyMarkup sendPhoto "
        "sendDocument sendAudio sendVoice sendVideo sendSticker copyMessage forwardMessage"
    )


class _Bucket:
    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.last = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | None


@dataclass
class _Hang:
    seconds: float
    times: int
    apply: bool


class _Signal:
    """Wakes every waiter on each ``fire``; cheaper than a Condition and needs no lock."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))


@dataclass
class _Chat:
    view: ChatView
    info: JSONDict
    index: dict[int, SentMessage | UserMessage] = field(default_factory=dict)
    next_id: int = 1
    blocked: bool = False
    # Forum topics the bot created (thread id -> name), and the ones deleted since.
    topics: dict[int, str] = field(default_factory=dict)
    deleted_topics: set[int] = field(default_factory=set)

    def new_message_id(self) -> int:
        mid = self.next_id
        self.next_id += 1
        return mid


Handler = Callable[[JSONDict], Awaitable[Any]]


class FakeTelegram:
    """The Bot API on 127.0.0.1, with chats recorded as their users would see them."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        bot_username: str = "telellama_bot",
        bot_id: int = 123456,
        *,
        bot_first_name: str = "Telellama",
        drafts_supported: bool = True,
        limits: TelegramLimits | None = None,
        strict_chats: bool = False,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_first_name = bot_first_name
        self.drafts_supported = drafts_supported
        self.limits = limits
        # Real Telegram answers "chat not found" for chats that never talked to the bot; off by
        # default so tests may message arbitrary ids.
        self.strict_chats = strict_chats
        # getMe's privacy-mode flag; False means the bot only sees commands, mentions and replies.
        self.can_read_all_group_messages = False
        # chat id -> ids of its administrators (getChatMember answers "member" for the rest)
        self.admins: dict[int, set[int]] = {}

        self.calls: list[Call] = []
        self.rate_limited = 0
        self.webhook: JSONDict | None = None
        self.callback_answers: dict[str, JSONDict] = {}
        # Telegram Business connections by id (as getBusinessConnection returns them).
        self.business_connections: dict[str, JSONDict] = {}
        # Inline mode: getMe's flag, answerInlineQuery's parameters per query id, and the
        # file paths the bot downloaded (in order).
        self.supports_inline_queries = False
        self.inline_answers: dict[str, JSONDict] = {}
        self.downloads: list[str] = []
        self.reactions: list[JSONDict] = []
        self.bot_info: dict[str, dict[str, str]] = {
            "description": {},
            "short_description": {},
            "name": {},
        }

        self._calls_by_method: dict[str, list[Call]] = {}
        self._chats: dict[int, _Chat] = {}
        self._users: dict[tuple[int, int], JSONDict] = {}
        self._updates: deque[JSONDict] = deque()
        self._update_ids = itertools.count(10_000)
        self._delivered_upto = 0
        self._allowed_updates: set[str] | None = None
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._pending_callbacks: dict[str, JSONDict] = {}
        self._pending_inline: set[str] = set()
        self._callback_ids = itertools.count(1)
        self._files: dict[str, str] = {}
        self._file_contents: dict[str, bytes] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._hangs: dict[str, deque[_Hang]] = {}
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._in_flight = 0
        self._last_activity = time.monotonic()
        # Webhook delivery (see the module docstring).
        self.webhook_origins: list[str] | None = None
        self.webhook_retry_delay = 0.2
        self.deliveries: list[Delivery] = []
        self._sent: dict[int, JSONDict] = {}
        self._delivering: set[object] = set()
        self._deliverer: asyncio.Task[None] | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._origin = itertools.count()

        self._signal = _Signal()
        self._update_signal = _Signal()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, fn)
            for name, fn in (
                ("getMe", self._get_me),
                ("logOut", self._true),
                ("close", self._true),
                ("getUpdates", self._get_updates),
                ("setWebhook", self._set_webhook),
                ("deleteWebhook", self._delete_webhook),
                ("getWebhookInfo", self._get_webhook_info),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("setMyDescription", self._set_bot_info("description")),
                ("getMyDescription", self._get_bot_info("description")),
                ("setMyShortDescription", self._set_bot_info("short_description")),
                ("getMyShortDescription", self._get_bot_info("short_description")),
                ("setMyName", self._set_bot_info("name")),
                ("getMyName", self._get_bot_info("name")),
                ("sendMessage", self._send_message),
                ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("sendMessageDraft", self._send_message_draft),
                ("sendChatAction", self._send_chat_action),
                ("deleteMessage", self._delete_message),
                ("deleteMessages", self._delete_messages),
                ("setMessageReaction", self._set_message_reaction),
                ("answerCallbackQuery", self._answer_callback_query),
                ("getChat", self._get_chat),
                ("getChatMember", self._get_chat_member),
                ("getFile", self._get_file),
                ("createForumTopic", self._create_forum_topic),
                ("copyMessage", self._copy_message),
                ("sendDocument", self._send_document),
                ("getBusinessConnection", self._get_business_connection),
                ("deleteBusinessMessages", self._delete_business_messages),
                ("answerInlineQuery", self._answer_inline_query),
            )
        }

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeTelegram already started")
        # Events bind to the loop that first waits on them; fresh ones let a fake be reused
        # across pytest's per-test loops.
        self._signal = _Signal()
        self._update_signal = _Signal()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation: a long poll whose client went away must not linger.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        self._update_signal.fire()
        self._signal.fire()
        deliverer, self._deliverer = self._deliverer, None
        if deliverer is not None:
            deliverer.cancel()
            await asyncio.gather(deliverer, return_exceptions=True)
        await runner.cleanup()

    @property
    def base_url(self) -> str:
        """Server root; PTB's ``base_url`` is this plus ``/bot``."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The value for PTB's ``base_url`` / ``ApplicationBuilder.base_url``."""
        return self.base_url + "/bot"

    @property
    def file_url(self) -> str:
        """The value for PTB's ``base_file_url``."""
        return self.base_url + "/file/bot"

    @property
    def me(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # ------------------------------------------------------------------ scripting

    def fail(
        self,
        method: str,
        *,
        status: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` matching calls fail.

        With ``retry_after`` the reply is Telegram's flood-control 429 (status and description
        default accordingly); otherwise status defaults to 400.
        """
        if retry_after is not None:
            status = status or 429
            description = description or f"Too Many Requests: retry after {retry_after}"
        status = status or 400
        if description is None:
            description = "Bad Request: injected failure"
        self._faults.setdefault(method.lower(), []).append(
            _Fault(status, description, retry_after, times, chat_id)
        )

    def hang(self, method: str, seconds: float, times: int = 1, *, apply: bool = True) -> None:
        """Delay the reply of the next ``times`` calls of ``method`` by ``seconds``.

        With ``apply`` (the default) the call takes effect before the delay, as when Telegram
        delivered a message but the reply was slow: a client that times out and retries will
        produce a duplicate, exactly as in production.
        """
        self._hangs.setdefault(method.lower(), deque()).append(_Hang(seconds, times, apply))

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sends get 403."""
        self._chat(chat_id).blocked = blocked

    def add_file(self, content: bytes, *, file_path: str | None = None) -> str:
        """Register a downloadable file; returns its file_id for getFile."""
        file_id = f"FILE{len(self._files) + 1}"
        path = file_path or f"documents/{file_id.lower()}.bin"
        self._files[file_id] = path
        self._file_contents[path] = content
        return file_id

    # ------------------------------------------------------------------ views

    def chat(self, chat_id: int) -> ChatView:
        return self._chat(chat_id).view

    def texts(self, chat_id: int) -> list[str]:
        return self.chat(chat_id).texts

    def calls_of(self, method: str) -> list[Call]:
        return list(self._calls_by_method.get(method.lower(), ()))

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        return list(self._commands.get(self._commands_key(scope, language_code), ()))

    @property
    def pending_updates(self) -> int:
        """Updates queued but not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    # ------------------------------------------------------------------ injecting updates

    def push_update(self, update: JSONDict) -> int:
        """Queue a raw update (``update_id`` is assigned); returns the update_id."""
        update_id = next(self._update_ids)
        self._sent[update_id] = {"update_id": update_id, **update}
        self._updates.append(self._sent[update_id])
        self._last_activity = time.monotonic()
        self._update_signal.fire()
        self._signal.fire()
        return update_id

    def redeliver(self, update_id: int | None = None) -> int:
        """Send an update (by default the last one) again, as Telegram does when the 200 did
        not reach it; returns its update_id."""
        update = self._sent[max(self._sent) if update_id is None else update_id]
        self._updates.append(update)
        self._last_activity = time.monotonic()
        self._update_signal.fire()
        self._signal.fire()
        return int(update["update_id"])

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Ann",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        chat_type: str = "private",
        chat_title: str | None = None,
        entities: list[JSONDict] | None = None,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        is_topic_message: bool = False,
    ) -> int:
        """A user writes ``text``; returns the new message_id.

        A negative ``chat_id`` makes the chat a group ("-100..." a supergroup) and then
        ``user_id`` is required. Commands and @mentions get their entities automatically.
        """
        if chat_id < 0 and chat_type == "private":
            chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        if user_id is None:
            if chat_id < 0:
                raise ValueError("send_text to a group needs user_id")
            user_id = chat_id
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value is not None:
                user[key] = value
        chat = self._remember_chat(chat_id, chat_type, chat_title, user, is_topic_message)
        target = None
        if reply_to_message_id is not None:
            target = chat.index.get(reply_to_message_id)
            if target is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id} to reply to")

        if entities is None:
            entities = _auto_entities(text)
        elif text.startswith("/") and not any(e.get("offset") == 0 for e in entities):
            entities = [e for e in _auto_entities(text) if e["offset"] == 0] + entities

        mid = chat.new_message_id()
        msg = UserMessage(
            message_id=mid,
            text=text,
            user_id=user_id,
            entities=entities,
            reply_to_message_id=reply_to_message_id,
            message_thread_id=message_thread_id,
            chat_id=chat_id,
            date=int(time.time()),
        )
        payload = self._user_message_dict(chat, msg, user)
        if is_topic_message:
            payload["is_topic_message"] = True
        if target is not None:
            payload["reply_to_message"] = self._message_dict(chat, target)
        chat.index[mid] = msg
        chat.view.user_messages.append(msg)
        self._users[(chat_id, user_id)] = user
        self.push_update({"message": payload})
        return mid

    def send_edit(
        self, chat_id: int, message_id: int, text: str, *, entities: list[JSONDict] | None = None
    ) -> int:
        """The user edits an earlier message; returns the update_id."""
        chat = self._chat(chat_id)
        msg = chat.index.get(message_id)
        if not isinstance(msg, UserMessage):
            raise KeyError(f"no user message {message_id} in chat {chat_id}")
        msg.text = text
        msg.entities = _auto_entities(text) if entities is None else entities
        msg.edits += 1
        payload = self._message_dict(chat, msg)
        payload["edit_date"] = int(time.time())
        return self.push_update({"edited_message": payload})

    def send_inline_query(
        self, user_id: int, query: str, *, first_name: str = "Ann", chat_type: str = "sender"
    ) -> str:
        """The user types ``@bot query`` in some chat; returns the inline query id."""
        query_id = f"IQ{next(self._callback_ids)}"
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        self._pending_inline.add(query_id)
        self.push_update(
            {
                "inline_query": {
                    "id": query_id,
                    "from": user,
                    "query": query,
                    "offset": "",
                    "chat_type": chat_type,
                }
            }
        )
        return query_id

    def send_callback(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """The user presses an inline button under ``message_id``; returns the query id."""
        chat = self._chat(chat_id)
        msg = chat.index.get(message_id)
        if msg is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        query_id = f"{next(self._callback_ids)}"
        user = self._users.get(
            (chat_id, user_id), {"id": user_id, "is_bot": False, "first_name": "Ann"}
        )
        query = {
            "id": query_id,
            "from": user,
            "message": self._message_dict(chat, msg),
            "chat_instance": str(abs(chat_id)),
            "data": data,
        }
        self._pending_callbacks[query_id] = query
        self.push_update({"callback_query": query})
        return query_id

    def forum(self, chat_id: int, title: str = "Support") -> None:
        """Make ``chat_id`` a supergroup with topics (where the bot may create topics)."""
        self._chat(chat_id).info = {
            "id": chat_id,
            "type": "supergroup",
            "title": title,
            "is_forum": True,
        }

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """An admin deletes a forum topic: sending into it fails from now on."""
        chat = self._chat(chat_id)
        chat.topics.pop(thread_id, None)
        chat.deleted_topics.add(thread_id)

    def topics(self, chat_id: int) -> dict[int, str]:
        """The forum topics the bot created in ``chat_id`` (thread id -> name)."""
        return dict(self._chat(chat_id).topics)

    def send_media(
        self,
        chat_id: int,
        media: JSONDict,
        *,
        caption: str = "",
        user_id: int | None = None,
        first_name: str = "Ann",
        message_thread_id: int | None = None,
    ) -> int:
        """A user sends a photo, document... (``media`` holds the Message fields, e.g.
        ``{"photo": [...]}``); returns the new message_id. In a forum, ``message_thread_id``
        makes it a topic message."""
        if user_id is None:
            if chat_id < 0:
                raise ValueError("send_media to a group needs user_id")
            user_id = chat_id
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat = self._chat(chat_id)
        if chat_id > 0:
            chat.info = {"id": chat_id, "type": "private", "first_name": first_name}
        msg = UserMessage(
            message_id=chat.new_message_id(),
            text=caption,
            user_id=user_id,
            message_thread_id=message_thread_id,
            chat_id=chat_id,
            date=int(time.time()),
            media=media,
        )
        payload = self._user_message_dict(chat, msg, user)
        if message_thread_id is not None and chat.info.get("is_forum"):
            payload["is_topic_message"] = True
        chat.index[msg.message_id] = msg
        chat.view.user_messages.append(msg)
        self._users[(chat_id, user_id)] = user
        self.push_update({"message": payload})
        return msg.message_id

    def connect_business(
        self,
        connection_id: str,
        owner_id: int,
        *,
        owner_name: str = "Bea",
        enabled: bool = True,
        can_reply: bool = True,
        notify: bool = True,
    ) -> None:
        """A Telegram Business account connects the bot (or changes or ends the connection);
        without ``notify`` the bot gets no update (it can still ask getBusinessConnection)."""
        connection: JSONDict = {
            "id": connection_id,
            "user": {"id": owner_id, "is_bot": False, "first_name": owner_name},
            "user_chat_id": owner_id,
            "date": int(time.time()),
            "is_enabled": enabled,
            "rights": {"can_reply": can_reply},
        }
        self.business_connections[connection_id] = connection
        if notify:
            self.push_update({"business_connection": connection})

    def send_business_text(
        self,
        connection_id: str,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Cy",
        from_owner: bool = False,
        sent_by_bot: bool = False,
    ) -> int:
        """A message in a business account's private chat with customer ``chat_id``: the
        customer's, or the owner's own (``from_owner``), or one the bot sent on the owner's
        behalf (``sent_by_bot``, as Telegram reports those too); returns the message_id."""
        owner = self.business_connections[connection_id]["user"]
        customer: JSONDict = {
            "id": chat_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        sender = owner if from_owner or sent_by_bot else customer
        chat = self._chat(chat_id)
        chat.info = {"id": chat_id, "type": "private", "first_name": first_name}
        msg = UserMessage(
            message_id=chat.new_message_id(),
            text=text,
            user_id=sender["id"],
            entities=_auto_entities(text),
            chat_id=chat_id,
            date=int(time.time()),
        )
        payload = self._user_message_dict(chat, msg, sender)
        payload["business_connection_id"] = connection_id
        if sent_by_bot:
            payload["sender_business_bot"] = {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            }
        chat.index[msg.message_id] = msg
        chat.view.user_messages.append(msg)
        self.push_update({"business_message": payload})
        return msg.message_id

    def _remember_chat(
        self, chat_id: int, chat_type: str, title: str | None, user: JSONDict, forum: bool
    ) -> _Chat:
        chat = self._chat(chat_id)
        forum = forum or bool(chat.info.get("is_forum"))
        if chat_type == "private":
            chat.info = {"id": chat_id, "type": "private"}
            chat.info.update(_without(user, "id", "is_bot", "language_code"))
        else:
            chat.info = {
                "id": chat_id,
                "type": chat_type,
                "title": title or chat.info.get("title") or f"Group {chat_id}",
            }
            if forum:
                chat.info["is_forum"] = True
        return chat

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked after every call and update."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout}s\n{self.describe()}")
            await self._signal.wait(remaining)

    async def wait_messages(self, chat_id: int, n: int, timeout: float = 5.0) -> list[SentMessage]:
        view = self.chat(chat_id)
        await self.wait_for(lambda: len(view.messages) >= n, timeout)
        return view.messages

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 5.0) -> None:
        """Wait until the bot made no call (getUpdates aside) for ``quiet`` seconds.

        Undelivered updates count as activity, so this right after ``send_text`` waits for the
        bot to pick the update up and finish reacting.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = time.monotonic()
            busy = self._in_flight > 0 or self._undelivered()
            since = now - self._last_activity
            if not busy and since >= quiet:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"not idle within {timeout}s\n{self.describe()}")
            await self._signal.wait(min(remaining, quiet if busy else quiet - since))

    def describe(self, last: int = 25) -> str:
        """Recent calls and chats, for assertion messages."""
        lines = [f"last {min(last, len(self.calls))} of {len(self.calls)} calls:"]
        for call in self.calls[-last:]:
            params = json.dumps(call.params, ensure_ascii=False, default=str)
            if len(params) > 200:
                params = params[:200] + "..."
            status = call.status or "pending"
            desc = f" {call.description}" if call.description else ""
            lines.append(f"  {call.method} -> {status}{desc} {params}")
        lines += [c.view.dump() for c in self._chats.values()]
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        key = name.lower()
        entry = self._methods.get(key)
        parse_error: ApiError | None = None
        try:
            params = await _read_params(request)
        except ApiError as err:
            params, parse_error = {}, err
        call = Call(entry[0] if entry else name, params, time.monotonic())
        self.calls.append(call)
        self._calls_by_method.setdefault(key, []).append(call)
        counts = key != "getupdates"
        if counts:
            self._in_flight += 1
            self._last_activity = call.t
        self._signal.fire()
        try:
            hang = self._take_hang(key)
            if hang is not None and not hang.apply:
                await self._sleep(hang.seconds)
            try:
                if request.match_info["token"] != self.token:
                    raise ApiError(401, "Unauthorized")
                if entry is None:
                    raise ApiError(404, "Not Found")
                if parse_error is not None:
                    raise parse_error
                self._inject_fault(key, params)
                self._rate_limit(call.method, params)
                result = await entry[1](params)
            except ApiError as err:
                call.status, call.description = err.status, err.description
                body: JSONDict = err.body()
            else:
                call.status = 200
                body = {"ok": True, "result": result}
            if hang is not None and hang.apply:
                await self._sleep(hang.seconds)
            return web.Response(
                body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                status=call.status,
                content_type="application/json",
            )
        except asyncio.CancelledError:
            # The client hung up (a cancelled long poll, a client-side timeout) or we are stopping.
            call.status, call.description = 499, "client went away"
            raise
        finally:
            if counts:
                self._in_flight -= 1
                self._last_activity = time.monotonic()
            self._signal.fire()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        content = self._file_contents.get(request.match_info["path"])
        if request.match_info["token"] == self.token and content is not None:
            self.downloads.append(request.match_info["path"])
            return web.Response(body=content)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _take_hang(self, key: str) -> _Hang | None:
        queue = self._hangs.get(key)
        if not queue:
            return None
        hang = queue[0]
        hang.times -= 1
        if hang.times <= 0:
            queue.popleft()
        return hang

    def _inject_fault(self, key: str, params: JSONDict) -> None:
        faults = self._faults.get(key)
        if not faults:
            return
        for i, fault in enumerate(faults):
            if fault.chat_id is None or fault.chat_id == params.get("chat_id"):
                fault.times -= 1
                if fault.times <= 0:
                    del faults[i]
                extra = {"retry_after": fault.retry_after} if fault.retry_after else None
                raise ApiError(fault.status, fault.description, extra)

    def _rate_limit(self, method: str, params: JSONDict) -> None:
        limits = self.limits
        if limits is None or method not in limits.methods:
            return
        chat_id = params.get("chat_id")
        now = time.monotonic()
        buckets = [self._bucket("global", 0, limits.global_per_s, limits.global_per_s, now)]
        if isinstance(chat_id, int):
            buckets.append(
                self._bucket("chat", chat_id, limits.per_chat_burst, limits.per_chat_per_s, now)
            )
            if chat_id < 0:
                per_min = limits.per_group_per_min
                buckets.append(self._bucket("group", chat_id, per_min, per_min / 60.0, now))
        wait = max(b.wait(now) for b in buckets)
        if wait > 0:
            self.rate_limited += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        for b in buckets:
            b.tokens -= 1.0

    def _bucket(self, kind: str, key: int, capacity: float, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            bucket = self._buckets[(kind, key)] = _Bucket(capacity, rate, now)
        return bucket

    # ------------------------------------------------------------------ chats and messages

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                info: JSONDict = {"id": chat_id, "type": "private", "first_name": "Ann"}
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                info = {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
            chat = self._chats[chat_id] = _Chat(view=ChatView(chat_id), info=info)
        return chat

    def _target_chat(self, params: JSONDict, *, sending: bool = True) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise _bad("chat not found")
        if self.strict_chats and chat_id not in self._chats:
            raise _bad("chat not found")
        chat = self._chat(chat_id)
        if sending and chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _bot_message(self, params: JSONDict, missing: str) -> tuple[_Chat, SentMessage]:
        if params.get("inline_message_id"):
            raise _bad(missing)
        chat = self._target_chat(params, sending=False)
        msg = chat.index.get(_int(params, "message_id"))
        if msg is None or msg.deleted:
            raise _bad(missing)
        if not isinstance(msg, SentMessage):
            raise _bad("message can't be edited")
        return chat, msg

    def _user_message_dict(self, chat: _Chat, msg: UserMessage, user: JSONDict) -> JSONDict:
        out: JSONDict = {
            "message_id": msg.message_id,
            "from": user,
            "chat": chat.info,
            "date": msg.date,
            "text": msg.text,
        }
        if msg.entities:
            out["entities"] = msg.entities
        if msg.message_thread_id is not None:
            out["message_thread_id"] = msg.message_thread_id
        if msg.media:
            _as_media(out, msg.media)
        return out

    def _message_dict(self, chat: _Chat, msg: SentMessage | UserMessage) -> JSONDict:
        """The message as Telegram would embed it (no nested reply)."""
        if isinstance(msg, UserMessage):
            user = self._users.get(
                (chat.view.chat_id, msg.user_id),
                {"id": msg.user_id, "is_bot": False, "first_name": "Ann"},
            )
            return self._user_message_dict(chat, msg, user)
        out: JSONDict = {
            "message_id": msg.message_id,
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            },
            "chat": chat.info,
            "date": msg.date,
            "text": msg.text,
        }
        if msg.entities:
            out["entities"] = msg.entities
        if msg.media:
            _as_media(out, msg.media)
        if msg.business_connection_id is not None:
            out["business_connection_id"] = msg.business_connection_id
        if msg.message_thread_id is not None:
            out["message_thread_id"] = msg.message_thread_id
            if chat.info.get("is_forum"):
                out["is_topic_message"] = True
        # Only inline keyboards are echoed back in Message objects.
        if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
            out["reply_markup"] = msg.reply_markup
        if msg.edits:
            out["edit_date"] = int(time.time())
        return out

    def _full_message_dict(self, chat: _Chat, msg: SentMessage) -> JSONDict:
        out = self._message_dict(chat, msg)
        if msg.reply_to_message_id is not None:
            target = chat.index.get(msg.reply_to_message_id)
            if target is not None and not target.deleted:
                out["reply_to_message"] = self._message_dict(chat, target)
        return out

    def _reply_target(self, chat: _Chat, params: JSONDict) -> int | None:
        reply = params.get("reply_parameters")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            target_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            if reply.get("chat_id") not in (None, chat.view.chat_id):
                # Cross-chat quotes are not modelled; the reply is shown without a link.
                return None
        else:
            target_id = params.get("reply_to_message_id")
        if target_id is None:
            return None
        if not isinstance(target_id, int):
            raise _bad("message to be replied not found")
        target = chat.index.get(target_id)
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return target_id

    def _message_content(
        self, params: JSONDict, *, allow_empty: bool = False
    ) -> tuple[str, list[JSONDict], str | None]:
        """Validate text+entities like Telegram, returning them as Telegram stores them."""
        raw = params.get("text")
        text = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode")
        if parse_mode is not None and str(parse_mode).lower() not in _PARSE_MODES | {""}:
            raise _bad(f"unsupported parse_mode {parse_mode}")
        raw_entities = params.get("entities")
        entities: list[JSONDict] = []
        if raw_entities is not None:
            entities = _check_entities(text, raw_entities)
        text, entities = _strip(text, entities)
        if not text and not allow_empty:
            raise _bad("message text is empty")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise _bad("message is too long")
        return text, entities, (str(parse_mode) if parse_mode else None)

    def _undelivered(self) -> bool:
        if self.webhook is not None:
            return bool(self._updates)
        return bool(self._updates) and self._updates[-1]["update_id"] > self._delivered_upto

    @staticmethod
    def _commands_key(scope: JSONDict | None, language_code: str | None) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    # ------------------------------------------------------------------ Bot API methods

    async def _true(self, params: JSONDict) -> bool:
        return True

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return self.me

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _opt_int(params, "offset")
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        timeout = params.get("timeout") or 0
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _bad("invalid timeout")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = {str(a) for a in allowed} or None
        # A newer poll ends an older one with 409, as Telegram does when two instances poll.
        self._poll_generation += 1
        generation = self._poll_generation
        self._update_signal.fire()

        if offset is not None:
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = self._take_updates(limit)
            if batch or self._closing.is_set():
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self._update_signal.wait(remaining)
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )

    def _take_updates(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed_updates
        batch: list[JSONDict] = []
        for update in self._updates:
            kind = next((k for k in update if k != "update_id"), "")
            if kind not in _OPT_IN_UPDATES if allowed is None else kind in allowed:
                batch.append(update)
            self._delivered_upto = max(self._delivered_upto, update["update_id"])
            if len(batch) >= limit:
                break
        return batch

    async def _set_webhook(self, params: JSONDict) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("secret token contains unallowed characters")
        connections = params.get("max_connections", 40)
        if not isinstance(connections, int) or not 1 <= connections <= 100:
            raise _bad("invalid max_connections specified")
        if url and not url.startswith(("https://", "http://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = {str(a) for a in params["allowed_updates"]} or None
        # An empty url removes the webhook, as in the real API.
        self.webhook = dict(params) if url else None
        if url and self._deliverer is None:
            self._deliverer = asyncio.create_task(self._deliver_all())
        return True

    async def _delete_webhook(self, params: JSONDict) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        hook = self.webhook or {}
        info: JSONDict = {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook.get("allowed_updates"):
            info["allowed_updates"] = hook["allowed_updates"]
        if hook and self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ------------------------------------------------------------------ webhook delivery

    async def _deliver_all(self) -> None:
        """While a webhook is set: each chat's next update to it, chats concurrently."""
        tasks: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while self.webhook is not None and not self._closing.is_set():
                    limit = int(self.webhook.get("max_connections") or 40)
                    for update in list(self._updates):
                        lane = self._lane_of(update)
                        if len(tasks) >= limit:
                            break
                        if lane in self._delivering:
                            continue
                        if not self._wanted(update):
                            self._updates.remove(update)
                            continue
                        self._delivering.add(lane)
                        task = asyncio.create_task(self._deliver(http, update, lane))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    await self._update_signal.wait(1.0)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._delivering.clear()
            self._deliverer = None

    def _lane_of(self, update: JSONDict) -> object:
        for value in update.values():
            if isinstance(value, dict):
                chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
                return chat.get("id") or (value.get("from") or {}).get("id")
        return None

    def _wanted(self, update: JSONDict) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        allowed = self._allowed_updates
        return kind not in _OPT_IN_UPDATES if allowed is None else kind in allowed

    async def _deliver(self, http: aiohttp.ClientSession, update: JSONDict, lane: object) -> None:
        delay = self.webhook_retry_delay
        try:
            while self.webhook is not None and not self._closing.is_set():
                status = await self._post(http, self.webhook, update)
                if status == 200:
                    with contextlib.suppress(ValueError):
                        self._updates.remove(update)
                    return
                self._webhook_error = (
                    int(time.time()),
                    f"Wrong response from the webhook: {status}",
                )
                await self._sleep(delay)
                delay = min(delay * 2, 2.0)
        finally:
            self._delivering.discard(lane)
            self._last_activity = time.monotonic()
            self._update_signal.fire()
            self._signal.fire()

    async def _post(self, http: aiohttp.ClientSession, hook: JSONDict, update: JSONDict) -> int:
        url = str(hook["url"])
        if self.webhook_origins:
            origin = self.webhook_origins[next(self._origin) % len(self.webhook_origins)]
            parts = url.split("/", 3)
            url = origin.rstrip("/") + "/" + (parts[3] if len(parts) > 3 else "")
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        started = time.perf_counter()
        try:
            async with http.post(url, data=json.dumps(update), headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            status = 0
        self.deliveries.append(
            Delivery(update["update_id"], url, status, time.perf_counter() - started)
        )
        self._signal.fire()
        return status

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[JSONDict] = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = str(cmd.get("command", ""))
            desc = str(cmd.get("description", ""))
            if not _COMMAND.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(desc) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": desc})
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = cleaned
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        return self._commands.get(key, [])

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands.pop(key, None)
        return True

    def _set_bot_info(self, kind: str) -> Handler:
        async def handler(params: JSONDict) -> bool:
            lang = str(params.get("language_code") or "")
            value = str(params.get(kind) or "")
            if value:
                self.bot_info[kind][lang] = value
            else:
                self.bot_info[kind].pop(lang, None)
            return True

        return handler

    def _get_bot_info(self, kind: str) -> Handler:
        async def handler(params: JSONDict) -> JSONDict:
            lang = str(params.get("language_code") or "")
            store = self.bot_info[kind]
            return {kind: store.get(lang, store.get("", ""))}

        return handler

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params)
        business = self._business(params)
        self._check_thread(chat, params)
        text, entities, parse_mode = self._message_content(params)
        reply_to = self._reply_target(chat, params)
        markup = params.get("reply_markup")
        now = time.monotonic()
        msg = SentMessage(
            message_id=chat.new_message_id(),
            text=text,
            entities=entities,
            reply_to_message_id=reply_to,
            message_thread_id=_opt_int(params, "message_thread_id"),
            reply_markup=markup if isinstance(markup, dict) else None,
            history=[(now, text)],
            chat_id=chat.view.chat_id,
            date=int(time.time()),
            parse_mode=parse_mode,
            business_connection_id=business,
        )
        chat.index[msg.message_id] = msg
        chat.view.all_messages.append(msg)
        return self._full_message_dict(chat, msg)

    async def _edit_message_text(self, params: JSONDict) -> JSONDict:
        chat, msg = self._bot_message(params, "message to edit not found")
        # A message sent on a business's behalf is edited through the same connection only.
        if self._business(params) != msg.business_connection_id:
            raise _bad("message to edit not found")
        text, entities, parse_mode = self._message_content(params)
        raw_markup = params.get("reply_markup")
        # Omitting reply_markup in an edit removes the inline keyboard, as in the real API.
        markup = raw_markup if isinstance(raw_markup, dict) else None
        if (
            text == msg.text
            and _canonical(entities) == _canonical(msg.entities)
            and _canonical(markup) == _canonical(msg.reply_markup)
        ):
            raise _bad(NOT_MODIFIED)
        if text != msg.text:
            msg.history.append((time.monotonic(), text))
        msg.text, msg.entities, msg.reply_markup = text, entities, markup
        msg.parse_mode = parse_mode
        msg.edits += 1
        return self._full_message_dict(chat, msg)

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        chat, msg = self._bot_message(params, "message to edit not found")
        raw_markup = params.get("reply_markup")
        markup = raw_markup if isinstance(raw_markup, dict) else None
        if _canonical(markup) == _canonical(msg.reply_markup):
            raise _bad(NOT_MODIFIED)
        msg.reply_markup = markup
        msg.edits += 1
        return self._full_message_dict(chat, msg)

    async def _send_message_draft(self, params: JSONDict) -> bool:
        if not self.drafts_supported:
            raise _bad("method is not available")
        chat = self._target_chat(params)
        if chat.view.chat_id < 0 or chat.info.get("type") != "private":
            raise _bad("TEXTDRAFT_PEER_INVALID")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise _bad("TEXTDRAFT_ID_INVALID")
        # Since Bot API 10.0 an empty draft is valid: clients show a "thinking" placeholder.
        text, entities, _ = self._message_content(params, allow_empty=True)
        chat.view.drafts.append(
            Draft(
                draft_id=draft_id,
                text=text,
                entities=entities,
                t=time.monotonic(),
                message_thread_id=_opt_int(params, "message_thread_id"),
            )
        )
        return True

    async def _send_chat_action(self, params: JSONDict) -> bool:
        chat = self._target_chat(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        chat.view.actions.append(str(action))
        return True

    async def _delete_message(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, sending=False)
        msg = chat.index.get(_int(params, "message_id"))
        if msg is None or msg.deleted:
            raise _bad("message to delete not found")
        msg.deleted = True
        return True

    async def _delete_messages(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, sending=False)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message_ids must be a non-empty list of at most 100 identifiers")
        for mid in ids:
            msg = chat.index.get(mid) if isinstance(mid, int) else None
            if msg is not None:
                msg.deleted = True
        return True

    async def _set_message_reaction(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, sending=False)
        if chat.index.get(_int(params, "message_id")) is None:
            raise _bad("message to react not found")
        self.reactions.append(params)
        return True

    async def _answer_inline_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("inline_query_id", ""))
        if query_id not in self._pending_inline:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        results = params.get("results")
        if not isinstance(results, list) or len(results) > 50:
            raise _bad("RESULTS_TOO_MUCH" if isinstance(results, list) else "can't parse results")
        for result in results:
            _check_inline_result(result)
        button = params.get("button")
        if button is not None and not (
            isinstance(button, dict)
            and button.get("text")
            and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(button.get("start_parameter", "")))
        ):
            raise _bad("BUTTON_INVALID")
        cache_time = params.get("cache_time", 300)
        if not isinstance(cache_time, int) or cache_time < 0:
            raise _bad("invalid cache_time")
        self._pending_inline.discard(query_id)
        self.inline_answers[query_id] = params
        return True

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._pending_callbacks.pop(query_id, None) is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self.callback_answers[query_id] = params
        return True

    async def _get_chat_member(self, params: JSONDict) -> JSONDict:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        user = self._users.get((chat_id, user_id), {"id": user_id, "is_bot": False})
        user = {"first_name": "User", **user}
        if user_id in self.admins.get(chat_id, set()):
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        return {"status": "member", "user": user}

    async def _get_chat(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, sending=False)
        return {
            **chat.info,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_file(self, params: JSONDict) -> JSONDict:
        file_id = str(params.get("file_id", ""))
        file_path = self._files.get(file_id)
        if file_path is None:
            raise _bad("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"U{file_id}",
            "file_size": len(self._file_contents[file_path]),
            "file_path": file_path,
        }

    # ------------------------------------------------------------------ customer service

    def _business(self, params: JSONDict) -> str | None:
        """The business connection a call acts through (None: the bot itself), checked."""
        connection_id = params.get("business_connection_id")
        if connection_id is None:
            return None
        connection = self.business_connections.get(str(connection_id))
        if connection is None or not connection["is_enabled"]:
            raise _bad("BUSINESS_CONNECTION_INVALID")
        if not connection["rights"].get("can_reply"):
            raise _bad("BUSINESS_CONNECTION_NOT_ALLOWED")
        return str(connection_id)

    def _check_thread(self, chat: _Chat, params: JSONDict) -> None:
        if params.get("message_thread_id") in chat.deleted_topics:
            raise _bad("message thread not found")

    async def _create_forum_topic(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params)
        if not chat.info.get("is_forum"):
            raise _bad("the chat is not a forum")
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise _bad("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
        # As in Telegram, a topic's thread id is the id of its (service) first message.
        thread_id = chat.new_message_id()
        chat.topics[thread_id] = name
        return {"message_thread_id": thread_id, "name": name, "icon_color": 7322096}

    async def _copy_message(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params)
        self._check_thread(chat, params)
        from_chat = params.get("from_chat_id")
        source = self._chats.get(from_chat) if isinstance(from_chat, int) else None
        if source is None:
            raise _bad("chat not found")
        original = source.index.get(_int(params, "message_id"))
        if original is None or original.deleted:
            raise _bad("message to copy not found")
        msg = SentMessage(
            message_id=chat.new_message_id(),
            text=original.text,
            entities=list(original.entities),
            message_thread_id=_opt_int(params, "message_thread_id"),
            history=[(time.monotonic(), original.text)],
            chat_id=chat.view.chat_id,
            date=int(time.time()),
            media=dict(original.media) if original.media else None,
            content=original.content if isinstance(original, SentMessage) else None,
        )
        chat.index[msg.message_id] = msg
        chat.view.all_messages.append(msg)
        return {"message_id": msg.message_id}

    async def _send_document(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params)
        self._check_thread(chat, params)
        document, content = params.get("document"), None
        if isinstance(document, dict) and "content" in document:
            content = bytes(document["content"])
            file_id = f"DOC{len(self.calls)}"
            info: JSONDict = {
                "file_id": file_id,
                "file_unique_id": f"U{file_id}",
                "file_name": document.get("filename") or "document",
                "mime_type": document.get("content_type") or "application/octet-stream",
                "file_size": len(content),
            }
        elif isinstance(document, str) and document:
            info = {"file_id": document, "file_unique_id": f"U{document}"}
        else:
            raise _bad("there is no document in the request")
        caption = str(params.get("caption") or "")
        msg = SentMessage(
            message_id=chat.new_message_id(),
            text=caption,
            message_thread_id=_opt_int(params, "message_thread_id"),
            history=[(time.monotonic(), caption)],
            chat_id=chat.view.chat_id,
            date=int(time.time()),
            media={"document": info},
            content=content,
        )
        chat.index[msg.message_id] = msg
        chat.view.all_messages.append(msg)
        return self._full_message_dict(chat, msg)

    async def _get_business_connection(self, params: JSONDict) -> JSONDict:
        connection = self.business_connections.get(str(params.get("business_connection_id")))
        if connection is None:
            raise _bad("BUSINESS_CONNECTION_INVALID")
        return connection

    async def _delete_business_messages(self, params: JSONDict) -> bool:
        connection_id = self._business(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message_ids must be a non-empty list of at most 100 identifiers")
        for chat in self._chats.values():
            for mid in ids:
                msg = chat.index.get(mid) if isinstance(mid, int) else None
                if isinstance(msg, SentMessage) and msg.business_connection_id == connection_id:
                    msg.deleted = True
        return True


# ---------------------------------------------------------------------- helpers


def _as_media(out: JSONDict, media: JSONDict) -> None:
    """A message dict with media: the media fields, the text as its caption."""
    out.update(media)
    text = out.pop("text", "")
    entities = out.pop("entities", None)
    if text:
        out["caption"] = text
        if entities:
            out["caption_entities"] = entities


async def _read_params(request: web.Request) -> JSONDict:
    """Merge query, form, multipart or JSON parameters the way the Bot API accepts them."""
    params: JSONDict = dict(request.query)
    if request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError as err:
                raise _bad("can't parse JSON request body") from err
            if not isinstance(body, dict):
                raise _bad("can't parse JSON request body")
            params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": len(data),
                        "content": data,
                    }
                else:
                    params[key] = value
    return {key: _decode(key, value) for key, value in params.items()}


def _decode(key: str, value: Any) -> Any:
    """Undo the form encoding: nested objects arrive as JSON text, numbers as digits."""
    if not isinstance(value, str) or key in _TEXT_PARAMS:
        return value
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError as err:
            raise _bad(f"can't parse {key} JSON object") from err
    if stripped in ("true", "false"):
        return stripped == "true"
    # Only id-like and counter parameters are numeric; opaque *_id strings are in _TEXT_PARAMS.
    if _NUMBER.fullmatch(stripped) and (
        key.endswith(("_id", "_ids"))
        or key in {"offset", "limit", "timeout", "cache_time", "max_connections"}
    ):
        return float(stripped) if "." in stripped else int(stripped)
    return value


def _int(params: JSONDict, key: str) -> int:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{key} is empty" if value in (None, "") else f"invalid {key}")
    return value


def _opt_int(params: JSONDict, key: str) -> int | None:
    return None if params.get(key) is None else _int(params, key)


def _without(d: JSONDict, *keys: str) -> JSONDict:
    return {k: v for k, v in d.items() if k not in keys}


def _canonical(value: Any) -> str:
    """Order-insensitive form for "not modified" comparisons."""
    return json.dumps(value or None, sort_keys=True, ensure_ascii=False)


def _check_entities(text: str, raw: Any) -> list[JSONDict]:
    if not isinstance(raw, list):
        raise _bad("can't parse entities: entities must be an array")
    size = utf16_len(text)
    out: list[JSONDict] = []
    for i, ent in enumerate(raw):
        if not isinstance(ent, dict):
            raise _bad(f"can't parse entities: entity {i} is not an object")
        kind, offset, length = ent.get("type"), ent.get("offset"), ent.get("length")
        if kind not in _ENTITY_TYPES:
            raise _bad(f"can't parse entities: unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise _bad(f"can't parse entities: entity {i} needs integer offset and length")
        if offset < 0 or length <= 0:
            raise _bad(f"can't parse entities: entity {i} has invalid offset or length")
        if offset + length > size:
            raise _bad(
                f"can't parse entities: entity {i} ends at {offset + length}, "
                f"beyond the end of the text ({size} UTF-16 code units)"
            )
        if kind == "text_link" and not ent.get("url"):
            raise _bad("can't parse entities: text_link entity without url")
        if kind == "text_mention" and not isinstance(ent.get("user"), dict):
            raise _bad("can't parse entities: text_mention entity without user")
        if kind == "custom_emoji" and not ent.get("custom_emoji_id"):
            raise _bad("can't parse entities: custom_emoji entity without custom_emoji_id")
        out.append({k: v for k, v in ent.items() if v is not None})
    return out


def _check_inline_result(result: Any) -> None:
    """An InlineQueryResultArticle as Telegram checks it (other result types are not used)."""
    if not isinstance(result, dict) or result.get("type") != "article":
        raise _bad("RESULT_TYPE_INVALID")
    if not 1 <= len(str(result.get("id", "")).encode()) <= 64:
        raise _bad("RESULT_ID_INVALID")
    if not str(result.get("title", "")).strip():
        raise _bad("RESULT_TITLE_EMPTY")
    content = result.get("input_message_content")
    if not isinstance(content, dict):
        raise _bad("input_message_content is required")
    text = content.get("message_text")
    if not isinstance(text, str) or not text.strip():
        raise _bad("MESSAGE_EMPTY")
    if utf16_len(text) > MAX_TEXT_UTF16:
        raise _bad("MESSAGE_TOO_LONG")
    if content.get("entities") is not None:
        _check_entities(text, content["entities"])


def _strip(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Trim surrounding blanks as Telegram does, moving entities along."""
    start, end = 0, len(text)
    while start < end and _is_stripped_char(text[start]):
        start += 1
    while end > start and _is_stripped_char(text[end - 1]):
        end -= 1
    if start == 0 and end == len(text):
        return text, entities
    shift = utf16_len(text[:start])
    stripped = text[start:end]
    size = utf16_len(stripped)
    moved: list[JSONDict] = []
    for ent in entities:
        a = max(ent["offset"] - shift, 0)
        b = min(ent["offset"] + ent["length"] - shift, size)
        if b > a:
            moved.append({**ent, "offset": a, "length": b - a})
    return stripped, moved


def _auto_entities(text: str) -> list[JSONDict]:
    found: list[JSONDict] = []
    for pattern, kind in ((_AUTO_COMMAND, "bot_command"), (_AUTO_MENTION, "mention")):
        for m in pattern.finditer(text):
            found.append(
                {
                    "offset": utf16_len(text[: m.start()]),
                    "length": utf16_len(m.group()),
                    "type": kind,
                }
            )
    found.sort(key=lambda e: e["offset"])
    return found
