"""The Python API: prove one problem, or evaluate many into a run directory.

    >>> from prover import Problem, Prover, ProverConfig, evaluate      # doctest: +SKIP
    >>> with Prover(ProverConfig.load()) as p:                          # doctest: +SKIP
    ...     result = p.prove(problem)
    >>> run = evaluate(problems, config, out="runs/mine")               # doctest: +SKIP
    >>> run.summary.pass_at_k                                           # doctest: +SKIP

`evaluate` writes exactly the run directory `prover eval` writes (the CLI is a thin layer over
it). `Prover` keeps its engine and Lean workers warm across `prove` calls; the sync methods run on
a private event loop thread, so they also work inside notebooks that already run a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar, Unpack

from pydantic import BaseModel, ConfigDict

from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.eval.run import (
    EvalResult,
    RunOptions,
    Executor,
    LocalExecutor,
    default_run_dir,
    latest_run_dir,
    make_strategy,
    resolve_run_dir,
    run_sync,
)
from prover.eval.run import aevaluate as _aevaluate
from prover.search.base import DoneAttempts, Services, ServicesFactory, Strategy, StrategyContext
from prover.search.services import open_services
from prover.types import Attempt, Problem, Verdict

__all__ = [
    "EvalResult",
    "ProveResult",
    "Prover",
    "aevaluate",
    "default_run_dir",
    "evaluate",
    "latest_run_dir",
    "resolve_run_dir",
]

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class ProveResult(BaseModel):
    """Everything one `prove` call did for one problem."""

    model_config = ConfigDict(frozen=True)

    problem: Problem
    attempts: tuple[Attempt, ...]
    """Every attempt, nested ones (sketches, subgoals, ...) included."""
    proved: bool
    proof: str | None = None
    """The first accepted proof as extracted from the model (tactic body or complete code)."""
    verdict: Verdict | None = None
    """The checker's verdict on `proof`; `verdict.code` is the exact Lean code that was accepted."""

    @classmethod
    def from_attempts(cls, problem: Problem, attempts: Sequence[Attempt]) -> ProveResult:
        ordered = sorted(attempts, key=lambda a: (a.parent is not None, a.round, a.sample_index))
        winner = next((a for a in ordered if a.parent is None and a.verdict.proved), None)
        return cls(
            problem=problem,
            attempts=tuple(ordered),
            proved=winner is not None,
            proof=winner.proof if winner else None,
            verdict=winner.verdict if winner else None,
        )


# ---------------------------------------------------------------------------------------------
# One problem at a time
# ---------------------------------------------------------------------------------------------


class _LoopThread:
    """A private event loop on a daemon thread, so sync calls work even inside a running loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="prover-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        if not self.loop.is_running():
            self.loop.close()


class Prover:
    """Proves problems one at a time with the configured strategy; keeps services warm.

    Args:
        config: settings (default: `ProverConfig.load()`, i.e. the user config).
        strategy: a strategy object (default: the one named by `config.eval.strategy`).
        services: ready services (sampler, checker, ...) instead of the real ones; the caller
            keeps ownership of them.
    """

    def __init__(
        self,
        config: ProverConfig | None = None,
        *,
        strategy: Strategy | None = None,
        services: Services | None = None,
    ) -> None:
        self.config = config if config is not None else ProverConfig.load()
        self._strategy = strategy
        self._services = services
        self._owns_services = services is None
        self._services_loop: asyncio.AbstractEventLoop | None = None
        self._thread: _LoopThread | None = None

    @property
    def strategy(self) -> Strategy:
        if self._strategy is None:
            self._strategy = make_strategy(self.config)
        return self._strategy

    async def aprove(self, problem: Problem) -> ProveResult:
        """Run the strategy's whole budget on `problem` and return every attempt."""
        self.strategy.validate(self.config)
        services = await self._ensure_services()
        attempts: list[Attempt] = []

        async def record(attempt: Attempt) -> None:
            attempts.append(attempt)

        ctx = StrategyContext.from_services(self.config, services)
        await self.strategy.prove(problem, ctx, record, DoneAttempts())
        return ProveResult.from_attempts(problem, attempts)

    def prove(self, problem: Problem) -> ProveResult:
        """Sync `aprove` (runs on the Prover's private event loop thread)."""
        return self._run(self.aprove(problem))

    async def aclose(self) -> None:
        """Close the services this Prover opened. Idempotent."""
        services, self._services = self._services, None
        if services is not None and self._owns_services:
            await services.aclose()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.run(self.aclose())
            self._thread.stop()
            self._thread = None
        elif self._services is not None and self._owns_services:
            run_sync(self.aclose())

    def __enter__(self) -> Prover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Prover:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _ensure_services(self) -> Services:
        loop = asyncio.get_running_loop()
        if self._services is None:
            self._services = await open_services(self.config)
            self._services_loop = loop
        elif self._services_loop is not None and self._services_loop is not loop:
            raise RuntimeError(
                "this Prover's services belong to another event loop; use either prove() or "
                "await aprove() with one Prover, not both"
            )
        return self._services

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._thread is None:
            self._thread = _LoopThread()
        return self._thread.run(coro)


# ---------------------------------------------------------------------------------------------
# Many problems: a run directory
# ---------------------------------------------------------------------------------------------


def _executor(config: ProverConfig, services: ServicesFactory | None) -> Executor:
    """Local pipeline, or the Ray cluster when `config.ray.enabled`."""
    if not config.ray.enabled:
        return LocalExecutor(services)
    if services is not None:
        raise ConfigError("`services` replaces the local services; it cannot be combined with ray.enabled")
    try:
        from prover.cluster.driver import RayExecutor
    except ImportError as exc:
        raise ConfigError(f"ray.enabled needs the Ray extra (`pip install prover[ray]`): {exc}") from exc
    return RayExecutor()


async def aevaluate(
    problems: Sequence[Problem],
    config: ProverConfig | None = None,
    *,
    services: ServicesFactory | None = None,
    **options: Unpack[RunOptions],
) -> EvalResult:
    """Evaluate `problems` into a run directory; see `evaluate`."""
    config = config if config is not None else ProverConfig.load()
    return await _aevaluate(problems, config, executor=_executor(config, services), **options)


def evaluate(
    problems: Sequence[Problem],
    config: ProverConfig | None = None,
    *,
    services: ServicesFactory | None = None,
    **options: Unpack[RunOptions],
) -> EvalResult:
    """Evaluate `problems` and write a run directory (the same one `prover eval` writes).

    Args:
        problems: the problems (`load_benchmark(...)` or your own `Problem`s; names unique).
        config: settings (default: the user config); `ray.enabled` runs on a Ray cluster.
        services: an async factory of `Services` instead of the real pool, checker and samplers.
        out: run directory (default: `config.eval.out`, else `runs/<bench>-<model>-<time>`).
        resume: continue the run in `out` (default: `config.eval.resume`).
        progress: show the live progress line on stderr (default true).
        strategy: a strategy object instead of the one named by `config.eval.strategy`.

    Raises:
        DataError, WorkspaceError, ConfigError, RunError, SamplerUnavailable, ...: with everything
        recorded before the error kept on disk (resume with `resume=True`).
    """
    return run_sync(aevaluate(problems, config, services=services, **options))
