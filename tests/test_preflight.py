"""Preflight ban-list: every item is caught, and words in comments/strings/identifiers are not."""

from __future__ import annotations

import pytest

from prover.config import CheckerConfig
from prover.errors import ConfigError
from prover.lean_env.preflight import (
    BAN_ITEMS,
    DEFAULT_BANNED,
    banned_items,
    header_imports,
    preflight,
)

MATHLIB = ("Mathlib", "Aesop")

# item -> examples that must be refused with `preflight:<item>`
BANNED_EXAMPLES: dict[str, list[str]] = {
    "sorry": ["  exact sorry", "  have h : 1 = 1 := sorry\n  simp", "  exact (sorryAx _ true)", "  exact «sorry»"],
    "admit": ["  admit", "  constructor <;> admit"],
    "axiom": ["axiom cheat : False\ntheorem t : 1 = 2 := by exact cheat.elim"],
    "native_decide": ["  native_decide", "  decide +native", "  decide (config := {native := true})",
                      "  exact Lean.ofReduceBool _ _ rfl", "  bv_decide"],
    "implemented_by": ["@[implemented_by fastF] def f (n : Nat) : Nat := n"],
    "extern": ['@[extern "c_f"] def f (n : Nat) : Nat := n'],
    "unsafe": ["unsafe def f : Nat := 0", "  exact unsafeCast 0"],
    "debug": ["set_option debug.skipKernelTC true in\ntheorem t : 1 = 1 := by rfl",
              "set_option «debug».skipKernelTC true", "  exact addDeclWithoutChecking"],
    "eval": ['#eval IO.println "hi"', "#eval! 1 + 1"],
    "run_cmd": ["run_cmd Lean.logInfo m!\"x\"", "run_elab pure ()", "run_meta pure ()"],
    "run_tac": ["  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| rfl))"],
    "initialize": ["initialize counter : IO.Ref Nat ← IO.mkRef 0", "@[init] def f : IO Unit := pure ()"],
    "macro": ['macro "cheat" : tactic => `(tactic| sorry)', "macro_rules | `(tactic| trivial) => `(tactic| rfl)"],
    "syntax": ['syntax "cheat" : tactic', "declare_syntax_cat evil"],
    "notation": ['notation3 (priority := high) a " < " b => True', 'local notation "π" => (3 : ℝ)',
                 'infixl:65 " +' + "'" + ' " => HAdd.hAdd', 'prefix:max "√" => Nat.sqrt', 'postfix:max "!" => f',
                 'scoped[Real] notation "e" => 1', 'infix:50 " ≤ " => fun _ _ => True', 'infixr:50 " ∧ " => Or'],
    "elab": ['elab "#print" "axioms" id:ident : command => pure ()', "elab_rules : tactic | `(tactic| x) => pure ()",
             "  exact by_elab pure (Lean.mkConst ``True.intro)", "@[term_elab foo] def evil : TermElab := fun _ _ => x",
             "@[tactic rfl] def myRfl : Tactic := fun _ => pure ()", "attribute [local app_unexpander f] g"],
    "instance": ["instance : LT ℝ := ⟨fun _ _ => True⟩", "local instance evil : Add ℕ := ⟨fun _ _ => 0⟩",
                 "scoped instance (priority := high) : Mul ℕ := ⟨fun _ _ => 0⟩", "attribute [instance] evilInst",
                 "@[instance] def evil : Add ℕ := ⟨fun _ _ => 0⟩", "@[default_instance] def x := 1",
                 "unif_hint (n : ℕ) where n =?= 0 ⊢ n + 1 =?= 1", "deriving instance DecidableEq for Foo"],
    "scope": ["namespace Evil\ndef Real := ℕ", "variable (h : False)\ninclude h", "end LeanGeo",
              "open Nat renaming sqrt → rsqrt", "export Nat (succ)", "section\nomit h\nend\nend"],
    "import": ["import Mathlib.Tactic\nimport Evil\ntheorem t : True := trivial"],
    "prelude": ["prelude\nimport Init.Prelude"],
    "exit": ["#exit"],
    "guard_msgs": ["/-- warning: declaration uses 'sorry' -/\n#guard_msgs in\nlemma l : False := by sorry"],
    "interpolation": ['def msg (x : ℕ) := toString "x = {x}"', '  exact (dbg_trace "{(sorry : ℕ)}"; trivial)'],
    "lexical": ['  exact "unterminated', "  simp /- never closed", "  exact 0x"],
    "option": ["set_option warn.sorry false in\ntheorem t : True := sorry", "set_option autoImplicit true"],
    "simproc": ["simproc evil (_) := fun _ => return .continue", "dsimproc d (_) := fun e => return .done e"],
    "attribute": ["@[norm_num _ + _] def evalFoo := 1", "@[positivity _] def evalPos := 1", "attribute [csimp] f"],
    "metaprogram": ["def f : MetaM Unit := pure ()", "open Lean.Elab in\ndef g := 1", "def h : CoreM Unit := pure ()",
                    "  exact Lean.Meta.mkFreshExprMVar"],
}

