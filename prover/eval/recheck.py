"""Errors are not failures: attempts that ended in an infrastructure error are re-checked or redone.

An attempt whose verdict is ERROR (a crash, an out-of-memory kill, a lost worker, after the
checker's own retries) says nothing about its proof, so a resumed run does not count it as a
failed sample. Before a strategy resumes a problem, `prove_problem`:

- re-checks every top-level error attempt that has a proof on disk with the run's checker (no new
  sampling; identical proofs of the problem share one check) and records it again at the next
  `Attempt.revision`, so the new verdict supersedes the error in every reader of the run;
- hides from the strategy every top-level error attempt without a proof (a search that failed
  before it found one, e.g. Lean died under it), so the strategy runs that sample again; what it
  records for that slot, and for attempts nested under it, gets the next revision.

`eval.retry_errors = False` (`--no-retry-errors`) leaves error attempts as they are; the report
then marks pass@k as a lower bound. Nested error attempts are left alone: they are not samples,
and their proof is not a proof of the problem.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from prover.search.base import DoneAttempts, RecordAttempt, Strategy, StrategyContext
from prover.search.whole_proof import normalise_proof
from prover.types import Attempt, CheckStatus, Problem

__all__ = ["RETRIED_ERROR", "error_attempts", "has_error_attempts", "prove_problem"]

RETRIED_ERROR = "retried_error"
"""`Attempt.extra` key of a record that supersedes an error attempt: the error's verdict rule."""


def error_attempts(done: Mapping[tuple[int, int], Attempt] | None) -> list[Attempt]:
    """Top-level attempts whose verdict is an infrastructure error (the latest revision of each)."""
    return [a for a in DoneAttempts.of(done).values() if a.verdict.status is CheckStatus.ERROR]


def has_error_attempts(done: Mapping[tuple[int, int], Attempt] | None) -> bool:
    return bool(error_attempts(done))


async def prove_problem(
    strategy: Strategy,
    problem: Problem,
    ctx: StrategyContext,
    record: RecordAttempt,
    done: Mapping[tuple[int, int], Attempt] | None = None,
) -> None:
    """`strategy.prove(problem, ...)` after the error attempts of `done` were re-checked or set up
    to be redone (module docstring). Used by the local pipeline and by Ray agents alike."""
    done = DoneAttempts.of(done)
    errors = error_attempts(done) if ctx.config.eval.retry_errors else []
    if not errors:
        await strategy.prove(problem, ctx, record, done)
        return
    rechecked = await _recheck(problem, ctx, record, [a for a in errors if a.proof is not None])
    hidden = {a.slot: a for a in errors if a.proof is None}
    redone = {a.sample_index for a in hidden.values()}
    hidden.update({a.slot: a for a in done.nested() if a.parent in redone})
    kept = [rechecked.get(a.slot, a) for a in [*done.values(), *done.nested()] if a.slot not in hidden]

    async def record_redone(attempt: Attempt) -> None:
        previous = hidden.get(attempt.slot)
        if previous is not None:
            attempt = _superseding(attempt, previous)
        await record(attempt)

    await strategy.prove(problem, ctx, record_redone if hidden else record, DoneAttempts(kept))


async def _recheck(
    problem: Problem, ctx: StrategyContext, record: RecordAttempt, attempts: list[Attempt]
) -> dict[tuple[str, int | None, int, int], Attempt]:
    """Check each distinct proof once more and record every attempt that had it again."""
    by_proof: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_proof.setdefault(normalise_proof(attempt.proof or ""), []).append(attempt)

    async def one(group: list[Attempt]) -> list[Attempt]:
        started = time.perf_counter()
        verdict = await ctx.checker.check(problem, group[0].proof or "")
        seconds = time.perf_counter() - started
        updated = [
            _superseding(a, a, verdict=verdict, check_seconds=seconds if i == 0 else 0.0)
            for i, a in enumerate(group)
        ]
        for attempt in updated:
            await record(attempt)
        return updated

    tasks = [asyncio.ensure_future(one(group)) for group in by_proof.values()]
    try:
        groups = await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # the first failure stops the other checks
            task.cancel()
    return {a.slot: a for group in groups for a in group}


def _superseding(attempt: Attempt, previous: Attempt, **changes: object) -> Attempt:
    """`attempt` (with `changes`) as the next revision of `previous`'s slot."""
    extra = {**attempt.extra, RETRIED_ERROR: previous.verdict.rule}
    return attempt.model_copy(update={**changes, "revision": previous.revision + 1, "extra": extra})
