"""`ProofChecker.check_sketch`: the checker's rules on a proof whose only gaps are `sorry` holes.

Against the SIMULATED REPL (tests/data/planner/e2e.yaml) for what elaboration reports, and a
scripted pool (tests/checker_helpers.py) for replies the simulation cannot produce (an option
this Lean lacks, an extra axiom next to `sorryAx`, another statement type).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from checker_helpers import ScriptedPool, error, info, lean_config
from planner_helpers import minif2f_problem
from planner_world import E2E_SCENARIO, GOOD_BODY

from prover.config import CheckerConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.pool import LeanPool
from prover.planner import extract_sketch
from prover.planner.lean_text import offset_of
from prover.types import CheckStatus, Pos, Problem

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPTIONS = (("pp.proofs", "true"), ("pp.numericTypes", "true"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool():
    async with LeanPool(lean_config(E2E_SCENARIO, timeout=10.0)) as lean_pool:
        yield lean_pool


@pytest.fixture(scope="module")
def problem(datasets_dir: Path) -> Problem:
    return minif2f_problem(datasets_dir)


def _code(problem: Problem, body: str) -> str:
    return f"{problem.formal_statement}\n{body}"


async def test_an_accepted_sketch_reports_each_hole_in_command_coordinates(pool: LeanPool, problem: Problem) -> None:
    code = _code(problem, GOOD_BODY)
    sketch = extract_sketch(problem, f"Plan.\n```lean4\n{code}\n```")
    check = await ProofChecker(pool, CheckerConfig()).check_sketch(problem, sketch.code, pp_options=OPTIONS)
    assert check.accepted, check.verdict
    # the verdict is still the one on the sketch as a proof: it has holes
    assert (check.verdict.status, check.verdict.rule) == (CheckStatus.FAILED, "sorry")
    assert check.verdict.axioms == ("sorryAx",) and check.verdict.lean_seconds > 0
    assert check.command == sketch.command
    assert check.sent == "set_option pp.proofs true in\nset_option pp.numericTypes true in\n" + sketch.command
    assert [s.pos for s in check.sorries] == [h.pos for h in sketch.holes]
    for sorry in check.sorries:
        at = offset_of(check.command, sorry.pos)
        assert check.command[at : at + 5] == "sorry" and sorry.proof_state is None
    assert check.sorries[0].goal.endswith("⊢ b * h = 195")
    assert "hb : b * h = 195\n⊢ v = 1 / 3 * 195" in check.sorries[1].goal  # the second hole sees the first


async def test_lean_errors_point_at_the_sketch_line_in_the_checked_code(pool: LeanPool, problem: Problem) -> None:
    body = "  have hb : b * h = 195 := by sorry\n  linarith [hb]"
    check = await ProofChecker(pool, CheckerConfig()).check_sketch(problem, _code(problem, body), pp_options=OPTIONS)
    assert not check.accepted and (check.verdict.status, check.verdict.rule) == (CheckStatus.FAILED, "lean_error")
    assert check.sorries == ()
    message = next(m for m in check.verdict.messages if m.severity == "error")
    assert "no scenario step" in message.data  # the simulated REPL knows no such step
    assert check.verdict.code.split("\n")[message.pos.line - 1].strip() == "linarith [hb]"


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("  have hb : b * h = 195 := by sorry\n  native_decide", "preflight:native_decide"),
        ("  have hb : b * h = 195 := sorryAx _ false\n  norm_num [hb]", "preflight:sorry"),
        ("  have hb : b * h = 195 := by admit\n  norm_num [hb]", "preflight:admit"),
    ],
)
async def test_the_ban_list_applies_to_everything_but_the_sorry_token(
    pool: LeanPool, problem: Problem, body: str, rule: str
) -> None:
    check = await ProofChecker(pool, CheckerConfig()).check_sketch(problem, _code(problem, body))
    assert not check.accepted and (check.verdict.status, check.verdict.rule) == (CheckStatus.REJECTED, rule)


async def test_a_missing_theorem_is_refused_before_lean(pool: LeanPool, problem: Problem) -> None:
    check = await ProofChecker(pool, CheckerConfig()).check_sketch(problem, "theorem other : True := by\n  sorry")
    assert not check.accepted and check.verdict.rule == "missing_theorem" and check.sent == ""


# -- replies only real Lean gives (scripted pool) -------------------------------------------------

STATEMENT = "theorem t (x : ℝ) (h : 0 < x) : x ^ 2 > 0 := by"
PROBLEM = Problem(name="t", formal_statement=STATEMENT)
SKETCH = "  have hx : 0 < x ^ 2 := by sorry\n  exact hx"
SORRY = {"proofState": 0, "pos": {"line": 4, "column": 29}, "endPos": {"line": 4, "column": 34},
         "goal": "x : ℝ\nh : 0 < x\n⊢ 0 < x ^ 2"}


def _pool(*, sketch_reply: dict, axioms: str, check_out: str = "@t : ∀ (x : Real) ...") -> ScriptedPool:
    def answer(cmd: str, env: int | None) -> dict:
        if cmd.startswith("set_option pp.all true in set_option pp.explicit true in"):
            return {"env": 3, "messages": [info(2, check_out), info(4, axioms)]}
        if "#check" in cmd:  # the reference: the statement alone
            return {"env": 2, "messages": [info(STATEMENT.count("\n") + 4, "@t : ∀ (x : Real) ...")]}
        return {"env": 1, **sketch_reply}

    return ScriptedPool(answer)


async def test_sorry_ax_is_expected_but_another_axiom_is_refused() -> None:
    fine = _pool(sketch_reply={"sorries": [SORRY]}, axioms="'t' depends on axioms: [propext, sorryAx]")
    check = await ProofChecker(fine, CheckerConfig()).check_sketch(PROBLEM, SKETCH, pp_options=OPTIONS)
    assert check.accepted and check.sorries[0].pos == Pos(line=2, column=29)  # the two option lines are gone
    cheat = _pool(sketch_reply={"sorries": [SORRY]}, axioms="'t' depends on axioms: [sorryAx, cheat]")
    check = await ProofChecker(cheat, CheckerConfig()).check_sketch(PROBLEM, SKETCH, pp_options=OPTIONS)
    assert not check.accepted and (check.verdict.status, check.verdict.rule) == (CheckStatus.REJECTED, "axioms")
    assert "cheat" in check.verdict.detail and "sorryAx" not in check.verdict.detail.split(":")[-1]


async def test_the_trusted_statement_check_runs_on_sketches() -> None:
    scripted = _pool(sketch_reply={"sorries": [SORRY]}, axioms="'t' depends on axioms: [sorryAx]",
                     check_out="@t : ∀ (x : Real), @LT.lt Real evilInst ...")
    check = await ProofChecker(scripted, CheckerConfig()).check_sketch(PROBLEM, SKETCH)
    assert not check.accepted and check.verdict.rule == "statement_mismatch"


async def test_an_option_this_lean_lacks_is_an_infrastructure_verdict_not_the_sketchs_fault() -> None:
    scripted = _pool(sketch_reply={"messages": [error(2, "unknown option 'pp.numericTypes'")]}, axioms="")
    check = await ProofChecker(scripted, CheckerConfig()).check_sketch(PROBLEM, SKETCH, pp_options=OPTIONS)
    assert not check.accepted and (check.verdict.status, check.verdict.rule) == (CheckStatus.ERROR, "pp_options")
    assert "pp.numericTypes" in check.verdict.detail
