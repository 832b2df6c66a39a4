"""Model Markdown -> Telegram text and entities, split into messages of at most 4096 UTF-16 units.

Pure: no I/O, no Telegram types. `telegramify_markdown.convert` does the Markdown; this module
splits its output where a reader expects a break (a blank line, then a line break, then a space),
keeps code blocks whole when they fit in one message, and re-bases every entity on its chunk.

Offsets are UTF-16 code units, as Telegram counts them. Internally everything works in Python
string indices; an `_Index` built once per call translates, and costs nothing for text without
characters outside the BMP (the usual case, ASCII or not).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from telegramify_markdown import convert

__all__ = [
    "TELEGRAM_LIMIT",
    "Chunk",
    "Entity",
    "preview",
    "render",
    "render_plain",
    "utf16_len",
]

TELEGRAM_LIMIT = 4096

# Trimmed from both ends of every chunk: control characters (Telegram turns them into spaces)
# and whitespace, which Telegram trims, shifting every entity after it.
_EDGE = "".join(map(chr, range(0x21))) + (
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_EDGE_RUN = re.compile(f"[{re.escape(_EDGE)}]*")
# What Telegram counts as nothing ("message text is empty"): a chunk of only these is dropped.
_BLANK = (
    _EDGE
    + "\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2800\ufeff\ufffc"
)
_VISIBLE = re.compile(f"[^{re.escape(_BLANK)}]")
# Where a line may wrap between words: breaking spaces only (no-break spaces keep words together).
_BREAKS = " \t\n\r\f\v\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u3000"
_LAST_BREAK = re.compile(f"(?s:.*)[{re.escape(_BREAKS)}]")
_NEXT_BREAK = re.compile(f"[{re.escape(_BREAKS)}]")
_LAST_FLUSH_LINE = re.compile(r"(?s:.*)\n(?=[^ \t\n])")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters that belong to the one before them: a cut never lands in front of one.
_JOINERS = frozenset("\u200d\ufe0e\ufe0f") | frozenset(map(chr, range(0x1F3FB, 0x1F400)))
_MAX_JOIN_STEPS = 32


@dataclass(frozen=True, slots=True)
class Entity:
    """A Telegram MessageEntity; offset and length in UTF-16 code units within its chunk."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The Bot API JSON object, without the fields that are not set."""
        result: dict[str, object] = {
            "type": self.type,
            "offset": self.offset,
            "length": self.length,
        }
        if self.url is not None:
            result["url"] = self.url
        if self.language is not None:
            result["language"] = self.language
        if self.custom_emoji_id is not None:
            result["custom_emoji_id"] = self.custom_emoji_id
        return result


def _entity_factory() -> Callable[[str, int, int, str | None, str | None, str | None], Entity]:
    """A maker of `Entity` twice as fast as its frozen-dataclass __init__.

    A frozen dataclass sets each field through object.__setattr__; rendering makes one Entity per
    entity per chunk, so this sets the slots through their descriptors instead. Same result.
    """
    new = object.__new__
    slots = Entity.__dict__
    set_type, set_offset, set_length, set_url, set_language, set_emoji = (
        slots[name].__set__
        for name in ("type", "offset", "length", "url", "language", "custom_emoji_id")
    )

    def make(  # noqa: PLR0917 - the positional fields of Entity
        type_: str,
        offset: int,
        length: int,
        url: str | None,
        language: str | None,
        custom_emoji_id: str | None,
    ) -> Entity:
        entity = new(Entity)
        set_type(entity, type_)
        set_offset(entity, offset)
        set_length(entity, length)
        set_url(entity, url)
        set_language(entity, language)
        set_emoji(entity, custom_emoji_id)
        return entity

    return make


