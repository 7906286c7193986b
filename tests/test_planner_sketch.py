"""Reading planner replies into sketches: body, command, holes (as Lean's tokenizer sees them),
positions that agree with the REPL's `sorries`, and every typed failure reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from planner_helpers import HYPS, SKETCH_BODY, minif2f_problem, simulated_lean, sketch_reply

from prover.lean_env.assemble import assemble
from prover.lean_env.protocol import parse_reply, split_replies
from prover.planner.lean_text import offset_of
from prover.planner.sketch import Sketch, SketchFailure, SketchRejected, extract_sketch, find_holes
from prover.types import Pos, Problem


@pytest.fixture
def problem(datasets_dir: Path) -> Problem:
    return minif2f_problem(datasets_dir)


def _sketch(problem: Problem, reply: str) -> Sketch:
    sketch = extract_sketch(problem, reply)
    assert isinstance(sketch, Sketch), sketch
    return sketch


def _rejected(problem: Problem, reply: str) -> SketchRejected:
    rejected = extract_sketch(problem, reply)
    assert isinstance(rejected, SketchRejected), rejected
    return rejected


def test_restated_theorem_gives_the_checkers_command_and_have_holes(problem: Problem):
    sketch = _sketch(problem, sketch_reply(problem))
    assert sketch.plan == "Plan: compute b * h, then v." and sketch.form == "code" and sketch.mode == "tactic"
    assert sketch.command == assemble(problem, sketch.body).command  # what the checker will assemble
    assert sketch.command == problem.formal_statement + "\n" + SKETCH_BODY + "\n"
    assert [(h.head, h.name, h.type, h.mode, h.starts_block) for h in sketch.holes] == [
        ("have", "hb", "b * h = 195", "tactic", True),
        ("have", "hv", "v = 1 / 3 * 195", "tactic", True),
    ]
    lines = sketch.command.split("\n")
    for hole in sketch.holes:  # REPL coordinates in the command: 1-based line, 0-based column
        assert lines[hole.pos.line - 1][hole.pos.column : hole.end_pos.column] == "sorry"
    at = offset_of(sketch.command, sketch.body_offset)
    assert at is not None and sketch.command[at:] == sketch.body + "\n"


def test_a_bare_body_gives_the_same_command_as_the_restated_theorem(problem: Problem):
    restated = _sketch(problem, sketch_reply(problem))
    bare = _sketch(problem, f"Plan.\n```lean\n{SKETCH_BODY}\n```")
    assert bare.form == "body" and bare.command == restated.command and bare.holes == restated.holes


def test_hole_positions_are_the_ones_the_repl_reports(problem: Problem):
    sketch = _sketch(problem, sketch_reply(problem))
    reply = parse_reply(simulated_lean().command(sketch.command, None))
    assert not reply.has_errors() and len(reply.sorries) == 2
    paired = sketch.sorries_by_hole(reply.sorries)
    assert [len(found) for _, found in paired] == [1, 1]
    assert paired[0][1][0].goal == HYPS + "\n⊢ b * h = 195"
    assert paired[1][1][0].goal == HYPS + "\nhb : b * h = 195\n⊢ v = 1 / 3 * 195"
    assert all(sketch.hole_at(s.pos) is not None for s in reply.sorries if s.pos)
    assert sketch.hole_at(Pos(line=1, column=0)) is None


def test_columns_count_codepoints_like_the_repl(problem: Problem):
    body = "  have h₀' : (0:ℝ) < b ∧ 0 < h := ⟨h₀.1, sorry⟩\n  sorry"
    sketch = _sketch(problem, f"```lean4\n{body}\n```")
    hole = sketch.holes[0]
    line = sketch.command.split("\n")[hole.pos.line - 1]
    assert line[hole.pos.column : hole.end_pos.column] == "sorry"
    assert hole.pos.column == len("  have h₀' : (0:ℝ) < b ∧ 0 < h := ⟨h₀.1, ")  # ₀ ℝ ∧ ⟨ are one column each


def test_sorry_in_comments_strings_and_names_is_not_a_hole():
    text = (
        "  -- sorry, this step is hard\n  /- sorry /- nested sorry -/ -/\n"
        '  have h : "sorry" = "sorry" := rfl\n  exact sorry_free h.sorry «sorry»\n  sorry'
    )
    holes = find_holes(text, start="tactic")
    assert len(holes) == 1 and text[holes[0].start : holes[0].end] == "sorry"
    assert holes[0].start == text.rindex("sorry")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  have h : P := by sorry\n  exact h", ("tactic", True, "have", "h", "P")),
        ("  have h : P := by\n    sorry\n  exact h", ("tactic", True, "have", "h", "P")),
        ("  have : P ∧ Q := sorry\n  exact this.1", ("term", False, "have", None, "P ∧ Q")),
        ("  have h (n : ℕ) : f n = n := by sorry\n  simp [h]", ("tactic", True, "have", "h", "f n = n")),
        ("  obtain ⟨x, hx⟩ : ∃ x, P x := by sorry\n  exact hx", ("tactic", True, "obtain", "⟨x, hx⟩", "∃ x, P x")),
        ("  have h : a =\n      b := by sorry\n  exact h", ("tactic", True, "have", "h", "a =\n      b")),
        ("  constructor\n  · sorry\n  · simp", ("tactic", True, None, None, None)),
        ("  constructor <;> sorry", ("tactic", False, None, None, None)),
        ("  cases h\n  all_goals sorry", ("tactic", True, None, None, None)),
        ("  nlinarith [sq_nonneg x, sorry]", ("term", False, None, None, None)),
        ("  exact ⟨sorry, h⟩", ("term", False, None, None, None)),
        ("  refine fun x => sorry", ("term", False, None, None, None)),
        ("  induction n with\n  | zero => sorry\n  | succ n ih => simp", ("tactic", True, None, None, None)),
        ("  have g : P := fun x => x\n  cases n with\n  | zero => sorry\n  | succ n => simp", ("tactic", True, None, None, None)),
        ("  refine fun x =>\n    sorry", ("term", False, None, None, None)),
        ("  simp\n  sorry", ("tactic", True, None, None, None)),
        ("  have h : P := by sorry -- later\n  exact h", ("tactic", True, "have", "h", "P")),
        ("  have h : P := by sorry; simp", ("tactic", False, "have", "h", "P")),
        ("  calc a = b := by sorry\n    _ = c := h", ("tactic", True, None, None, None)),
    ],
)
def test_hole_kinds_from_the_tokens_before_the_sorry(body: str, expected: tuple):
    (hole,) = find_holes(body, start="tactic")
    assert (hole.mode, hole.starts_block, hole.head, hole.name, hole.type) == expected
    (in_command,) = find_holes("theorem t : P := by\n" + body)  # a command starts in term mode
    assert (in_command.mode, in_command.starts_block) == expected[:2]


def test_term_mode_text_and_offsets():
    holes = find_holes("fun h => ⟨sorry, h⟩", start="term", offset=Pos(line=3, column=10))
    assert [(h.mode, h.pos, h.end_pos) for h in holes] == [
        ("term", Pos(line=3, column=20), Pos(line=3, column=25))
    ]
    (second_line,) = find_holes("x\n  sorry", start="tactic", offset=Pos(line=3, column=10))
    assert second_line.pos == Pos(line=4, column=2)  # the offset's column applies to its first line only


def test_a_sorry_running_on_several_goals_is_reported_for_one_hole(transcripts_dir: Path):
    recorded = split_replies((transcripts_dir / "Mathlib/test/H20231115_2.expected.out").read_text())
    reply = parse_reply(json.loads(recorded[1]))  # the real REPL on the command below
    text = "example {x : Nat} : x + 1 > x := by\n  induction' x with x hx\n  all_goals sorry"
    holes = find_holes(text)
    assert len(holes) == 1 and len(reply.sorries) == 2
    assert all(s.pos == holes[0].pos for s in reply.sorries)


def test_picks_the_last_block_declaring_the_theorem_and_keeps_the_plan(problem: Problem):
    reply = (
        "<think>draft ```lean4\nnot this\n```</think>Step 1: compute.\n"
        + sketch_reply(problem, plan="")
        + "\nFor example:\n```lean4\nexample : 1 = 1 := rfl\n```\n"
    )
    sketch = _sketch(problem, reply)
    assert sketch.plan == "Step 1: compute." and "have hb" in sketch.body


def test_reasoning_blocks_are_used_only_when_the_answer_has_none(problem: Problem):
    reply = f"<think>Plan in thought.\n```lean4\n{SKETCH_BODY}\n```\n</think>\nDone."
    sketch = _sketch(problem, reply)
    assert sketch.plan == "Plan in thought." and len(sketch.holes) == 2


@pytest.mark.parametrize(
    ("reply", "reason", "says"),
    [
        ("I think the answer is 65.", SketchFailure.NO_LEAN_BLOCK, "no ```lean4"),
        ("```python\nprint(65)\n```", SketchFailure.NO_LEAN_BLOCK, "no ```lean4"),
        ("<think>let me see... ```lean4\n  have", SketchFailure.TRUNCATED, "<think>"),
        ("Plan.\n```lean4\n  have hb : b * h = 195 := by", SketchFailure.TRUNCATED, "no closing"),
        ("```lean4\ntheorem other (x : ℝ) : x = x := by\n  have h : x = x := by sorry\n  exact h\n```",
         SketchFailure.MISSING_THEOREM, "mathd_algebra_478"),
        ("```lean4\nlemma helper : 1 = 1 := rfl\n\n{stmt}\n  have h := helper\n  sorry\n```",
         SketchFailure.EXTRA_DECLARATIONS, "helper"),
        ("```lean4\n{stmt}\n  norm_num [h₁, h₂, h₃]\n```", SketchFailure.NO_HOLES, "no `sorry`"),
        ("```lean4\n{stmt}\n  -- hard\n  sorry\n```", SketchFailure.WHOLE_GOAL, "single `sorry`"),
        ("```lean4\n{stmt}\n```", SketchFailure.EMPTY_PROOF, "empty"),
    ],
)
def test_replies_that_are_not_sketches_say_why(problem: Problem, reply: str, reason: SketchFailure, says: str):
    rejected = _rejected(problem, reply.replace("{stmt}", problem.formal_statement))
    assert rejected.reason is reason and says in rejected.detail


def test_a_restated_statement_must_be_the_benchmarks(problem: Problem):
    changed = sketch_reply(problem).replace("(h₂ : b = 30)", "(h₂ : b = 31)")
    rejected = _rejected(problem, changed)
    assert rejected.reason is SketchFailure.STATEMENT_CHANGED
    assert "b = 31" in rejected.detail and "b = 30" in rejected.detail and rejected.code and rejected.plan
    # whitespace, comments, `lemma` for `theorem`: the same statement
    same = sketch_reply(problem).replace("theorem mathd_algebra_478 (b h v : ℝ)",
                                         "lemma mathd_algebra_478 (b h v:ℝ) -- dims\n   ")
    assert isinstance(extract_sketch(problem, same), Sketch)
    weaker = sketch_reply(problem).replace("(h₃ : h = 13 / 2) ", "(h₃ : h = 13 / 2) (h₄ : v = 65) ")
    assert _rejected(problem, weaker).reason is SketchFailure.STATEMENT_CHANGED
