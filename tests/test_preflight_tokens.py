"""The ban list sees Lean's tokens: glued keywords, code execution without a banned word, options,
attributes, `open ... in` prefixes; and honest look-alikes pass. Cases written from Lean's rules."""

from __future__ import annotations

import pytest

from prover.lean_env.preflight import BAN_ITEMS, preflight, rules_hash

MATHLIB = ("Mathlib", "Aesop")


def _items(code: str) -> set[str]:
    return {h.item for h in preflight(code, allowed_imports=MATHLIB).hits}


# -- 1. tokens, not words: a keyword glued to the token before it is that keyword ---------------

GLUED: list[tuple[str, str]] = [
    ("  exact x⁻¹sorry", "sorry"),
    ("  exact sᶜsorry", "sorry"),
    ("  exact (h)sorry", "sorry"),
    ('  exact "a"sorry', "sorry"),
    ("  exact 'c'sorry", "sorry"),
    ("  exact 1sorry", "sorry"),
    ("  exact 0xdeadsorry", "sorry"),
    ("  exact 2.5e3sorry", "sorry"),
    ("  exact ⟨1, 2⟩sorry", "sorry"),
    ("  exact h.1sorry", "sorry"),
    ('  exact r#"x"#sorry', "sorry"),
    ("  exact x₊sorry", "sorry"),
    ("  simp)admit", "admit"),
    ("  norm_num<;>admit", "admit"),
    ("  simp;native_decide", "native_decide"),
    ("  decide+native", "native_decide"),
    ("def x := 1axiom cheat : False", "axiom"),
    ("theorem t : True := trivial#eval IO.println 1", "eval"),
    ('def s := "x"#eval 1', "eval"),
    ("def x := (1)#exit", "exit"),
    ("def x := 1instance : LT ℝ := ⟨fun _ _ => True⟩", "instance"),
    ("theorem t : True := trivial)attribute [local instance] foo", "instance"),
    ("def x := (1)export Nat (succ)", "scope"),
    ("def x := (1)end", "scope"),
    ("def x := (1)namespace Evil", "scope"),
    ("def x := [1]macro \"m\" : tactic => `(tactic| rfl)", "macro"),
    ("def x := ⟨⟩notation \"π\" => (3 : ℝ)", "notation"),
    ("def x := 1set_option warn.sorry false", "option"),
    ("def x := «sorry»", "sorry"),
]


@pytest.mark.parametrize(("code", "item"), GLUED)
def test_glued_keywords_are_seen(code: str, item: str) -> None:
    assert item in _items(code), preflight(code, allowed_imports=MATHLIB).describe()


# -- prefixes and scope commands, read as tokens -----------------------------------------------

PREFIXES: list[tuple[str, str]] = [
    ("open Lean in\ntheorem t : True := trivial", "metaprogram"),
    ("open Real Lean.Elab in\ntheorem t : True := trivial", "metaprogram"),
    ("open Lean Elab Command\ndef f := 1", "metaprogram"),
    ("open Mathlib Tactic in\ndef f := 1", "metaprogram"),
    ("open _root_.Lean in\ndef f := 1", "metaprogram"),
    ("  open Lean.Meta in\n  simp", "metaprogram"),  # the tactic form
    ("set_option warn.sorry false in\ntheorem t : True := sorry", "option"),
    ("set_option autoImplicit true in\ntheorem t : True := trivial", "option"),
    ("set_option debug.skipKernelTC true in\ntheorem t : True := trivial", "debug"),
    ("set_option «debug».skipKernelTC true in\ntheorem t : True := trivial", "debug"),
    ("  set_option diagnostics.threshold 0 in\n  simp", "option"),
    ("attribute [local instance] Classical.propDecidable in\ntheorem t : True := trivial", "instance"),
    ("attribute [-instance] Real.instLT", "instance"),
    ("attribute [scoped instance] foo", "instance"),
    ("export Real (sqrt)", "scope"),
    ("section\nend\nend", "scope"),
    ("open Nat renaming sqrt → rsqrt in\ntheorem t : True := trivial", "scope"),
]


