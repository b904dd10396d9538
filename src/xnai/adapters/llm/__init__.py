"""Chat model adapters: in-process llama.cpp, OpenAI-compatible HTTP and a deterministic fake."""

from __future__ import annotations

from xnai.adapters.llm.fake import FakeChatModel
from xnai.adapters.llm.llama_cpp import LlamaCppChatModel
from xnai.adapters.llm.openai_http import OpenAIChatModel

__all__ = ["FakeChatModel", "LlamaCppChatModel", "OpenAIChatModel"]
