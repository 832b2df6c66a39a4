"""The running bot's parts, as handlers see them (built once, by bot.app)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine import Engine
from bot.groups import Groups
from bot.outbox import Outbox, Target
from bot.stream import DraftSupport, ReplyStream, StreamConfig
from bot.userdata import UserData


@dataclass(slots=True)
class Services:
    engine: Engine
    userdata: UserData
    groups: Groups
    outbox: Outbox
    drafts: DraftSupport
    stream_config: StreamConfig
    bot_name: str
    bot_username: str

    def reply_stream(self, target: Target) -> ReplyStream:
        return ReplyStream(self.outbox, target, self.stream_config, self.drafts)


class BotData:
    """PTB's bot_data: holds the services once the application has started."""

    def __init__(self) -> None:
        self.services: Services | None = None
