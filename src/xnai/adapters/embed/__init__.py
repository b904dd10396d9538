"""Embedders: the bundled ONNX MiniLM model (the hashing reference embedder is in memory)."""

from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder

__all__ = ["OnnxMiniLMEmbedder"]
