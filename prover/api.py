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
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from prover.config import ProverConfig
from prover.errors import ConfigError, DataError
from prover.eval.metrics import Summary
from prover.eval.pipeline import (
    BatchedRecorder,
    PipelineStats,
    Progress,
    Services,
    ServicesFactory,
    pending_problems,
    run_pipeline,
)
from prover.eval.report import render_report
from prover.eval.store import ResultsStore, RunInfo, model_label
from prover.search.base import Strategy, StrategyContext
from prover.types import Attempt, Problem, Verdict

__all__ = [
    "EvalResult",
    "ProveResult",
    "Prover",
    "aevaluate",
    "check_lean_setup",
    "default_run_dir",
    "evaluate",
    "latest_run_dir",
    "open_services",
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
    proved: bool
    proof: str | None = None
    """The first accepted proof as extracted from the model (tactic body or complete code)."""
    verdict: Verdict | None = None
    """The checker's verdict on `proof`; `verdict.code` is the exact Lean code that was accepted."""

    @classmethod
    def from_attempts(cls, problem: Problem, attempts: Sequence[Attempt]) -> ProveResult:
        ordered = sorted(attempts, key=lambda a: (a.round, a.sample_index))
        winner = next((a for a in ordered if a.verdict.proved), None)
        return cls(
            problem=problem,
            attempts=tuple(ordered),
            proved=winner is not None,
            proof=winner.proof if winner else None,
            verdict=winner.verdict if winner else None,
        )


class EvalResult(BaseModel):
    """What `evaluate` returns: the run directory and its summary."""

    run_dir: Path
    summary: Summary
    """The report's summary (`summary.json` as a model: problems, solved, pass_at_k, ...)."""
    attempts: int
    """Attempts recorded in the run directory in total."""
    new_attempts: int
    """Attempts recorded by this call (0 when the run was already finished)."""
    wall_seconds: float


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------


def check_lean_setup(config: ProverConfig) -> None:
    """Fail fast (before any sampling) when no Lean REPL can be started (see `ReplLauncher.require`)."""
    from prover.lean_env.launcher import ReplLauncher

    ReplLauncher.require(config.lean)


async def open_services(config: ProverConfig) -> Services:
    """The real services: a Lean pool, the checker with its verdict cache, the sampler."""
    check_lean_setup(config)
    from prover.lean_env.checker import ProofChecker
    from prover.lean_env.pool import LeanPool
    from prover.llm.base import make_sampler

    services = Services(sampler=None, checker=None)  # type: ignore[arg-type]
    try:
        pool = LeanPool(config.lean)
        await pool.__aenter__()
        services.closers.append(pool.close)
        services.pool = pool
        cache = _verdict_cache(config)
        if cache is not None and hasattr(cache, "close"):
            services.closers.append(_as_async(cache.close))
        services.checker = ProofChecker(pool, config.checker, cache=cache)
        if config.eval.strategy == "bfs":
            from prover.search.proof_cache import MemoryProofCache

            services.proof_cache = MemoryProofCache()  # shared by the run's searches
            services.closers.append(services.proof_cache.close)
        sampler = make_sampler(config.sampler)
        services.closers.append(sampler.close)
        services.sampler = sampler
    except BaseException:
        await services.aclose()
        raise
    return services


def _verdict_cache(config: ProverConfig) -> Any | None:
    """The checker's persistent verdict cache (None when `cache.enabled` is false)."""
    from prover.lean_env.verdict_cache import VerdictCache

    return VerdictCache.from_config(config.cache)


def _as_async(func: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        outcome = func()
        if asyncio.iscoroutine(outcome):
            await outcome

    return call


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
            from prover.search.registry import make_strategy

            self._strategy = make_strategy(self.config)
        return self._strategy

    async def aprove(self, problem: Problem) -> ProveResult:
        """Run the strategy's whole budget on `problem` and return every attempt."""
        validate = getattr(self.strategy, "validate", None)
        if validate is not None:
            validate(self.config)
        services = await self._ensure_services()
        attempts: list[Attempt] = []

        async def record(attempt: Attempt) -> None:
            attempts.append(attempt)

        ctx = StrategyContext(
            config=self.config,
            sampler=services.sampler,
            checker=services.checker,
            pool=services.pool,
            proof_cache=services.proof_cache,
        )
        await self.strategy.prove(problem, ctx, record, None)
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


def default_run_dir(config: ProverConfig, *, root: Path | str = "runs", now: datetime | None = None) -> Path:
    """`runs/<benchmark>-<model basename>-<YYYYmmdd-HHMMSS>`."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{_run_prefix(config)}-{stamp}"


def latest_run_dir(config: ProverConfig, *, root: Path | str = "runs") -> Path | None:
    """The most recent default-named run directory of this benchmark and model (for --resume)."""
    candidates = sorted(
        (p for p in Path(root).glob(f"{_run_prefix(config)}-*") if (p / "run.json").is_file()),
        key=lambda p: p.name,
    )
    return candidates[-1] if candidates else None


def resolve_run_dir(config: ProverConfig, out: Path | str | None, resume: bool) -> Path:
    """`out`, else `eval.out`, else (with `resume`) the latest matching run, else a new name."""
    if out is not None:
        return Path(out)
    if config.eval.out is not None:
        return config.eval.out
    return (latest_run_dir(config) if resume else None) or default_run_dir(config)


def _run_prefix(config: ProverConfig) -> str:
    bench = config.eval.benchmark
    if ":" in bench:  # jsonl:PATH / lean:PATH -> the file or folder name
        bench = Path(bench.split(":", 1)[1].rstrip("/")).stem or bench.split(":", 1)[0]
    sampler = config.sampler
    model = Path(model_label(sampler.backend, sampler.model, sampler.script).rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{bench}-{model}")


def apply_benchmark_settings(config: ProverConfig, problems: Sequence[Problem]) -> ProverConfig:
    """Apply the checker settings the problems' benchmarks need (LeanGeo's SMT oracle and its
    axiomatised geometry library)."""
    from prover.datasets import benchmark_allows_header_axioms, benchmark_extra_axioms

    extra: list[str] = list(config.checker.extra_allowed_axioms)
    header_axioms = config.checker.allow_header_axioms
    for bench in sorted({p.benchmark for p in problems if p.benchmark}):
        try:
            extra.extend(a for a in benchmark_extra_axioms(bench) if a not in extra)
            header_axioms = header_axioms or benchmark_allows_header_axioms(bench)
        except DataError:
            continue  # ad-hoc benchmark names carry no checker settings
    return config.with_overrides(
        {"checker.extra_allowed_axioms": tuple(extra), "checker.allow_header_axioms": header_axioms}
    )


async def aevaluate(
    problems: Sequence[Problem],
    config: ProverConfig | None = None,
    *,
    out: Path | str | None = None,
    resume: bool | None = None,
    progress: bool = True,
    strategy: Strategy | None = None,
    services: ServicesFactory | None = None,
    ray_hooks: Any | None = None,
) -> EvalResult:
    """Evaluate `problems` into a run directory; see `evaluate`."""
    started = time.monotonic()
    config = config if config is not None else ProverConfig.load()
    problems = list(problems)
    if not problems:
        raise DataError("no problems to evaluate")
    names = [p.name for p in problems]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"problem names must be unique within a run; repeated: {', '.join(dup[:5])}")
    config = apply_benchmark_settings(config, problems)
    resume = config.eval.resume if resume is None else resume
    run_dir = resolve_run_dir(config, out, resume)
    if strategy is None:
        from prover.search.registry import make_strategy

        strategy = make_strategy(config)
    fresh = not (resume and (run_dir / "run.json").is_file())
    if fresh:
        # Nothing to skip: every problem needs Lean, so refuse before creating the run directory.
        getattr(strategy, "validate", lambda _c: None)(config)
        if services is None and not config.ray.enabled:  # on Ray, each node's pool checks its own
            check_lean_setup(config)
    store = ResultsStore.open(run_dir, RunInfo.from_config(config, problems), resume=resume)
    before = len(store)
    stats = PipelineStats()
    outcome = "finished"
    recorder = BatchedRecorder(store.append_many)
    try:
        done = {p.name: store.done(p) for p in problems}
        live = Progress(stats, enabled=progress)
        if config.ray.enabled:
            await _run_on_ray(problems, config, strategy, done, store, recorder.record, ray_hooks, live)
        else:
            await run_pipeline(
                problems,
                config,
                strategy=strategy,
                record=recorder.record,
                open_services=services or open_services,
                done=done,
                progress=live,
                stats=stats,
            )
        await recorder.drain()
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)) else "failed"
        store.event(outcome, error=f"{type(exc).__name__}: {exc}", attempts=len(store))
        raise
    finally:
        try:
            await recorder.drain()  # attempts already handed over reach the disk before close
        except Exception:  # noqa: BLE001 - the original error is being raised
            pass
        store.event("pipeline", outcome=outcome, new_attempts=len(store) - before, **_stats_dict(stats))
        total = len(store)
        store.close()
    summary = render_report(run_dir)
    return EvalResult(
        run_dir=run_dir,
        summary=summary,
        attempts=total,
        new_attempts=total - before,
        wall_seconds=time.monotonic() - started,
    )


async def _run_on_ray(
    problems: Sequence[Problem],
    config: ProverConfig,
    strategy: Strategy,
    done: dict[str, dict[tuple[int, int], Attempt]],
    store: ResultsStore,
    record: Callable[[Attempt], Awaitable[None]],
    hooks: Any | None,
    progress: Progress,
) -> None:
    """The same run with the strategies executed by Ray agents (`prover.cluster`)."""
    try:
        from prover.cluster.driver import run_on_ray
    except ImportError as exc:
        raise ConfigError(
            f"ray.enabled needs the Ray extra (`pip install prover[ray]`): {exc}"
        ) from exc

    todo = pending_problems(problems, config, strategy, done)
    progress.stats.start(problems, todo, done)
    if not todo:
        return
    progress.update(force=True)
    try:
        await run_on_ray(config, todo, store.done, _record_with_progress(record, todo, config, strategy, store, progress), hooks)
    finally:
        progress.close()


def _record_with_progress(
    record: Callable[[Attempt], Awaitable[None]],
    todo: Sequence[Problem],
    config: ProverConfig,
    strategy: Strategy,
    store: ResultsStore,
    progress: Progress,
) -> Callable[[Attempt], Awaitable[None]]:
    """`record` that also feeds the progress line from the attempts streaming in from Ray
    (the in-process pipeline counts inside its own sampler, checker and problem loop)."""
    stats = progress.stats
    by_name = {p.name: p for p in todo}
    is_complete = getattr(strategy, "is_complete", None)
    solved = {p.name for p in todo if any(a.verdict.proved for a in store.done(p).values())}
    stats.solved += len(solved)
    finished: set[str] = set()

    async def record_and_count(attempt: Attempt) -> None:
        await record(attempt)
        name = attempt.problem
        stats.samples += 1
        stats.checks += int(attempt.proof is not None and attempt.duplicate_of is None)
        if attempt.verdict.proved and name not in solved:
            solved.add(name)
            stats.solved += 1
        problem = by_name.get(name)
        if problem and name not in finished and is_complete and is_complete(problem, config, store.done(problem)):
            finished.add(name)
            stats.problems_done += 1
        progress.update()

    return record_and_count


def _stats_dict(stats: PipelineStats) -> dict[str, object]:
    return {
        "seconds": round(stats.elapsed, 3),
        "samples": stats.samples,
        "checks": stats.checks,
        "requests": stats.requests,
        "solved": stats.solved,
        "problems_done": stats.problems_done,
    }


def evaluate(
    problems: Sequence[Problem],
    config: ProverConfig | None = None,
    *,
    out: Path | str | None = None,
    resume: bool | None = None,
    progress: bool = True,
    strategy: Strategy | None = None,
    services: ServicesFactory | None = None,
    ray_hooks: Any | None = None,
) -> EvalResult:
    """Evaluate `problems` and write a run directory (the same one `prover eval` writes).

    Args:
        problems: the problems (`load_benchmark(...)` or your own `Problem`s; names unique).
        config: settings (default: the user config).
        out: run directory (default: `config.eval.out`, else `runs/<bench>-<model>-<time>`).
        resume: continue the run in `out` (default: `config.eval.resume`).
        progress: show the live progress line on stderr.
        strategy: a strategy object instead of the one named by `config.eval.strategy`.
        services: an async factory of `Services` instead of the real pool, checker and sampler.
        ray_hooks: `prover.cluster.driver.RunHooks` for runs with `config.ray.enabled` (tests use
            them to kill actors mid-run).

    Raises:
        DataError, WorkspaceError, ConfigError, RunError, SamplerUnavailable, ...: with everything
        recorded before the error kept on disk (resume with `resume=True`).
    """
    coro = aevaluate(
        problems, config, out=out, resume=resume, progress=progress, strategy=strategy, services=services,
        ray_hooks=ray_hooks,
    )
    return run_sync(coro)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, or on a helper thread when the caller already runs a loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="prover-evaluate")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]

