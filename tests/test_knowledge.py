"""The knowledge base: chunks that keep their sources, retrieval for paraphrased questions, the
excerpts and their citations in the prompt, strict mode, the index shared in Redis and rebuilt
when a file changes, embeddings fused with BM25, and `telellama kb`."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import redis
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject

from bot.chunking import MAX_CHUNK_CHARS, chunk_sections, markdown_sections, text_sections
from bot.documents import pdf_sections
from bot.knowledge import UNKNOWN_REPLY, Knowledge, KnowledgeConfig
from bot.llm import LLMClient, LLMConfig
from bot.memory import Memory
from bot.ranking import tokenize
from tests.conftest import BotFactory
from tests.fakes import FakeLLM, FakeTelegram, Plan
from tests.fakes.llm import bag_of_words
from tests.processes import run_cli

SAMPLE = Path(__file__).resolve().parent / "data" / "kb"
USER = 8101


def make_pdf(pages: Sequence[tuple[str | None, list[str]]]) -> bytes:
    """A real PDF with a text layer (Helvetica) and a bookmark per titled page."""
    writer = PdfWriter()
    helvetica = {"/Type": "/Font", "/Subtype": "/Type1", "/BaseFont": "/Helvetica"}
    font = DictionaryObject({NameObject(k): NameObject(v) for k, v in helvetica.items()})
    for title, lines in pages:
        page = writer.add_blank_page(612, 792)
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        escaped = (
            line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines
        )
        shown = " T* ".join(f"({line}) Tj" for line in escaped)
        stream = ContentStream(None, writer)
        stream.set_data(f"BT /F1 11 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1"))
        page.replace_contents(stream)
        if title:
            writer.add_outline_item(title=title, page_number=len(writer.pages) - 1)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


WARRANTY_PDF = [
    (
        "Warranty",
        [
            "Every bike and every tent comes with a two-year warranty against manufacturing",
            "defects. Frames of our own Nordwind bikes are guaranteed for life.",
        ],
    ),
    (
        "Repairs",
        ["Our workshop in Freiburg repairs bikes bought elsewhere too, usually within", "a week."],
    ),
]


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """The sample knowledge base (tests/data/kb) plus a PDF, in a folder the test may change."""
    folder = tmp_path / "kb"
    shutil.copytree(SAMPLE, folder)
    (folder / "warranty.pdf").write_bytes(make_pdf(WARRANTY_PDF))
    return folder


@pytest.fixture
async def memory(redis_url: str, prefix: str) -> AsyncIterator[Memory]:
    memory = Memory.from_url(redis_url, prefix, 3600)
    yield memory
    await memory.close()


@pytest.fixture
async def llm_client(llm: FakeLLM) -> AsyncIterator[LLMClient]:
    client = LLMClient(LLMConfig(llm.base_url, "key", "llama-3-8b-instruct", 0.7, 3, 3, 0))
    yield client
    await client.close()


KnowledgeFactory = Callable[..., Knowledge]


@pytest.fixture
def make_knowledge(kb_dir: Path, memory: Memory, llm_client: LLMClient) -> KnowledgeFactory:
    def make(**overrides: Any) -> Knowledge:
        config = KnowledgeConfig(**{"root": kb_dir, **overrides})
        return Knowledge(config, memory, llm_client)

    return make


# ---------------------------------------------------------------------- chunks and tokens


def test_markdown_is_split_at_headings_not_inside_code() -> None:
    text = (
        "---\ntitle: front matter\n---\nIntro text.\n\n# Returns\n\nBring it back.\n\n"
        "```sh\n# not a heading\necho hi\n```\n\n"
        "Shipping\n========\n\nWe ship.\n## Costs #\n5 EUR\n"
    )
    sections = markdown_sections(text, "guide")
    assert [s.title for s in sections] == ["guide", "Returns", "Shipping", "Costs"]
    assert "# not a heading" in sections[1].body
    assert "front matter" not in sections[0].body
    chunks = chunk_sections("guide.md", sections)
    assert chunks[3].citation == "guide.md § Costs"


def test_text_files_use_title_lines_and_long_sections_are_cut_at_paragraphs() -> None:
    paragraph = "A sentence that goes on. " * 40  # 1000 characters: one per chunk
    text = "Opening hours\n\nWe open at nine.\n\nLong part\n\n" + f"{paragraph}\n\n" * 3
    chunks = chunk_sections("store.txt", text_sections(text, "store"))
    assert [c.section for c in chunks] == ["Opening hours", "Long part", "Long part", "Long part"]
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in chunks)
    assert chunks[1].text == paragraph.strip()


def test_pdf_pages_are_cited_by_bookmark_and_page() -> None:
    sections = pdf_sections(make_pdf([*WARRANTY_PDF, (None, ["Page three text."])]))
    assert [s.title for s in sections] == ["Warranty, p. 1", "Repairs, p. 2", "Repairs, p. 3"]
    assert "two-year warranty" in sections[0].body


def test_tokens_work_in_any_script() -> None:
    assert tokenize("Café ÜBER naïve") == ["cafe", "uber", "naive"]
    assert tokenize("What is the?") == []
    assert tokenize("Как вернуть товар") == ["вернут", "товар"]  # "как" is a stopword
    assert tokenize("退货政策") == ["退货", "货政", "政策"]  # no spaces: character pairs
    assert tokenize("refunds refunded") == ["refund", "refund"]
    assert tokenize("हिन्दी") == ["हिन्दी"]  # its vowel signs are letters, not accents


# ---------------------------------------------------------------------- retrieval


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("How long do I have to return something?", "returns.md § Return window"),
        ("Can I send back a jacket I bought?", "returns.md § How to send an item back"),
        ("how many days until my refund?", "returns.md § Refunds"),
        ("can I swap it for another size?", "returns.md § Exchanges"),
        ("Do you deliver to Austria, and how long does it take?", "shipping.md § Delivery times"),
        ("How much does postage cost?", "shipping.md § Shipping costs"),
        ("What time do you open on Saturday?", "store.txt § Opening hours"),
        ("My bike frame broke, is that covered?", "warranty.pdf § Warranty, p. 1"),
        ("Is there a guarantee on bicycles?", "warranty.pdf § Warranty, p. 1"),
        ("Wie lange gilt mein Gutschein?", "gutscheine.md § Gutscheine"),
    ],
)
async def test_paraphrased_questions_find_the_right_chunk(
    make_knowledge: KnowledgeFactory, question: str, source: str
) -> None:
    knowledge = make_knowledge()
    await knowledge.refresh()
    hits = await knowledge.search(question)
    assert hits, f"nothing found for {question!r}"
    assert hits[0].chunk.citation == source, [h.chunk.citation for h in hits]


@pytest.mark.parametrize(
    "question", ["What's the capital of France?", "Can you write me a poem?", "what is it?"]
)
async def test_questions_outside_the_knowledge_base_find_nothing(
    make_knowledge: KnowledgeFactory, question: str
) -> None:
    knowledge = make_knowledge()
    await knowledge.refresh()
    assert await knowledge.search(question) == []
    assert (await knowledge.lookup(question)).reply is None
    strict = make_knowledge(strict=True)
    await strict.refresh()
    assert (await strict.lookup(question)).reply == UNKNOWN_REPLY


async def test_the_index_is_shared_through_redis_and_rebuilt_when_a_file_changes(
    make_knowledge: KnowledgeFactory, kb_dir: Path, redis_client: redis.Redis, prefix: str
) -> None:
    first, second = make_knowledge(), make_knowledge()
    assert await first.refresh() == "built"
    assert await first.refresh() == "unchanged"
    assert await second.refresh() == "loaded", "a replica with the same files reuses the build"
    assert redis_client.ttl(f"{prefix}:kb:index") == -1, "the index never expires"
    assert second.index is not None and first.index is not None
    assert second.index.version == first.index.version

    shipping = kb_dir / "shipping.md"
    os.utime(shipping, ns=(1, 1))
    assert await first.refresh() == "unchanged", "a new time alone changes nothing"

    shipping.write_text(
        shipping.read_text(encoding="utf-8") + "\n## Pick-up\n\nCollect your order at the "
        "Freiburg store: choose click and collect at checkout.\n",
        encoding="utf-8",
    )
    assert await first.refresh() == "built"
    [hit, *_] = await first.search("Can I collect my order at the store?")
    assert hit.chunk.citation == "shipping.md § Pick-up"
    assert await second.refresh() == "loaded"
    assert second.index.version == first.index.version


async def test_embeddings_are_fused_with_bm25(
    make_knowledge: KnowledgeFactory, llm: FakeLLM
) -> None:
    # A stand-in for meaning: content words only, and a package is a parcel.
    def embedder(text: str) -> list[float]:
        return bag_of_words(" ".join("parcel" if t == "packag" else t for t in tokenize(text)))

    llm.embedder = embedder
    question = "Where is my package right now?"
    lexical = make_knowledge()
    await lexical.refresh()
    assert "shipping.md § Tracking your parcel" not in [
        h.chunk.citation for h in await lexical.search(question)
    ]

    knowledge = make_knowledge(embeddings_model="embed-test", min_similarity=0.2)
    assert await knowledge.refresh() == "built"
    assert knowledge.index is not None and knowledge.index.model == "embed-test"
    assert len(llm.embedding_requests) == 1, "all chunks are embedded in one batch"
    hits = await knowledge.search(question)
    tracking = [h for h in hits if h.chunk.citation == "shipping.md § Tracking your parcel"]
    assert tracking, [h.chunk.citation for h in hits]
    assert tracking[0].similarity == max(h.similarity or 0 for h in hits)
    assert llm.embedding_requests[-1]["input"] == [question]

    # Another replica loads the vectors from Redis instead of paying for them again.
    replica = make_knowledge(embeddings_model="embed-test", min_similarity=0.2)
    assert await replica.refresh() == "loaded"
    assert len(llm.embedding_requests) == 2
    assert await replica.search(question) == hits


async def test_without_embeddings_it_falls_back_to_bm25_and_catches_up_later(
    make_knowledge: KnowledgeFactory, llm: FakeLLM
) -> None:
    llm.embeddings_status = 503
    knowledge = make_knowledge(embeddings_model="embed-test")
    assert await knowledge.refresh() == "built"
    assert knowledge.index is not None and knowledge.index.model == ""
    [hit, *_] = await knowledge.search("How much does postage cost?")
    assert hit.chunk.citation == "shipping.md § Shipping costs"

    llm.embeddings_status = None
    assert await knowledge.refresh() == "built", "a build without its embeddings is redone"
    assert knowledge.index.model == "embed-test"


# ---------------------------------------------------------------------- through the bot


async def ask(tg: FakeTelegram, text: str, user: int = USER) -> str:
    before = len(tg.texts(user))
    tg.send_text(user, text)
    messages = await tg.wait_messages(user, before + 1)
    await tg.wait_idle(quiet=0.05)
    return messages[-1].text


async def test_the_model_gets_the_excerpts_with_their_sources_in_the_last_message(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, kb_dir: Path
) -> None:
    llm.plan(Plan(text="4.95 EUR, free over 50 EUR.\n\nSources: shipping.md § Shipping costs"))
    async with start_bot(knowledge_dir=kb_dir):
        answer = await ask(tg, "How much does postage cost?")
        assert answer.endswith("Sources: shipping.md § Shipping costs")
        system, question = llm.last_prompt[0]["content"], llm.last_prompt[-1]["content"]
        assert "[1] shipping.md § Shipping costs\nStandard shipping within Germany costs 4.95" in (
            question
        )
        assert 'End your answer with one line "Sources: "' in question
        assert question.endswith("The user's message:\nHow much does postage cost?")
        assert "Excerpts" not in system, "the system prompt (the cached prefix) stays the same"

        await ask(tg, "And what time do you open on Saturday?")
        history = [m["content"] for m in llm.last_prompt[1:-1]]
        assert history[0] == "How much does postage cost?", "excerpts are not kept in memory"
        assert "store.txt § Opening hours" in llm.last_prompt[-1]["content"]


async def test_strict_mode_says_it_does_not_know_without_asking_the_model(
    tg: FakeTelegram, llm: FakeLLM, start_bot: BotFactory, kb_dir: Path
) -> None:
    async with start_bot(knowledge_dir=kb_dir, knowledge_strict=True):
        answer = await ask(tg, "What's the capital of France?")
        assert "couldn't find that" in answer and "/human" in answer
        assert llm.requests == [], "no model call for an out-of-scope question"

        await ask(tg, "When will I get my refund?")
        [request] = llm.requests
        question = request["messages"][-1]["content"]
        assert "returns.md § Refunds" in question
        assert "Answer only from these excerpts" in question and "(/human)" in question


async def test_a_changed_file_reaches_the_running_bot(
    tg: FakeTelegram,
    llm: FakeLLM,
    start_bot: BotFactory,
    kb_dir: Path,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    async with start_bot(knowledge_dir=kb_dir, knowledge_check_s=0.1, knowledge_strict=True):
        version = redis_client.hget(f"{prefix}:kb:index", "version")
        assert "couldn't find that" in await ask(tg, "How do loyalty points work?")
        assert llm.requests == []
        (kb_dir / "loyalty.md").write_text(
            "# Loyalty points\n\nEvery euro you spend earns one Nordwind point; 100 points "
            "are a 5 EUR voucher.\n",
            encoding="utf-8",
        )
        for _ in range(100):
            if redis_client.hget(f"{prefix}:kb:index", "version") != version:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the index was not rebuilt after a file was added")
        await ask(tg, "How do loyalty points work?")
        assert "[1] loyalty.md § Loyalty points" in llm.last_prompt[-1]["content"]


async def test_kb_build_and_search_from_the_command_line(
    llm: FakeLLM, redis_url: str, prefix: str, kb_dir: Path
) -> None:
    env = {
        "LLM_BASE_URL": llm.base_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "KNOWLEDGE_DIR": str(kb_dir),
    }
    code, out, err = await run_cli("kb", "build", env=env)
    assert code == 0, err
    assert "built" in out and "from 5 files" in out and "shared in Redis: yes" in out
    assert "warranty.pdf: 2 chunks (Warranty, p. 1, Repairs, p. 2)" in out

    again, found, nothing = await asyncio.gather(
        run_cli("kb", "build", env=env),
        run_cli("kb", "search", "How much does postage cost?", env=env),
        run_cli("kb", "search", "What's the capital of France?", env=env),
    )
    assert again[0] == 0 and "loaded from Redis" in again[1], again

    code, out, err = found
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("1. [bm25 ") and first.endswith("] shipping.md § Shipping costs")
    assert "   Standard shipping within Germany costs 4.95 EUR" in out

    code, out, _ = nothing
    assert code == 0 and out.startswith("Nothing relevant"), out
