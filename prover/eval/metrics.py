"""pass@k and run totals from recorded attempts.

A sample is a chain: every round of one `sample_index` (the first try plus its self-corrections).
It succeeds if any of its rounds proved the problem. For a problem with n chains of which c
succeeded, pass@k is Chen et al.'s unbiased estimator 1 - C(n-c, k) / C(n, k), averaged over
problems; `any_at_k` counts problems proved by one of the first k chains (sample_index < k).

Problems with fewer than k chains (an early-stopped or unfinished run) count 1 if they have a
success and 0 otherwise: the estimator is undefined there and this is the any-of-n reading.
Problems with no attempts at all count as unsolved.

Attempts whose verdict is an infrastructure error (crash, out of memory, lost worker) are not
failed samples, but until a resume re-checks them they cannot count as successes either: pass@k
over a run with such attempts left is a lower bound (`Summary.pass_at_k_is_lower_bound`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from prover.types import Attempt, CheckStatus


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c successes: 1 - prod_{i=n-c+1..n} (1 - k/i).

    The product form avoids huge binomials. Requires 0 <= c <= n and k >= 1; for k > n it
    returns 1.0 if c > 0 else 0.0 (see module docstring).
    """
    if n < 0 or c < 0 or c > n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if c == 0:
        return 0.0
    if k > n or n - c < k:
        return 1.0
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def k_values(budget: int) -> list[int]:
    """Every power of two up to `budget`, plus `budget` itself if it is not a power of two."""
    if budget < 1:
        return []
    ks = []
    k = 1
    while k <= budget:
        ks.append(k)
        k *= 2
    if ks[-1] != budget:
        ks.append(budget)
    return ks


@dataclass
class ProblemOutcome:
    """Per-problem view of the attempts: which chains exist and which succeeded."""

    name: str
    category: str | None = None
    chains: set[int] = field(default_factory=set)
    proved_chains: set[int] = field(default_factory=set)
    proving: Attempt | None = None
    """The first proving attempt (lowest sample index, then round)."""

    @property
    def n(self) -> int:
        return len(self.chains)

    @property
    def c(self) -> int:
        return len(self.proved_chains)

    @property
    def solved(self) -> bool:
        return bool(self.proved_chains)

    def any_within(self, k: int) -> bool:
        return any(index < k for index in self.proved_chains)


class CategorySummary(BaseModel):
    problems: int
    solved: int
    pass_at_k: dict[str, float]
    any_at_k: dict[str, int]


class Summary(BaseModel):
    """What `summary.json` holds."""

    benchmark: str = ""
    model: str = ""
    strategy: str = ""
    budget: int
    problems: int
    solved: int
    pass_at_k: dict[str, float]
    """k (as a string) -> unbiased estimate averaged over problems, in [0, 1]."""
    any_at_k: dict[str, int]
    """k -> number of problems proved by one of the first k samples."""
    per_category: dict[str, CategorySummary] = Field(default_factory=dict)
    solved_names: list[str] = Field(default_factory=list)
    attempted_problems: int = 0
    attempts: int = 0
    checks: int = 0
    """Attempts whose proof went to the checker (not deduplicated, not a cache hit)."""
    dedupe_saved: int = 0
    """Attempts answered by an identical earlier proof instead of a new check."""
    cache_hits: int = 0
    extraction_failures: int = 0
    tokens: dict[str, int] = Field(default_factory=lambda: {"prompt": 0, "completion": 0})
    lean_seconds: float = 0.0
    """Sum of Lean time reported by the checker over checked attempts."""
    check_seconds: float = 0.0
    gen_seconds: float = 0.0
    wall_seconds: float = 0.0
    verdicts: dict[str, int] = Field(default_factory=dict)
    """Verdict rule -> count (accepted, lean_error, timeout, ...)."""
    nested: dict[str, int] = Field(default_factory=dict)
    """Attempts that serve a top-level one, per kind (sketch, subgoal, ...); not in pass@k."""
    nested_proved: dict[str, int] = Field(default_factory=dict)
    """Of those, the ones whose verdict is proved, per kind."""
    tallies: dict[str, int] = Field(default_factory=dict)
    """Counts a strategy keeps per top-level attempt (`Attempt.extra["tallies"]`, e.g. a planner's
    sketches tried and subgoals proven), summed over the run."""
    peaks: dict[str, int] = Field(default_factory=dict)
    """Figures a strategy keeps per top-level attempt (`Attempt.extra["peaks"]`, e.g. the depth a
    planner reached), their maximum over the run."""
    errors: int = 0
    """Top-level attempts whose verdict is an infrastructure error (crash, out of memory, lost
    worker): not failed samples; `prover eval --resume` re-checks them."""
    pass_at_k_is_lower_bound: bool = False
    """True while `errors` > 0: those attempts count as unsolved, so the true pass@k may be higher."""
    errors_retried: int = 0
    """Top-level attempts recorded again after an error (re-checked or redone on resume)."""
    check_retries: int = 0
    """Extra checker runs after crashes, OOM kills and infrastructure failures (sum of tries - 1)."""


