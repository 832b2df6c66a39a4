"""telellama: a Telegram assistant for Llama 3 on any OpenAI-compatible endpoint."""
