"""The running bot's parts, as handlers see them (built once, by bot.app)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.customer import CustomerService
from bot.engine import Engine, Report
from bot.groups import Groups
from bot.inline import InlineAnswers
from bot.languages import Languages
from bot.media import Media
from bot.outbox import Outbox, Target
from bot.stream import Buttons, DraftSupport, ReplyStream, StreamConfig
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
    # Feedback and /stats, Telegram Business, the human handoff desk (bot/customer.py).
    customer: CustomerService
    # Each user's language (/language, else Telegram's).
    languages: Languages
    # Photos, voice and documents (bot/media.py); inline mode, None unless INLINE_MODE is on.
    media: Media | None = None
    inline: InlineAnswers | None = None

    def reply_stream(
        self,
        target: Target,
        report: Report | None = None,
        buttons: Buttons | None = None,
        *,
        language: str,
    ) -> ReplyStream:
        """The sink of one reply, its notices in `language`; with `buttons`, a model's answer
        carries them (`report`)."""
        return ReplyStream(
            self.outbox,
            target,
            self.stream_config,
            self.drafts,
            report=report,
            buttons=buttons,
            language=language,
        )


class BotData:
    """PTB's bot_data: holds the services once the application has started."""

    def __init__(self) -> None:
        self.services: Services | None = None