def outcomes(
    attempts: Iterable[Attempt],
    problems: Sequence[str] = (),
    categories: dict[str, str | None] | None = None,
) -> dict[str, ProblemOutcome]:
    """Group top-level attempts per problem; `problems` adds problems that have no attempts.
    Nested attempts (`parent` set) serve a top-level one and are not samples of their own."""
    categories = categories or {}
    result: dict[str, ProblemOutcome] = {
        name: ProblemOutcome(name=name, category=categories.get(name)) for name in problems
    }
    top_level = (a for a in attempts if a.parent is None)
    for attempt in sorted(top_level, key=lambda a: (a.sample_index, a.round)):
        outcome = result.setdefault(
            attempt.problem, ProblemOutcome(name=attempt.problem, category=categories.get(attempt.problem))
        )
        outcome.chains.add(attempt.sample_index)
        if attempt.verdict.proved:
            outcome.proved_chains.add(attempt.sample_index)
            if outcome.proving is None:
                outcome.proving = attempt
    return result


def _rates(group: Sequence[ProblemOutcome], ks: Sequence[int]) -> tuple[dict[str, float], dict[str, int]]:
    total = len(group)
    pass_k = {}
    any_k = {}
    for k in ks:
        estimate = sum(pass_at_k(o.n, o.c, k) for o in group if o.n)
        pass_k[str(k)] = estimate / total if total else 0.0
        any_k[str(k)] = sum(1 for o in group if o.any_within(k))
    return pass_k, any_k


def summarize(
    attempts: Sequence[Attempt],
    *,
    problems: Sequence[str] = (),
    categories: dict[str, str | None] | None = None,
    budget: int | None = None,
    wall_seconds: float = 0.0,
    benchmark: str = "",
    model: str = "",
    strategy: str = "",
) -> Summary:
    """Every number of the report from the attempts of one run (totals over top-level attempts;
    nested ones are counted per kind)."""
    nested = [a for a in attempts if a.parent is not None]
    attempts = [a for a in attempts if a.parent is None]
    per_problem = outcomes(attempts, problems, categories)
    group = list(per_problem.values())
    budget = budget or max((o.n for o in group), default=0) or 1
    ks = k_values(budget)
    pass_k, any_k = _rates(group, ks)
    by_category: dict[str, list[ProblemOutcome]] = {}
    for outcome in group:
        if outcome.category:
            by_category.setdefault(outcome.category, []).append(outcome)
    per_category = {}
    for category in sorted(by_category):
        members = by_category[category]
        cat_pass, cat_any = _rates(members, ks)
        per_category[category] = CategorySummary(
            problems=len(members), solved=sum(o.solved for o in members), pass_at_k=cat_pass, any_at_k=cat_any
        )
    checked = [a for a in attempts if a.proof is not None and a.duplicate_of is None and not a.verdict.cached]
    errors = sum(1 for a in attempts if a.verdict.status is CheckStatus.ERROR)
    return Summary(
        benchmark=benchmark,
        model=model,
        strategy=strategy,
        budget=budget,
        problems=len(group),
        solved=sum(o.solved for o in group),
        pass_at_k=pass_k,
        any_at_k=any_k,
        per_category=per_category,
        solved_names=sorted(o.name for o in group if o.solved),
        attempted_problems=sum(1 for o in group if o.n),
        attempts=len(attempts),
        checks=len(checked),
        dedupe_saved=sum(1 for a in attempts if a.duplicate_of is not None),
        cache_hits=sum(1 for a in attempts if a.duplicate_of is None and a.verdict.cached),
        extraction_failures=sum(1 for a in attempts if a.proof is None),
        tokens={
            "prompt": sum(a.prompt_tokens for a in attempts),
            "completion": sum(a.completion_tokens for a in attempts),
        },
        lean_seconds=round(sum(a.verdict.lean_seconds for a in checked), 3),
        check_seconds=round(sum(a.check_seconds for a in checked), 3),
        gen_seconds=round(sum(a.gen_seconds for a in attempts), 3),
        wall_seconds=round(wall_seconds, 3),
        verdicts=dict(Counter(a.verdict.rule for a in attempts).most_common()),
        nested=dict(sorted(Counter(a.kind for a in nested).items())),
        nested_proved=dict(sorted(Counter(a.kind for a in nested if a.verdict.proved).items())),
        tallies=_extra_figures(attempts, "tallies", sum),
        peaks=_extra_figures(attempts, "peaks", max),
        errors=errors,
        pass_at_k_is_lower_bound=errors > 0,
        errors_retried=sum(1 for a in attempts if a.revision > 0),
        check_retries=sum(a.verdict.tries - 1 for a in checked),
    )


def _extra_figures(attempts: Sequence[Attempt], key: str, combine: Callable[[list[int]], int]) -> dict[str, int]:
    """`combine` of each integer figure of `extra[key]` over the attempts (first-seen order)."""
    values: dict[str, list[int]] = {}
    for attempt in attempts:
        figures = attempt.extra.get(key)
        if isinstance(figures, dict):
            for name, value in figures.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    values.setdefault(str(name), []).append(value)
    return {name: combine(found) for name, found in values.items()}
