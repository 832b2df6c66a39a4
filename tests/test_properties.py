"""Property tests of the pure parts: packing, input cleaning, fact parsing, settings parsing."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conversation import (
    Turn,
    clean_input,
    history_tokens,
    pack_history,
    parse_remember,
)
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

turns = st.lists(
    st.builds(
        Turn,
        user=st.text(max_size=20),
        assistant=st.text(max_size=20),
        tokens=st.integers(min_value=1, max_value=2000),
        at=st.floats(min_value=0, max_value=2e9),
    ),
    max_size=60,
)


@given(turns, st.integers(min_value=0, max_value=50_000))
def test_packing_never_exceeds_the_budget_and_drops_the_oldest(
    history: list[Turn], budget: int
) -> None:
    packed = pack_history(history, budget)
    assert history_tokens(packed.turns) <= budget or not packed.turns
    assert packed.dropped + len(packed.turns) == len(history)
    assert list(packed.turns) == history[packed.dropped :], "a suffix: the newest are kept"
    if history_tokens(history) <= budget:
        assert packed.dropped == 0


@given(st.text())
def test_clean_input_is_idempotent_and_free_of_control_characters(text: str) -> None:
    cleaned = clean_input(text)
    assert clean_input(cleaned) == cleaned
    assert not any(ord(c) < 32 and c not in "\n\t" for c in cleaned)
    assert cleaned == cleaned.strip()


@given(st.text())
def test_parse_remember_never_raises(text: str) -> None:
    fact = parse_remember(text)
    assert fact is None or (0 < len(fact) <= 500)


NUMERIC = [
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (int, float) and name != "llm_max_tokens"
]
values = st.one_of(
    st.text(alphabet=string.printable, max_size=12),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@settings(max_examples=300)
@given(st.sampled_from(NUMERIC), values)
def test_settings_either_load_or_name_the_bad_setting(name: str, value: str) -> None:
    try:
        load_settings(llm_base_url="http://localhost:1/v1", _env_file=None, **{name: value})
    except ConfigError as exc:
        assert name.upper() in str(exc) or "LLM_MAX_TOKENS" in str(exc)
