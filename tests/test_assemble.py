"""Assembly: the benchmark statement is always used, aux declarations kept, positions mappable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.lean_env.assemble import AssemblyRejected, assemble
from prover.types import Pos, Problem

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
STATEMENT = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) :\n    x ^ 2 > 0 := by"
PROBLEM = Problem(name="mathd_t", header=HEADER, formal_statement=STATEMENT)


def _dataset(datasets_dir: Path, file: str, name: str) -> Problem:
    for line in (datasets_dir / file).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["name"] == name:
            return Problem.model_validate(row)
    raise AssertionError(f"{name} not in {file}")


# -- tactic bodies ---------------------------------------------------------------------------


def test_tactic_body_follows_statement() -> None:
    asm = assemble(PROBLEM, "\n  positivity")
    assert asm.form == "body" and asm.mode == "tactic"
    assert asm.command == STATEMENT + "\n  positivity\n"
    assert asm.code == HEADER + asm.command
    assert asm.header_lines == HEADER.count("\n")


@pytest.mark.parametrize("proof", ["positivity", "by positivity", ":= by positivity", "  by\n  positivity"])
def test_body_prefixes_and_same_line(proof: str) -> None:
    asm = assemble(PROBLEM, proof)
    assert asm.command.startswith(STATEMENT)
    assert "positivity" in asm.command and "by by" not in asm.command and ":= by :=" not in asm.command
    assert asm.command.count(":=") == 1


def test_term_body_after_assign() -> None:
    asm = assemble(PROBLEM, ":= pow_pos h₀ 2")
    assert asm.mode == "term" and asm.command == "theorem mathd_t (x : ℝ) (h₀ : 0 < x) :\n    x ^ 2 > 0 := pow_pos h₀ 2\n"


def test_by_prefix_is_a_token() -> None:
    asm = assemble(PROBLEM, "by_contra h\n  simp at h")
    assert asm.body.startswith("by_contra")


@pytest.mark.parametrize("proof", ["", "   \n  ", "  -- nothing here", "by", ":= by\n  /- later -/"])
def test_empty_proof(proof: str) -> None:
    with pytest.raises(AssemblyRejected) as info:
        assemble(PROBLEM, proof)
    assert info.value.rule == "empty_proof"


# -- complete code ----------------------------------------------------------------------------

KIMINA_STYLE = """import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

/-- A helper the model proved first. -/
lemma sq_pos_helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by
  positivity

/-- The main theorem, restated WRONGLY (hypothesis dropped, goal weakened). -/
@[simp] theorem mathd_t (x : ℝ) : x ^ 2 ≥ 0 := by
  exact sq_pos_helper x h₀
