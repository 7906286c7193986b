"""`prover eval` through the real CLI on the eval test data (tests/data/eval/): the command line,
the environment of a fresh user, and the hand-computed summary every run of that data must give.
Shared by tests/test_eval_e2e.py and tests/test_faults.py (see the former's docstring for how the
expected numbers come about)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data" / "eval"
PROBLEMS = DATA / "problems.jsonl"
SCRIPT = DATA / "script.jsonl"
SCENARIO = DATA / "scenario.yaml"

EXPECTED = {
    "problems": 6,
    "solved": 4,
    "pass_at_k": {"1": 0.375, "2": 0.5, "4": 4 / 6},
    "any_at_k": {"1": 2, "2": 3, "4": 4},
    "attempts": 24,
    "checks": 16,
    "dedupe_saved": 5,
    "extraction_failures": 3,
    "solved_names": ["e_add_zero", "e_axiom", "e_mul_comm", "e_two"],
}


def cli() -> list[str]:
    return [sys.executable, "-m", "prover.cli"]


def repl_cmd(scenario: Path) -> str:
    return f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {scenario}"


def eval_args(out: Path, *extra: str, scenario: Path = SCENARIO) -> list[str]:
    return [
        "eval", f"jsonl:{PROBLEMS}", "--pass", "4", "--model", "test/scripted-model",
        "--backend", "scripted", "--script", str(SCRIPT), "--prompt-format", "kimina",
        "--repl-cmd", repl_cmd(scenario), "--workers", "2", "--out", str(out), "--quiet", *extra,
    ]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Fresh user config and caches per test (the verdict cache must not leak between runs)."""
    environ = dict(os.environ)
    environ["PROVER_CONFIG_HOME"] = str(tmp_path / "config")
    environ["PROVER_CACHE_DIR"] = str(tmp_path / "cache")
    environ.pop("PROVER_DATA_DIR", None)
    return environ


def run(args: list[str], env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli(), *args], env=env, capture_output=True, text=True, timeout=timeout)


def attempts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines() if line.strip()]


def assert_expected_summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    for key, value in EXPECTED.items():
        if key in ("pass_at_k",):
            assert summary[key] == pytest.approx(value), key
        else:
            assert summary[key] == value, key
    recorded = attempts(out)
    keys = [(a["problem"], a["round"], a["sample_index"]) for a in recorded]
    assert len(keys) == len(set(keys)) == 24, "no duplicated attempts"
    return summary
