"""The contract every proving strategy is written against.

A strategy turns one `Problem` into `Attempt`s using the services of a `StrategyContext`:

    samplers   model roles -> `Sampler` ("prover", and e.g. "planner"; `config.sampler_for(role)`
               holds each role's sampling settings)
    lean       `LeanSession`: commands on a header's env, goal states, tactic steps
    checker    the full soundness pipeline (`CheckerLike`); only its verdict counts
    proof_cache  goal state -> known proof, shared across attempts and problems (or None)
    budget     the run's attempt budget and clock
    jobs       where self-contained pieces of work can run besides here (`JobRunner`: the other
               prover agents of a Ray cluster), or None

It never knows whether those services are in-process objects or Ray actor proxies. The context is
built in one place, `StrategyContext.from_services`, from the `Services` a run opened
(`prover.search.services.open_services`, or a Ray agent's proxies).

Attempts nest: a top-level attempt (`parent is None`) is one of the `eval.passes` samples that
pass@k, early stop and resume count; strategies may record attempts that serve one (`parent` =
its `sample_index`, `kind` = "sketch", "subgoal", ...), which reports count apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.lean_env.session import LeanSession
from prover.llm.base import Sampler
from prover.search.proof_cache import ProofCache
from prover.types import Attempt, Problem, Verdict

if TYPE_CHECKING:
    from prover.lean_env.checker import SketchCheck

__all__ = [
    "PROVER_ROLE",
    "Budget",
    "CheckerLike",
    "DoneAttempts",
    "JobRunner",
    "RecordAttempt",
    "Services",
    "ServicesFactory",
    "Strategy",
    "StrategyContext",
]

log = logging.getLogger(__name__)

PROVER_ROLE = "prover"
"""The model role of `sampler` (the default model) and of every built-in prover."""

RecordAttempt = Callable[[Attempt], Awaitable[None]]
"""Called once per finished attempt; the results store appends it to attempts.jsonl."""


T = TypeVar("T")


class CheckerLike(Protocol):
    """Anything that checks a proof with the full soundness pipeline."""

    async def check(self, problem: Problem, proof: str) -> Verdict: ...

    async def check_sketch(
        self, problem: Problem, proof: str, *, pp_options: Sequence[tuple[str, str]] = ()
    ) -> SketchCheck:
        """The same pipeline on a proof with `sorry` holes (`ProofChecker.check_sketch`)."""
        ...


class JobRunner(Protocol):
    """Runs a piece of a strategy's work on some prover agent of the run (a Ray peer).

    `await runner.run(job, *args)` is `await job(strategy, ctx, *args)` with that agent's own
    strategy object and context (same config, same shared services); `job` must be a module-level
    function and `args` picklable values. Jobs must be idempotent: a job whose agent dies is sent
    to another one. Recording attempts stays with the caller.
    """

    async def run(self, job: Callable[..., Awaitable[T]], *args: Any) -> T: ...


class DoneAttempts(Mapping[tuple[int, int], Attempt]):
    """Attempts of one problem recorded by an earlier, interrupted run.

    As a mapping: the top-level attempts by `(round, sample_index)`. Nested attempts (those with a
    `parent`) are listed apart by `nested(...)`. Of several records of one slot, the highest
    `revision` counts (a resume re-checked an error attempt).
    """

    def __init__(self, attempts: Iterable[Attempt] = ()) -> None:
        self._top: dict[tuple[int, int], Attempt] = {}
        self._nested: dict[tuple[str, int | None, int, int], Attempt] = {}
        for attempt in attempts:
            if attempt.parent is None:
                _keep_latest(self._top, (attempt.round, attempt.sample_index), attempt)
            else:
                _keep_latest(self._nested, attempt.slot, attempt)

    @classmethod
    def of(cls, done: Mapping[tuple[int, int], Attempt] | None) -> DoneAttempts:
        """`done` as DoneAttempts (a plain mapping holds top-level attempts only)."""
        if isinstance(done, DoneAttempts):
            return done
        return cls((done or {}).values())

    def __getitem__(self, key: tuple[int, int]) -> Attempt:
        return self._top[key]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._top)

    def __len__(self) -> int:
        return len(self._top)

    @property
    def proved(self) -> bool:
        """Some top-level attempt proved the problem."""
        return any(a.verdict.proved for a in self._top.values())

    def nested(self, parent: int | None = None, kind: str | None = None) -> list[Attempt]:
        """Nested attempts, optionally only those serving `parent` and of `kind`."""
        return [
            a
            for a in self._nested.values()
            if (parent is None or a.parent == parent) and (kind is None or a.kind == kind)
        ]


def _keep_latest(table: dict[Any, Attempt], key: Any, attempt: Attempt) -> None:
    current = table.get(key)
    if current is None or attempt.revision > current.revision:
        table[key] = attempt


@dataclass(frozen=True)
class Budget:
    """The run's budget: top-level attempts per problem, and the clock every budget is read on."""

    passes: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return self.clock() - self.started


