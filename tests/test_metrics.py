"""pass@k estimator, k values, chains with rounds, categories, totals."""

from __future__ import annotations

from math import comb

import pytest
from eval_helpers import attempt

from prover.eval.metrics import k_values, pass_at_k, summarize
from prover.types import CheckStatus, Verdict


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),
        (4, 1, 4, 1.0),
        (4, 0, 4, 0.0),
        (4, 2, 1, 0.5),
        (4, 2, 2, 1 - 1 / 6),  # 1 - C(2,2)/C(4,2)
        (4, 3, 2, 1.0),
        (8, 4, 4, 1 - 1 / 70),  # 1 - C(4,4)/C(8,4)
        (1, 1, 1, 1.0),
        (2, 1, 4, 1.0),  # k > n: any-of-n
        (2, 0, 4, 0.0),
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_binomials_and_is_stable() -> None:
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert pass_at_k(8192, 1, 1) == pytest.approx(1 / 8192)
    assert 0.0 < pass_at_k(100_000, 3, 5000) < 1.0


def test_pass_at_k_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 0)


def test_k_values() -> None:
    assert k_values(1) == [1]
    assert k_values(4) == [1, 2, 4]
    assert k_values(32) == [1, 2, 4, 8, 16, 32]
    assert k_values(6) == [1, 2, 4, 6]
    assert k_values(0) == []


def test_summary_n4_c1_and_unattempted_problem_counts() -> None:
    attempts = [attempt("p0", i, proved=(i == 3)) for i in range(4)] + [attempt("p1", i) for i in range(4)]
    summary = summarize(attempts, problems=["p0", "p1", "p2"], budget=4)
    assert summary.problems == 3 and summary.solved == 1 and summary.solved_names == ["p0"]
    assert summary.pass_at_k == pytest.approx({"1": 0.25 / 3, "2": 0.5 / 3, "4": 1 / 3})
    assert summary.any_at_k == {"1": 0, "2": 0, "4": 1}  # proved only by sample 3
    assert summary.attempted_problems == 2 and summary.attempts == 8


def test_chain_succeeds_if_any_round_proves() -> None:
    attempts = [
        attempt("p0", 0), attempt("p0", 0, round_=1), attempt("p0", 0, round_=2, proved=True),
        attempt("p0", 1), attempt("p0", 1, round_=1),
    ]
    summary = summarize(attempts, problems=["p0"], budget=2)
    # two chains (n=2), one succeeded (c=1): rounds do not count as extra samples
    assert summary.pass_at_k == pytest.approx({"1": 0.5, "2": 1.0})
    assert summary.any_at_k == {"1": 1, "2": 1}


def test_per_category_breakdown() -> None:
    attempts = [attempt("a1", 0, proved=True), attempt("a1", 1), attempt("a2", 0), attempt("a2", 1),
                attempt("b1", 0), attempt("b1", 1, proved=True)]
    categories = {"a1": "alg", "a2": "alg", "b1": "nt", "b2": "nt", "x": None}
    summary = summarize(attempts, problems=list(categories), categories=categories, budget=2)
    alg, nt = summary.per_category["alg"], summary.per_category["nt"]
    assert set(summary.per_category) == {"alg", "nt"}
    assert (alg.problems, alg.solved, nt.problems, nt.solved) == (2, 1, 2, 1)
    assert alg.pass_at_k == pytest.approx({"1": 0.25, "2": 0.5})
    assert alg.any_at_k == {"1": 1, "2": 1} and nt.any_at_k == {"1": 0, "2": 1}
    assert summary.problems == 5 and summary.pass_at_k["2"] == pytest.approx(2 / 5)


def test_totals_dedupe_cache_and_extraction() -> None:
    cached = Verdict(status=CheckStatus.FAILED, rule="lean_error", lean_seconds=9.0, cached=True)
    attempts = [
        attempt("p0", 0),                                   # checked: 0.25 s Lean
        attempt("p0", 1, proved=True),                      # checked: 0.5 s Lean
        attempt("p0", 2, duplicate_of=0),                   # deduped
        attempt("p0", 3).model_copy(update={"verdict": cached}),  # cache hit
        attempt("p0", 4).model_copy(update={"proof": None}),      # nothing extracted
    ]
    summary = summarize(attempts, problems=["p0"], budget=8, wall_seconds=12.5)
    assert summary.checks == 2 and summary.dedupe_saved == 1 and summary.cache_hits == 1
    assert summary.extraction_failures == 1
    assert summary.lean_seconds == pytest.approx(0.75) and summary.check_seconds == pytest.approx(1.0)
    assert summary.tokens == {"prompt": 50, "completion": 25}
    assert summary.wall_seconds == 12.5
    assert summary.verdicts == {"lean_error": 4, "accepted": 1}
    assert list(summary.pass_at_k) == ["1", "2", "4", "8"]
    # 5 chains recorded, budget 8: k=8 > n uses any-of-n
    assert summary.pass_at_k["8"] == 1.0 and summary.pass_at_k["1"] == pytest.approx(0.2)


def test_budget_defaults_to_largest_n() -> None:
    summary = summarize([attempt("p0", i) for i in range(3)])
    assert summary.budget == 3 and list(summary.pass_at_k) == ["1", "2", "3"]
    empty = summarize([], problems=["p0"])
    assert empty.problems == 1 and empty.solved == 0 and empty.pass_at_k == {"1": 0.0}


def test_nested_attempts_are_counted_apart_and_never_as_samples() -> None:
    # p0: 2 top-level samples, 1 proved; its sketches and subgoals (one proved) are not samples
    attempts = [
        attempt("p0", 0, proved=False),
        attempt("p0", 1, proved=True),
        attempt("p0", 0, proved=True, kind="subgoal", parent=0),
        attempt("p0", 1, proved=False, kind="subgoal", parent=0),
        attempt("p0", 0, proved=False, kind="sketch", parent=1),
        attempt("p1", 0, proved=True, kind="subgoal", parent=0),  # a proved subgoal proves nothing
        attempt("p1", 0, proved=False),
        attempt("p1", 1, proved=False),
    ]
    summary = summarize(attempts, problems=["p0", "p1"], budget=2)
    assert summary.solved == 1 and summary.solved_names == ["p0"]
    assert summary.pass_at_k == {"1": pytest.approx(0.25), "2": pytest.approx(0.5)}
    assert summary.attempts == 4 and summary.checks == 4
    assert summary.nested == {"sketch": 1, "subgoal": 3} and summary.nested_proved == {"subgoal": 2}
