"""`examples/leangeo.py` end to end: LeanGeo problems built in code, a scripted sampler, the
simulated REPL (tests/data/leangeo/scenario.yaml); SMT_VERIF proofs count, sorry proofs do not.

Per problem, with --pass 2 (hand-computed):
    midpoint_halves    full-file answer with LeanGeo imports (proved), wrong tactic   c = 1
    iso_base_angles    sorry (rejected), euclid_apply proof (proved)                  c = 1
    midline_half_base  two failing proofs                                             c = 0
pass@1 = (1/2 + 1/2 + 0) / 3 = 1/3, pass@2 = 2/3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "leangeo.py"
SCENARIO = Path(__file__).resolve().parent / "data" / "leangeo" / "scenario.yaml"
HEADER = "import Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\n"


def block(code: str) -> str:
    return f"Here is the proof.\n```lean4\n{code}\n```"


def script(path: Path) -> Path:
    midpoint = "theorem midpoint_halves : ∀ (A B M : Point), MidPoint A M B → |(A─M)| = |(M─B)| := by"
    iso = "theorem iso_base_angles : ∀ (A B C : Point), IsoTriangle A B C → ∠ A:B:C = ∠ A:C:B := by"
    midline = (
        "theorem midline_half_base : ∀ (A B C D E : Point),\n"
        "    Triangle A B C ∧ MidPoint A D B ∧ MidPoint A E C → |(B─C)| = 2 * |(D─E)| := by"
    )
    lines = [
        {"name": "midpoint_halves", "completions": [
            block(HEADER + midpoint + "\n  euclid_intros\n  euclid_finish\n\nend LeanGeo"),
            block(midpoint + "\n  euclid_intros\n  linarith"),
        ]},
        {"name": "iso_base_angles", "completions": [
            block(iso + "\n  sorry"),
            block(iso + "\n  euclid_intros\n  euclid_apply isoTriangle_eq_angles A B C\n  euclid_finish"),
        ]},
        {"name": "midline_half_base", "completions": [
            block(midline + "\n  euclid_intros\n  euclid_finish"),
            block(midline + "\n  simp"),
        ]},
    ]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = dict(os.environ)
    environ["PROVER_CONFIG_HOME"] = str(tmp_path / "config")
    environ["PROVER_CACHE_DIR"] = str(tmp_path / "cache")
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    return environ


def test_leangeo_example_proves_with_smt_verif_and_prints_the_report(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "run"
    repl = f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {SCENARIO}"
    args = [
        sys.executable, str(EXAMPLE), "--backend", "scripted", "--script", str(script(tmp_path / "gens.jsonl")),
        "--prompt-format", "kimina", "--pass", "2", "--repl-cmd", repl, "--workers", "2", "--out", str(out),
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "**Solved 2 / 3**" in result.stdout
    assert "# leangeo-examples — scripted: gens.jsonl" in result.stdout  # the script, not a default model

    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass_at_k"] == pytest.approx({"1": 1 / 3, "2": 2 / 3})
    assert summary["solved_names"] == ["iso_base_angles", "midpoint_halves"]
    assert {k: v["solved"] for k, v in summary["per_category"].items()} == {"basic": 1, "triangle": 1}
    attempts = {
        (a["problem"], a["sample_index"]): a
        for a in map(json.loads, (out / "attempts.jsonl").read_text().splitlines())
    }
    proved = attempts[("midpoint_halves", 0)]["verdict"]
    assert proved["status"] == "proved" and "SMT_VERIF" in proved["axioms"]
    assert proved["code"].startswith(HEADER)  # the problem's own header, built in code
    assert attempts[("iso_base_angles", 0)]["verdict"]["rule"] == "preflight:sorry"
    assert attempts[("iso_base_angles", 1)]["verdict"]["status"] == "proved"
    assert attempts[("midline_half_base", 0)]["verdict"]["status"] == "failed"
    config = json.loads((out / "run.json").read_text())["config"]
    assert "SMT_VERIF" in config["checker"]["extra_allowed_axioms"]


def test_leangeo_example_reports_a_missing_lean_setup_without_a_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    args = [
        sys.executable, str(EXAMPLE), "--backend", "scripted", "--script", str(script(tmp_path / "gens.jsonl")),
        "--workspace", str(tmp_path / "no-workspace"), "--out", str(tmp_path / "run"),
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "leangeo example: error:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "attempts.jsonl").exists()