_entity = _entity_factory()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One Telegram message: stripped, non-empty text of at most the limit, and its entities."""

    text: str
    entities: tuple[Entity, ...]


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of Telegram's limits and offsets."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def render(markdown: str, limit: int = TELEGRAM_LIMIT) -> list[Chunk]:
    """Markdown as Telegram messages of at most `limit` UTF-16 units; [] when nothing shows."""
    _check_limit(limit)
    text, entities = _convert(markdown)
    return _Document(text, entities).split(limit)


def render_plain(markdown: str, limit: int = TELEGRAM_LIMIT) -> list[Chunk]:
    """The texts of `render`, without entities: for when Telegram refuses the entities."""
    return [Chunk(chunk.text, ()) for chunk in render(markdown, limit)]


def split_plain(text: str, limit: int = TELEGRAM_LIMIT) -> list[Chunk]:
    """Plain text (no Markdown) as messages of at most `limit` UTF-16 units, cut where
    `render` cuts: between paragraphs, lines or words."""
    _check_limit(limit)
    return _Document(text, ()).split(limit)


def preview(markdown: str, limit: int = TELEGRAM_LIMIT) -> Chunk | None:
    """The last `limit` UTF-16 units of a partial answer, its unclosed markup closed."""
    _check_limit(limit)
    text, entities = _convert(_preview_source(markdown, limit))
    return _Document(text, entities).tail(limit)


def _check_limit(limit: int) -> None:
    if limit < 2:
        msg = f"limit must hold a surrogate pair (at least 2 UTF-16 units), got {limit}"
        raise ValueError(msg)


# --- conversion ------------------------------------------------------------------------------


class _Marked(Protocol):
    """An entity as telegramify-markdown makes it: offsets in UTF-16 units of the whole text."""

    @property
    def type(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def url(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def custom_emoji_id(self) -> str | None: ...


def _convert(markdown: str) -> tuple[str, Sequence[_Marked]]:
    """telegramify-markdown's text and entities, or the raw text if it gives up."""
    if not markdown.isascii() and _SURROGATE.search(markdown):
        # Rejoin surrogate pairs that arrived as two code points; lone halves become U+FFFD.
        markdown = markdown.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    try:
        text, entities = convert(markdown)
    except Exception:  # noqa: BLE001 - a third-party parser fed arbitrary model output
        return markdown, ()
    return text, entities


# --- UTF-16 offsets --------------------------------------------------------------------------


class _Index:
    """Translates between string indices and UTF-16 offsets of one text."""

    __slots__ = ("_astral", "_astral_u16")

    def __init__(self, text: str) -> None:
        astral = [] if text.isascii() else [m.start() for m in _ASTRAL.finditer(text)]
        self._astral = astral
        self._astral_u16 = [i + k for k, i in enumerate(astral)]

    def u16(self, index: int) -> int:
        """UTF-16 offset of string index `index`."""
        return index + bisect_left(self._astral, index) if self._astral else index

    def floor(self, offset: int) -> int:
        """The last string index at or before UTF-16 `offset` (never inside a surrogate pair)."""
        return offset - bisect_left(self._astral_u16, offset) if self._astral else offset

    def ceil(self, offset: int) -> int:
        """The first string index at or after UTF-16 `offset`."""
        index = self.floor(offset)
        return index + 1 if self.u16(index) < offset else index


class _Zones:
    """Code blocks that fit in one message: no chunk boundary may fall strictly inside one.

    A block is measured without the blank characters at its edges, which a chunk would strip.
    """

    __slots__ = ("_ends", "_starts")

    def __init__(self, text: str, entities: Sequence[_Marked], index: _Index, limit: int) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for entity in entities:
            if entity.type != "pre":
                continue
            block_end = index.floor(entity.offset + entity.length)
            start = _skip_edge(text, index.floor(entity.offset), block_end)
            end = start + len(text[start:block_end].rstrip(_EDGE))
            if end > start and index.u16(end) - index.u16(start) <= limit:
                self._starts.append(start)
                self._ends.append(end)

    def start_around(self, position: int) -> int | None:
        """Start of the zone that `position` falls strictly inside, if any."""
        k = bisect_left(self._starts, position) - 1
        if k >= 0 and position < self._ends[k]:
            return self._starts[k]
        return None


