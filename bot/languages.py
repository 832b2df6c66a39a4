"""Which language the bot speaks with each user: their /language choice, else their Telegram's.

A user's language has two sides. The bot's own messages (bot/texts.py) come in one of the
languages it has catalogues for (bot/i18n.py): the one the user chose with /language, else the
one their Telegram app is set to ("pt-br" counts as Portuguese), else DEFAULT_LANGUAGE. The model
is told the choice, else Telegram's code as it came: it speaks many more languages than the
catalogues, so a German user gets German answers around English notices.

A choice is stored in Redis (bot/memory.py) and read once per user per CACHE_S: a message does
not pay a round trip for it, a change made on this replica applies at once, one made on another
replica within CACHE_S. Without Redis the Telegram language is used.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from bot.errors import MemoryUnavailable
from bot.i18n import LANGUAGES, load_all, supported
from bot.memory import Memory

CACHE_S = 60.0
# While Redis fails, ask it again this soon.
RETRY_S = 5.0
CACHE_USERS = 50_000


@dataclass(frozen=True, slots=True)
class Language:
    # The bot's own messages: a code of bot.i18n.LANGUAGES.
    ui: str
    # For the model (the persona's {language}): the user's choice, else Telegram's code as
    # given ("" when it gave none).
    spoken: str = ""
    # Set with /language (rather than taken from Telegram).
    chosen: bool = False


@dataclass(slots=True)
class _Known:
    chosen: str | None
    until: float
    # The language code of the user's latest update here, for messages sent on the bot's own
    # initiative (a handoff ending).
    telegram: str = ""


class Languages:
    def __init__(self, memory: Memory, default: str, *, cache_s: float = CACHE_S) -> None:
        if default not in LANGUAGES:
            raise ValueError(f"{default!r} is not one of {', '.join(LANGUAGES)}")
        self._memory = memory
        self.default = default
        self._cache_s = cache_s
        self._known: OrderedDict[int, _Known] = OrderedDict()
        self._reading: dict[int, asyncio.Future[_Known]] = {}
        load_all()

    async def of(self, user_id: int, telegram: str | None) -> Language:
        """The user's language, with the code Telegram gave with their update."""
        known = await self._look_up(user_id)
        known.telegram = telegram or known.telegram
        if known.chosen is not None:
            return Language(known.chosen, known.chosen, chosen=True)
        return Language(supported(telegram) or self.default, telegram or "")

    def peek(self, user_id: int, telegram: str | None) -> Language:
        """`of` without reading Redis: what this replica knows, else Telegram's language. For
        answers, whose memory read brings the stored choice along (Engine.use_language)."""
        known = self._known.get(user_id)
        if known is not None and known.chosen is not None:
            return Language(known.chosen, known.chosen, chosen=True)
        return Language(supported(telegram) or self.default, telegram or "")

    def learned(self, user_id: int, chosen: str | None, telegram: str | None) -> None:
        """The choice as an answer's memory read found it: later notices need no read."""
        if chosen is not None and chosen not in LANGUAGES:
            chosen = None
        until = time.monotonic() + self._cache_s
        self._remember(user_id, _Known(chosen, until, telegram or ""))

    async def ui(self, user_id: int) -> str:
        """The language of a message the bot sends on its own (no update to go by): the
        choice, else the Telegram language last seen here, else the default."""
        known = await self._look_up(user_id)
        return known.chosen or supported(known.telegram) or self.default

    async def choose(self, user_id: int, language: str | None) -> None:
        """Keep the user's choice (a code of LANGUAGES); None goes back to Telegram's.
        Raises MemoryUnavailable."""
        await self._memory.set_language(user_id, language)
        known = self._known.get(user_id)
        telegram = known.telegram if known is not None else ""
        self._remember(user_id, _Known(language, time.monotonic() + self._cache_s, telegram))

    def forget(self, user_id: int) -> None:
        """The user's data was deleted: the choice goes with it."""
        self._known.pop(user_id, None)

    async def _look_up(self, user_id: int) -> _Known:
        known = self._known.get(user_id)
        if known is not None and known.until > time.monotonic():
            self._known.move_to_end(user_id)
            return known
        # One read per user at a time; the messages waiting for it resume in their order of
        # arrival, so the lookup cannot reorder one conversation's messages (bot.ordering).
        reading = self._reading.get(user_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(user_id, known))
            self._reading[user_id] = reading
        return await asyncio.shield(reading)

    async def _read(self, user_id: int, known: _Known | None) -> _Known:
        now = time.monotonic()
        try:
            chosen, until = await self._memory.language(user_id), now + self._cache_s
        except MemoryUnavailable:
            # Keep what was known; ask again soon.
            chosen, until = (known.chosen if known is not None else None), now + RETRY_S
        finally:
            self._reading.pop(user_id, None)
        current = self._known.get(user_id)
        if current is not None and current is not known:
            return current  # chosen with /language while this read was on its way
        if chosen not in LANGUAGES:
            chosen = None
        fresh = _Known(chosen, until, known.telegram if known is not None else "")
        self._remember(user_id, fresh)
        return fresh

    def _remember(self, user_id: int, known: _Known) -> None:
        self._known[user_id] = known
        self._known.move_to_end(user_id)
        while len(self._known) > CACHE_USERS:
            self._known.popitem(last=False)
