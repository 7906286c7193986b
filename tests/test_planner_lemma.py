"""Rendering subgoals as standalone lemmas: binders, renamed `✝`/`this`/shadowed names (consistent
in later types and the target, with the `rename_i` prelude that gives the hole the same names),
instances, `let` hypotheses, universes, what is not renderable, and the round-trip check."""

from __future__ import annotations

from pathlib import Path

import pytest
from planner_helpers import HYPS, minif2f_problem, simulated_lean, sketch_reply

from prover.lean_env.assemble import assemble
from prover.lean_env.protocol import parse_reply
from prover.planner.goals import parse_goal, subgoals_from_sorries
from prover.planner.lemma import SUBGOAL_PP_OPTIONS, NotRenderable, RenderedLemma, render_lemma, set_option_commands
from prover.planner.sketch import Sketch, extract_sketch
from prover.types import Problem


def _lemma(goal: str, name: str = "sub") -> RenderedLemma:
    rendered = render_lemma(parse_goal(goal), name)
    assert isinstance(rendered, RenderedLemma), rendered
    return rendered


def test_plain_goal_becomes_a_statement_ending_in_by():
    lemma = _lemma("x y : ℕ\nh : x < y\n⊢ x ≤ y", "foo_h1")
    assert lemma.statement == "theorem foo_h1\n    (x y : ℕ)\n    (h : x < y) :\n    x ≤ y := by"
    assert lemma.hole_prelude == () and lemma.renames == ()
    assert lemma.proof_for_hole("\n  omega\n") == "omega"
    assert lemma.confirms("x y : ℕ\nh : x < y\n⊢ x ≤ y")


def test_inaccessible_names_are_renamed_consistently_and_rename_i_restores_them():
    lemma = _lemma("case succ\nn✝ : ℕ\na✝ : n✝ = n✝\nn_1 : ℕ\nh : n✝ + 1 > n_1\n⊢ n✝.succ = n✝ + 1")
    assert dict(lemma.renames) == {"n✝": "n", "a✝": "a"}
    assert "(n : ℕ)" in lemma.statement and "(a : n = n)" in lemma.statement
    assert "(h : n + 1 > n_1)" in lemma.statement and lemma.statement.endswith("n.succ = n + 1 := by")
    assert lemma.hole_prelude == ("rename_i n a",)  # one entry per inaccessible hypothesis, in order
    assert lemma.proof_for_hole("simp") == "rename_i n a\nsimp"


def test_fresh_names_never_collide_with_names_in_the_goal():
    lemma = _lemma("x : ℕ\nx✝ : ℕ\nx_1 : x✝ = x\n⊢ ∀ x_2, x_2 = x✝")
    assert dict(lemma.renames) == {"x✝": "x_3"}
    assert lemma.statement.endswith("∀ x_2, x_2 = x_3 := by")


def test_anonymous_instances_stay_anonymous_unless_mentioned():
    lemma = _lemma("p : ℕ\ninst✝ : Fact (Nat.Prime p)\n⊢ 2 ≤ p")
    assert "[Fact (Nat.Prime p)]" in lemma.statement and lemma.hole_prelude == ()
    assert lemma.confirms("p : ℕ\ninst✝ : Fact (Nat.Prime p)\n⊢ 2 ≤ p")
    mentioned = _lemma("p : ℕ\ninst✝ : Fact (Nat.Prime p)\nh : @Fact.out _ inst✝ = h0\n⊢ 2 ≤ p")
    assert "[inst : Fact (Nat.Prime p)]" in mentioned.statement and "@Fact.out _ inst = h0" in mentioned.statement
    assert mentioned.hole_prelude == ("rename_i inst",)
    mixed = _lemma("a✝ : ℕ\ninst✝ : Fact True\n⊢ a✝ = a✝")
    assert mixed.hole_prelude == ("rename_i a _",)  # `_` keeps the instance's name


def test_this_is_renamed_and_copied_in_the_hole():
    lemma = _lemma("x : ℝ\nthis : 0 < x\n⊢ 0 < x ^ 2 + this.le.choose")
    assert "(this_1 : 0 < x)" in lemma.statement and "this_1.le.choose" in lemma.statement
    assert lemma.hole_prelude == ("have this_1 := this",)


def test_shadowed_names_refer_to_the_right_declaration():
    """Without pp.sanitizeNames a shadowed name prints plainly: the earlier one is renamed, and
    references before the second declaration keep pointing at the first."""
    lemma = _lemma("x : ℕ\nh : x = 1\nx : ℤ\n⊢ x = ↑1")
    assert "(x_1 : ℕ)" in lemma.statement and "(h : x_1 = 1)" in lemma.statement and "(x : ℤ)" in lemma.statement
    assert lemma.statement.endswith("x = ↑1 := by") and lemma.hole_prelude == ("rename_i x_1",)


