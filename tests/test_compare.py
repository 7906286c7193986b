"""`prover compare`: side-by-side pass@k, deltas with paired bootstrap intervals, problems only one
run solved, per-category deltas; hand-computed on small runs (tests/eval_helpers.py problems:
p0 and p2 are category `even`, p1 is `odd`).

Run A (4 samples): p0 proved by samples 0,1 (c=2), p1 none, p2 all four (c=4)
Run B (4 samples): p0 by sample 3 (c=1), p1 by sample 0 (c=1), p2 none
pass@k = mean of 1 - C(4-c, k)/C(4, k):
    A: pass@1 = (2/4 + 0 + 1)/3 = 1/2    pass@2 = (5/6 + 0 + 1)/3 = 11/18    pass@4 = 2/3
    B: pass@1 = (1/4 + 1/4 + 0)/3 = 1/6  pass@2 = (1/2 + 1/2 + 0)/3 = 1/3    pass@4 = 2/3
    Δ (B - A): -1/3, -5/18, 0.  Only A solved p2, only B solved p1.
    per category at pass@4: even A 1.0, B 0.5 (Δ -0.5); odd A 0.0, B 1.0 (Δ +1.0)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import attempt, make_run

from prover.cli import main
from prover.errors import RunError
from prover.eval.compare import COMPARE_MD, COMPARE_PNG, compare_runs


def run_a(root: Path, **info: object) -> Path:
    attempts = [attempt("p0", i, proved=i < 2) for i in range(4)]
    attempts += [attempt("p1", i) for i in range(4)] + [attempt("p2", i, proved=True) for i in range(4)]
    return make_run(root / "A", attempts, **info)


def run_b(root: Path, name: str = "B", **info: object) -> Path:
    attempts = [attempt("p0", i, proved=i == 3) for i in range(4)]
    attempts += [attempt("p1", i, proved=i == 0) for i in range(4)] + [attempt("p2", i) for i in range(4)]
    return make_run(root / name, attempts, **{"sampler.model": "other/model", **info})


def test_compare_two_runs_matches_the_hand_computed_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = run_a(tmp_path), run_b(tmp_path)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--out", str(out), "--bootstrap", "2000"]) == 0
    printed = capsys.readouterr().out
    assert "B vs A: pass@4 +0.0 pp" in printed and "on 3 problems" in printed

    comparison = compare_runs([a, b], bootstrap=2000)
    first, second = comparison.runs
    assert first.pass_at_k == pytest.approx({"1": 1 / 2, "2": 11 / 18, "4": 2 / 3})
    assert second.pass_at_k == pytest.approx({"1": 1 / 6, "2": 1 / 3, "4": 2 / 3})
    assert (first.model, second.model) == ("test/model", "other/model")
    deltas = {d.k: d for d in comparison.deltas["B"]}
    assert {k: d.delta for k, d in deltas.items()} == pytest.approx({1: -1 / 3, 2: -5 / 18, 4: 0.0})
    # per-problem pass@1 differences are -1/4, +1/4, -1: every resample mean lies between them
    assert -1.0 <= deltas[1].low <= deltas[1].delta <= deltas[1].high <= 0.25
    assert deltas[4].verdict == "no clear difference"
    assert comparison.only_solved == {"A": ["p2"], "B": ["p1"]}
    assert [(c.category, c.problems, c.pass_at_k) for c in comparison.categories] == [
        ("even", 2, [1.0, 0.5]), ("odd", 1, [0.0, 1.0])
    ]

    markdown = (out / COMPARE_MD).read_text()
    assert "| 1 | 50.0% | 16.7% | -33.3 pp [" in markdown
    assert "| 2 | 61.1% | 33.3% | -27.8 pp [" in markdown
    assert "- B vs A at pass@1: -33.3 pp [" in markdown and "- B vs A at pass@4: +0.0 pp [" in markdown
    assert "- A (1): p2" in markdown and "- B (1): p1" in markdown
    assert "| even | 2 | 100.0% | 50.0% | -50.0 pp |" in markdown
    assert "| odd | 1 | 0.0% | 100.0% | +100.0 pp |" in markdown
    assert (out / COMPARE_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_interval_is_paired_seeded_and_excludes_zero_for_a_uniform_gain(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", [attempt(p, i) for p in ("p0", "p1", "p2") for i in range(4)])
    better = make_run(tmp_path / "better", [attempt(p, i, proved=True) for p in ("p0", "p1", "p2") for i in range(4)])
    top = compare_runs([base, better], bootstrap=500).deltas["better"][-1]
    assert (top.delta, top.low, top.high, top.verdict) == (1.0, 1.0, 1.0, "better")
    a, b = run_a(tmp_path), run_b(tmp_path)
    once = compare_runs([a, b], bootstrap=500, seed=7).deltas
    assert compare_runs([a, b], bootstrap=500, seed=7).deltas == once
    assert compare_runs([b, a], bootstrap=500, seed=7).deltas["A"][0].delta == pytest.approx(1 / 3)


def test_runs_with_other_budgets_and_problem_sets_are_compared_where_they_overlap(tmp_path: Path) -> None:
    a = run_a(tmp_path)
    short = make_run(
        tmp_path / "short", [attempt("p0", i, proved=True) for i in range(2)] + [attempt("p1", i) for i in range(2)],
        passes=2, n=2,
    )
    comparison = compare_runs([a, short], bootstrap=200)
    assert comparison.problems == ["p0", "p1"] and comparison.common_k == 2 and comparison.ks == [1, 2, 4]
    assert comparison.runs[1].pass_at_k["4"] is None
    assert [d.k for d in comparison.deltas["short"]] == [1, 2]
    # A on p0, p1: pass@1 = (1/2 + 0)/2; short: (1 + 0)/2
    assert comparison.runs[0].pass_at_k["1"] == pytest.approx(0.25)
    assert comparison.deltas["short"][0].delta == pytest.approx(0.25)


def test_three_runs_compare_against_the_first(tmp_path: Path) -> None:
    a, b = run_a(tmp_path), run_b(tmp_path)
    c = make_run(tmp_path / "C", [attempt(p, i, proved=p == "p2") for p in ("p0", "p1", "p2") for i in range(4)])
    comparison = compare_runs([a, b, c], bootstrap=200)
    assert set(comparison.deltas) == {"B", "C"}
    assert comparison.only_solved == {"A": [], "B": ["p1"], "C": []}  # p2 is solved by A and C


def test_runs_of_different_benchmarks_or_splits_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_a(tmp_path)
    other = run_b(tmp_path, "P", **{"eval.benchmark": "proofnet"})
    assert main(["compare", str(a), str(other), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert "cannot compare runs of different benchmarks" in err and "ran minif2f" in err and "ran proofnet" in err
    assert not (tmp_path / "cmp").exists()
    valid = run_b(tmp_path, "V", **{"eval.split": "valid"})
    with pytest.raises(RunError, match="split default.*split valid"):
        compare_runs([a, valid])


def test_bad_run_lists_say_what_is_wrong(tmp_path: Path) -> None:
    a = run_a(tmp_path)
    with pytest.raises(RunError, match="at least two run directories"):
        compare_runs([a])
    with pytest.raises(RunError, match="is not a run directory"):
        (tmp_path / "empty").mkdir()
        compare_runs([a, tmp_path / "empty"])
    disjoint = make_run(tmp_path / "D", [attempt("q", 0)], n=0)
    with pytest.raises(RunError, match="share no problem"):
        compare_runs([a, disjoint])