class _Document:
    """Rendered text with its entities, ready to cut into chunks."""

    __slots__ = ("_entities", "_index", "_start", "_stop", "_text")

    def __init__(self, text: str, entities: Sequence[_Marked]) -> None:
        self._text = text
        self._index = _Index(text)
        self._entities = sorted(entities, key=_outer_first)
        self._start = _skip_edge(text, 0, len(text))
        self._stop = self._start + len(text[self._start :].rstrip(_EDGE))

    def split(self, limit: int) -> list[Chunk]:
        """Chunks of at most `limit` units, cut where a reader expects a break."""
        text, index, stop = self._text, self._index, self._stop
        zones = _Zones(text, self._entities, index, limit)
        ranges: list[tuple[int, int]] = []
        start = self._start
        while start < stop:
            end = index.floor(index.u16(start) + limit)
            if end >= stop:
                ranges.append((start, stop))
                break
            cut = _cut(text, start, end, zones)
            ranges.append((start, start + len(text[start:cut].rstrip(_EDGE))))
            start = _skip_edge(text, cut, stop)
        return self._chunks([(a, b) for a, b in ranges if _VISIBLE.search(text, a, b)])

    def tail(self, limit: int) -> Chunk | None:
        """The last `limit` units, starting at a line or word boundary when one is near."""
        text, index, start, stop = self._text, self._index, self._start, self._stop
        first = index.ceil(index.u16(stop) - limit)
        if first > start:
            start = _tail_start(text, first, stop, limit)
        if not _VISIBLE.search(text, start, stop):
            return None
        return self._chunks([(start, stop)])[0]

    def _chunks(self, ranges: Sequence[tuple[int, int]]) -> list[Chunk]:
        """Cut the text at `ranges` (in order), each chunk with its entities clipped and shifted.

        Entities stay in UTF-16 units throughout: chunk bounds are character boundaries, so
        clipping there never splits a surrogate pair.
        """
        text, u16, entities = self._text, self._index.u16, self._entities
        chunks: list[Chunk] = []
        active: list[_Marked] = []
        pending = 0
        for start, stop in ranges:
            base, top = u16(start), u16(stop)
            while pending < len(entities) and entities[pending].offset < top:
                active.append(entities[pending])
                pending += 1
            clipped: list[Entity] = []
            for e in active:
                left, right = max(e.offset, base), min(e.offset + e.length, top)
                if right > left:
                    clipped.append(
                        _entity(
                            e.type, left - base, right - left, e.url, e.language, e.custom_emoji_id
                        )
                    )
            active = [e for e in active if e.offset + e.length > top]
            chunks.append(Chunk(text[start:stop], tuple(clipped)))
        return chunks


def _skip_edge(text: str, position: int, stop: int) -> int:
    """The first index at or after `position` (up to `stop`) that is not edge whitespace."""
    run = _EDGE_RUN.match(text, position, stop)
    return run.end() if run is not None else position


def _outer_first(entity: _Marked) -> tuple[int, int]:
    """Sort key: by offset, and of entities starting together the longer (enclosing) first."""
    return entity.offset, -entity.length


# --- choosing where to cut -------------------------------------------------------------------

# A finder returns the last cut position c with lo < c <= hi, or a value <= lo for none.
_Finder = Callable[[str, int, int], int]


def _blank_line(text: str, lo: int, hi: int) -> int:
    return text.rfind("\n\n", lo, hi + 2)


