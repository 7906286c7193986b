"""The overlapped evaluation pipeline: many problems in flight, sampling overlapping checking.

Shape (one asyncio loop, in the spirit of vLLM's async front end):

    problems --> [max_problems_in_flight strategy tasks] --GenRequest--> GatedSampler --> engine
                        |                                                   ^ pauses while
                        +--proof--> GatedChecker --(<= max_checks)--> Lean  | too many checks
                        v                                                   | are pending
                     record(attempt) --> ResultsStore (one fsynced line per attempt)

* Overlap: a strategy task submits its sampling requests and checks each completion as soon as
  its request returns, while other requests (of this and other problems) are still generating.
  The engine therefore keeps generating while Lean checks earlier samples.
* Warm start: the Lean workers the first problems' checks will need are started while their first
  samples generate (`warm_lean`), not after the first sample comes back.
* Bounded memory: at most `max_problems_in_flight` problems are open; new sampling requests wait
  while `max_checks_in_flight` checks are pending, so unchecked proofs cannot pile up without
  bound when Lean is the bottleneck.
* Resume: `done` holds what an earlier run recorded; problems a strategy reports complete are
  skipped before any engine or Lean worker starts, so re-running a finished run is instant.
  Attempts that ended in infrastructure errors are re-checked or redone first (`recheck.py`).
* Shutdown: services (sampler, pool) are closed on success, errors and cancellation (Ctrl-C);
  attempts are recorded as they finish, so an interrupted run loses only what was in flight.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from prover.config import ProverConfig
from prover.eval.recheck import has_error_attempts, prove_problem
from prover.llm.base import Sampler
from prover.search.base import CheckerLike, DoneAttempts, Services, ServicesFactory, Strategy, StrategyContext
from prover.types import Attempt, GenRequest, GenResult, Problem, Verdict

if TYPE_CHECKING:
    from prover.lean_env.checker import SketchCheck

__all__ = [
    "BatchedRecorder",
    "CheckGate",
    "DoneMap",
    "GatedChecker",
    "GatedSampler",
    "PipelineStats",
    "Progress",
    "effective_max_checks",
    "gated_services",
    "pending_problems",
    "run_pipeline",
    "warm_lean",
]

log = logging.getLogger(__name__)

DoneMap = Mapping[str, Mapping[tuple[int, int], Attempt]]
"""problem name -> attempts recorded by an earlier run (`DoneAttempts`, or top-level ones by key)."""


# ---------------------------------------------------------------------------------------------
# Back-pressure between sampling and checking
# ---------------------------------------------------------------------------------------------


def effective_max_checks(config: ProverConfig, strategy: Strategy) -> int:
    """`eval.max_checks_in_flight`, or a default that keeps Lean busy across one generation.

    Default: max(4 x workers, problems in flight x the strategy's checks per batch). The second
    term lets every open problem have one batch queued for checking while its next one
    generates, which is what keeps the workers saturated when a generation takes longer than a
    check; it is a few hundred short strings at most.
    """
    if config.eval.max_checks_in_flight is not None:
        return config.eval.max_checks_in_flight
    return max(4 * config.lean.workers, config.eval.max_problems_in_flight * strategy.checks_per_batch(config))


class CheckGate:
    """Counts checks that are queued or running; sampling waits while there are `limit` or more."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.pending = 0
        self._changed = asyncio.Condition()
        self.running = asyncio.Semaphore(self.limit)
        self.sampling = asyncio.Event()
        """Set once the first sampling request is in flight."""

    async def wait_for_room(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.pending < self.limit)

    def enter(self) -> None:
        self.pending += 1

    async def leave(self) -> None:
        self.pending -= 1
        async with self._changed:
            self._changed.notify_all()


@dataclass
class PipelineStats:
    """Counters behind the progress line and the run's timing figures."""

    problems_total: int = 0
    problems_done: int = 0
    solved: int = 0
    samples: int = 0
    checks: int = 0
    """Proofs actually sent to the checker (duplicates and extraction failures excluded)."""
    requests: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def start(self, problems: Sequence[Problem], todo: Sequence[Problem], done: DoneMap) -> None:
        """Count the problems an earlier run already finished as done (and solved if proved)."""
        todo_names = {p.name for p in todo}
        finished = [p for p in problems if p.name not in todo_names]
        self.problems_total = len(problems)
        self.problems_done = len(finished)
        self.solved = sum(1 for p in finished if DoneAttempts.of(done.get(p.name)).proved)


class GatedSampler(Sampler):
    """The run's sampler, pausing new requests while too many checks are pending."""

    def __init__(self, inner: Sampler, gate: CheckGate, stats: PipelineStats) -> None:
        super().__init__()
        self.inner = inner
        self.gate = gate
        self.run_stats = stats
        self.stats = inner.stats
        self.backend = inner.backend

    async def generate(self, request: GenRequest) -> GenResult:
        await self.gate.wait_for_room()
        self.gate.sampling.set()
        result = await self.inner.generate(request)
        self.run_stats.requests += 1
        return result

    def describe(self) -> dict[str, object]:
        return self.inner.describe()


class GatedChecker:
    """The run's checker: at most `gate.limit` checks reach Lean at once; counts pending ones."""

    def __init__(self, inner: CheckerLike, gate: CheckGate, stats: PipelineStats) -> None:
        self.inner = inner
        self.gate = gate
        self.run_stats = stats

    async def check(self, problem: Problem, proof: str) -> Verdict:
        self.gate.enter()
        try:
            async with self.gate.running:
                verdict = await self.inner.check(problem, proof)
            self.run_stats.checks += 1
            return verdict
        finally:
            await asyncio.shield(self.gate.leave())

    async def check_sketch(
        self, problem: Problem, proof: str, *, pp_options: Sequence[tuple[str, str]] = ()
    ) -> SketchCheck:
        """A sketch check holds a Lean worker like a check: it goes through the same gate."""
        self.gate.enter()
        try:
            async with self.gate.running:
                return await self.inner.check_sketch(problem, proof, pp_options=pp_options)
        finally:
            await asyncio.shield(self.gate.leave())


class BatchedRecorder:
    """Durable recording with group commit: attempts finishing together share one fsync.

    `record(attempt)` returns once the attempt's line is on disk. Writes run on a thread so the
    event loop never blocks on fsync, and a write that started always completes (a cancelled
    caller does not tear a line).
    """

    def __init__(self, append_many: Callable[[list[Attempt]], object]) -> None:
        self._append_many = append_many
        self._pending: list[tuple[Attempt, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, attempt: Attempt) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((attempt, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._append_many, [attempt for attempt, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                        future.exception()
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def drain(self) -> None:
        """Wait until everything handed to `record` is written."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


class Progress:
    """A throttled one-line status on stderr: problems done, solved, samples/s, checks/s.

    On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed at most
    every `log_interval` seconds.
    """

    def __init__(
        self,
        stats: PipelineStats,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 0.5,
        log_interval: float = 10.0,
    ) -> None:
        self.stats = stats
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self._last = 0.0
        self._drawn = False

    def line(self) -> str:
        s = self.stats
        elapsed = max(s.elapsed, 1e-9)
        return (
            f"[prover] problems {s.problems_done}/{s.problems_total}  solved {s.solved}  "
            f"samples {s.samples} ({s.samples / elapsed:.1f}/s)  checks {s.checks} ({s.checks / elapsed:.1f}/s)  "
            f"{clock_text(elapsed)}"
        )

    def update(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line())
            self._drawn = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self.update(force=True)
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def pending_problems(
    problems: Sequence[Problem], config: ProverConfig, strategy: Strategy, done: DoneMap
) -> list[Problem]:
    """Problems that still need work (a strategy skips the attempts in `done` itself): incomplete
    ones, and with `eval.retry_errors` those with attempts that ended in infrastructure errors."""
    return [problem for problem in problems if _needs_work(problem, config, strategy, done.get(problem.name))]


def _needs_work(
    problem: Problem, config: ProverConfig, strategy: Strategy, done: Mapping[tuple[int, int], Attempt] | None
) -> bool:
    if not done:
        return True
    if config.eval.retry_errors and has_error_attempts(done):
        return True
    return not strategy.is_complete(problem, config, done)


def gated_services(services: Services, gate: CheckGate, stats: PipelineStats) -> Services:
    """`services` with every sampler pausing while checks pile up, and the checker counted."""
    gated: dict[int, Sampler] = {}
    samplers = {}
    for role, sampler in services.samplers.items():
        if id(sampler) not in gated:  # roles sharing one engine share one gate wrapper
            gated[id(sampler)] = GatedSampler(sampler, gate, stats)
        samplers[role] = gated[id(sampler)]
    return Services(
        samplers=samplers,
        checker=GatedChecker(services.checker, gate, stats),
        lean=services.lean,
        proof_cache=services.proof_cache,
        jobs=services.jobs,
    )


async def run_pipeline(
    problems: Sequence[Problem],
    config: ProverConfig,
    *,
    strategy: Strategy,
    record: Callable[[Attempt], Awaitable[None] | None],
    open_services: ServicesFactory,
    done: DoneMap | None = None,
    progress: Progress | None = None,
    stats: PipelineStats | None = None,
) -> PipelineStats:
    """Run `strategy` over `problems`, recording every new attempt; returns the run's counters.

    Services are opened only when some problem still needs work, and always closed.

    Raises:
        whatever a strategy or service raises (SamplerUnavailable, ...): the other problems are
        cancelled first; attempts already recorded stay recorded.
    """
    done = done or {}
    stats = stats or PipelineStats()
    todo = pending_problems(problems, config, strategy, done)
    stats.start(problems, todo, done)
    progress = progress or Progress(stats, enabled=False)
    if not todo:
        return stats
    strategy.validate(config)
    services = await open_services(config)
    gate = CheckGate(effective_max_checks(config, strategy))
    warming = warm_lean(services, todo, config, strategy, after=gate.sampling)
    try:
        ctx = StrategyContext.from_services(config, gated_services(services, gate, stats))
        progress.update(force=True)
        await _prove_all(todo, ctx, strategy, record, done, stats, progress)
    finally:
        if warming is not None:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
        await services.aclose()
        progress.close()
    return stats


def warm_lean(
    services: Services, todo: Sequence[Problem], config: ProverConfig, strategy: Strategy, *, after: asyncio.Event
) -> asyncio.Future[None] | None:
    """Start the Lean workers the first problems' checks will need while their first samples
    generate (a REPL process start and header import would otherwise come after them). It waits
    for `after` (the first sampling request in flight): starting a process blocks the event loop
    for milliseconds, which must not delay the first requests to the engine."""
    if services.warm_up is None:
        return None
    warm_up = services.warm_up
    first = todo[: config.eval.max_problems_in_flight]
    workers = min(config.lean.workers, len(first) * strategy.checks_per_batch(config))

    async def warm() -> None:
        await after.wait()
        await warm_up([p.header for p in first], workers)

    return asyncio.ensure_future(warm())


async def _prove_all(
    todo: Sequence[Problem],
    ctx: StrategyContext,
    strategy: Strategy,
    record: Callable[[Attempt], Awaitable[None] | None],
    done: DoneMap,
    stats: PipelineStats,
    progress: Progress,
) -> None:
    queue = iter(todo)

    async def record_and_count(attempt: Attempt) -> None:
        outcome = record(attempt)
        if inspect.isawaitable(outcome):
            await outcome
        stats.samples += attempt.parent is None
        progress.update()

    async def worker() -> None:
        for problem in queue:  # shared iterator: each problem is taken by exactly one worker
            recorded = DoneAttempts.of(done.get(problem.name))
            solved = recorded.proved

            async def record_problem(attempt: Attempt) -> None:
                nonlocal solved
                await record_and_count(attempt)
                solved = solved or (attempt.parent is None and attempt.verdict.proved)

            await prove_problem(strategy, problem, ctx, record_problem, recorded)
            stats.problems_done += 1
            stats.solved += int(solved)
            progress.update()

    workers = [asyncio.ensure_future(worker()) for _ in range(min(ctx.config.eval.max_problems_in_flight, len(todo)))]
    try:
        pending = set(workers)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in finished:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
