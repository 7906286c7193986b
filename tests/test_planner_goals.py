"""Typed goals from the REPL's pretty-printed goal text: every goal in the recorded real sessions,
the printer's layout rules (grouping, nesting, `let` values, `✝` names, case tags, several goals),
and malformed text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.lean_env.protocol import CommandResponse, ProofStepResponse, Sorry, parse_reply, split_replies
from prover.planner.goals import GoalParseError, Hypothesis, parse_goal, parse_goals, subgoals_from_sorries
from prover.types import Pos


def _recorded_replies(transcripts_dir: Path) -> list:
    replies = []
    for out in sorted(transcripts_dir.rglob("*.expected.out")):
        replies.extend(parse_reply(json.loads(block)) for block in split_replies(out.read_text(encoding="utf-8")))
    return replies


def test_every_goal_in_the_real_transcripts_parses(transcripts_dir: Path):
    texts = []
    for reply in _recorded_replies(transcripts_dir):
        texts.extend(s.goal for s in getattr(reply, "sorries", ()))
        if isinstance(reply, ProofStepResponse):
            texts.extend(reply.goals)
        if isinstance(reply, CommandResponse):
            texts.extend(t.goals for t in reply.tactics)
            texts.extend(m.data.removeprefix("unsolved goals\n") for m in reply.messages
                         if m.data.startswith("unsolved goals\n"))
    assert len(texts) > 60
    for text in texts:
        for goal in parse_goals(text):
            assert goal.target and goal.same_as(parse_goal(goal.text))


def test_real_goal_with_inaccessible_names_and_case_tag(transcripts_dir: Path):
    recorded = split_replies((transcripts_dir / "Mathlib/test/induction.expected.out").read_text())
    reply = parse_reply(json.loads(recorded[2]))
    zero, succ = (parse_goal(g) for g in reply.goals)
    assert zero.case == "zero" and zero.hypotheses == () and zero.target == "0 = 0"
    assert succ.case == "succ" and succ.names == ("n✝", "a✝")
    assert succ.hypotheses[1].type == "n✝ = n✝" and succ.target == "n✝ + 1 = n✝ + 1"


def test_layout_rules_of_the_goal_printer():
    goal = parse_goal(
        "x y : ℕ\n"
        "h :\n  x < y ∧\n    y < 100\n"                       # broken group: type on the next lines
        "n : ℕ := 3\n"                                        # let value
        "m : ℕ :=\n  let k := 2;\n  k + 1\n"                  # let value containing a `let`
        "f : ℕ → ℕ := fun x => x\n"
        "s : Set ℕ := {x | x = (let z := 1; z)}\n"
        "inst✝¹ inst✝ : Fact (1 < 2)\n"
        "⊢ x ≤\n    y"
    )
    assert goal.hypotheses == (
        Hypothesis(names=("x", "y"), type="ℕ"),
        Hypothesis(names=("h",), type="x < y ∧\n  y < 100"),
        Hypothesis(names=("n",), type="ℕ", value="3"),
        Hypothesis(names=("m",), type="ℕ", value="let k := 2;\nk + 1"),
        Hypothesis(names=("f",), type="ℕ → ℕ", value="fun x => x"),
        Hypothesis(names=("s",), type="Set ℕ", value="{x | x = (let z := 1; z)}"),
        Hypothesis(names=("inst✝¹", "inst✝"), type="Fact (1 < 2)"),
    )
    assert goal.target == "x ≤\n  y" and not goal.elided
    assert goal.hypotheses[2].is_let and not goal.hypotheses[0].is_let


def test_a_let_in_a_type_is_not_a_let_hypothesis():
    (hyp,) = parse_goal("h : let k := 2; k = 2\n⊢ True").hypotheses
    assert hyp.value is None and hyp.type == "let k := 2; k = 2"


def test_elisions_are_seen_outside_string_literals_only():
    assert parse_goal("x : ℕ\nh : ↑⟨x, ⋯⟩ = y\n⊢ True").elided
    assert parse_goal("⊢ f (g (h ⋯)) = 0").elided
    assert not parse_goal('s : String\nh : s = "⋯"\n⊢ s.length = 1').elided


def test_several_goals_and_no_goals():
    goals = parse_goals("case left\np : Prop\n⊢ p\n\ncase right\np : Prop\n⊢ p ∨ p")
    assert [g.case for g in goals] == ["left", "right"]
    assert parse_goals("no goals") == () and parse_goals("") == ()
    with pytest.raises(GoalParseError, match="expected one goal, found 2"):
        parse_goal("⊢ a\n\n⊢ b")


def test_same_goal_ignores_grouping_case_tags_and_spacing():
    a = parse_goal("case h\nx y : ℕ\n⊢ x + y = y + x")
    b = parse_goal("x : ℕ\ny : ℕ\n⊢ x + y =\n    y + x")
    assert a.same_as(b)
    assert not a.same_as(parse_goal("y x : ℕ\n⊢ x + y = y + x"))  # the order of the context matters
    assert not a.same_as(parse_goal("x y : ℤ\n⊢ x + y = y + x"))
    assert not parse_goal("n : ℕ := 3\n⊢ n = 3").same_as(parse_goal("n : ℕ := 4\n⊢ n = 3"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x : ℕ\nh : x = 1", "without a `⊢`"),
        ("  x : ℕ\n⊢ x = x", "indented line"),
        ("this is not a hypothesis\n⊢ True", "not a hypothesis line"),
        ("(x) : ℕ\n⊢ True", "not a hypothesis line"),
        ("n m : ℕ := 3\n⊢ True", "one name"),
        ("n : ℕ :=\n⊢ True", "without a value"),
        ("x : ℕ\n⊢", "empty target"),
    ],
)
def test_malformed_goal_text_is_a_clear_error(text: str, says: str):
    with pytest.raises(GoalParseError, match=says):
        parse_goal(text)


def test_subgoals_from_a_sketch_reply(transcripts_dir: Path):
    recorded = split_replies((transcripts_dir / "have_by_sorry.expected.out").read_text())
    (sub,) = subgoals_from_sorries(parse_reply(json.loads(recorded[0])).sorries)
    assert (sub.proof_state, sub.pos, sub.end_pos, sub.shares_position) == (0, Pos(line=2, column=23),
                                                                           Pos(line=2, column=28), False)
    assert sub.goal.names == ("x",) and sub.goal.target == "x = 1"


def test_subgoals_flag_a_sorry_reported_for_several_goals(transcripts_dir: Path):
    recorded = split_replies((transcripts_dir / "Mathlib/test/H20231115_2.expected.out").read_text())
    subs = subgoals_from_sorries(parse_reply(json.loads(recorded[1])).sorries)
    assert [(s.goal.case, s.shares_position) for s in subs] == [("zero", True), ("succ", True)]
    tactic_mode = subgoals_from_sorries([Sorry(goal="⊢ Nat", proof_state=1)])  # no position in tactic mode
    assert tactic_mode[0].pos is None and not tactic_mode[0].shares_position

