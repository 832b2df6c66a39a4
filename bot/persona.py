"""The persona (the system prompt's template) and the handoff marker the model may end with.

The persona comes from SYSTEM_PROMPT_FILE, else SYSTEM_PROMPT, else the built-in default (which,
with SUPPORT_CHAT_ID set, also tells the model how to hand a customer over to a person). A file
persona is reloaded without a restart: every CHECK_S a background task looks at the file's size,
modification time and inode (no read unless one changed), and SIGHUP re-reads it at once. A file
that cannot be read keeps the persona in use and logs a warning.

The handoff marker: a model that decides the user needs a person ends its answer with a line
`[[HANDOFF]]`. The engine strips it from what is shown and stored (`split_handoff`, and
`visible` for the previews, so it never flashes on screen) and reports the handoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Callable
from pathlib import Path

from bot import texts
from bot.settings import Settings

log = logging.getLogger(__name__)

CHECK_S = 1.0
HANDOFF_MARKER = "[[HANDOFF]]"
HANDOFF_INSTRUCTIONS = (
    "If the user asks for a human, or you cannot help them, say that you are passing them to a "
    f"person from the team, and end your answer with a line containing only {HANDOFF_MARKER}"
)
# What is shown when the model's answer was the marker alone.
HANDED_OVER = texts.HANDED_OVER

_MARKER = re.compile(r"[ \t]*\[\[\s*HANDOFF\s*\]\][ \t]*\n?", re.IGNORECASE)

Fingerprint = tuple[int, int, int]


def split_handoff(text: str) -> tuple[str, bool]:
    """The answer without the handoff marker, and whether it had one."""
    if "[[" not in text:
        return text, False
    cleaned, found = _MARKER.subn("", text)
    if not found:
        return text, False
    return cleaned.rstrip() or HANDED_OVER, True


def visible(text: str) -> str:
    """A partial answer as it may be shown: no marker, not even one still being written."""
    tail = text[-len(HANDOFF_MARKER) :]
    if "[" not in tail and "[[" not in text:
        return text
    text = _MARKER.sub("", text)
    tail = text[-len(HANDOFF_MARKER) :].upper()
    for size in range(len(HANDOFF_MARKER) - 1, 0, -1):
        if tail.endswith(HANDOFF_MARKER[:size]):
            return text[:-size]
    return text


def template_of(settings: Settings) -> str:
    """The persona at start: the file, SYSTEM_PROMPT, or the default (with the handoff
    instructions when there is a support chat to hand over to)."""
    template = settings.system_prompt_template()
    default = settings.system_prompt_file is None and settings.system_prompt is None
    if default and settings.support_chat_id is not None:
        return f"{template} {HANDOFF_INSTRUCTIONS}"
    return template


def _fingerprint(path: Path) -> Fingerprint | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class Persona:
    """The current template; `on_change` gets every new one."""

    def __init__(
        self,
        template: str,
        path: Path | None,
        on_change: Callable[[str], None],
        *,
        check_s: float = CHECK_S,
    ) -> None:
        self.template = template
        self._path = path
        self._on_change = on_change
        self._check_s = check_s
        self._seen = _fingerprint(path) if path is not None else None
        self._task: asyncio.Task[None] | None = None
        self._signal = False

    async def start(self) -> None:
        """Watch the file (if there is one) and listen for SIGHUP (main thread only)."""
        if self._path is None:
            return
        self._task = asyncio.create_task(self._watch())
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)
            self._signal = True

    async def close(self) -> None:
        if self._signal:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reload(self) -> None:
        """Read the file again now (SIGHUP)."""
        if self._path is None:
            log.info("SIGHUP: no SYSTEM_PROMPT_FILE to reload")
            return
        self._seen = _fingerprint(self._path)
        self._read(self._path, "SIGHUP")

    async def _watch(self) -> None:
        assert self._path is not None
        path = self._path
        while True:
            await asyncio.sleep(self._check_s)
            seen = await asyncio.to_thread(_fingerprint, path)
            if seen is not None and seen != self._seen:
                self._seen = seen
                self._read(path, "file changed")

    def _read(self, path: Path, why: str) -> None:
        try:
            template = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("persona not reloaded (%s): cannot read %s: %s", why, path, exc)
            return
        if not template:
            log.warning("persona not reloaded (%s): %s is empty", why, path)
            return
        if template != self.template:
            self.template = template
            self._on_change(template)
            log.info("persona reloaded from %s (%s, %d characters)", path, why, len(template))
