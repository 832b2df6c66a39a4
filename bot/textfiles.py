"""Pure: the text of a document a user sent: plain text, Markdown, CSV, JSON or PDF (pypdf).

Only as much is read as can be kept (`max_chars`), so a 500-page PDF costs the pages that fit.
CPU-bound for PDFs: callers run `read_text` in a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath

from bot import texts
from bot.conversation import cut_text

PDF = "pdf"
TEXT = "text"
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".log"})
TEXT_TYPES = frozenset({"application/json", "application/x-ndjson", "application/csv"})

# Control characters other than tab and newline carry nothing for the model.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")


class UnreadableDocument(ValueError):
    """No text could be read; its argument says why, in words for the user (a bot.texts
    message)."""


@dataclass(frozen=True, slots=True)
class DocumentText:
    text: str
    # When the text was cut to fit: how much of the document was kept, e.g. "the first 7 of 300
    # pages" or "the first 24% (12,000 of 50,000 characters)"; None when it is whole.
    kept: str | None = None


def kind_of(file_name: str | None, mime_type: str | None) -> str | None:
    """PDF, TEXT, or None when the bot does not read this kind of file."""
    suffix = PurePosixPath(file_name or "").suffix.lower()
    mime = (mime_type or "").lower()
    if suffix == ".pdf" or mime == "application/pdf":
        return PDF
    if suffix in TEXT_EXTENSIONS or mime.startswith("text/") or mime in TEXT_TYPES:
        return TEXT
    return None


def read_text(data: bytes, kind: str, max_chars: int) -> DocumentText:
    """The document's text, at most `max_chars` of it."""
    if kind == PDF:
        return _pdf(data, max_chars)
    return _fit(_clean(_decode(data)), max_chars)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if b"\x00" in data[:4096]:
            raise UnreadableDocument(texts.NOT_TEXT) from None
        # Not UTF-8 and no NUL bytes: most likely a legacy single-byte encoding.
        return data.decode("cp1252", "replace")


def _clean(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _fit(text: str, max_chars: int) -> DocumentText:
    if not text:
        raise UnreadableDocument(texts.EMPTY_DOCUMENT)
    if len(text) <= max_chars:
        return DocumentText(text)
    kept = cut_text(text, max_chars)
    share = max(1, len(kept) * 100 // len(text))
    return DocumentText(kept, texts.kept_share(share, len(kept), len(text)))


def _pdf(data: bytes, max_chars: int) -> DocumentText:
    # pypdf is ~9 MB of memory: loaded the first time someone actually sends a PDF.
    from pypdf import PdfReader  # noqa: PLC0415
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(texts.PASSWORD_PROTECTED)
        total, read, pages = len(reader.pages), 0, []
        size = 0
        for page in reader.pages:
            read += 1
            text = _clean(page.extract_text() or "")
            if text:
                pages.append(f"[page {read}]\n{text}")
                size += len(pages[-1]) + 2
            if size > max_chars:
                break
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(texts.NOT_A_PDF) from exc
    if not pages:
        raise UnreadableDocument(texts.NO_TEXT_IN_PDF)
    text = "\n\n".join(pages)
    if read == total and len(text) <= max_chars:
        return DocumentText(text)
    return DocumentText(cut_text(text, max_chars), texts.kept_pages(read, total))
