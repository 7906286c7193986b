"""A planner world for end-to-end tests: problems, model scripts and the SIMULATED REPL scenario.

Problems: miniF2F `mathd_algebra_478` (read from ../shared/datasets) and `planner_shared_b`, a
theorem with the same hypotheses whose sketch shares the claim `hb` (tests/data/planner/e2e.yaml
says what Lean accepts). Planner replies are routed by `<scope>#round=<planner call>`:

    mathd_algebra_478      0: restates the theorem with `h₂ : b = 31`      -> rejected, repaired
                           1: a sketch with the false claim `hbad`          -> hbad unprovable
                           2: (re-plan) `hb`, `hv`, `norm_num [hv]`         -> both holes proved
    mathd_algebra_478_hbad 0, 1: no Lean block (the decomposition of hbad fails)
    planner_shared_b       0: `hb`, `exact Or.inl hb`                       -> hb from the cache

The prover script proves the lemmas `..._hb` and `..._hv`, fails `..._hbad`, and fails the
theorem itself (direct proving does not solve it). It has no entry for `planner_shared_b_hb`:
sampling for it would stop the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from planner_helpers import minif2f_problem

from prover.config import ProverConfig
from prover.types import Problem

DATA = Path(__file__).resolve().parent / "data" / "planner"
E2E_SCENARIO = DATA / "e2e.yaml"
NAME = "mathd_algebra_478"
SHARED = "planner_shared_b"

STATEMENT_CHANGED = """\
theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v) (h₁ : v = 1 / 3 * (b * h))
    (h₂ : b = 31) (h₃ : h = 13 / 2) : v = 65 := by
  have hb : b * h = 195 := by sorry
  linarith"""
FALSE_CLAIM_BODY = """\
  have hbad : v = 65 ∧ b = 31 := by sorry
  exact hbad.1"""
GOOD_BODY = """\
  have hb : b * h = 195 := by sorry
  have hv : v = 1 / 3 * 195 := by sorry
  norm_num [hv]"""
SHARED_BODY = """\
  have hb : b * h = 195 := by sorry
  exact Or.inl hb"""


def shared_problem(base: Problem) -> Problem:
    statement = base.formal_statement.replace("theorem mathd_algebra_478", f"theorem {SHARED}").replace(
        ": v = 65 := by", ": b * h = 195 ∨ v = 0 := by")
    return base.model_copy(update={"name": SHARED, "formal_statement": statement, "informal_statement": None,
                                   "informal_proof": None})


def problems(datasets_dir: Path) -> list[Problem]:
    base = minif2f_problem(datasets_dir, NAME)
    return [base, shared_problem(base)]


def write_problems(path: Path, items: list[Problem]) -> Path:
    path.write_text("".join(p.model_dump_json() + "\n" for p in items), encoding="utf-8")
    return path


def reply(problem: Problem, body: str, plan: str = "Plan: compute b * h first, then v.") -> str:
    return f"{plan}\n\n```lean4\n{problem.formal_statement}\n{body}\n```\n"


def code_reply(code: str, plan: str = "Plan: use the hypotheses.") -> str:
    return f"{plan}\n\n```lean4\n{code}\n```\n"


def planner_lines(items: list[Problem]) -> list[dict[str, Any]]:
    base, shared = items
    no_block = "The claim `v = 65 ∧ b = 31` contradicts h₂, so I cannot decompose it."
    return [
        {"name": NAME, "round": 0, "completions": [code_reply(STATEMENT_CHANGED)]},
        {"name": NAME, "round": 1, "completions": [reply(base, FALSE_CLAIM_BODY)]},
        {"name": NAME, "round": 2, "completions": [reply(base, GOOD_BODY)]},
        {"name": f"{NAME}_hbad", "round": 0, "completions": [no_block]},
        {"name": f"{NAME}_hbad", "round": 1, "completions": [no_block]},
        {"name": SHARED, "round": 0, "completions": [reply(shared, SHARED_BODY)]},
    ]


def lemma_proof(name: str, claim: str, tactics: str) -> str:
    return f"Proof.\n\n```lean4\ntheorem {name} : {claim} := by\n{tactics}\n```\n"


def prover_lines() -> list[dict[str, Any]]:
    return [
        {"name": NAME, "completions": [lemma_proof(NAME, "v = 65", "  nlinarith [h₀]")]},
        {"name": f"{NAME}_hbad", "completions": [lemma_proof(f"{NAME}_hbad", "v = 65 ∧ b = 31", "  norm_num")]},
        {"name": f"{NAME}_hb",
         "completions": [lemma_proof(f"{NAME}_hb", "b * h = 195", "  rw [h₂, h₃]\n  norm_num")]},
        {"name": f"{NAME}_hv", "completions": [lemma_proof(f"{NAME}_hv", "v = 1 / 3 * 195", "  rw [h₁, hb]")]},
    ]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def repl_cmd(scenario: Path = E2E_SCENARIO) -> list[str]:
    return [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)]


def sim_config(tmp: Path, planner_script: Path, prover_script: Path, **overrides: Any) -> ProverConfig:
    """Simulated REPL, scripted planner and prover; caches off so runs are independent."""
    data: dict[str, Any] = {
        "lean.repl_cmd": repl_cmd(),
        "lean.workers": 2,
        "lean.timeout": 30.0,
        "lean.header_timeout": 30.0,
        "lean.memory_limit_mb": None,
        "lean.rss_limit_mb": None,
        "cache.enabled": False,
        "sampler.backend": "scripted",
        "sampler.script": prover_script,
        "sampler.model": "test/prover",
        "sampler.prompt_format": "deepseek-v2",
        "samplers.planner.script": planner_script,
        "samplers.planner.model": "test/planner",
        "eval.strategy": "planner",
        "eval.passes": 1,
        "eval.benchmark": "jsonl:planner",
        "eval.max_problems_in_flight": 1,
        "planner.subgoal_passes": 2,
        "planner.repair_turns": 1,
        "planner.max_sketches": 3,
    }
    data.update(overrides)
    return ProverConfig.load(user_defaults=False).with_overrides(data)


def world(tmp: Path, datasets_dir: Path, **overrides: Any) -> tuple[ProverConfig, list[Problem]]:
    items = problems(datasets_dir)
    planner = write_jsonl(tmp / "planner.jsonl", planner_lines(items))
    prover = write_jsonl(tmp / "prover.jsonl", prover_lines())
    return sim_config(tmp, planner, prover, **overrides), items


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text(encoding="utf-8").splitlines()]