def test_let_hypotheses_become_an_equation_proved_by_rfl_in_the_hole():
    lemma = _lemma("y : ℕ\nn : ℕ := y + 3\nh : n > 3\n⊢ n ≠ 0")
    assert "(n : ℕ)\n    (n_def : n = (y + 3))\n    (h : n > 3)" in lemma.statement
    assert lemma.hole_prelude == ("have n_def : n = (y + 3) := rfl",)
    assert lemma.confirms("y n : ℕ\nn_def : n = y + 3\nh : n > 3\n⊢ n ≠ 0")  # Lean prints no parentheses
    assert lemma.confirms("y n : ℕ\nn_def : n = (y + 3)\nh : n > 3\n⊢ n ≠ 0")
    assert not lemma.confirms("y n : ℕ\nn_def : n = y + 4\nh : n > 3\n⊢ n ≠ 0")
    atom = _lemma("n : ℕ := 3\n⊢ n = 3")
    assert "(n_def : n = 3)" in atom.statement and atom.hole_prelude == ("have n_def : n = 3 := rfl",)


def test_universe_levels_are_declared():
    lemma = _lemma("α : Sort u_1\nβ : Type (max u_1 v)\nf : α → β\n⊢ True")
    assert lemma.statement.startswith("universe u_1 v\n\ntheorem sub\n")
    sub_problem = lemma.problem(Problem(name="p", header="import Mathlib\n", formal_statement="theorem p : True := by"))
    assert sub_problem.theorem_name == "sub"
    assert assemble(sub_problem, "\n  trivial").command == lemma.statement + "\n  trivial\n"


def test_multiline_types_stay_inside_their_binder():
    lemma = _lemma("h :\n  a ∧\n    b\n⊢ c ∨\n    d")
    assert "(h : a ∧\n        b)" in lemma.statement and lemma.statement.endswith("c ∨\n        d := by")


@pytest.mark.parametrize(
    ("goal", "reason"),
    [
        ("x : ℕ\nh : ↑⟨x, ⋯⟩ = 3\n⊢ x = 3", "elided"),
        ("x : ℕ\n⊢ x = ?m.12", "metavariables"),
        ("x : ℕ\n⊢ x = ?_", "metavariables"),
        ("x : ℕ\nh : x = sorry\n⊢ x = 3", "sorry"),
        ("h.left : True\n⊢ True", "unbindable_name"),
    ],
)
def test_goals_whose_text_does_not_determine_them_are_not_renderable(goal: str, reason: str):
    rendered = render_lemma(parse_goal(goal), "sub")
    assert isinstance(rendered, NotRenderable) and rendered.reason == reason and rendered.detail


def test_a_lemma_name_must_be_an_identifier():
    for bad in ("", "two words", "x✝", "a-b"):
        with pytest.raises(ValueError, match="not a Lean identifier"):
            render_lemma(parse_goal("⊢ True"), bad)


def test_confirms_refuses_another_goal_and_garbage():
    lemma = _lemma("x : ℝ\n⊢ (2 : ℝ) ^ 2 = 4")
    assert lemma.confirms("x : ℝ\n⊢ (2 : ℝ) ^ 2 = 4")
    assert not lemma.confirms("x : ℝ\n⊢ (2 : ℕ) ^ 2 = 4")  # what pp.numericTypes makes visible
    assert not lemma.confirms("not a goal")


def test_pretty_printer_options_for_sketch_checks():
    names = [o.name for o in SUBGOAL_PP_OPTIONS]
    assert {"pp.proofs", "pp.deepTerms", "pp.maxSteps", "pp.numericTypes", "pp.funBinderTypes"} <= set(names)
    assert set_option_commands().split("\n")[0] == "set_option pp.proofs true"
    assert all(o.why for o in SUBGOAL_PP_OPTIONS)


def test_rendered_subgoal_of_a_real_sketch_round_trips_on_the_simulated_repl(datasets_dir: Path):
    """Sketch -> REPL `sorries` -> lemma -> the lemma elaborated with `sorry` reports the same goal,
    and a proof of the lemma is accepted as a problem of its own (SIMULATED REPL)."""
    problem = minif2f_problem(datasets_dir)
    sketch = extract_sketch(problem, sketch_reply(problem))
    assert isinstance(sketch, Sketch)
    lean = simulated_lean()
    subgoals = subgoals_from_sorries(parse_reply(lean.command(sketch.command, None)).sorries)
    lemma = render_lemma(subgoals[1].goal, f"{problem.theorem_name}_hv")
    assert isinstance(lemma, RenderedLemma)
    assert lemma.expected.text == HYPS + "\nhb : b * h = 195\n⊢ v = 1 / 3 * 195"
    sub_problem = lemma.problem(problem)
    assert sub_problem.theorem_name == "mathd_algebra_478_hv" and sub_problem.header == problem.header
    check = parse_reply(lean.command(lemma.statement + "\n  sorry", None))
    assert lemma.confirms(check.sorries[0].goal)
    proved = parse_reply(lean.command(assemble(sub_problem, "\n  rw [h₁, hb]").command, None))
    assert not proved.has_errors() and not proved.has_sorry()
