"""Planner prompts: what each turn shows the model, chat messages a GenRequest takes, and
configured templates checked when they are built."""

from __future__ import annotations

from pathlib import Path

import pytest
from planner_helpers import minif2f_problem

from prover.errors import ConfigError
from prover.planner.prompts import (
    PlannerPrompts,
    SubgoalReport,
    decompose_messages,
    render_lean_errors,
    repair_messages,
    replan_messages,
    sketch_messages,
)
from prover.types import GenRequest, LeanMessage, Pos, Problem

ERROR = LeanMessage(severity="error", pos=Pos(line=3, column=2), data="unknown identifier 'foo'")
WARNING = LeanMessage(severity="warning", pos=Pos(line=1, column=8), data="declaration uses `sorry`")
CODE = "theorem t : True := by\n  have h : 1 = 1 := by sorry\n  exact foo"


@pytest.fixture
def problem(datasets_dir: Path) -> Problem:
    return minif2f_problem(datasets_dir)


def test_first_sketch_shows_header_statement_informal_text_and_rules(problem: Problem):
    system, user = sketch_messages(problem)
    assert system.role == "system" and user.role == "user"
    assert f"```lean4\n{problem.header.strip()}\n\n{problem.formal_statement}\n  sorry\n```" in user.content
    assert problem.informal_statement and problem.informal_statement.strip() in user.content
    assert problem.informal_proof and problem.informal_proof.strip() in user.content
    assert "`have name : claim := by sorry`" in user.content and "plan" in user.content
    GenRequest(messages=(system, user))  # the messages are a valid request


def test_first_sketch_without_informal_text(problem: Problem):
    bare = problem.model_copy(update={"informal_statement": None, "informal_proof": None})
    user = sketch_messages(bare)[-1].content
    assert "Informal" not in user


def test_repair_continues_the_conversation_with_lean_errors_or_the_rejection(problem: Problem):
    history = sketch_messages(problem)
    turn = repair_messages(history, "my sketch", errors=[WARNING, ERROR], code=CODE)
    assert turn[: len(history)] == history
    assert (turn[-2].role, turn[-2].content) == ("assistant", "my sketch") and turn[-1].role == "user"
    assert "line 3: unknown identifier 'foo'\n  at: `exact foo`" in turn[-1].content
    assert "declaration uses" not in turn[-1].content  # errors first; warnings only when there are none
    rejected = repair_messages(history, "no code here", rejection="the reply has no ```lean4 code block")
    assert "the reply has no ```lean4 code block" in rejected[-1].content
    with pytest.raises(ValueError, match="rejection reason or Lean errors"):
        repair_messages(history, "x")


def test_replan_lists_proved_and_failed_claims_and_the_last_errors(problem: Problem):
    subgoals = [
        SubgoalReport(claim="hb : b * h = 195", status="proved"),
        SubgoalReport(claim="hv : v = 66", status="failed", detail="no proof within 8 samples"),
    ]
    (_, user) = replan_messages(problem, "```\n  have hb ...", subgoals=subgoals, errors=[ERROR], code=CODE)
    assert "- `hb : b * h = 195`" in user.content
    assert "- `hv : v = 66` (no proof within 8 samples)" in user.content
    assert "unknown identifier 'foo'" in user.content and problem.formal_statement in user.content
    (_, quiet) = replan_messages(problem, "  sorry")
    assert "(none)" in quiet.content and "Lean's errors" not in quiet.content


def test_decompose_shows_the_claim_as_a_lemma_in_its_parent_sketch(problem: Problem):
    statement = "theorem mathd_algebra_478_hv\n    (b h v : ℝ) :\n    v = 1 / 3 * 195 := by"
    (_, user) = decompose_messages(statement, parent=problem, parent_sketch="  have hv : v = 1 / 3 * 195 := by sorry")
    assert f"```lean4\n{statement}\n  sorry\n```" in user.content
    assert "`mathd_algebra_478`" in user.content and "have hv" in user.content


def test_lean_errors_are_capped_and_positions_outside_the_code_are_kept():
    many = [LeanMessage(severity="error", pos=Pos(line=i, column=0), data=f"e{i}") for i in range(1, 6)]
    shown = render_lean_errors("a\nb", many, max_errors=2)
    assert shown.count("\n- ") == 2 and "and 3 more" in shown and "at: `b`" in shown
    tactic_mode = render_lean_errors("", [LeanMessage(severity="error", pos=Pos(line=0, column=0), data="x")], 8)
    assert tactic_mode == "- tactic mode: x"


def test_configured_templates_are_used_and_checked(problem: Problem):
    custom = PlannerPrompts(system="", sketch="Prove {statement} with {{braces}}")
    (user,) = sketch_messages(problem, custom)
    assert user.content.startswith("Prove ") and user.content.endswith("with {braces}")
    with pytest.raises(ConfigError, match=r"planner prompt `sketch`: unknown placeholders \['goal'\]"):
        PlannerPrompts(sketch="{statement} {goal}")
    with pytest.raises(ConfigError, match=r"planner prompt `replan`: .*missing \['previous'\]"):
        PlannerPrompts(replan="{statement}")
    with pytest.raises(ConfigError, match="not a format string"):
        PlannerPrompts(repair="{problems")
