#!/usr/bin/env bash
# Install elan (the Lean toolchain manager) if needed, then create and build the Lean workspace
# used by `prover` (Mathlib + leanprover-community/repl) and record it in the user config.
# Needs the internet (toolchain, Mathlib and its ~5 GB .olean cache). Not run by the tests.
#
#   scripts/setup_lean.sh [--lean-version v4.15.0] [--dir DIR] [other `prover setup lean` flags]
set -euo pipefail

if ! command -v elan >/dev/null 2>&1 && [ ! -x "$HOME/.elan/bin/elan" ]; then
  if ! command -v curl >/dev/null 2>&1; then
    echo "setup_lean.sh: curl is needed to install elan (e.g. sudo apt-get install curl)" >&2
    exit 1
  fi
  echo "Installing elan into ~/.elan ..." >&2
  curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh \
    | sh -s -- -y --default-toolchain none
fi
export PATH="$HOME/.elan/bin:$PATH"

if command -v prover >/dev/null 2>&1; then
  exec prover setup lean "$@"
else
  # a fresh Linux machine often has python3 but no `python`
  exec "${PYTHON:-$(command -v python3 || command -v python)}" -m prover.cli setup lean "$@"
fi
