"""Pure: documents split into chunks by heading or section, each keeping where it came from.

A chunk is what retrieval returns and what the model is shown: a piece of one file under one
heading (Markdown `#` / setext headings; a short title line in a text file; a PDF's bookmark or
page), small enough that a few of them fit in the prompt. Long sections are cut at paragraph
boundaries, never mid-word; every piece keeps the section's title for its citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_CHUNK_CHARS = 1500
# A text file's line counts as a title when it stands alone, is short and does not end a sentence.
MAX_TITLE_CHARS = 80

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of the knowledge base: its file, its section title and its text."""

    source: str
    section: str
    text: str

    @property
    def citation(self) -> str:
        return f"{self.source} § {self.section}" if self.section else self.source


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    body: str


def markdown_sections(text: str, default_title: str) -> list[Section]:
    """Split Markdown at its headings (ATX `#` and setext), ignoring `#` lines in code blocks."""
    sections: list[Section] = []
    title, lines, fenced = default_title, list[str](), False
    for line in _without_front_matter(text.splitlines()):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _ATX.match(line)
        underline = not fenced and _SETEXT.match(line) and _is_paragraph_line(lines)
        if heading is not None or underline:
            named = heading.group(2) if heading is not None else lines.pop()
            sections.append(Section(title, "\n".join(lines)))
            title, lines = named.strip(), []
            continue
        lines.append(line)
    sections.append(Section(title, "\n".join(lines)))
    return [s for s in sections if s.body.strip()]


def text_sections(text: str, default_title: str) -> list[Section]:
    """Split plain text at title lines: a short line alone in its paragraph, not a sentence."""
    sections: list[Section] = []
    title, paragraphs = default_title, list[str]()
    for paragraph in _paragraphs(text):
        if _is_title(paragraph):
            sections.append(Section(title, "\n\n".join(paragraphs)))
            title, paragraphs = paragraph.strip(), []
        else:
            paragraphs.append(paragraph)
    sections.append(Section(title, "\n\n".join(paragraphs)))
    return [s for s in sections if s.body.strip()]


def chunk_sections(
    source: str, sections: Iterable[Section], max_chars: int = MAX_CHUNK_CHARS
) -> list[Chunk]:
    """Chunks of at most `max_chars`, cut at paragraph (then line, then word) boundaries."""
    return [
        Chunk(source, section.title, piece)
        for section in sections
        for piece in _pieces(section.body, max_chars)
    ]


def _without_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], 1):
            if line.strip() in ("---", "..."):
                return lines[i + 1 :]
    return lines


def _is_paragraph_line(lines: list[str]) -> bool:
    return bool(lines) and bool(lines[-1].strip()) and not _FENCE.match(lines[-1])


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def _is_title(paragraph: str) -> bool:
    line = paragraph.strip()
    return (
        "\n" not in line
        and 0 < len(line) <= MAX_TITLE_CHARS
        and line[-1] not in ".!?:;,"
        and any(ch.isalpha() for ch in line)
    )


def _pieces(body: str, max_chars: int) -> Iterator[str]:
    """Greedy packing of paragraphs into pieces; an oversized paragraph is cut by lines/words."""
    current = ""
    for block in _blocks(body, max_chars):
        joined = f"{current}\n\n{block}" if current else block
        if len(joined) <= max_chars:
            current = joined
            continue
        if current:
            yield current
        current = block
    if current.strip():
        yield current


def _blocks(body: str, max_chars: int) -> Iterator[str]:
    for paragraph in _paragraphs(body):
        if len(paragraph) <= max_chars:
            yield paragraph.strip()
        else:
            yield from _cut(paragraph, max_chars)


def _cut(paragraph: str, max_chars: int) -> Iterator[str]:
    current = ""
    for whole in paragraph.split():
        word = whole
        while len(word) > max_chars:
            if current:
                yield current
                current = ""
            yield word[:max_chars]
            word = word[max_chars:]
        joined = f"{current} {word}" if current else word
        if len(joined) > max_chars:
            yield current
            joined = word
        current = joined
    if current:
        yield current
