"""Shared data for the planner tests: a real miniF2F problem, a sketch reply, the SIMULATED REPL."""

from __future__ import annotations

import json
from pathlib import Path

from prover.lean_env.simulated_lean import Scenario, SimulatedLean
from prover.types import Problem

PLANNER_DATA = Path(__file__).resolve().parent / "data" / "planner"
SCENARIO = PLANNER_DATA / "scenario.yaml"
NAME = "mathd_algebra_478"

SKETCH_BODY = """\
  have hb : b * h = 195 := by sorry
  have hv : v = 1 / 3 * 195 := by
    sorry
  norm_num [hv]"""

HYPS = "b h v : ℝ\nh₀ : 0 < b ∧ 0 < h ∧ 0 < v\nh₁ : v = 1 / 3 * (b * h)\nh₂ : b = 30\nh₃ : h = 13 / 2"


def minif2f_problem(datasets_dir: Path, name: str = NAME) -> Problem:
    for line in (datasets_dir / "minif2f_test.jsonl").read_text(encoding="utf-8").splitlines():
        if json.loads(line)["name"] == name:
            return Problem.model_validate_json(line)
    raise AssertionError(f"{name} not in minif2f_test.jsonl")


def sketch_reply(problem: Problem, body: str = SKETCH_BODY, plan: str = "Plan: compute b * h, then v.") -> str:
    """A planner answer: a plan, then the theorem restated with a `have ... sorry` body."""
    return f"{plan}\n\n```lean4\n{problem.formal_statement}\n{body}\n```\n"


def simulated_lean() -> SimulatedLean:
    return SimulatedLean(Scenario.load(SCENARIO))
