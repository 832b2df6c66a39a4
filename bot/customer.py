"""The customer-service parts that need Telegram, built once the bot is connected: feedback and
/stats (bot.feedback), Telegram Business (bot.business) and, with SUPPORT_CHAT_ID, the human
handoff desk (bot.handoff). The persona lives with the engine (bot.persona); the knowledge
base, access lists and limits in the gate (bot.gate)."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Bot

from bot.access import AccessPolicy
from bot.business import Business
from bot.feedback import Feedback
from bot.handoff import Desk, DeskConfig
from bot.languages import Languages
from bot.memory import Memory
from bot.outbox import Outbox
from bot.settings import Settings

DAY_S = 86400


@dataclass(slots=True)
class CustomerService:
    feedback: Feedback
    business: Business
    desk: Desk | None = None

    async def close(self) -> None:
        if self.desk is not None:
            await self.desk.close()
        await self.feedback.close()


def desk_config(settings: Settings) -> DeskConfig:
    assert settings.support_chat_id is not None
    idle_s = settings.handoff_idle_hours * 3600
    ttl_s = int(max(idle_s + DAY_S, settings.memory_ttl_days * DAY_S))
    return DeskConfig(settings.support_chat_id, idle_s, ttl_s)


async def open_customer_service(
    settings: Settings,
    memory: Memory,
    bot: Bot,
    outbox: Outbox,
    bot_name: str,
    *,
    languages: Languages | None = None,
) -> CustomerService:
    access = AccessPolicy.of(
        settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids
    )
    feedback = Feedback(
        memory,
        buttons=settings.feedback_buttons,
        admins=access.admins,
        ttl_s=int(settings.memory_ttl_days * DAY_S),
    )
    await feedback.start()
    business = Business(bot, memory, access, settings.business_pause_minutes)
    desk = None
    if settings.support_chat_id is not None:
        desk = Desk(bot, outbox, memory, desk_config(settings), bot_name, languages=languages)
        await desk.start()
    return CustomerService(feedback, business, desk)
