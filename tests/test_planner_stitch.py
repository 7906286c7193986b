"""Stitching subgoal proofs into a sketch at the REPL's positions: exact layout per hole kind, the
identity and exact-fill properties over generated sketches, refusals, and a stitched proof through
the full checker on the SIMULATED REPL."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from planner_helpers import SCENARIO, SKETCH_BODY, minif2f_problem, simulated_lean, sketch_reply

from prover.config import CheckerConfig, LeanConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.pool import LeanPool
from prover.lean_env.protocol import parse_reply
from prover.lean_env.simulated_repl import simulated_repl_command
from prover.planner.goals import subgoals_from_sorries
from prover.planner.lemma import RenderedLemma, render_lemma
from prover.planner.sketch import Sketch, extract_sketch, find_holes
from prover.planner.stitch import Fill, StitchError, stitch
from prover.types import CheckStatus, Pos

STATEMENT = "theorem t (x : ℝ) (h : 0 < x) : 0 < x ^ 2 := by"


def _fill_all(text: str, proofs: list[str], modes: list[str] | None = None, **kw) -> str:
    """Fill every hole of `text`; a text that starts with spaces is a tactic body."""
    kw.setdefault("start", "term" if text.startswith("theorem") else "tactic")
    holes = find_holes(text, offset=kw.get("offset"), start=kw["start"])
    modes = modes or ["tactic"] * len(holes)
    fills = [Fill(pos=h.pos, proof=p, mode=m) for h, p, m in zip(holes, proofs, modes)]  # type: ignore[arg-type]
    return stitch(text, fills, **kw).text


# -- layout, hole by hole ----------------------------------------------------------------------


def test_multiline_proof_after_by_on_the_same_line_aligns_under_its_first_tactic():
    text = f"{STATEMENT}\n  have h2 : x ≠ 0 := by sorry\n  positivity"
    out = _fill_all(text, ["intro hx\nsimp [hx] at h"])
    assert out == f"{STATEMENT}\n  have h2 : x ≠ 0 := by intro hx\n                        simp [hx] at h\n  positivity"


def test_proof_on_the_next_line_keeps_the_blocks_column_and_nested_indentation():
    text = f"{STATEMENT}\n  have h2 : x ≠ 0 := by\n    sorry\n  positivity"
    out = _fill_all(text, ["\n  have q : x > 0 := by\n    exact h\n  exact q.ne'\n"])
    assert out == (f"{STATEMENT}\n  have h2 : x ≠ 0 := by\n    have q : x > 0 := by\n      exact h\n"
                   "    exact q.ne'\n  positivity")


def test_cdot_and_case_alternatives_take_a_block_in_place():
    text = "  constructor\n  · sorry\n  · simp"
    assert _fill_all(text, ["norm_num\nlinarith"]) == "  constructor\n  · norm_num\n    linarith\n  · simp"
    text = "  induction n with\n  | zero => sorry\n  | succ n ih => simp"
    assert _fill_all(text, ["rfl"]) == "  induction n with\n  | zero => rfl\n  | succ n ih => simp"


def test_a_tactic_after_a_combinator_is_parenthesised():
    assert _fill_all("  constructor <;> sorry", ["simp\nring"]) == "  constructor <;> (simp\n                   ring)"
    assert _fill_all("  constructor <;> sorry", ["norm_num [h]"]) == "  constructor <;> (norm_num [h])"
    assert _fill_all("  constructor <;> sorry", ["simp"]) == "  constructor <;> simp"  # one token: bare
    # code after the sorry on its line: the proof cannot be a block there
    out = _fill_all("  have h2 : P := by sorry; simp", ["a\nb"])
    assert out == "  have h2 : P := by (a\n" + " " * len("  have h2 : P := by (") + "b); simp"


def test_term_holes_get_by_or_parentheses():
    text = "  have h2 : P := sorry\n  exact ⟨sorry, h2⟩"
    out = _fill_all(text, ["simp\nring", "h.le.trans hx"], ["tactic", "term"])
    assert out == "  have h2 : P := (by simp\n                     ring)\n  exact ⟨(h.le.trans hx), h2⟩"
    assert _fill_all("  exact foo sorry", ["h.le"], ["term"]) == "  exact foo h.le"  # one token


def test_term_proof_for_a_tactic_hole_is_exact():
    out = _fill_all("  have h2 : P := by\n    sorry", ["foo\nbar"], ["term"])
    assert out == "  have h2 : P := by\n    exact foo\n      bar"  # right of the block: still the term


def test_a_closing_parenthesis_never_lands_in_a_comment():
    out = _fill_all("  constructor <;> sorry", ["simp -- done"])
    assert out == "  constructor <;> (simp -- done\n                  )"


def test_first_line_columns_use_the_offset():
    """The body of a sketch starts mid-line in the command: indentation must use command columns."""
    body = " sorry"  # `theorem ... := by sorry`: the body starts at column len(STATEMENT)
    offset = Pos(line=1, column=len(STATEMENT))
    out = _fill_all(body, ["simp\nring"], offset=offset)
    assert out == " simp\n" + " " * (len(STATEMENT) + 1) + "ring"
    assert (STATEMENT + out).split("\n")[1].index("ring") == len(STATEMENT) + 1  # under `simp`


# -- properties over generated sketches ---------------------------------------------------------

_STEPS = [
    "{i}have h{k} : P{k} := by sorry",
    "{i}have h{k} : P{k} := by\n{i}  sorry",
    "{i}have h{k} : P{k} := sorry",
    "{i}have h{k} : P{k} := by\n{i}  have g{k} : Q{k} := by sorry\n{i}  exact g{k}",
    "{i}constructor <;> sorry",
    "{i}exact ⟨sorry, h{k}⟩",
    "{i}· sorry",
    "{i}simp -- sorry is not a hole here",
    "{i}sorry",
]
_TACTIC_PROOFS = ["simp", "norm_num [h]", "rw [a]\nsimp", "have q : 1 = 1 := by\n  rfl\nexact q", "nlinarith [x] -- ok"]
_TERM_PROOFS = ["h", "⟨a, b⟩", "foo\n  bar"]


def _random_sketch(rng: random.Random) -> str:
    indent = "  "
    body = "\n".join(rng.choice(_STEPS).format(i=indent, k=k) for k in range(rng.randint(1, 6)))
    return f"{STATEMENT}\n{body}"


@pytest.mark.parametrize("seed", range(40))
def test_stitching_sorry_back_is_the_identity(seed: int):
    command = _random_sketch(random.Random(seed))
    holes = find_holes(command)
    assert stitch(command, [Fill(pos=h.pos, proof="sorry", mode=h.mode) for h in holes]).text == command
    body_offset = Pos(line=1, column=len(STATEMENT))
    body = command[len(STATEMENT) :]
    body_holes = find_holes(body, offset=body_offset, start="tactic")
    assert body_holes == tuple(h.model_copy(update={"start": h.start - len(STATEMENT), "end": h.end - len(STATEMENT)})
                               for h in holes)  # the same holes, kinds and REPL positions from either text
    fills = [Fill(pos=h.pos, proof="sorry", mode=h.mode) for h in body_holes]
    assert stitch(body, fills, offset=body_offset, start="tactic").text == body


@pytest.mark.parametrize("seed", range(40))
def test_stitched_proofs_fill_exactly_the_holes(seed: int):
    rng = random.Random(1000 + seed)
    command = _random_sketch(rng)
    holes = find_holes(command)
    fills = []
    for h in holes:
        mode = rng.choice(["tactic", "term"])
        fills.append(Fill(pos=h.pos, proof=rng.choice(_TACTIC_PROOFS if mode == "tactic" else _TERM_PROOFS), mode=mode))
    out = stitch(command, fills)
    assert find_holes(out.text) == ()  # every hole filled, nothing else became one
    restored = out.text
    for start, end in reversed(out.spans):
        restored = restored[:start] + "sorry" + restored[end:]
    assert restored == command  # outside the holes the text is unchanged
    for (start, end), hole in zip(out.spans, holes):  # continuation lines stay right of the hole
        for line in out.text[start:end].split("\n")[1:]:
            assert not line.strip() or len(line) - len(line.lstrip(" ")) >= hole.pos.column


# -- refusals -----------------------------------------------------------------------------------


def test_a_position_without_a_sorry_is_refused():
    text = "  have h2 : P := by sorry\n  exact h2"
    with pytest.raises(StitchError, match=r"no `sorry` token at line 2, column 2 \(the text there is 'exact h2'\)"):
        stitch(text, [Fill(pos=Pos(line=2, column=2), proof="simp")])
    with pytest.raises(StitchError, match="outside the text"):
        stitch(text, [Fill(pos=Pos(line=9, column=0), proof="simp")])
    with pytest.raises(StitchError, match="no `sorry` token"):
        stitch("  -- sorry\n  simp", [Fill(pos=Pos(line=1, column=5), proof="simp")])


def test_one_hole_on_several_goals_needs_one_proof():
    text = "  all_goals sorry"
    (hole,) = find_holes(text, start="tactic")
    same = [Fill(pos=hole.pos, proof="simp"), Fill(pos=hole.pos, proof="simp")]
    assert stitch(text, same, start="tactic").text == "  all_goals simp"
    with pytest.raises(StitchError, match="runs on several goals"):
        stitch(text, [Fill(pos=hole.pos, proof="simp"), Fill(pos=hole.pos, proof="omega")], start="tactic")


@pytest.mark.parametrize(
    ("proof", "says"),
    [("\tsimp", "tab"), ("\n  \n", "empty"), ("    simp\n  ring", "indented less than its first line")],
)
def test_proofs_lean_would_not_read_as_one_block_are_refused(proof: str, says: str):
    (hole,) = find_holes("  have h2 : P := by\n    sorry")
    with pytest.raises(StitchError, match=says):
        stitch("  have h2 : P := by\n    sorry", [Fill(pos=hole.pos, proof=proof)])


# -- end to end ---------------------------------------------------------------------------------


async def test_stitched_sketch_passes_the_full_checker(datasets_dir: Path):
    """Sketch -> its `sorries` -> one subgoal by tactic steps from its proof state, one as a
    rendered lemma -> stitched -> ProofChecker: PROVED (all on the SIMULATED REPL)."""
    problem = minif2f_problem(datasets_dir)
    sketch = extract_sketch(problem, sketch_reply(problem, SKETCH_BODY))
    assert isinstance(sketch, Sketch)
    lean = simulated_lean()
    reply = parse_reply(lean.command(sketch.command, None))
    assert not reply.has_errors()
    hb, hv = subgoals_from_sorries(reply.sorries)
    state = hb.proof_state
    steps = ["rw [h₂, h₃]", "norm_num"]
    for tactic in steps:  # tactic mode from the hole's proof state follows the scenario's steps
        step = lean.tactic(tactic, state)
        state = step["proofState"]
    assert step["proofStatus"] == "Completed"
    lemma = render_lemma(hv.goal, f"{problem.theorem_name}_hv")
    assert isinstance(lemma, RenderedLemma)
    fills = [Fill(pos=hb.pos, proof="\n".join(steps)), Fill(pos=hv.pos, proof=lemma.proof_for_hole("rw [h₁, hb]"))]
    stitched_command = stitch(sketch.command, fills).text
    stitched_body = stitch(sketch.body, fills, offset=sketch.body_offset, start=sketch.mode).text
    assert stitched_command == problem.formal_statement + stitched_body + "\n"
    config = LeanConfig(repl_cmd=simulated_repl_command(SCENARIO), workers=1, timeout=5.0, header_timeout=20.0,
                        memory_limit_mb=None, rss_limit_mb=None, infra_retries=0)
    async with LeanPool(config) as pool:
        checker = ProofChecker(pool, CheckerConfig())
        for proof in (stitched_body, stitched_command):
            verdict = await checker.check(problem, proof)
            assert verdict.status is CheckStatus.PROVED, verdict
        unfilled = await checker.check(problem, sketch.body)
        assert unfilled.status is not CheckStatus.PROVED
