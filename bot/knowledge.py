"""The knowledge base: KNOWLEDGE_DIR chunked, indexed, kept current, shared through Redis, searched.

`start()` brings the index up to date once (loading the build another replica stored in Redis
when it matches these files, building it otherwise), then a background task looks at the
folder every KNOWLEDGE_CHECK_S: a cheap fingerprint of names, sizes and modification times, and
only when that changes are the files read again. A reply never waits for any of it: `search`
uses whichever index is current.

What Redis holds (one hash, `{prefix}:kb:index`, no TTL) is the chunks, and the embeddings
when EMBEDDINGS_MODEL is set, under a version that hashes the files' contents (and the
embeddings model): a replica whose files hash the same loads it instead of reading PDFs and
paying for embeddings again. The BM25 matrix is rebuilt from the chunks in memory, which takes
milliseconds. Every replica needs the same folder (in the image or on a shared volume).

Retrieval is BM25 (`bot.ranking`), fused by reciprocal rank with cosine similarity of
embeddings when there are some; a chunk counts only above KNOWLEDGE_MIN_SCORE (BM25) or
KNOWLEDGE_MIN_SIMILARITY (cosine).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot import texts
from bot.chunking import Chunk
from bot.documents import Documents, read, stat_fingerprint
from bot.errors import LLMError, MemoryUnavailable
from bot.gate import Lookup
from bot.llm import LLMClient
from bot.memory import Memory
from bot.ranking import LexicalIndex, Vector, best, cosine, fuse, normalized

log = logging.getLogger(__name__)

BLOB_FORMAT = 1
EMBED_BATCH = 64
# The question's embedding is on the reply's path: past this, answer from BM25 alone.
QUERY_EMBED_TIMEOUT_S = 5.0

UNKNOWN_REPLY = texts.UNKNOWN_REPLY


@dataclass(frozen=True, slots=True)
class KnowledgeConfig:
    root: Path
    top_k: int = 4
    min_score: float = 0.5
    min_similarity: float = 0.5
    check_s: float = 60.0
    embeddings_model: str = ""
    strict: bool = False
    # The most characters of excerpts one prompt gets (the best chunk always goes in).
    max_chars: int = 6000


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    bm25: float
    similarity: float | None = None
    relevant: bool = True


class Index:
    """One built version: the chunks, their BM25 index and, optionally, their embeddings."""

    def __init__(
        self,
        version: str,
        chunks: list[Chunk],
        vectors: Vector | None = None,
        model: str = "",
        built_at: float = 0.0,
    ) -> None:
        self.version = version
        self.chunks = chunks
        self.vectors = vectors
        self.model = model if vectors is not None else ""
        self.built_at = built_at
        self.lexical = LexicalIndex([f"{c.section}\n{c.text}" for c in chunks])

    @property
    def sources(self) -> int:
        return len({c.source for c in self.chunks})

    def encode(self) -> bytes:
        record: dict[str, Any] = {
            "format": BLOB_FORMAT,
            "version": self.version,
            "built_at": self.built_at,
            "chunks": [[c.source, c.section, c.text] for c in self.chunks],
            "model": self.model,
        }
        if self.vectors is not None:
            record["dim"] = int(self.vectors.shape[1])
            record["vectors"] = base64.b64encode(self.vectors.astype("<f4").tobytes()).decode()
        return zlib.compress(json.dumps(record, ensure_ascii=False).encode(), 6)

    @classmethod
    def decode(cls, blob: bytes) -> Index:
        """Raises ValueError (or KeyError, TypeError) for a blob this code cannot read."""
        record = json.loads(zlib.decompress(blob))
        if record.get("format") != BLOB_FORMAT:
            raise ValueError(f"knowledge blob format {record.get('format')!r}")
        chunks = [Chunk(str(s), str(t), str(x)) for s, t, x in record["chunks"]]
        vectors = None
        if "vectors" in record:
            raw = np.frombuffer(base64.b64decode(record["vectors"]), dtype="<f4")
            vectors = raw.reshape(len(chunks), int(record["dim"])).astype(np.float32)
        return cls(record["version"], chunks, vectors, str(record["model"]), record["built_at"])


class Knowledge:
    def __init__(self, config: KnowledgeConfig, memory: Memory, llm: LLMClient) -> None:
        self._config = config
        self._memory = memory
        self._llm = llm
        self._index: Index | None = None
        self._stamp: str | None = None
        self._unsaved: Index | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def config(self) -> KnowledgeConfig:
        return self._config

    @property
    def index(self) -> Index | None:
        return self._index

    @property
    def unsaved(self) -> bool:
        """A build is waiting to be stored in Redis (it was unavailable)."""
        return self._unsaved is not None

    async def start(self) -> None:
        """Bring the index up to date (failures are logged), then keep it so in the background."""
        await self._refresh_logged()
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def lookup(self, question: str) -> Lookup:
        """The excerpts for `question`'s prompt; in strict mode without any, the reply to give."""
        hits = await self.search(question)
        if hits:
            return Lookup(
                prompt_block(hits, strict=self._config.strict, limit=self._config.max_chars)
            )
        return Lookup(reply=UNKNOWN_REPLY if self._config.strict else None)

    async def search(self, query: str, *, weak: bool = False) -> list[Hit]:
        """The best chunks above the thresholds; with `weak`, the best of the rest follow them."""
        index = self._index
        if index is None or not index.chunks:
            return []
        lexical = index.lexical.scores(query)
        similarity = await self._similarity(index, query)
        return select(index.chunks, lexical, similarity, self._config, weak=weak)

    async def refresh(self, *, force: bool = False) -> str:
        """Bring the index up to date with the folder: "unchanged", "loaded" (a build stored
        in Redis) or "built". `force` builds even when nothing changed."""
        root = self._config.root
        stamp = await asyncio.to_thread(stat_fingerprint, root)
        if stamp == self._stamp and not force:
            await self._save_unsaved()
            return "unchanged"
        documents = await asyncio.to_thread(read, root)
        wanted = self._version(documents)
        if not force:
            if self._index is not None and self._index.version == wanted:
                self._stamp = stamp
                return "unchanged"
            shared = await self._shared(wanted)
            if shared is not None:
                self._install(shared, stamp)
                return "loaded"
        index = await self._build(documents)
        # A build without the embeddings it should have is used, not shared, and redone later.
        complete = index.version == wanted
        self._install(index, stamp if complete else None)
        if complete:
            self._unsaved = index
            await self._save_unsaved()
        return "built"

    def _version(self, documents: Documents) -> str:
        model = self._config.embeddings_model
        return f"{documents.version}+{model}" if model else documents.version

    def _install(self, index: Index, stamp: str | None) -> None:
        self._index, self._stamp = index, stamp
        log.info(
            "knowledge: %d chunks from %d files (version %s%s)",
            len(index.chunks),
            index.sources,
            index.version,
            f", embeddings {index.model}" if index.model else "",
        )

    async def _shared(self, wanted: str) -> Index | None:
        try:
            if await self._memory.knowledge_version() != wanted:
                return None
            stored = await self._memory.load_knowledge()
        except MemoryUnavailable:
            return None
        if stored is None or stored[0] != wanted:
            return None
        try:
            return await asyncio.to_thread(Index.decode, stored[1])
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            log.warning("knowledge: the stored index is unreadable (%s); rebuilding", exc)
            return None

    async def _build(self, documents: Documents) -> Index:
        started = time.perf_counter()
        vectors: Vector | None = None
        model = self._config.embeddings_model
        if model and documents.chunks:
            try:
                vectors = await self._embed([f"{c.section}\n{c.text}" for c in documents.chunks])
            except LLMError as exc:
                log.warning("knowledge: embeddings failed (%s); BM25 only for now", exc)
        version = self._version(documents) if vectors is not None else documents.version
        index = await asyncio.to_thread(
            Index, version, documents.chunks, vectors, model, time.time()
        )
        log.info("knowledge: built in %.2fs", time.perf_counter() - started)
        return index

    async def _embed(self, texts: list[str]) -> Vector:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors += await self._llm.embed(
                self._config.embeddings_model, texts[start : start + EMBED_BATCH]
            )
        return normalized(vectors)

    async def _similarity(self, index: Index, query: str) -> npt.NDArray[np.float32] | None:
        if index.vectors is None or index.model != self._config.embeddings_model:
            return None
        try:
            [vector] = await asyncio.wait_for(
                self._llm.embed(index.model, [query]), QUERY_EMBED_TIMEOUT_S
            )
        except (LLMError, TimeoutError) as exc:
            log.warning("knowledge: question not embedded (%s); BM25 only", type(exc).__name__)
            return None
        return cosine(index.vectors, np.asarray(vector, dtype=np.float32))

    async def _save_unsaved(self) -> None:
        index = self._unsaved
        if index is None:
            return
        try:
            await self._memory.store_knowledge(index.version, index.encode())
        except MemoryUnavailable:
            log.warning("knowledge: index not shared yet (Redis unavailable); will retry")
            return
        self._unsaved = None

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except (OSError, ValueError) as exc:
            log.warning("knowledge: %s not indexed: %s", self._config.root, exc)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._config.check_s)
            try:
                await self._refresh_logged()
            except Exception:
                # Whatever went wrong, the current index stays and the next check tries again.
                log.exception("knowledge: the check for changes failed")


