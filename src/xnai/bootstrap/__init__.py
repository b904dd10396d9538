"""Composition root: the only place that knows concrete adapters; it constructs and
connects, nothing else."""

from xnai.bootstrap.answers import public_key_verifier
from xnai.bootstrap.container import Container
from xnai.bootstrap.models import (
    build_chat_model,
    build_embedder,
    install_embedder,
    install_model,
    model_label,
    model_path,
)
from xnai.bootstrap.security import build_auditor, build_keyring, key_file_path
from xnai.bootstrap.storage import storage_outage_errors
from xnai.bootstrap.voice import build_speech_to_text, build_text_to_speech
from xnai.bootstrap.wiring import build, prepare_process

__all__ = [
    "Container",
    "build",
    "build_auditor",
    "build_chat_model",
    "build_embedder",
    "build_keyring",
    "build_speech_to_text",
    "build_text_to_speech",
    "install_embedder",
    "install_model",
    "key_file_path",
    "model_label",
    "model_path",
    "prepare_process",
    "public_key_verifier",
    "storage_outage_errors",
]
