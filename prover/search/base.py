"""What a proving strategy is, independent of where it runs.

A strategy turns one `Problem` into `Attempt`s using the services in a `StrategyContext`. It never
knows whether those services are in-process objects or Ray actor proxies: the context holds
anything that implements `Sampler`, `CheckerLike`, and (for step-level search) a `LeanPool` and a
`ProofCache`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prover.config import ProverConfig
from prover.llm.base import Sampler
from prover.types import Attempt, Problem, Verdict

DoneAttempts = Mapping[tuple[int, int], Attempt]
"""Attempts of one problem already recorded, keyed by `(round, sample_index)`."""

RecordAttempt = Callable[[Attempt], Awaitable[None]]
"""Called once per finished attempt; the results store appends it to attempts.jsonl."""


class CheckerLike(Protocol):
    """Anything that checks a proof with the full soundness pipeline."""

    async def check(self, problem: Problem, proof: str) -> Verdict: ...


@dataclass
class StrategyContext:
    """The services a strategy may use; built once per run (or per Ray agent)."""

    config: ProverConfig
    sampler: Sampler
    checker: CheckerLike
    pool: Any | None = None
    """A `prover.lean_env.pool.LeanPool` (or a proxy with the same API), for tactic-level search."""
    proof_cache: Any | None = None
    """A `prover.search.proof_cache.ProofCache`, shared across attempts and problems."""


class Strategy(ABC):
    """Proves one problem, recording every attempt as it finishes."""

    name: str = "abstract"

    @abstractmethod
    async def prove(
        self,
        problem: Problem,
        ctx: StrategyContext,
        record: RecordAttempt,
        done: DoneAttempts | None = None,
    ) -> None:
        """Run the strategy's budget for `problem`.

        Args:
            problem: the theorem to prove.
            ctx: services to use.
            record: awaited once for every newly finished attempt.
            done: attempts already recorded by an earlier, interrupted run, keyed by
                `(round, sample_index)`; they must not be redone or recorded again, but their
                verdicts count (for early stop and self-correction chains).
        """

    def is_complete(self, problem: Problem, config: ProverConfig, done: DoneAttempts) -> bool:
        """Whether `prove(problem, ..., done=done)` would record nothing new.

        The pipeline skips complete problems without starting any service, so re-running a
        finished run is instant. The default never claims completeness (the problem is redone and
        `prove` skips what `done` holds).
        """
        return False
