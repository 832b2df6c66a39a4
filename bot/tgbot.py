"""PTB's bot, made tolerant of updates it cannot parse.

PTB parses a whole getUpdates batch at once; one update it cannot read (a malformed one, or a
field from a newer Bot API) makes the batch fail, and the same batch is fetched again forever:
every chat stalls. Here each update is parsed on its own, and one that cannot be read is replaced
by an empty Update with the same id, which no handler matches, so the offset moves past it.
"""

from __future__ import annotations

import datetime as dtm
import logging
from typing import Any, cast

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.ext import ExtBot

log = logging.getLogger(__name__)


class TolerantBot(ExtBot[None]):
    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,  # noqa: ASYNC109 - PTB's signature
        allowed_updates: Any = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        data: JSONDict = {
            "timeout": timeout,
            "offset": offset,
            "limit": limit,
            "allowed_updates": allowed_updates,
        }
        base = (
            self._request[0].read_timeout
            if isinstance(read_timeout, DefaultValue)
            else read_timeout
        )
        waiting = timeout.total_seconds() if isinstance(timeout, dtm.timedelta) else timeout
        raw = cast(
            "list[JSONDict]",
            await self._post(
                "getUpdates",
                data,
                read_timeout=(base or 0) + (waiting or 0),
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
                api_kwargs=api_kwargs,
            ),
        )
        updates = tuple(self.parse_update(item) for item in raw)
        for update in updates:
            self.insert_callback_data(update)
        return updates

    def parse_update(self, item: JSONDict) -> Update:
        try:
            update = Update.de_json(item, self)
        except Exception as exc:  # noqa: BLE001 - any parsing failure must not stall polling
            update_id = item.get("update_id") if isinstance(item, dict) else None
            kinds = sorted(k for k in item if k != "update_id") if isinstance(item, dict) else []
            log.warning(
                "skipped update %s that could not be read (%s; fields %s)",
                update_id,
                type(exc).__name__,
                kinds,
            )
            return Update(update_id=int(update_id) if isinstance(update_id, int) else 0)
        return update
