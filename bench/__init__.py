"""The benchmark: the real bot against fake Telegram and LLM servers (see bench/README.md)."""
