"""What stands between a message and the model: access lists, limits, the knowledge base.

The engine asks the gate three things: `admit` before anything else (may this user be answered
here, now? if not, the refusal to show, and the model is not asked); `lookup` for the question
(knowledge-base excerpts for the prompt, or in strict mode the reply to give without the model);
and `charge` once the model has answered (the tokens spent, for the daily quota).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.access import AccessPolicy, refusal
from bot.conversation import TokenEstimator, Turn, history_tokens
from bot.limits import Limits
from bot.llm import Answer
from bot.memory import ConversationKey

if TYPE_CHECKING:
    # Imported only when a knowledge base is configured: it brings numpy and bm25s (~20 MB).
    from bot.knowledge import Knowledge


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the knowledge base adds to a question: excerpts for the prompt, or a reply instead
    of asking the model (strict mode, nothing relevant)."""

    prompt: str = ""
    reply: str | None = None


class Gate:
    def __init__(
        self,
        access: AccessPolicy | None = None,
        limits: Limits | None = None,
        knowledge: Knowledge | None = None,
    ) -> None:
        self._access = access or AccessPolicy()
        self._limits = limits
        self._knowledge = knowledge

    async def admit(self, key: ConversationKey) -> str | None:
        """None when the message may be answered; else the refusal (access first, then limits).
        A business chat's customer needs no access of their own: bot.business checks the
        business owner's."""
        refused = None if key.business else refusal(self._access, key.user_id, key.chat_id)
        if refused is None and self._limits is not None:
            refused = await self._limits.check(key.user_id)
        return refused

    async def lookup(self, question: str) -> Lookup:
        if self._knowledge is None:
            return Lookup()
        return await self._knowledge.lookup(question)

    async def charge(self, key: ConversationKey, tokens: int) -> None:
        if self._limits is not None:
            await self._limits.charge(key.user_id, tokens)


def tokens_spent(
    answer: Answer, estimator: TokenEstimator, question: str, history: Sequence[Turn]
) -> int:
    """The tokens one model call cost: as the server reported them, else estimated (the
    estimate counts the whole history, an upper bound of what was packed)."""
    if not answer.text and not answer.completion_tokens:
        return 0
    prompt = answer.prompt_tokens or estimator.estimate(question) + history_tokens(history)
    return prompt + (answer.completion_tokens or estimator.estimate(answer.text))
