"""Pure: where a raw Telegram update belongs in the durable queue (bot.updatequeue).

A `Route` names the update's shard (one of QUEUE_SHARDS streams, chosen by chat, so every update
of a chat lands in the same stream and keeps its order) and its lane (the chat and the user: the
updates of one lane are processed one after the other; different lanes run concurrently).
`/stop` is the exception: it must act while the answer it stops is still being written, so it
jumps the queue of its lane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_STOP = re.compile(r"/stop(?:@\w+)?(?:\s|$)")
_MESSAGES = ("message", "edited_message", "business_message", "edited_business_message")


@dataclass(frozen=True, slots=True)
class Route:
    update_id: int
    chat_id: int
    user_id: int
    immediate: bool = False

    def shard(self, shards: int) -> int:
        return self.chat_id % shards

    @property
    def lane(self) -> str:
        """The chat and the user; "" for an update that runs at once (outside every lane)."""
        return "" if self.immediate else f"{self.chat_id}:{self.user_id}"


def _id(obj: Any, *path: str) -> int | None:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, int) and not isinstance(obj, bool) else None


def route(update: Any) -> Route | None:
    """The route of a decoded update; None when it has no integer `update_id`."""
    update_id = _id(update, "update_id")
    if update_id is None:
        return None
    for kind in _MESSAGES:
        message = update.get(kind)
        if isinstance(message, dict):
            chat = _id(message, "chat", "id") or 0
            user = _id(message, "from", "id") or _id(message, "sender_chat", "id") or chat
            text = message.get("text")
            stop = kind == "message" and isinstance(text, str) and bool(_STOP.match(text))
            return Route(update_id, chat, user, immediate=stop)
    for value in update.values():
        if isinstance(value, dict):
            user = _id(value, "from", "id") or _id(value, "user", "id") or 0
            chat = _id(value, "message", "chat", "id") or _id(value, "chat", "id") or user
            return Route(update_id, chat, user)
    return Route(update_id, 0, 0)
