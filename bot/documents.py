"""The knowledge base's files: which there are, whether they changed, and their chunks.

Blocking file I/O; the knowledge base calls these in a worker thread. Markdown (`.md`,
`.markdown`), text (`.txt`) and PDF (`.pdf`, text via pypdf) are read; hidden files and folders
are skipped, and so are symlinked folders (no loops). A file that cannot be read is skipped with
a warning rather than failing the build.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from bot.chunking import (
    MAX_CHUNK_CHARS,
    Chunk,
    Section,
    chunk_sections,
    markdown_sections,
    text_sections,
)

log = logging.getLogger(__name__)

MARKDOWN = frozenset({".md", ".markdown"})
SUPPORTED = MARKDOWN | {".txt", ".pdf"}
# Part of every content version: bump it when chunking changes so stored indexes are rebuilt.
CHUNKER_VERSION = 1


@dataclass(frozen=True, slots=True)
class Documents:
    """The chunks of every readable file, and a version that changes when any content does."""

    version: str
    chunks: list[Chunk]
    files: int
    skipped: list[str]


def files(root: Path) -> list[Path]:
    """Every supported file under `root`, sorted, hidden ones left out."""
    return sorted(_walk(root), key=lambda p: p.relative_to(root).as_posix())


def _walk(folder: Path) -> Iterator[Path]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path))
            elif entry.is_file() and Path(entry.name).suffix.lower() in SUPPORTED:
                yield Path(entry.path)


def stat_fingerprint(root: Path) -> str:
    """A cheap fingerprint (names, sizes, modification times): no file is opened."""
    digest = hashlib.sha256()
    for path in files(root):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0".encode())
        digest.update(f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read(root: Path) -> Documents:
    """Read and chunk every file; the version hashes the contents, not the times."""
    digest = hashlib.sha256(f"chunker {CHUNKER_VERSION} {MAX_CHUNK_CHARS}\n".encode())
    chunks: list[Chunk] = []
    skipped: list[str] = []
    found = files(root)
    for path in found:
        name = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
            chunks += chunk_sections(name, sections(name, data))
        except (OSError, ValueError, PyPdfError) as exc:
            log.warning("knowledge: skipped %s: %s", name, type(exc).__name__)
            skipped.append(name)
            continue
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return Documents(digest.hexdigest()[:16], chunks, len(found) - len(skipped), skipped)


def sections(name: str, data: bytes) -> list[Section]:
    """The titled sections of one file, by its type."""
    suffix = Path(name).suffix.lower()
    title = Path(name).stem
    if suffix == ".pdf":
        return pdf_sections(data)
    text = data.decode("utf-8-sig", errors="replace")
    if suffix in MARKDOWN:
        return markdown_sections(text, title)
    return text_sections(text, title)


def pdf_sections(data: bytes) -> list[Section]:
    """One section per page, titled by the bookmark it falls under (if any) and its number."""
    reader = PdfReader(BytesIO(data))
    starts = _bookmarks(reader)
    found: list[Section] = []
    title = ""
    for number, page in enumerate(reader.pages):
        title = starts.get(number, title)
        text = page.extract_text() or ""
        if text.strip():
            where = f"p. {number + 1}"
            found.append(Section(f"{title}, {where}" if title else where, text))
    return found


def _bookmarks(reader: PdfReader) -> dict[int, str]:
    """The first-level bookmark that starts on each page (the last one wins on a shared page)."""
    starts: dict[int, str] = {}
    try:
        for item in reader.outline:
            if isinstance(item, list):
                continue  # nested bookmarks: the first level is enough for a citation
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0 and item.title:
                starts[page] = str(item.title).strip()
    except (PyPdfError, KeyError, ValueError, TypeError):
        log.info("knowledge: a PDF's bookmarks are unreadable; citing page numbers only")
    return starts