"""


def test_complete_code_uses_benchmark_statement() -> None:
    asm = assemble(PROBLEM, KIMINA_STYLE)
    assert asm.form == "code" and asm.mode == "tactic"
    assert STATEMENT in asm.command
    assert "x ^ 2 ≥ 0" not in asm.command  # the model's restatement is gone
    assert "@[simp]" not in asm.command and "restated WRONGLY" not in asm.command
    assert "lemma sq_pos_helper" in asm.aux and "A helper the model proved first" in asm.aux
    assert "import" not in asm.command and "open BigOperators" not in asm.command
    assert "set_option maxHeartbeats 400000" in asm.aux  # not a duplicate of the header's
    assert asm.command.endswith(STATEMENT + "\n  exact sq_pos_helper x h₀\n")
    assert asm.command.index("sq_pos_helper (y") < asm.command.index(STATEMENT)


def test_position_mapping_back_to_model_text() -> None:
    asm = assemble(PROBLEM, KIMINA_STYLE)
    proof_lines = KIMINA_STYLE.split("\n")
    code_lines = asm.code.split("\n")
    # the aux lemma
    lemma_code_line = next(i for i, l in enumerate(code_lines, 1) if l.startswith("lemma sq_pos_helper"))
    mapped = asm.to_proof_pos(Pos(line=lemma_code_line, column=6))
    assert mapped is not None and proof_lines[mapped.line - 1].startswith("lemma sq_pos_helper")
    assert mapped.column == 6
    # the body line
    body_code_line = next(i for i, l in enumerate(code_lines, 1) if "exact sq_pos_helper" in l)
    mapped = asm.to_proof_pos(Pos(line=body_code_line, column=2))
    assert mapped == Pos(line=proof_lines.index("  exact sq_pos_helper x h₀") + 1, column=2)
    # statement and header lines are not model text
    stmt_line = next(i for i, l in enumerate(code_lines, 1) if l.startswith("theorem mathd_t"))
    assert asm.to_proof_pos(Pos(line=stmt_line, column=3)) is None
    assert asm.to_proof_pos(Pos(line=1, column=0)) is None
    assert asm.part_of(stmt_line) == "statement" and asm.part_of(1) == "header"
    assert asm.part_of(body_code_line) == "body" and asm.part_of(lemma_code_line) == "aux"


def test_same_line_body_column_mapping() -> None:
    asm = assemble(PROBLEM, "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by positivity")
    last = asm.code.split("\n")[-2]
    column = last.index("positivity")
    line = asm.code.count("\n")
    assert asm.to_proof_pos(Pos(line=line, column=column)) == Pos(line=1, column=55)


def test_term_mode_proof() -> None:
    asm = assemble(PROBLEM, "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 :=\n  pow_pos h₀ 2")
    assert asm.mode == "term"
    assert asm.command == "theorem mathd_t (x : ℝ) (h₀ : 0 < x) :\n    x ^ 2 > 0 :=\n  pow_pos h₀ 2\n"


def test_open_in_and_set_option_in_prefixes_are_kept() -> None:
    code = "open Real in\nset_option maxHeartbeats 400000 in\ntheorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  positivity"
    asm = assemble(PROBLEM, code)
    assert asm.command.startswith("open Real in\nset_option maxHeartbeats 400000 in\n" + STATEMENT)
    assert asm.aux == ""


def test_missing_theorem() -> None:
    with pytest.raises(AssemblyRejected) as info:
        assemble(PROBLEM, "import Mathlib\n\ntheorem other_name (x : ℝ) : x = x := by\n  rfl\n")
    assert info.value.rule == "missing_theorem" and "mathd_t" in info.value.detail
    with pytest.raises(AssemblyRejected) as info:
        assemble(PROBLEM, "theorem mathd_t_aux : True := trivial")
    assert info.value.rule == "missing_theorem"


def test_theorem_without_assignment_is_missing() -> None:
    with pytest.raises(AssemblyRejected) as info:
        assemble(PROBLEM, "theorem mathd_t : True\n  | _ => trivial")
    assert info.value.rule == "missing_theorem"


def test_last_restatement_wins_and_trailing_commands_dropped() -> None:
    code = (
        "theorem mathd_t (x : ℝ) : True := by\n  trivial\n\n"
        "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  positivity\n\n#print axioms mathd_t\n"
    )
    asm = assemble(PROBLEM, code)
    assert asm.body.strip() == "positivity"
    assert "#print" not in asm.command
    assert "trivial" in asm.aux  # the earlier copy stays, so Lean reports the clash


def test_lemma_keyword_and_qualified_name_match() -> None:
    asm = assemble(PROBLEM, "lemma mathd_t (x : ℝ) : x ^ 2 > 0 := by\n  nlinarith")
    assert asm.body.strip() == "nlinarith"
    geo = Problem(name="g", header="import Mathlib\nnamespace LeanGeo\n\n", formal_statement="theorem g1 : True := by")
    assert assemble(geo, "theorem LeanGeo.g1 : True := by\n  trivial").body.strip() == "trivial"


def test_comments_do_not_confuse_parsing() -> None:
    code = "-- theorem mathd_t : False := by sorry\n/- theorem mathd_t -/\ntheorem mathd_t (x : ℝ) : x ^ 2 > 0 := by\n  -- := by\n  positivity"
    asm = assemble(PROBLEM, code)
    assert asm.body == "\n  -- := by\n  positivity"


def test_crlf_newlines() -> None:
    asm = assemble(PROBLEM, "theorem mathd_t (x : ℝ) : x ^ 2 > 0 := by\r\n  positivity\r\n")
    assert "\r" not in asm.command


# -- real benchmark statements ----------------------------------------------------------------


def test_proofnet_name_differs_from_declaration(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "proofnet_test.jsonl", "Ireland_Rosen_exercise_2_4")
    assert problem.theorem_name == "exercise_2_4" != problem.name
    restated = problem.formal_statement.replace(":= by", ":= by\n  sorry_free_tactic")
    asm = assemble(problem, "import Mathlib\n" + restated)
    assert asm.theorem_name == "exercise_2_4"
    assert asm.body.strip() == "sorry_free_tactic"  # the `(f_a := λ ...)` default was not taken for the proof
    assert asm.command == problem.formal_statement + "\n  sorry_free_tactic\n"


def test_proofnet_def_statement(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "proofnet_valid.jsonl", "Herstein_exercise_2_1_21")
    assert problem.formal_statement.startswith("def exercise_2_1_21")
    code = "def exercise_2_1_21 (G : Type*) [Group G] [Fintype G] (hG : card G = 5) : CommGroup G :=\n  { mul_comm := by simp }"
    asm = assemble(problem, code)
    assert asm.mode == "term" and asm.body.strip() == "{ mul_comm := by simp }"
    assert asm.command.startswith(problem.formal_statement[: -len(" by")])


def test_leangeo_statement_name_followed_by_colon(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "leangeo_bench.jsonl", "angle_altitude_circumradius_equal")
    asm = assemble(problem, "\n  intro A B C O H Ω BC AB AC h\n  euclid_finish")
    assert asm.header.endswith("namespace LeanGeo\n\n")
    asm2 = assemble(problem, "theorem angle_altitude_circumradius_equal: True := by\n  euclid_finish")
    assert asm2.command == problem.formal_statement + "\n  euclid_finish\n"


def test_leangeo_whole_file_output(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "leangeo_bench.jsonl", "angle_altitude_circumradius_equal")
    code = (
        problem.header + "lemma helper_geo : True := trivial\n\n"
        "theorem angle_altitude_circumradius_equal : True := by\n  euclid_finish\n\nend LeanGeo\n"
    )
    asm = assemble(problem, code)
    assert asm.aux == "lemma helper_geo : True := trivial"  # no second `namespace LeanGeo`
    assert asm.command.endswith(problem.formal_statement + "\n  euclid_finish\n")
    assert "end LeanGeo" not in asm.command


def test_header_declarations_restated_by_the_model_are_dropped(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "putnambench.jsonl", "putnam_2023_a5")
    assert "def num_ones" in problem.header
    helper = "lemma my_helper : num_ones [] = 0 := rfl"
    code = problem.header + helper + "\n\n" + problem.formal_statement + "\n  my_tactic\n"
    asm = assemble(problem, code)
    assert "num_ones" not in asm.aux.replace(helper, "")  # a second `def num_ones` would not elaborate
    assert asm.aux.strip().endswith(helper)
    helper_line = next(i for i, l in enumerate(asm.code.split("\n"), 1) if l.startswith("lemma my_helper"))
    mapped = asm.to_proof_pos(Pos(line=helper_line, column=6))
    assert mapped is not None and code.split("\n")[mapped.line - 1].startswith("lemma my_helper")


def test_let_in_the_statement_is_not_the_proof(datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "putnambench.jsonl", "putnam_1997_a4")
    assert "let ψ :=" in problem.formal_statement
    asm = assemble(problem, problem.header + problem.formal_statement + "\n  my_tactic\n")
    assert asm.body.strip() == "my_tactic" and asm.mode == "tactic"


def test_same_line_multi_line_body_keeps_the_models_columns() -> None:
    first = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by have h := h₀"
    column = first.index("have")
    asm = assemble(PROBLEM, first + "\n" + " " * column + "positivity")
    lines = asm.command.split("\n")
    # the tactics of a block must share one column: both keep the column they had in the model's text
    assert lines[-3].index("have") == lines[-2].index("positivity") == column
    assert lines[-4] == "    x ^ 2 > 0 := by"
    code_line = asm.code.count("\n") - 1
    assert asm.to_proof_pos(Pos(line=code_line, column=column + 5)) == Pos(line=1, column=column + 5)
    assert asm.to_proof_pos(Pos(line=code_line + 1, column=column)) == Pos(line=2, column=column)
    assert asm.to_proof_pos(Pos(line=code_line - 1, column=18)) is None  # the statement's `by`
    assert asm.part_of(code_line) == "body"


def test_indented_bare_tactic_block() -> None:
    asm = assemble(PROBLEM, "  have h := h₀\n  positivity")
    assert asm.command == STATEMENT + "\n  have h := h₀\n  positivity\n"
    assert asm.to_proof_pos(Pos(line=asm.code.count("\n") - 1, column=2)) == Pos(line=1, column=2)


def test_trailing_docstring_of_a_later_declaration_is_not_in_the_body() -> None:
    code = (
        "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  positivity\n\n"
        "/-- An extra lemma (see /-- nested -/). -/\n-- note\n@[simp] lemma later : True := trivial\n"
    )
    asm = assemble(PROBLEM, code)
    assert asm.command == STATEMENT + "\n  positivity\n"  # a dangling doc comment does not parse


def test_quoted_and_commented_declaration_names() -> None:
    quoted = Problem(name="q", header=HEADER, formal_statement="theorem «mathd-t.v2» (x : ℝ) : x = x := by")
    assert assemble(quoted, "theorem «mathd-t.v2» (x : ℝ) : x = x := by\n  rfl").body == "\n  rfl"
    plain = Problem(name="p", header=HEADER, formal_statement="theorem «mathd_p» (x : ℝ) : x = x := by")
    assert assemble(plain, "theorem mathd_p (x : ℝ) : x = x := by\n  rfl").body == "\n  rfl"
    asm = assemble(PROBLEM, "/-- The answer. -/ theorem mathd_t (x : ℝ) : x ^ 2 > 0 := by\n  positivity")
    assert asm.form == "code" and asm.command == STATEMENT + "\n  positivity\n"


# -- the body ends where Lean's parser ends the declaration -----------------------------------

THEOREM = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  positivity"


@pytest.mark.parametrize(
    "after",
    [
        "\n  instance evil : LT ℝ := ⟨fun _ _ => True⟩",  # indented after the last tactic
        "\n    attribute [local instance] Classical.propDecidable",
        "\n  #print axioms mathd_t",
        " theorem other : True := trivial",  # on the same line
        ")attribute [simp] mathd_t",  # glued to the last token
        "\n  open Nat\n  def evil := 1",
    ],
)
def test_commands_after_the_last_tactic_are_not_the_body(after: str) -> None:
    asm = assemble(PROBLEM, THEOREM + after)
    assert asm.command == STATEMENT + "\n  positivity" + (")" if after.startswith(")") else "") + "\n"
    assert asm.command.count("\n") == STATEMENT.count("\n") + 2


def test_tactic_body_form_ends_at_a_command() -> None:
    asm = assemble(PROBLEM, "  positivity\n  #print axioms mathd_t")
    assert asm.form == "body" and asm.body == "  positivity"


def test_where_clause_is_part_of_the_declaration_and_commands_after_it_are_not() -> None:
    where = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  exact helper x h₀\nwhere\n  helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by positivity"
    asm = assemble(PROBLEM, where)
    assert asm.body == "\n  exact helper x h₀\nwhere\n  helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by positivity"
    hidden = assemble(PROBLEM, where + "\n  instance evil : LT ℝ := ⟨fun _ _ => True⟩")
    assert hidden.body == asm.body and "instance" not in hidden.command


def test_tactic_prefixes_inside_the_body_are_kept() -> None:
    code = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  open Real in\n  set_option maxRecDepth 100 in\n  positivity"
    asm = assemble(PROBLEM, code)
    assert asm.body == "\n  open Real in\n  set_option maxRecDepth 100 in\n  positivity"


def test_attribute_in_prefix_is_kept_with_the_statement() -> None:
    asm = assemble(PROBLEM, "attribute [local simp] mul_comm in\n" + THEOREM)
    assert asm.command == "attribute [local simp] mul_comm in\n" + STATEMENT + "\n  positivity\n"