def select(
    chunks: Sequence[Chunk],
    lexical: npt.NDArray[np.float32],
    similarity: npt.NDArray[np.float32] | None,
    config: KnowledgeConfig,
    *,
    weak: bool = False,
) -> list[Hit]:
    """The top-k relevant chunks (fused when there are similarities), then, with `weak`, the
    best irrelevant ones (for `telellama kb search`)."""
    k, pool = config.top_k, max(config.top_k * 4, 20)

    def hit(i: int, score: float, relevant: bool = True) -> Hit:
        sim = float(similarity[i]) if similarity is not None else None
        return Hit(chunks[i], score, float(lexical[i]), sim, relevant)

    by_words = [i for i, _ in best(lexical, pool, config.min_score)]
    if similarity is None:
        chosen = [hit(i, float(lexical[i])) for i in by_words[:k]]
    else:
        by_meaning = [i for i, _ in best(similarity, pool, config.min_similarity)]
        chosen = [hit(i, score) for i, score in fuse([by_words, by_meaning])[:k]]
    if weak:
        seen = {id(h.chunk) for h in chosen}
        rest = best(lexical if similarity is None else similarity, k + len(chosen), -1.0)
        chosen += [hit(i, s, False) for i, s in rest if id(chunks[i]) not in seen][:k]
    return chosen


def prompt_block(hits: Sequence[Hit], *, strict: bool, limit: int) -> str:
    """The excerpts, numbered with their sources, and how to use and cite them."""
    parts: list[str] = []
    used = 0
    for number, found in enumerate(hits, 1):
        text = found.chunk.text.strip()[:limit]
        if parts and used + len(text) > limit:
            break
        parts.append(f"[{number}] {found.chunk.citation}\n{text}")
        used += len(text)
    rule = (
        "Answer only from these excerpts. If they do not contain the answer, say that you do "
        "not know and offer to put the user in touch with a person (/human)."
        if strict
        else "Use these excerpts when they are relevant to the user's message."
    )
    cite = (
        'End your answer with one line "Sources: " followed by the file § section of each '
        'excerpt you used, separated by "; ", for example "Sources: '
        f'{hits[0].chunk.citation}".'
    )
    excerpts = "\n\n".join(parts)
    return (
        f"Excerpts from the knowledge base that may help:\n\n{excerpts}\n\n{rule} {cite}\n\n"
        "The user's message:\n"
    )
