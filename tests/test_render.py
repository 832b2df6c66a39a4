"""bot.render: Markdown to Telegram text and entities, split into messages by UTF-16 length."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegramify_markdown import MessageEntity as TgEntity
from telegramify_markdown import convert

from bot.render import (
    TELEGRAM_LIMIT,
    Chunk,
    Entity,
    preview,
    render,
    render_plain,
    utf16_len,
)

WORDS = [
    "the", "model", "answers", "every", "question", "with", "care", "and", "a", "little",
    "humour", "while", "keeping", "track", "of", "context", "memory", "tokens", "budget",
    "history", "summary", "telegram", "message", "entity", "offset", "length", "paragraph",
    "sentence", "clause", "example", "détails", "naïve", "façade",
]  # fmt: skip
HUGE = 10**9


def prose(chars: int, seed: int = 1) -> str:
    """Paragraphs of ordinary words, about `chars` characters in all."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    total = 0
    while total < chars:
        paragraph = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 110))) + "."
        paragraphs.append(paragraph.capitalize())
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)[: chars - 1].rstrip() + "."


def full_text(markdown: str) -> Chunk:
    """The whole rendered document as one chunk."""
    [chunk] = render(markdown, HUGE)
    return chunk


def unit_boundaries(text: str) -> set[int]:
    """UTF-16 offsets that fall between characters (never inside a surrogate pair)."""
    bounds, offset = {0}, 0
    for char in text:
        offset += 2 if ord(char) > 0xFFFF else 1
        bounds.add(offset)
    return bounds


def invisible(char: str) -> bool:
    """What a chunk may trim at its edges: spaces, control and format characters, blanks."""
    return char.isspace() or unicodedata.category(char) in {"Cc", "Cf"} or char in "\u2800\ufffc"


def check_chunk(chunk: Chunk, limit: int) -> None:
    """A chunk Telegram accepts as it is: fitting, trimmed, non-empty, entities inside."""
    size = utf16_len(chunk.text)
    assert 1 <= size <= limit
    assert chunk.text.strip() == chunk.text
    assert chunk.text.strip()
    bounds = unit_boundaries(chunk.text)
    for entity in chunk.entities:
        assert entity.length > 0
        assert 0 <= entity.offset < entity.offset + entity.length <= size
        assert entity.offset in bounds
        assert entity.offset + entity.length in bounds


def clipped(entities: tuple[Entity, ...], start: int, end: int) -> list[tuple[object, ...]]:
    """`entities` cut to [start, end) and re-based on start, as comparable tuples."""
    result = []
    for e in entities:
        left, right = max(e.offset, start), min(e.offset + e.length, end)
        if right > left:
            result.append((e.type, left - start, right - left, e.url, e.language))
    return sorted(result, key=repr)


def check_split(markdown: str, chunks: list[Chunk], limit: int) -> None:
    """Chunks cover the whole rendering in order, losing only invisible characters between
    them, each with exactly the entities of the whole clipped to it."""
    whole = render(markdown, HUGE)
    if not whole:
        assert chunks == []
        return
    text, entities = whole[0].text, whole[0].entities
    position = 0
    previous: Chunk | None = None
    for chunk in chunks:
        check_chunk(chunk, limit)
        found = text.find(chunk.text, position)
        assert found >= 0
        gap = text[position:found]
        assert all(invisible(c) for c in gap)
        if previous is not None and not any(c.isspace() for c in gap):
            # Cut inside a word: only a word longer than a whole chunk may be cut.
            assert not any(c in " \t\n" for c in previous.text)
        start = utf16_len(text[:found])
        end = start + utf16_len(chunk.text)
        assert clipped(chunk.entities, 0, end - start) == clipped(entities, start, end)
        position = found + len(chunk.text)
        previous = chunk
    assert all(invisible(c) for c in text[position:])
    for entity in entities:
        code = entity_text(whole[0], entity).strip()
        if entity.type == "pre" and entity.length <= limit and code:
            # A code block that fits in a chunk is never split.
            assert any(
                code in entity_text(c, e) for c in chunks for e in c.entities if e.type == "pre"
            )


def entity_text(chunk: Chunk, entity: Entity) -> str:
    encoded = chunk.text.encode("utf-16-le")
    piece = encoded[2 * entity.offset : 2 * (entity.offset + entity.length)]
    return piece.decode("utf-16-le")


# --- examples ------------------------------------------------------------------------------


def test_inline_markup_becomes_entities_at_utf16_offsets() -> None:
    [chunk] = render("😀 **bold** _it_ `code` [link](http://x.y)")
    assert chunk.text == "😀 bold it code link"
    assert chunk.entities == (
        Entity("bold", 3, 4),
        Entity("italic", 8, 2),
        Entity("code", 11, 4),
        Entity("text_link", 16, 4, url="http://x.y"),
    )
    assert [entity_text(chunk, e) for e in chunk.entities] == ["bold", "it", "code", "link"]