def _line_break(text: str, lo: int, hi: int) -> int:
    """The last line break; one before an unindented line if the next line is indented.

    Chunks are stripped, so a chunk starting with an indented line (code, a nested list item)
    would lose its indentation: a break before a flush line in the window's second half wins.
    """
    cut = text.rfind("\n", lo, hi + 1)
    if cut > lo and text[cut + 1 : cut + 2] in (" ", "\t"):
        flush = _LAST_FLUSH_LINE.match(text, max(lo + 1, (lo + hi) // 2), cut + 1)
        if flush is not None:
            return flush.end() - 1
    return cut


def _word_break(text: str, lo: int, hi: int) -> int:
    found = _LAST_BREAK.match(text, lo + 1, hi + 1)
    return found.end() - 1 if found is not None else -1


_FINDERS: tuple[_Finder, ...] = (_blank_line, _line_break, _word_break)


def _cut(text: str, start: int, end: int, zones: _Zones) -> int:
    """Where the chunk starting at `start` ends; text[start:result] fits, as end is the limit."""
    for finder in _FINDERS:
        hi = end
        while (cut := finder(text, start, hi)) > start:
            zone = zones.start_around(cut)
            if zone is None:
                return cut
            hi = zone  # the whole code block goes to the next chunk: look before it
    cut = _grapheme_floor(text, start, end)
    zone = zones.start_around(cut)
    return zone if zone is not None and zone > start else cut


def _grapheme_floor(text: str, start: int, cut: int) -> int:
    """Move a hard cut back so it does not separate a character from its marks or joiners."""
    for _ in range(_MAX_JOIN_STEPS):
        if cut - 1 <= start or not _joins(text, cut):
            break
        cut -= 1
    return cut


def _joins(text: str, index: int) -> bool:
    """Whether text[index] continues the character before it."""
    char = text[index]
    if text[index - 1] == "\u200d" or char in _JOINERS or unicodedata.combining(char):
        return True
    return "\U000e0020" <= char <= "\U000e007f"  # tag characters of flag sequences


def _tail_start(text: str, first: int, stop: int, limit: int) -> int:
    """Where a preview whose earliest possible start is `first` starts: at a break if near."""
    if text[first - 1] not in _EDGE:
        reach = min(stop, first + max(limit // 8, 1))
        line = text.find("\n", first, reach)
        if line >= 0:
            first = line + 1
        elif (space := _NEXT_BREAK.search(text, first, reach)) is not None:
            first = space.end()
        else:
            while first < stop - 1 and _joins(text, first):
                first += 1
    start = _skip_edge(text, first, stop)
    return start if start < stop else first


# --- preview: closing what a partial answer left open ----------------------------------------

# A fence line, found from the line break before it (a literal first character scans fast).
_FENCE = re.compile(r"\n[ \t]*(?:>[ \t]*)*(`{3,}|~{3,})([^\n]*)")
_BLOCK_START = re.compile(r"^[ \t]*(?:[-*+][ \t]|\d{1,9}[.)][ \t]|#{1,6}[ \t]|>|\|)", re.MULTILINE)
_INLINE_TOKEN = re.compile(r"\\.|`+|\*+|_+|~+|\]\(|[\[\])]", re.DOTALL)
# How much Markdown before the end a preview converts: enough to fill `limit` after markup.
_TAIL_FACTOR = 2
_MAX_TAIL_PROBES = 64


class _Fence(NamedTuple):
    start: int
    end: int  # end of the closing line, or len(markdown) while still open
    marker: str  # the opening run of backticks or tildes
    closed: bool


def _preview_source(markdown: str, limit: int) -> str:
    """The end of `markdown` worth converting for a preview, with its open markup closed."""
    fences = _fences(markdown)
    prefix, begin = _source_tail(markdown, fences, limit)
    if fences and not fences[-1].closed:
        return prefix + markdown[begin : _without_partial_fence(markdown, fences[-1])]
    inline = _inline_start(markdown, max(begin, fences[-1].end if fences else 0))
    return prefix + markdown[begin:inline] + _close_inline(markdown[inline:])


def _fences(markdown: str) -> list[_Fence]:
    """Fenced code blocks in order; the last one may still be open."""
    if "```" not in markdown and "~~~" not in markdown:
        return []
    fences: list[_Fence] = []
    opening: tuple[int, str] | None = None  # (start, run) of the open fence
    # Scanned with a line break in front, so index i in the scan is i - 1 in `markdown`.
    for line in _FENCE.finditer("\n" + markdown):
        run, info = line.group(1), line.group(2)
        if opening is None:
            if not (run[0] == "`" and "`" in info):
                opening = (line.start(), run)
        elif run[0] == opening[1][0] and len(run) >= len(opening[1]) and not info.strip():
            fences.append(_Fence(opening[0], line.end() - 1, opening[1], closed=True))
            opening = None
    if opening is not None:
        fences.append(_Fence(opening[0], len(markdown), opening[1], closed=False))
    return fences


def _without_partial_fence(markdown: str, fence: _Fence) -> int:
    """End of an open code block, without a last line that is a closing fence being typed."""
    line = markdown.rfind("\n") + 1
    typed = markdown[line:].strip(" \t>")
    if line > fence.start and typed and typed == fence.marker[0] * len(typed):
        return line
    return len(markdown)


def _source_tail(markdown: str, fences: Sequence[_Fence], limit: int) -> tuple[str, int]:
    """Where to start converting so the preview fills up: (prefix, begin) for the source
    prefix + markdown[begin:], begin being a block boundary far enough back (0 for short text).

    Inside a code block the block's opening line is the prefix, so its tail is still code.
    """
    position = len(markdown) - _TAIL_FACTOR * limit
    if position <= 0:
        return "", 0
    starts = [f.start for f in fences]
    k = bisect_left(starts, position) - 1
    if k >= 0 and position < fences[k].end:
        fence = fences[k]
        opener_end = markdown.find("\n", fence.start, position) + 1
        if opener_end <= 0:
            return "", fence.start
        line = markdown.rfind("\n", opener_end - 1, position) + 1
        return markdown[fence.start : opener_end], line
    for separator in ("\n\n", "\n"):
        begin = _block_boundary(markdown, fences, starts, position, separator)
        if begin is not None:
            return "", begin
    return "", 0


def _block_boundary(
    markdown: str, fences: Sequence[_Fence], starts: Sequence[int], position: int, separator: str
) -> int | None:
    """The last line start before `position` after `separator`, outside code, not indented."""
    for _ in range(_MAX_TAIL_PROBES):
        found = markdown.rfind(separator, 0, position)
        if found < 0:
            return None
        k = bisect_left(starts, found) - 1
        if k >= 0 and found < fences[k].end:
            return fences[k].end + 1  # the line after a closed code block (position is past it)
        begin = found + len(separator)
        if markdown[begin : begin + 1] not in (" ", "\t", "\n", ""):
            return begin
        position = found  # indented: a continuation that would read as code on its own
    return None


def _inline_start(markdown: str, lower: int) -> int:
    """Start of the last block, where inline markup still open at the end began."""
    blank = markdown.rfind("\n\n", lower)
    start = blank + 2 if blank >= 0 else lower
    blocks = [block.start() for block in _BLOCK_START.finditer(markdown, start)]
    return blocks[-1] if blocks else start


def _close_inline(block: str) -> str:
    """`block` with emphasis, code spans and links still open at its end closed or dropped."""
    block = block.rstrip()
    state = _InlineState(block)
    for token in _INLINE_TOKEN.finditer(block):
        state.feed(token)
    return state.closed()


class _InlineState:
    """A small CommonMark-like reading of one block's inline delimiters."""

    __slots__ = ("_block", "_code", "_cut", "_stack")

    def __init__(self, block: str) -> None:
        self._block = block
        self._stack: list[tuple[str, int, int]] = []  # (marker, position, run length)
        self._code: tuple[int, int] | None = None  # open code span: (position, run length)
        self._cut = len(block)

    def feed(self, token: re.Match[str]) -> None:
        run, position = token.group(), token.start()
        if self._code is not None:
            if run[0] == "`" and len(run) == self._code[1]:
                self._code = None
        elif self._stack and self._stack[-1][0] == "(":
            if run == ")":
                self._stack.pop()
        elif run[0] == "`":
            self._code = (position, len(run))
        elif run[0] in "*_~":
            self._delimiter(run, position, token.end())
        elif run == "[":
            self._stack.append(("[", position, 1))
        elif run == "](" and self._stack and self._stack[-1][0] == "[":
            self._stack[-1] = ("(", position, 2)
        elif run == "]" and self._stack and self._stack[-1][0] == "[":
            self._stack.pop()

    def _delimiter(self, run: str, position: int, end: int) -> None:
        block = self._block
        before = block[position - 1] if position else " "
        after = block[end] if end < len(block) else " "
        can_open, can_close = _flanking(run[0], before, after)
        if run[0] == "~" and len(run) != 2:
            can_open = can_close = False
        opener = self._opener(run[0]) if can_close else None
        if opener is not None:
            if end == len(block) and len(run) != self._stack[opener][2]:
                self._cut = position  # half of a closing run: close it properly instead
            else:
                del self._stack[opener:]
        elif can_open:
            self._stack.append((run[0], position, len(run)))
        elif end == len(block):
            self._cut = position  # a run that neither opens nor closes: not typed out yet

    def _opener(self, marker: str) -> int | None:
        for k in range(len(self._stack) - 1, -1, -1):
            if self._stack[k][0] == marker:
                return k
            if self._stack[k][0] in "[(":
                return None
        return None

    def closed(self) -> str:
        """The block, cut before unfinished runs, with closers for everything left open."""
        block, cut, closers = self._block, self._cut, []
        if self._code is not None:
            position, length = self._code
            cut = len(block[:cut].rstrip("`"))
            if cut <= position + length:
                cut = position
            else:
                closers.append("`" * length)
        for marker, position, length in reversed(self._stack):
            cut = len(block[:cut].rstrip())
            if marker == "(":
                cut = position
                closers.append("]()")  # an unfinished URL: show the link text, link nothing
            elif marker == "[":
                continue
            elif position + length >= cut:
                cut = position  # an opener with nothing after it yet
            else:
                closers.append(marker * length)
        return block[:cut] + "".join(closers)


def _flanking(marker: str, before: str, after: str) -> tuple[bool, bool]:
    """Whether a delimiter run between `before` and `after` can open and can close emphasis."""
    left = not after.isspace() and (not _punct(after) or before.isspace() or _punct(before))
    right = not before.isspace() and (not _punct(before) or after.isspace() or _punct(after))
    if marker == "_":
        return left and (not right or _punct(before)), right and (not left or _punct(after))
    return left, right


def _punct(char: str) -> bool:
    return not char.isalnum() and not char.isspace()