# must pass the default list
ALLOWED_EXAMPLES = [
    "  -- we avoid sorry and native_decide here\n  simp",
    "  /- nested /- sorry -/ admit -/\n  simp",
    '  have h : "sorry admit axiom" = "sorry admit axiom" := rfl\n  simp',
    "  exact sorry_free_lemma x",
    "  exact my_admit_lemma",
    "  exact h.sorry_lemma",
    "  simp [Nat.decide_eq_true]",
    "  exact (axiom_of_choice_free h)",
    "  exact hprefix",
    "theorem aux_elab_free : True := trivial",
    "/-- docstring mentioning sorry and #eval -/\ntheorem aux : True := trivial",
    "open Real in\ntheorem t : True := trivial",
    "open BigOperators Real Nat Topology Rat\n\ntheorem t : True := trivial",
    "set_option maxHeartbeats 400000 in\ntheorem t : True := trivial",
    "instance : Fact (Nat.Prime 7) := ⟨by norm_num⟩",
    "instance hp : Fact (1 < 2) := ⟨by norm_num⟩",
    "noncomputable section\ndef f : ℕ := 1\nend",
    "mutual\ndef a : ℕ → ℕ\n  | 0 => 0\n  | n+1 => b n\ndef b : ℕ → ℕ\n  | 0 => 1\n  | n+1 => a n\nend",
    "  haveI : Fact (Nat.Prime 7) := ⟨by norm_num⟩\n  letI := inferInstance\n  decide",
    "import Mathlib\nimport Aesop\nimport Mathlib.Tactic.Ring\ntheorem t : True := trivial",
    "attribute [local simp] mul_comm in\ntheorem t : True := trivial",
    "@[simp] lemma l : True := trivial",
    "partial def loop (n : ℕ) : ℕ := loop n",
    "  exact fun x => x.1",
    "  simp only [Char.ofNat, show 'a' = 'a' from rfl]",
    "  rw [h'] at h₀'\n  exact h₀'",
    "theorem t (x : ℝ) : x ^ 2 ≥ 0 := by\n  positivity",
    "theorem t (I O : Point) (IO : Line) : True := trivial",
    'def show_x (x : ℕ) : String := s!"x = {x} and {"nested" ++ s!"{x}"}"',
    "  exact «h'» 'a'",
]


@pytest.mark.parametrize(
    ("item", "code"), [(item, code) for item, codes in BANNED_EXAMPLES.items() for code in codes]
)
def test_each_item_refused_with_its_rule(item: str, code: str) -> None:
    result = preflight(code, allowed_imports=MATHLIB)
    assert not result.ok, f"{item} not caught in {code!r}"
    assert f"preflight:{item}" in {f"preflight:{h.item}" for h in result.hits}, result.describe()


def test_every_default_item_has_an_example() -> None:
    assert set(DEFAULT_BANNED) <= set(BANNED_EXAMPLES)
    assert "partial" not in DEFAULT_BANNED and "partial" in BAN_ITEMS


@pytest.mark.parametrize("code", ALLOWED_EXAMPLES)
def test_no_false_positives(code: str) -> None:
    result = preflight(code, allowed_imports=MATHLIB)
    assert result.ok, result.describe()


def test_hit_reports_position_and_text() -> None:
    result = preflight("  simp\n  -- sorry\n  exact  sorry")
    assert [h.item for h in result.hits] == ["sorry"]
    hit = result.hits[0]
    assert (hit.pos.line, hit.pos.column, hit.text) == (3, 9, "sorry")
    assert result.rule == "preflight:sorry"
    assert "line 3, col 9" in result.describe()