def test_headings_and_lists() -> None:
    [chunk] = render("# Title\n\nIntro\n\n- one\n- **two**\n\n1. first\n2. second")
    assert chunk.text == "📌 Title\n\nIntro\n\n⦁ one\n⦁ two\n\n1. first\n2. second"
    title = {e.type for e in chunk.entities if entity_text(chunk, e) == "Title"}
    assert title == {"bold", "underline"}
    assert Entity("bold", 3, 5) in chunk.entities
    two = [e for e in chunk.entities if entity_text(chunk, e) == "two"]
    assert [e.type for e in two] == ["bold"]


def test_code_block_keeps_its_language() -> None:
    [chunk] = render("Run this:\n\n```python\nprint('hi')\n```\n\nDone.")
    assert chunk.text == "Run this:\n\nprint('hi')\n\nDone."
    assert chunk.entities == (Entity("pre", 11, 11, language="python"),)


def test_entity_to_dict_has_only_set_fields() -> None:
    assert Entity("bold", 1, 2).to_dict() == {"type": "bold", "offset": 1, "length": 2}
    assert Entity("pre", 0, 3, language="py").to_dict() == {
        "type": "pre",
        "offset": 0,
        "length": 3,
        "language": "py",
    }
    assert Entity("text_link", 0, 1, url="http://x.y").to_dict()["url"] == "http://x.y"


def test_utf16_len_counts_surrogate_pairs() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("é€") == 2
    assert utf16_len("😀a") == 3


def test_long_prose_splits_into_three_chunks_at_paragraphs() -> None:
    markdown = prose(10_000)
    assert 9_990 <= len(markdown) <= 10_000
    chunks = render(markdown)
    assert len(chunks) == 3
    check_split(markdown, chunks, TELEGRAM_LIMIT)
    position = 0
    for chunk in chunks:
        start = markdown.index(chunk.text, position)
        end = start + len(chunk.text)
        assert start == 0 or markdown[start - 1].isspace()
        assert end == len(markdown) or markdown[end : end + 2] == "\n\n"
        position = end


def test_a_blank_line_is_preferred_to_a_line_break() -> None:
    items = "\n".join(f"- item number {i}" for i in range(80))
    markdown = f"{prose(3_000)}\n\n{items}\n\nThe end."
    chunks = render(markdown)
    check_split(markdown, chunks, TELEGRAM_LIMIT)
    assert len(chunks) == 2
    assert chunks[0].text == prose(3_000)
    assert chunks[1].text.startswith("⦁ item number 0\n")


def test_long_paragraph_splits_between_words() -> None:
    markdown = prose(9_000).replace("\n\n", " ")
    chunks = render(markdown, 1000)
    assert len(chunks) >= 9
    check_split(markdown, chunks, 1000)
    words = set(markdown.split())
    for chunk in chunks:
        assert set(chunk.text.split()) <= words


def test_code_block_straddling_the_limit_moves_whole() -> None:
    code = "\n\n".join(f"def f{i}():\n    return compute({i})" for i in range(20))
    before = prose(3_900)
    markdown = f"{before}\n\n```python\n{code}\n```\n\nThat is all."
    chunks = render(markdown)
    check_split(markdown, chunks, TELEGRAM_LIMIT)
    assert len(chunks) == 2
    assert not chunks[0].entities
    assert chunks[1].text.startswith(code)
    assert chunks[1].entities[0] == Entity("pre", 0, utf16_len(code), language="python")


def test_huge_code_block_splits_at_line_breaks_into_pre_chunks() -> None:
    lines = [f"print('line {i:04d} of a rather long listing')" for i in range(220)]
    code = "\n".join(lines)
    assert len(code) > 9_000
    chunks = render(f"```python\n{code}\n```")
    assert len(chunks) == 3
    check_split(f"```python\n{code}\n```", chunks, TELEGRAM_LIMIT)
    for chunk in chunks:
        assert chunk.entities == (Entity("pre", 0, utf16_len(chunk.text), language="python"),)
        assert set(chunk.text.split("\n")) <= set(lines)
    assert "\n".join(c.text for c in chunks) == code


def test_indented_code_is_not_cut_before_an_indented_line() -> None:
    body = "\n".join(f"    step({i})  # keep going" for i in range(12))
    code = "\n".join(f"def f{i}():\n{body}" for i in range(30))
    chunks = render(f"```python\n{code}\n```", 1500)
    check_split(f"```python\n{code}\n```", chunks, 1500)
    assert all(chunk.text.startswith("def ") for chunk in chunks)


