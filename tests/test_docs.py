"""The README's settings table and deploy/.env.example cover every setting the bot reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    env = name.upper()
    assert f"| `{env}` |" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert env in (ROOT / "deploy" / ".env.example").read_text(encoding="utf-8")