def test_first_hit_in_source_order_decides() -> None:
    result = preflight("#eval 1\naxiom a : False")
    assert result.rule == "preflight:eval"
    assert [h.item for h in result.hits] == ["eval", "axiom"]


def test_interpolated_string_code_is_scanned() -> None:
    assert preflight('  exact s!"{sorry}"').rule == "preflight:sorry"


def test_imports_against_header() -> None:
    assert header_imports("import Mathlib\nimport Aesop\n-- import Evil\n\nopen Real\n") == ("Mathlib", "Aesop")
    assert preflight("import Mathlib\nimport Batteries.Data.List", allowed_imports=("Mathlib",)).ok
    assert preflight("import Mathlib", allowed_imports=()).rule == "preflight:import"
    assert preflight("import LeanGeo", allowed_imports=("Mathlib", "SystemE", "LeanGeo")).ok
    assert preflight("import Evil.Mathlib", allowed_imports=("Mathlib",)).rule == "preflight:import"


def test_lines_repeating_the_header_namespace_are_neutral() -> None:
    header = "import Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\n"
    whole_file = "import Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\ntheorem g : True := by\n  trivial\n\nend LeanGeo\n"
    assert preflight(whole_file, header=header).ok
    assert preflight(whole_file).rule == "preflight:import"  # no header: nothing is allowed
    assert preflight("end LeanGeo\nnamespace Evil", header=header).rule == "preflight:scope"
    assert preflight("namespace LeanGeo.Sub", header=header).rule == "preflight:scope"


def test_configurable_list() -> None:
    assert preflight("  native_decide", banned=("sorry",)).ok
    assert preflight("partial def f (n : ℕ) : ℕ := f n", banned=("partial",)).rule == "preflight:partial"
    with pytest.raises(ConfigError, match="unknown preflight item"):
        preflight("x", banned=("nonsense",))


def test_banned_items_from_config() -> None:
    assert banned_items(CheckerConfig()) == DEFAULT_BANNED
    assert "native_decide" not in banned_items(CheckerConfig(allow_native_decide=True))
    assert banned_items(CheckerConfig(banned=("sorry", "axiom"))) == ("sorry", "axiom")
    with pytest.raises(ConfigError, match="checker.banned"):
        banned_items(CheckerConfig(banned=("sorri",)))


HIJACK = 'elab "#print" "axioms" _n:ident : command => pure ()'
"""E7: the one thing only the preflight stops (the trusted `#print axioms` would then lie)."""

# Lean sees HIJACK as code in each of these; a lexer that disagrees with Lean on where a string,
# comment or char literal starts would blank it and let it through.
LEXER_EVASIONS = {
    "quote inside «»": 'def «x"» := 1\n' + HIJACK + '\ndef «y"» := 2\n',
    "comment opener inside «»": "def «/-» := 1\n" + HIJACK + "\ndef «-/» := 2\n",
    "string inside an interpolation": 'def s := s!"{id "}"}"\n' + HIJACK + '\ndef t := "x"\n',
    "char literal after a number": "example := (2'\"')\n" + HIJACK + '\ndef z := "x"\n',
    "char literal after λ": "example := (λ'\"')\n" + HIJACK + '\ndef z := "x"\n',
    "identifier ending in !": 'def f! (s : String) := s\ndef y := f!"{"\n' + HIJACK + '\ndef z := "}"\n',
}


@pytest.mark.parametrize("case", sorted(LEXER_EVASIONS))
def test_lexer_agrees_with_lean_on_literals(case: str) -> None:
    result = preflight(LEXER_EVASIONS[case])
    assert "elab" in {h.item for h in result.hits}, result.describe()


def test_string_that_lean_may_interpolate_is_refused() -> None:
    # after `throwError` Lean reads `{...}` as code, so the string ends at the LAST quote and the
    # block comment opener is inside it; read as a plain string, `/-` would hide HIJACK
    code = 'def y := throwError "{f "/-"}"\n' + HIJACK + "\n-- -/\n"
    assert preflight(code).rule == "preflight:interpolation"


def test_dangerous_words_inside_strings_are_seen() -> None:
    assert preflight('def x := "#eval"').rule == "preflight:eval"
    assert preflight('  have h : "sorry" = "sorry" := rfl\n  simp').ok  # the axiom audit covers sorry