@pytest.mark.parametrize(
    "markdown", ["", "   ", "\n\n\t\n", "```\n```", "<div></div>", "\u200b\u200b", "<br>"]
)
def test_nothing_visible_gives_nothing(markdown: str) -> None:
    assert render(markdown) == []
    assert render_plain(markdown) == []
    assert preview(markdown) is None


def test_render_plain_has_the_same_texts_without_entities() -> None:
    markdown = prose(6_000).replace("ordinary", "**ordinary**") + "\n\n```sh\nls -la\n```"
    rendered = render(markdown, 700)
    plain = render_plain(markdown, 700)
    assert [c.text for c in plain] == [c.text for c in rendered]
    assert all(c.entities == () for c in plain)
    assert any(c.entities for c in rendered)


def test_lone_surrogates_do_not_raise() -> None:
    [chunk] = render("**a** \ud83d\ude00 \ud800 b")
    assert chunk.text == "a 😀 \ufffd b"
    assert chunk.entities == (Entity("bold", 0, 1),)


def test_a_converter_failure_falls_back_to_the_raw_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(markdown: str) -> tuple[str, list[object]]:
        raise RuntimeError(markdown)

    monkeypatch.setattr("bot.render.convert", broken)
    assert render("  **as** `is`\n") == [Chunk("**as** `is`", ())]
    assert preview("**as** `is`") == Chunk("**as** `is`", ())


def test_limit_must_hold_a_surrogate_pair() -> None:
    with pytest.raises(ValueError, match="limit"):
        render("hello", 1)
    assert [c.text for c in render("😀😀😀", 2)] == ["😀", "😀", "😀"]


def test_preview_of_an_unclosed_fence_shows_code_without_markers() -> None:
    chunk = preview("Here you go:\n\n```python\nfor x in range(3):\n    print(x)")
    assert chunk is not None
    assert "`" not in chunk.text
    assert chunk.text == "Here you go:\n\nfor x in range(3):\n    print(x)"
    assert chunk.entities == (Entity("pre", 14, 31, language="python"),)


def test_preview_drops_a_closing_fence_being_typed() -> None:
    chunk = preview("```python\nprint(1)\n``")
    assert chunk == Chunk("print(1)", (Entity("pre", 0, 8, language="python"),))


@pytest.mark.parametrize(
    ("markdown", "text", "entities"),
    [
        ("Some **bold", "Some bold", (Entity("bold", 5, 4),)),
        (
            "Some **bold** and _ita",
            "Some bold and ita",
            (Entity("bold", 5, 4), Entity("italic", 14, 3)),
        ),
        ("**bold*", "bold", (Entity("bold", 0, 4),)),
        ("say `code", "say code", (Entity("code", 4, 4),)),
        ("say ``code`", "say code", (Entity("code", 4, 4),)),
        ("see [the docs](https://exa", "see the docs", ()),
        ("text **", "text", ()),
        ("5 ** 2 is **25", "5 ** 2 is 25", (Entity("bold", 10, 2),)),
        ("> quoted **word", "quoted word", (Entity("blockquote", 0, 11), Entity("bold", 7, 4))),
        ("- item ~~gone", "⦁ item gone", (Entity("strikethrough", 7, 4),)),
        ("**", None, ()),
    ],
)
def test_preview_closes_open_inline_markup(
    markdown: str, text: str | None, entities: tuple[Entity, ...]
) -> None:
    chunk = preview(markdown)
    if text is None:
        assert chunk is None
        return
    assert chunk == Chunk(text, entities)


def test_preview_shows_the_tail_from_a_word_boundary() -> None:
    markdown = prose(20_000, seed=7)
    whole = full_text(markdown).text
    for limit in range(900, 1000, 7):
        chunk = preview(markdown, limit)
        assert chunk is not None
        check_chunk(chunk, limit)
        assert whole.endswith(chunk.text)
        assert utf16_len(chunk.text) > limit * 3 // 4
        assert whole[-len(chunk.text) - 1].isspace()


def test_preview_tail_does_not_turn_indented_paragraphs_into_code() -> None:
    items = "\n\n".join(f"{i}. Step {i}\n\n    {prose(300, seed=i)}" for i in range(1, 40))
    chunk = preview(items, 1000)
    assert chunk is not None
    assert not any(e.type == "pre" for e in chunk.entities)
    assert "Step 39" in chunk.text


