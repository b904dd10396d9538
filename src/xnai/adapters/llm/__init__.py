"""Chat model adapters: in-process llama.cpp and OpenAI-compatible HTTP (the fake is in memory)."""

from __future__ import annotations

from xnai.adapters.llm.llama_cpp import LlamaCppChatModel
from xnai.adapters.llm.openai_http import OpenAIChatModel

__all__ = ["LlamaCppChatModel", "OpenAIChatModel"]