@pytest.mark.parametrize(("code", "item"), PREFIXES)
def test_prefixes_and_scope_commands(code: str, item: str) -> None:
    assert item in _items(code), preflight(code, allowed_imports=MATHLIB).describe()


# -- 2. code execution without a banned word ---------------------------------------------------

CODE_EXECUTION: list[tuple[str, str]] = [
    ("simproc reduceFoo (foo _) := fun _ => return .continue", "simproc"),
    ("dsimproc reduceBar (bar _) := fun e => return .done e", "simproc"),
    ("simproc_decl evil (_) := fun _ => return .continue", "simproc"),
    ("@[simproc] def evil := 1", "simproc"),
    ("@[norm_num _ + _] def evalFoo : NormNumExt where eval _ := failure", "attribute"),
    ("@[positivity _ ^ _] def evalPos : PositivityExt where eval _ _ _ := failure", "attribute"),
    ("@[app_delab HAdd.hAdd] def d : Delab := failure", "elab"),
    ("@[app_unexpander f] def u : Unexpander := fun _ => throw ()", "elab"),
    ("@[command_elab Parser.Command.printAxioms] def hijack : CommandElab := fun _ => pure ()", "elab"),
    ("@[tactic Parser.Tactic.omega] def t : Tactic := fun _ => pure ()", "elab"),
    ("@[term_elab termFoo] def te : TermElab := fun _ _ => failure", "elab"),
    ("@[local delab app.Real.sqrt] def d := 1", "elab"),
    ("@[csimp] theorem fast_eq : @slow = @fast := rfl", "attribute"),
    ("@[export lean_foo] def foo := 1", "attribute"),
    ("attribute [simp, norm_num] foo", "attribute"),
    ("open Lean Elab Command in\ndef f : CommandElabM Unit := pure ()", "metaprogram"),
    ("def g (m : Lean.MVarId) := m.admitGoal", "metaprogram"),
    ("def g := MVarId.admitGoal", "metaprogram"),
    ("def h := modifyScope fun s => s", "metaprogram"),
    ("def k : CommandElab := fun _ => pure ()", "metaprogram"),
    ("def k : SimpM Unit := pure ()", "metaprogram"),
    ("def k := Lean.Elab.Command.elabCommand", "metaprogram"),
    ("def k := `Lean.Elab.Command", "metaprogram"),
    ("def k := Qq.q(1)", "metaprogram"),
    ("initialize evil : Unit ← pure ()", "initialize"),
    ("@[init evilInit] def x : Unit := ()", "initialize"),
    ("  run_tac pure ()", "run_tac"),
    ("  exact by_elab pure (mkConst ``True.intro)", "elab"),
    ('def s := "#eval is here"', "eval"),  # string contents are scanned for what the audit cannot see
]


@pytest.mark.parametrize(("code", "item"), CODE_EXECUTION)
def test_code_execution_without_a_banned_word(code: str, item: str) -> None:
    assert item in _items(code), preflight(code, allowed_imports=MATHLIB).describe()


# -- lexical errors: Lean's recovery reads the rest as code -----------------------------------

LEXICAL: list[str] = [
    '  exact "unterminated',
    "  simp /- never closed",
    '  exact "\\q" -- invalid escape',
    "  exact «unterminated",
    "  exact 0x",
    "  exact 1e",
    "  exact\tfoo",
    "  exact 'ab",
    "def x := 1end",  # `1e` is a scientific literal missing its exponent: Lean stops there
]


@pytest.mark.parametrize("code", LEXICAL)
def test_lexical_errors_are_refused(code: str) -> None:
    assert "lexical" in _items(code), code


def test_code_after_a_bad_escape_is_seen() -> None:
    items = _items('def s := "\\q #eval evil"')
    assert {"lexical", "eval"} <= items


# -- honest look-alikes pass ---------------------------------------------------------------------

