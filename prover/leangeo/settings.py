"""LeanGeo (project-numina/LeanGeo): workspace pins, prompt additions and checker settings.

Facts from `../shared/reference/leangeo.md` (LeanGeo @ 9212b89e). LeanGeo-Bench problems import
`SystemE` and `LeanGeo`, so they can only be checked in a Lake project that requires LeanGeo on
Lean v4.15.0, with the SMT solvers (cvc5, z3, smt-portfolio) on PATH; `prover setup lean
--project leangeo` builds it from the pins below.
The checker settings reach runs through the benchmark registry (`leangeo` spec).
"""

from __future__ import annotations

LEAN_TOOLCHAIN = "leanprover/lean4:v4.15.0"
MATHLIB_REV = "9837ca9d65d9de6fad1ef4381750ca688774e608"
LEANGEO_GIT = "https://github.com/project-numina/LeanGeo"
LEANGEO_REV = "9212b89ef0cb08adb049b32f6332a1f2b9e551ab"
LEANGEO_PACKAGE = "lib"
"""LeanGeo's lakefile names its package `lib` (libraries SystemE, LeanGeo, Book)."""
LEAN_SMT_GIT = "https://github.com/ufmg-smite/lean-smt"
LEAN_SMT_REV = "9b81e91cc9ea3833203317a7f425267112083672"

HEADER = "import Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\n"
"""The header of almost every LeanGeo-Bench problem."""

EXTRA_AXIOMS: tuple[str, ...] = ("SMT_VERIF", "Smt.SMT_VERIF")
"""The unsound axiom through which `euclid_*` tactics admit SMT results. The source declares it
inside `namespace Smt`, so `#print axioms` may show either spelling."""

SYSTEM_PROMPT = "You are an expert in mathematics and proving theorems in Lean 4."
"""System prompt of the authors' eval config (`eval_config/geometry_template.json5`)."""

PROMPT_ADDITION = (
    "The theorem uses the LeanGeo library (Lean 4 v4.15.0, Mathlib, SystemE): points, lines and "
    "circles (`Point`, `Line`, `Circle`), lengths `|(A─B)|`, angles `∠ A:B:C` measured in right "
    "angles `∟`, triangle areas `(△A:B:C).area`, and predicates such as `Triangle`, `Coll`, "
    "`Cyclic`, `MidPoint`, `Foot`, `Circumcentre`. Besides ordinary Lean tactics you can use "
    "`euclid_intros`, `euclid_apply <rule> <args> as X`, `euclid_assert P` and `euclid_finish` "
    "(SMT-backed). Answer with a complete Lean file that starts with\n"
    "```lean\nimport Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\ntheorem ...\n```"
)
"""Short stand-in for the authors' ~87 kB prompt (DSL description, library theorem list,
few-shot examples), which is not shipped here."""
