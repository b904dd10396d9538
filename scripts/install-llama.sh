#!/usr/bin/env bash
# Install llama-cpp-python built with flags that run on every x86-64 CPU with AVX2.
# The default build (-march=native) enables AMX on some CPUs and crashes at the first token.
# pip's wheel cache ignores CMAKE_ARGS, so the wheel is kept in a folder keyed by the
# version and the flags, and rebuilt (without pip's cache) only when either changes.
set -euo pipefail
PIP=${1:?usage: install-llama.sh PIP}
VERSION=0.3.36
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
KEY=$(printf '%s|%s' "$VERSION" "$CMAKE_ARGS" | sha256sum | cut -c1-12)
WHEELS="${XNAI_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xnai/wheels}/llama-$KEY"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION once (a few minutes on 2 cores)..."
  CMAKE_ARGS="$CMAKE_ARGS" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PIP" wheel --no-cache-dir --no-deps -w "$WHEELS.tmp.$$" "llama-cpp-python==$VERSION"
  mv "$WHEELS.tmp.$$"/*.whl "$WHEELS"/ && rmdir "$WHEELS.tmp.$$"
fi
"$PIP" install --no-deps "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl
"$PIP" install "diskcache>=5.6.1" "jinja2>=2.11.3" "typing-extensions>=4.5.0"
