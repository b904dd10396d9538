"""Embedders: the bundled ONNX MiniLM model and a model-free hashing embedder."""

from xnai.adapters.embed.fake import HashingEmbedder
from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder

__all__ = ["HashingEmbedder", "OnnxMiniLMEmbedder"]
