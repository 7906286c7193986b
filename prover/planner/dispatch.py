"""Where subgoal jobs run, and how many at once.

A job runs in this process, or on a prover agent of the Ray cluster when the context has a
`JobRunner` (`ctx.jobs`): the agent running an episode sends every hole of a sketch to the
least-busy agent, and all of them share the proof-cache actor. Two jobs for the same goal state
(one header, one goal text) are not sampled at the same time through one dispatcher: the second
waits for the first and then starts from the proof cache, so a goal shared by two problems in
flight is sampled once (once it is proved, any number of jobs replay it at once).
`run_together` runs coroutines as tasks and re-raises the first failure (not an exception group),
cancelling the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from prover.planner.subgoal import SubgoalJob, SubgoalOutcome
from prover.planner.subprovers import prove_subgoal
from prover.search.base import Strategy, StrategyContext

__all__ = ["SubgoalDispatcher", "run_together"]

T = TypeVar("T")


class SubgoalDispatcher:
    """Runs subgoal jobs for one strategy object (all problems and episodes of a run or agent)."""

    def __init__(self) -> None:
        self._in_flight: dict[str, asyncio.Future[bool]] = {}
        """Goal state -> whether the job running for it proved it (once it is done)."""

    async def run(self, strategy: Strategy, ctx: StrategyContext, job: SubgoalJob) -> SubgoalOutcome:
        key = job.cache_key.digest
        while (running := self._in_flight.get(key)) is not None:
            if await asyncio.shield(running):  # proved: the cache has it, replays need not queue
                return await self._send(strategy, ctx, job)
        finished: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = finished
        proved = False
        try:
            outcome = await self._send(strategy, ctx, job)
            proved = outcome.proved
            return outcome
        finally:
            del self._in_flight[key]
            finished.set_result(proved)

    @staticmethod
    async def _send(strategy: Strategy, ctx: StrategyContext, job: SubgoalJob) -> SubgoalOutcome:
        if ctx.jobs is None:
            return await prove_subgoal(strategy, ctx, job)
        return await ctx.jobs.run(prove_subgoal, job)


async def run_together(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Results in order; the first exception cancels the others and is raised as itself."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        pending = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in finished:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
