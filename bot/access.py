"""Pure: who may talk to the bot, and where.

- ALLOWED_USER_IDS: the people who may use the bot, anywhere (empty: everyone);
- ALLOWED_CHAT_IDS: the groups the bot answers in (empty: every group). A private chat is the
  user's own, so only ALLOWED_USER_IDS applies there;
- ADMIN_USER_IDS: always allowed, and exempt from rate limits and quotas.

Both lists must let a message through. A refused user is told so politely, with the id the
operator needs to allow them, and the model is never asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import texts


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    admins: frozenset[int] = frozenset()

    @classmethod
    def of(
        cls, users: tuple[int, ...], chats: tuple[int, ...], admins: tuple[int, ...]
    ) -> AccessPolicy:
        return cls(frozenset(users), frozenset(chats), frozenset(admins))

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins


def refusal(policy: AccessPolicy, user_id: int, chat_id: int) -> str | None:
    """None when the user may be answered in this chat; otherwise what to tell them."""
    if policy.is_admin(user_id):
        return None
    private = chat_id == user_id
    if policy.allowed_users and user_id not in policy.allowed_users:
        return texts.not_approved(user_id)
    if not private and policy.allowed_chats and chat_id not in policy.allowed_chats:
        return texts.group_not_allowed(chat_id)
    return None
