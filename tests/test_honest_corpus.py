"""The honest styles released provers write (Kimina-Prover, DeepSeek-Prover-V2, Goedel-Prover:
whole files, docstrings, helper lemmas, options, trailing `#print axioms`, `decide := true`
configs, `exact?` left in) are accepted whole by the hardened checker: preflight, assembly, the
SIMULATED REPL, the clean audit, the kernel replay (a stand-in tool) and the sandbox. The corpus
is written for this test; no released output is copied.
"""

from __future__ import annotations

import sys

import pytest
import pytest_asyncio
from checker_helpers import HEADER, PROBLEM, lean_config

from prover.config import CheckerConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.pool import LeanPool
from prover.lean_env.preflight import preflight

STATEMENT_LINE = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by"
KIMINA_HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"

CORPUS: dict[str, str] = {
    "tactic body only": "\n  positivity",
    "kimina whole file with docstring and trailing #print axioms": (
        KIMINA_HEADER + "/-- Show that the square of a positive real is positive. -/\n"
        + STATEMENT_LINE + "\n  nlinarith [sq_nonneg x]\n\n#print axioms mathd_t\n"
    ),
    "deepseek helper lemma, docstrings, have-chain": (
        "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology Rat\n\n"
        "/-- A helper: squares of positive reals are positive. -/\n"
        "lemma sq_pos_helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by\n  positivity\n\n"
        "/-- The main theorem. -/\n" + STATEMENT_LINE + "\n  exact sq_pos_helper x h₀\n"
    ),
    "goedel set_option maxRecDepth in, open in": (
        "open Real in\nset_option maxRecDepth 10000 in\n" + STATEMENT_LINE
        + "\n  have h₁ : 0 < x ^ 2 := by\n    positivity\n  exact h₁\n"
    ),
    "tactic.hygienic false": "set_option tactic.hygienic false in\n" + STATEMENT_LINE + "\n  positivity\n",
    "term-mode proof": KIMINA_HEADER + STATEMENT_LINE.removesuffix(" by") + "\n  pow_pos h₀ 2\n",
    "decide := true config": STATEMENT_LINE + "\n  norm_num [sq_pos_of_pos h₀] <;> simp (config := {decide := true})\n",
    "exact? left in": STATEMENT_LINE + "\n  exact?\n",
    "where clause": (
        STATEMENT_LINE + "\n  exact helper x h₀\nwhere\n  helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by positivity\n"
    ),
    "show and calc": STATEMENT_LINE + "\n  show x ^ 2 > 0\n  calc x ^ 2 = x * x := by ring\n    _ > 0 := mul_pos h₀ h₀\n",
    "comments mentioning sorry, unicode names, attributes, Fact instance": (
        KIMINA_HEADER + "-- We never use sorry or native_decide; #eval is not needed either.\n"
        "instance hp : Fact (1 < 2) := ⟨by norm_num⟩\n\n"
        "@[simp] lemma sq_pos_helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by\n  positivity\n\n"
        "/-- Restating the statement: it is replaced by the benchmark's anyway. -/\n"
        + STATEMENT_LINE + "\n  -- no sorry needed: x > 0\n  nlinarith [sq_nonneg x, sq_nonneg (x - 1), h₀]\n"
    ),
    "linter option and module doc": (
        "/-! # A proof of `mathd_t`\nMentions `sorry`, `#eval` and `open Lean` only in prose. -/\n"
        "set_option linter.unusedVariables false\n\n" + STATEMENT_LINE + "\n  positivity\n"
    ),
}

STAND_IN_REPLAY = "import sys\nsys.exit(0)\n"
STAND_IN_COMPILE = "import shutil, sys\nshutil.copyfile(sys.argv[3], sys.argv[2])\n"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def checker(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("stand_in")
    (folder / "replay.py").write_text(STAND_IN_REPLAY, encoding="utf-8")
    (folder / "compile.py").write_text(STAND_IN_COMPILE, encoding="utf-8")
    config = CheckerConfig(replay="kernel", replay_cmd=[sys.executable, str(folder / "replay.py")],
                           replay_compile_cmd=[sys.executable, str(folder / "compile.py")])
    async with LeanPool(lean_config()) as pool:
        yield ProofChecker(pool, config)


@pytest.mark.parametrize("style", sorted(CORPUS))
def test_preflight_rejects_none_of_the_corpus(style: str) -> None:
    result = preflight(CORPUS[style], header=PROBLEM.header)
    assert result.ok, result.describe()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("style", sorted(CORPUS))
async def test_the_whole_pipeline_accepts_the_corpus(checker: ProofChecker, style: str) -> None:
    verdict = await checker.check(PROBLEM, CORPUS[style])
    assert (verdict.rule, verdict.stage) == ("accepted", "replay"), f"{style}: {verdict.rule}: {verdict.detail}"
    assert verdict.proved and "#print axioms" not in verdict.code  # trailing commands are dropped
    assert verdict.code.startswith(HEADER)
