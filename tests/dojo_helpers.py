"""A small traced Lean repository for the LeanDojo tests: source files on disk and the theorems
LeanDojo Benchmark 4 would list for them (positions computed from the text: 1-based line,
1-based column, end exclusive, as LeanDojo's `Pos` and `LeanFile[start:end]` use them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

URL = "https://github.com/example/MyProj"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

BASIC = """import Mathlib.Tactic

open Nat

namespace MyProj

/-- Adding zero changes nothing. -/
@[simp]
theorem add_zero' (n : ℕ) : n + 0 = n := by
  simp

theorem two_eq : let x := 2; x = 1 + 1 := by
  intro x
  rfl

-- theorem fake : False := sorry   (a comment, not a declaration)
private lemma helper (a b : ℕ) (h : a = b) : b = a := h.symm

theorem open_goal (n : ℕ) : n * 1 = n := by sorry

theorem by_cases_eq : ∀ n : ℕ, n = n
  | 0 => rfl
  | n + 1 => rfl

end MyProj
"""

DEP = """namespace Dep

theorem dep_refl (a : Nat) : a = a := rfl

end Dep
"""

FILES = {"MyProj/Basic.lean": BASIC, ".lake/packages/dep/Dep.lean": DEP}


def position(text: str, offset: int) -> list[int]:
    line = text.count("\n", 0, offset) + 1
    return [line, offset - (text.rfind("\n", 0, offset) + 1) + 1]


def tactic(text: str, before: str, after: str) -> dict[str, Any]:
    return {"tactic": text, "annotated_tactic": [text, []], "state_before": before, "state_after": after}


# (file, full name, where the node starts, the text its end follows, traced tactics)
THEOREMS: list[tuple[str, str, str, str, list[dict[str, Any]]]] = [
    ("MyProj/Basic.lean", "MyProj.add_zero'", "theorem add_zero'", "  simp", [
        tactic("simp", "n : ℕ\n⊢ n + 0 = n", "no goals"),
    ]),
    ("MyProj/Basic.lean", "MyProj.two_eq", "theorem two_eq", "  rfl", [
        tactic("intro x", "⊢ let x := 2;\n  x = 1 + 1", "x : ℕ := 2\n⊢ x = 1 + 1"),
        tactic("rfl", "x : ℕ := 2\n⊢ x = 1 + 1", "no goals"),
    ]),
    ("MyProj/Basic.lean", "MyProj.helper", "private lemma helper", "h.symm", []),
    ("MyProj/Basic.lean", "MyProj.open_goal", "theorem open_goal", "by sorry", [
        tactic("sorry", "n : ℕ\n⊢ n * 1 = n", "no goals"),
    ]),
    ("MyProj/Basic.lean", "MyProj.by_cases_eq", "theorem by_cases_eq", "| n + 1 => rfl", []),
    (".lake/packages/dep/Dep.lean", "Dep.dep_refl", "theorem dep_refl", ":= rfl", []),
]


def write_sources(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "lean-toolchain").write_text("leanprover/lean4:v4.9.0\n", encoding="utf-8")
    return root


def entries(url: str = URL, commit: str = COMMIT) -> list[dict[str, Any]]:
    out = []
    for rel, full_name, start_text, end_text, tactics in THEOREMS:
        text = FILES[rel]
        start = text.index(start_text)
        end = text.index(end_text, start) + len(end_text)
        out.append(
            {
                "url": url, "commit": commit, "file_path": rel, "full_name": full_name,
                "start": position(text, start), "end": position(text, end), "traced_tactics": [dict(t) for t in tactics],
            }
        )
    return out


def write_split(path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries() if rows is None else rows, ensure_ascii=False), encoding="utf-8")
    return path
