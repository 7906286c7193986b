"""The planner as a `Strategy`: `eval.passes` episodes per problem (`prover.planner.episode`).

Episodes are the problem's top-level attempts: pass@k, early stop and resume count them. They run
`planner.parallel_episodes` at a time (one by one by default, so a later episode starts from the
proof cache an earlier one filled). A resumed problem runs only the episodes without a recorded
verdict, each from its recorded steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from prover.config import ProverConfig
from prover.planner.dispatch import SubgoalDispatcher, run_together
from prover.planner.episode import Episode
from prover.planner.records import EpisodeLog
from prover.planner.settings import SPEC
from prover.search.base import DoneAttempts, RecordAttempt, Strategy, StrategyContext
from prover.search.whole_proof import SPEC as WHOLE_PROOF_SPEC
from prover.search.whole_proof import WholeProofStrategy
from prover.types import Attempt, Problem

__all__ = ["PlannerStrategy"]


class PlannerStrategy(Strategy):
    """Decompose, prove the holes in parallel through the proof cache, stitch, re-plan."""

    def __init__(self) -> None:
        self._dispatcher = SubgoalDispatcher()

    def validate(self, config: ProverConfig) -> None:
        settings = config.section(SPEC)
        if settings.subgoal_strategy == WHOLE_PROOF_SPEC.name:
            WholeProofStrategy().validate(config)  # the sub-prover's prompt format can do its rounds

    def is_complete(self, problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
        if config.section(SPEC).early_stop and DoneAttempts.of(done).proved:
            return True
        return all((0, episode) in done for episode in range(config.eval.passes))

    def checks_per_batch(self, config: ProverConfig) -> int:
        """The holes of one sketch are checked at about the same time."""
        return config.section(SPEC).parallel_subgoals

    async def prove(
        self,
        problem: Problem,
        ctx: StrategyContext,
        record: RecordAttempt,
        done: Mapping[tuple[int, int], Attempt] | None = None,
    ) -> None:
        done = DoneAttempts.of(done)
        settings = ctx.config.section(SPEC)
        if self.is_complete(problem, ctx.config, done):
            return
        proved = asyncio.Event()
        if done.proved:
            proved.set()
        limit = asyncio.Semaphore(settings.parallel_episodes)

        async def episode(index: int) -> None:
            async with limit:
                if settings.early_stop and proved.is_set():
                    return
                log = EpisodeLog(problem, index, SPEC.name, done.nested(parent=index), record)
                attempt = await Episode(self, problem, ctx, index, log, self._dispatcher).run()
                await record(attempt)
                if attempt.verdict.proved:
                    proved.set()

        await run_together(episode(i) for i in range(ctx.budget.passes) if (0, i) not in done)