def test_preview_of_a_long_answer_never_starts_inside_a_code_block() -> None:
    code = "\n\n".join(f"step_{i}()" for i in range(400))
    chunk = preview(f"Intro\n\n```python\n{code}\n```\n\nAnd **that** is all.", 500)
    assert chunk is not None
    check_chunk(chunk, 500)
    assert "`" not in chunk.text
    assert chunk.text.endswith("step_399()\n\nAnd that is all.")
    assert chunk.entities[0].type == "pre"
    assert chunk.entities[0].language == "python"
    assert chunk.entities[-1] == Entity("bold", utf16_len(chunk.text) - 12, 4)


@pytest.mark.parametrize(
    "markdown",
    [
        prose(30_000),
        "\n".join(f"- item **{i}** of a tight list" for i in range(1500)),
        "Intro\n\n```python\n" + "\n".join(f"x{i} = {i}" for i in range(3000)),
        "Intro\n\n```python\n" + "\n".join(f"x{i} = {i}" for i in range(3000)) + "\n```\n\nEnd.",
    ],
    ids=["prose", "tight-list", "open-code", "closed-code"],
)
def test_preview_converts_only_the_end_of_a_long_answer(
    markdown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted: list[int] = []

    def measured(source: str) -> tuple[str, list[TgEntity]]:
        converted.append(len(source))
        return convert(source)

    monkeypatch.setattr("bot.render.convert", measured)
    chunk = preview(markdown, 500)
    assert chunk is not None
    assert converted[0] < 2_500  # of answers 30,000+ characters long
    monkeypatch.undo()
    whole = full_text(markdown)
    assert whole.text.endswith(chunk.text)
    end = utf16_len(whole.text)
    start = end - utf16_len(chunk.text)
    assert clipped(chunk.entities, 0, end - start) == clipped(whole.entities, start, end)


def test_preview_of_a_long_answer_keeps_code_open_far_back() -> None:
    code = "\n".join(f"x{i} = {i}\n" for i in range(2000))
    chunk = preview(f"Intro\n\n```python\n{code}", 500)
    assert chunk is not None
    check_chunk(chunk, 500)
    assert chunk.entities == (Entity("pre", 0, utf16_len(chunk.text), language="python"),)


# --- properties ----------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=400)
FRAGMENTS = st.sampled_from(
    [
        "**", "_", "*", "~~", "`", "```py\n", "```\n", "\n```", "[a](http://x.y)", "[b](",
        "\n\n", "\n", "# ", "## ", "- ", "1. ", "> ", "| a | b |\n|---|---|\n| 1 | 2 |\n",
        " ", "  ", "\t", "    ", "😀", "👨‍👩‍👧", "🇺🇦", "שלום", "مرحبا", "\u200b", "\u200f",
        "\u202e", "\x00", "\x1b", "e\u0301", "\u2800", "\xa0",
    ]
)  # fmt: skip
WORD = st.text(st.sampled_from("abcdefgxyz😀é"), min_size=1, max_size=12)
LONG_WORD = st.text(st.sampled_from("ab😀\u0301"), min_size=50, max_size=400)
MARKDOWN = st.lists(
    st.one_of(FRAGMENTS, WORD, WORD.map(lambda w: w + " "), LONG_WORD, TEXT.map(lambda t: t[:8])),
    max_size=120,
).map("".join)
LIMIT = st.integers(min_value=50, max_value=300)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(TEXT, LIMIT)
def test_any_text_splits_into_valid_chunks(text: str, limit: int) -> None:
    check_split(text, render(text, limit), limit)


@FAST
@given(MARKDOWN, LIMIT)
def test_any_markdown_splits_into_valid_chunks(markdown: str, limit: int) -> None:
    chunks = render(markdown, limit)
    check_split(markdown, chunks, limit)
    assert [c.text for c in render_plain(markdown, limit)] == [c.text for c in chunks]


@FAST
@given(st.one_of(MARKDOWN, TEXT), LIMIT)
def test_preview_of_any_prefix_is_valid(markdown: str, limit: int) -> None:
    for end in (len(markdown), len(markdown) * 2 // 3, len(markdown) // 3):
        chunk = preview(markdown[:end], limit)
        if chunk is not None:
            check_chunk(chunk, limit)


PLAIN_BLOCKS = st.lists(
    st.one_of(
        st.sampled_from(
            ["\n", "\n\n", "- ", "# ", "> ", "    ", "\n```py\n", "\n```\n", " ", "😀"]
        ),
        WORD,
        WORD.map(lambda w: w + " "),
    ),
    max_size=300,
).map("".join)


@FAST
@given(PLAIN_BLOCKS, LIMIT)
def test_preview_without_inline_markup_is_the_tail_of_the_rendering(
    markdown: str, limit: int
) -> None:
    chunk = preview(markdown, limit)
    whole = render(markdown, HUGE)
    if chunk is None:
        assert whole == []
        return
    assert whole[0].text.endswith(chunk.text)
