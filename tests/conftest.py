"""Session-wide test settings.

Tests never read or write the developer's real `~/.config/prover` or `~/.cache/prover`, nor the
Hugging Face datasets cache or LeanDojo's cache of traced repositories: all are pointed at a
per-session temporary folder (subprocesses inherit the environment). Shared benchmark
data lives beside the repository in `../shared` (override with PROVER_SHARED_DIR).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("PROVER_SHARED_DIR", REPO_ROOT.parent / "shared"))


def pytest_configure(config: pytest.Config) -> None:
    session_home = Path(tempfile.mkdtemp(prefix="prover-tests-"))
    os.environ.setdefault("PROVER_CONFIG_HOME", str(session_home / "config"))
    os.environ.setdefault("PROVER_CACHE_DIR", str(session_home / "cache"))
    os.environ["HF_DATASETS_CACHE"] = str(session_home / "hf-datasets")
    os.environ["CACHE_DIR"] = str(session_home / "lean_dojo")  # LeanDojo's cache variable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not (root / "datasets").is_dir():
        pytest.fail(f"shared data not found at {root}; set PROVER_SHARED_DIR")
    return root


@pytest.fixture(scope="session")
def datasets_dir(shared_dir: Path) -> Path:
    return shared_dir / "datasets"


@pytest.fixture(scope="session")
def transcripts_dir(shared_dir: Path) -> Path:
    return shared_dir / "lean-repl-transcripts"