@dataclass(frozen=True)
class StrategyContext:
    """The services a strategy may use; built once per run (or per Ray agent)."""

    config: ProverConfig
    samplers: Mapping[str, Sampler]
    lean: LeanSession
    checker: CheckerLike
    budget: Budget
    proof_cache: ProofCache | None = None
    artifacts: Path | None = None
    """Directory for a strategy's side files (search trees, ...); None writes none."""
    jobs: JobRunner | None = None
    """Other agents to run jobs on (Ray); None: run them in this process."""

    @classmethod
    def from_services(
        cls, config: ProverConfig, services: Services, *, artifacts: Path | None = None
    ) -> StrategyContext:
        """The one place a context is made (local runs, the API, collect and Ray agents)."""
        return cls(
            config=config,
            samplers=dict(services.samplers),
            lean=services.lean,
            checker=services.checker,
            budget=Budget(passes=config.eval.passes),
            proof_cache=services.proof_cache,
            artifacts=artifacts,
            jobs=services.jobs,
        )

    def sampler(self, role: str = PROVER_ROLE) -> Sampler:
        """The sampler of one model role."""
        try:
            return self.samplers[role]
        except KeyError:
            raise ConfigError(
                f"no sampler for model role {role!r} in this run (roles: {', '.join(self.samplers)})"
            ) from None

    def with_changes(self, **changes: object) -> StrategyContext:
        """A copy with some services replaced (e.g. a recording sampler)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class Services:
    """What a run opened from the outside world; closed in reverse order of opening."""

    samplers: dict[str, Sampler]
    checker: CheckerLike
    lean: LeanSession
    proof_cache: ProofCache | None = None
    jobs: JobRunner | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    warm_up: Callable[[Sequence[str], int], Awaitable[None]] | None = None
    """Start Lean for these headers on up to n workers (the run's first checks will need them)."""

    async def aclose(self) -> None:
        """Close everything, even if one closer fails or the task is being cancelled."""
        while self.closers:
            closer = self.closers.pop()
            try:
                await asyncio.shield(closer())
            except asyncio.CancelledError:
                continue
            except Exception:  # noqa: BLE001 - keep closing the rest; the first error is already raised
                log.exception("error while closing a service")


ServicesFactory = Callable[[ProverConfig], Awaitable[Services]]


class Strategy(ABC):
    """Proves one problem, recording every attempt as it finishes.

    The pipeline, the API, collect and Ray agents call exactly these methods.
    """

    @abstractmethod
    async def prove(
        self,
        problem: Problem,
        ctx: StrategyContext,
        record: RecordAttempt,
        done: Mapping[tuple[int, int], Attempt] | None = None,
    ) -> None:
        """Run the strategy's budget for `problem`.

        Args:
            problem: the theorem to prove.
            ctx: services to use.
            record: awaited once for every newly finished attempt.
            done: attempts already recorded by an earlier, interrupted run (`DoneAttempts`, or a
                mapping of top-level ones by `(round, sample_index)`); they must not be redone or
                recorded again, but their verdicts count (for early stop and correction chains).
        """

    def validate(self, config: ProverConfig) -> None:
        """Fail before any sampling when the settings cannot work (ConfigError). Default: fine."""

    def is_complete(self, problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
        """Whether `prove(problem, ..., done=done)` would record nothing new.

        The pipeline skips complete problems without starting any service, so re-running a
        finished run is instant. The default never claims completeness.
        """
        return False

    def checks_per_batch(self, config: ProverConfig) -> int:
        """Proofs one sampling request of this strategy can hand to the checker at once (sizes the
        pipeline's default check back-pressure). Default 1."""
        return 1
