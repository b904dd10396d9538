"""A GGUF model re-quantized by llama.cpp's own quantizer, in this process.

Used to make a bundled model's faster variant on the user's machine (nothing is
downloaded): llama.cpp repacks Q4_0 weights into interleaved blocks that its AVX2 kernels
read several rows at a time, so prompt processing runs faster than on the K-quant and
Q5_0 mix the model ships in. The result is deterministic for one llama.cpp version.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from xnai.adapters.llm.ggml import import_runtime
from xnai.domain.errors import ModelUnavailableError

_LOGGER = "llama-cpp-python"  # the binding's logger; at ERROR it prints only errors


def requantize(source: Path, target: Path, ftype: str, *, threads: int = 2) -> None:
    """Write ``source`` re-quantized to ``ftype`` (e.g. ``Q4_0``) as ``target``."""
    llama_cpp = import_runtime(
        "llama_cpp",
        feature="making a re-quantized model variant",
        package="llama-cpp-python",
        extra="llama",
        install="run `make install`, which builds it with CPU-safe flags",
        otherwise="choose a preset the model ships as",
    )
    code = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype.upper()}", None)
    if code is None:
        raise ModelUnavailableError(f"llama.cpp has no quantization type {ftype!r}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = code
    params.allow_requantize = True
    params.nthread = threads
    logger = logging.getLogger(_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)  # one progress line per tensor otherwise
    try:
        failed = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    finally:
        logger.setLevel(level)
    if failed:
        raise ModelUnavailableError(f"re-quantizing {source.name} to {ftype} failed ({failed})")
