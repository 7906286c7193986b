"""Cutting declarations like Lean's parser (prover.datasets.declarations): where the proof's `:=`
is, which modifiers belong to the declaration, when a proof is just `sorry`."""

from __future__ import annotations

import pytest

from prover.datasets.declarations import NoColonProof, NotADeclaration, is_sorry_proof, parse_declaration
from prover.lean_syntax import blank_comments_and_strings


def test_the_proof_starts_at_the_first_depth_zero_colon_equals_no_binder_claims() -> None:
    text = (
        'theorem t (f : ℕ → ℕ := fun n => n) (s : String := ":= no") /- := not here -/\n'
        "    : let y := f 1; have h : y = y := rfl; y = f 1 := by\n  rfl"
    )
    decl = parse_declaration(text)
    assert decl.statement == text[: text.index(" := by\n  rfl")] + " := by"
    assert decl.name == "t" and decl.header == "" and decl.clean_proof.split() == ["by", "rfl"]
    assert decl.has_proof and not decl.proof_is_sorry


def test_doc_comment_attributes_modifiers_and_in_prefixes_belong_to_the_declaration() -> None:
    header = "import Mathlib\n\nnamespace N\n\ntheorem earlier : True := trivial\n\n"
    text = header + (
        "/-- The doc, with `theorem fake : False` inside. -/\n"
        "@[simp, norm_cast] -- a remark\n"
        "set_option maxHeartbeats 400000 in\n"
        "open Real in\n"
        "protected noncomputable theorem N.main (x : ℝ) : x = x := by sorry\n"
    )
    decl = parse_declaration(text)
    assert decl.header == header
    assert decl.docstring == "The doc, with `theorem fake : False` inside."
    assert decl.statement == (
        "@[simp, norm_cast] -- a remark\nset_option maxHeartbeats 400000 in\nopen Real in\n"
        "protected noncomputable theorem N.main (x : ℝ) : x = x := by"
    )
    assert decl.name == "N.main" and decl.proof_is_sorry and not decl.has_proof


def test_a_declaration_can_be_cut_at_a_given_position_with_a_given_end() -> None:
    text = "theorem a : True := trivial\n\nlemma b : 1 = 1 := rfl\n\ntheorem c : 2 = 2 := rfl\n"
    decl = parse_declaration(text, keyword_at=text.index("lemma b"), end=text.index("\n\ntheorem c"))
    assert decl.name == "b" and decl.header == "theorem a : True := trivial\n\n"
    assert decl.statement == "lemma b : 1 = 1 := by" and decl.clean_proof.strip() == "rfl"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("theorem f : ∀ n : Nat, n = n\n  | 0 => by have h := 1; rfl\n  | n + 1 => rfl", NoColonProof),
        ("instance : Inhabited Nat := ⟨0⟩", NotADeclaration),
        ("-- theorem hidden : True := trivial\ndef x := 1", NotADeclaration),
        ('def s := "theorem t : True := trivial"', NotADeclaration),
    ],
)
def test_texts_without_a_cuttable_theorem_say_so(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_declaration(text)


@pytest.mark.parametrize(
    ("proof", "is_sorry"),
    [(" sorry", True), (" by sorry", True), (" by\n  -- todo\n  sorry\n", True), (" by simp; sorry", False),
     (" by\n  sorry_lemma", False), (' by exact "sorry"', False)],
)
def test_sorry_proofs_are_recognised_token_by_token(proof: str, is_sorry: bool) -> None:
    assert is_sorry_proof(blank_comments_and_strings(proof)) is is_sorry
