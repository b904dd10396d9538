"""Answer bundles: the signer, the store and what bundles record about how answers are made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from xnai.config import Settings
from xnai.domain.bundles import AnswerBundleStore
from xnai.domain.layout import DataLayout
from xnai.domain.ports import Embedder, KeyRing, SignatureVerifier, Signer, StateStore
from xnai.services.answer_bundles import AnswerBundles, Provenance
from xnai.services.knowledge import KnowledgeBase

if TYPE_CHECKING:
    from xnai.adapters.storage.answer_bundles import FileAnswerBundles


def build_signer(keyring: KeyRing) -> Signer:
    """Ed25519 under keys derived from the master keys (no key file of its own)."""
    from xnai.adapters.security.signing import Ed25519Signer

    return Ed25519Signer(keyring)


def public_key_verifier(pem: bytes) -> SignatureVerifier:
    """A verifier of bundles signed with the private half of the PEM public key ``pem``."""
    from xnai.adapters.security.signing import PublicKeyVerifier

    return PublicKeyVerifier(pem)


def build_bundle_store(layout: DataLayout, keyring: KeyRing) -> FileAnswerBundles:
    """Bundles under ``<data_dir>/answers``, encrypted with the user_data key (a key
    rotation rewrites them)."""
    from xnai.adapters.storage.answer_bundles import FileAnswerBundles

    return FileAnswerBundles(layout.answers, keyring)


def model_sha256(settings: Settings, state: StateStore) -> Callable[[], str | None]:
    """The sha256 of the configured GGUF file, computed when first needed and remembered;
    None for a model without a local file (an OpenAI-compatible server, the fake)."""
    m = settings.models
    if m.llm_backend not in ("llama_cpp", "llama_server"):  # no local model file
        return lambda: None
    from xnai.adapters.model_files import FileDigest, get_preset
    from xnai.adapters.model_files import model_path as preset_path

    if m.llm_path is not None:
        return FileDigest(m.llm_path.expanduser(), remember=state)
    preset = get_preset(m.llm_preset)
    return FileDigest(preset_path(preset.name, settings.models_dir), pinned=preset, remember=state)


def provenance(settings: Settings, embedder: Embedder, state: StateStore) -> Provenance:
    """The model file's digest and the retrieval settings every answer shares."""
    rag = settings.rag
    return Provenance(
        model_sha256=model_sha256(settings, state),
        retrieval={
            "candidates": rag.candidates,
            "rrf_k": rag.rrf_k,
            "min_score": rag.min_score,
            "context_tokens": rag.context_tokens,
            "evidence": rag.evidence,
            "evidence_tokens": rag.evidence_tokens,
            "embedder": f"{embedder.name}/{embedder.version}",
        },
    )


def build_answer_bundles(
    settings: Settings,
    store: AnswerBundleStore,
    keyring: KeyRing,
    kb: KnowledgeBase,
    state: StateStore,
) -> AnswerBundles:
    """Signed bundles of answers, kept in ``store``, verified against ``kb``."""
    return AnswerBundles(
        build_signer(keyring),
        store,
        lambda: kb.snapshot,
        provenance(settings, kb.embedder, state),
    )