HONEST: list[str] = [
    "  -- we avoid sorry, admit, native_decide, #eval, instance, elab and macro here\n  simp",
    "/-! Module doc mentioning #eval, sorry, instance and `open Lean`. -/\ntheorem t : True := trivial",
    "/-- A docstring: `sorry` and `#eval` are only words here. -/\ntheorem t : True := trivial",
    '  have h : "sorry admit axiom" = "sorry admit axiom" := rfl\n  simp',
    "  exact sorry_free_lemma x",
    "  exact h.sorry",
    "  exact (h_axiom).symm",
    "  exact native_decide_free",
    "  simp [my_instance, hend, end_pt, endpoint, exported, openness, Nat.decide_eq_true]",
    "theorem t (α β : Type) (hα : α = β) : β = α := hα.symm",
    "theorem t (x₁ x₂ : ℝ) (ε : ℝ) (h₀ : 0 < ε) : x₁ + ε > x₁ := by linarith",
    "theorem t (f : Fin 3 → ℝ) (I O : ℕ) (IO : ℕ) : True := trivial",
    "theorem t (a b : ℝ) (h : a < b) : a ≤ b := by\n  calc a ≤ a := le_refl a\n    _ ≤ b := h.le",
    "theorem t (a : ℕ) (h : 0 < a) : a ≠ 0 := by\n  show a ≠ 0\n  exact Nat.pos_iff_ne_zero.mp h",
    "theorem t : (2 : ℕ) + 2 = 4 := rfl",
    "theorem t (n : ℕ) : n + 0 = n := by\n  exact helper n\nwhere\n  helper (m : ℕ) : m + 0 = m := by simp",
    "  simp (config := {decide := true})",
    "  decide",
    "  norm_num [Nat.Prime] at h ⊢",
    "  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b), mul_pos ha hb]",
    "set_option maxHeartbeats 400000 in\ntheorem t : True := trivial",
    "set_option maxRecDepth 10000 in\ntheorem t : True := trivial",
    "set_option tactic.hygienic false in\ntheorem t : True := trivial",
    "set_option linter.unusedVariables false\ntheorem t : True := trivial",
    "set_option synthInstance.maxHeartbeats 40000 in\ntheorem t : True := trivial",
    "  set_option maxRecDepth 2000 in\n  norm_num",
    "@[simp] lemma l : True := trivial",
    "@[simp, norm_cast] lemma l : True := trivial",
    "attribute [local simp] mul_comm in\ntheorem t : True := trivial",
    "instance : Fact (Nat.Prime 7) := ⟨by norm_num⟩",
    "instance hp : Fact (1 < 2) := ⟨by norm_num⟩",
    "  haveI : Fact (Nat.Prime 7) := ⟨by norm_num⟩\n  exact?",
    "open Real in\ntheorem t : True := trivial",
    "open Finset in\ntheorem t : True := trivial",
    "open scoped BigOperators in\ntheorem t : True := trivial",
    "  open Real in\n  nlinarith [Real.sqrt_nonneg 2]",
    "noncomputable section\ndef f : ℕ := 1\nend",
    "  exact fun x => x.1",
    "  rw [h'] at h₀'\n  exact h₀'",
    "  simp only [Char.ofNat, show 'a' = 'a' from rfl]",
    'def show_x (x : ℕ) : String := s!"x = {x} and {"nested" ++ s!"{x}"}"',
    "  exact «h'» 'a'",
    "#print axioms t",
    "#check t",
]


@pytest.mark.parametrize("code", HONEST)
def test_honest_look_alikes_pass(code: str) -> None:
    result = preflight(code, allowed_imports=MATHLIB)
    assert result.ok, result.describe()


def test_every_hit_names_a_known_item_with_a_reason() -> None:
    for code, _ in GLUED + PREFIXES + CODE_EXECUTION:
        for hit in preflight(code, allowed_imports=MATHLIB).hits:
            assert hit.item in BAN_ITEMS and BAN_ITEMS[hit.item].reason and hit.text
            line = code.split("\n")[hit.pos.line - 1]
            assert line[hit.pos.column :].startswith(hit.text.split("\n")[0])


def test_rules_hash_is_stable_and_covers_the_items() -> None:
    assert rules_hash() == rules_hash()
    assert len(rules_hash()) >= 16
