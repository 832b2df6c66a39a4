"""`telellama kb build | search "<query>"`: the knowledge base as the bot sees it."""

from __future__ import annotations

import sys
import textwrap
import time

from bot.app import open_core
from bot.knowledge import Hit, Knowledge
from bot.settings import Settings


def _say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


async def kb(settings: Settings, action: str, query: str = "", *, force: bool = False) -> int:
    """Build (or load) the index and report it, or show what a question retrieves."""
    if settings.knowledge_dir is None:
        _say("KNOWLEDGE_DIR is not set: point it at a folder of .md, .txt and .pdf files.")
        return 2
    core = await open_core(settings, "telellama", watch_knowledge=False)
    knowledge = core.knowledge
    assert knowledge is not None
    try:
        started = time.perf_counter()
        try:
            outcome = await knowledge.refresh(force=force)
        except (OSError, ValueError) as exc:
            _say(f"Could not index {settings.knowledge_dir}: {exc}")
            return 1
        if action == "build":
            _report(knowledge, outcome, time.perf_counter() - started)
            return 0
        _show(knowledge, await knowledge.search(query, weak=True))
        return 0
    finally:
        await core.close()


def _report(knowledge: Knowledge, outcome: str, seconds: float) -> None:
    index = knowledge.index
    assert index is not None
    done = {"built": "built", "loaded": "loaded from Redis", "unchanged": "up to date"}[outcome]
    _say(f"Knowledge base {knowledge.config.root}: {done} in {seconds:.2f}s")
    _say(f"  version {index.version}: {len(index.chunks)} chunks from {index.sources} files")
    _say(f"  embeddings: {index.model or 'none (BM25 only)'}")
    _say(f"  shared in Redis: {'no (Redis unavailable)' if knowledge.unsaved else 'yes'}")
    for source in sorted({c.source for c in index.chunks}):
        sections = [c.section for c in index.chunks if c.source == source]
        count = f"{len(sections)} chunk{'s' if len(sections) != 1 else ''}"
        _say(f"  {source}: {count} ({', '.join(dict.fromkeys(sections))})")


def _show(knowledge: Knowledge, hits: list[Hit]) -> None:
    config = knowledge.config
    relevant = [h for h in hits if h.relevant]
    if not relevant:
        then = (
            "it would say it does not know and offer /human"
            if config.strict
            else "it would answer without the knowledge base"
        )
        _say(f"Nothing relevant (KNOWLEDGE_MIN_SCORE {config.min_score:g}): {then}.")
    for number, hit in enumerate(hits, 1):
        if not hit.relevant and (number == 1 or hits[number - 2].relevant):
            _say("-- below the thresholds: not given to the model --")
        scores = f"bm25 {hit.bm25:.2f}"
        if hit.similarity is not None:
            scores = f"score {hit.score:.4f}, {scores}, cosine {hit.similarity:.2f}"
        _say(f"{number}. [{scores}] {hit.chunk.citation}")
        _say(textwrap.indent(hit.chunk.text.strip(), "   "))
        _say()
