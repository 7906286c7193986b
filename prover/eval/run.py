"""The run driver: evaluate problems into a run directory, locally or through another executor.

`aevaluate` owns what every run shares — the run directory and its resume, the strategy from the
registry, benchmark checker settings, durable recording, progress and the report — and hands the
problems that still need work to an `Executor`: `LocalExecutor` (the in-process pipeline, the
default) or the Ray executor of `prover.cluster`, which depends on this module, never the
reverse. `prover.api.evaluate` and the CLI pick the executor from `config.ray`.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

from pydantic import BaseModel

from prover.config import ProverConfig
from prover.errors import DataError
from prover.eval.metrics import Summary
from prover.eval.pipeline import BatchedRecorder, DoneMap, PipelineStats, Progress, pending_problems, run_pipeline
from prover.eval.report import render_report
from prover.eval.store import ResultsStore, RunInfo, model_label
from prover.registry import get_strategy_spec
from prover.search.base import ServicesFactory, Strategy
from prover.search.services import check_lean_setup, open_services
from prover.types import Attempt, Problem

__all__ = [
    "EvalResult",
    "Executor",
    "LocalExecutor",
    "RunOptions",
    "RunState",
    "aevaluate",
    "apply_benchmark_settings",
    "default_run_dir",
    "latest_run_dir",
    "make_strategy",
    "resolve_run_dir",
    "run_sync",
]

T = TypeVar("T")


class EvalResult(BaseModel):
    """What `evaluate` returns: the run directory and its summary."""

    run_dir: Path
    summary: Summary
    """The report's summary (`summary.json` as a model: problems, solved, pass_at_k, ...)."""
    attempts: int
    """Attempts recorded in the run directory in total."""
    new_attempts: int
    """Attempt records written by this call, re-checks of error attempts included (0 when the run
    was already finished)."""
    wall_seconds: float


def make_strategy(config: ProverConfig) -> Strategy:
    """A fresh strategy object for `config.eval.strategy` (from the registry)."""
    return get_strategy_spec(config.eval.strategy).factory()


# ---------------------------------------------------------------------------------------------
# Run directories
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


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------


@dataclass
class RunState:
    """What an executor gets: the run's problems, settings, strategy, records and counters."""

    problems: Sequence[Problem]
    config: ProverConfig
    strategy: Strategy
    done: DoneMap
    store: ResultsStore
    record: Callable[[Attempt], Awaitable[None]]
    progress: Progress

    @property
    def stats(self) -> PipelineStats:
        return self.progress.stats

    def pending(self) -> list[Problem]:
        return pending_problems(self.problems, self.config, self.strategy, self.done)


class Executor(ABC):
    """Runs the strategy on every problem of a run that still needs work."""

    #: checked before the run directory is created: does this executor need Lean on this machine?
    needs_local_lean: bool = True

    @abstractmethod
    async def run(self, state: RunState) -> None:
        """Prove `state.pending()`, handing every new attempt to `state.record`."""


class LocalExecutor(Executor):
    """The in-process pipeline (`prover.eval.pipeline`) over services opened here."""

    def __init__(self, services: ServicesFactory | None = None) -> None:
        self.services = services
        self.needs_local_lean = services is None

    async def run(self, state: RunState) -> None:
        await run_pipeline(
            state.problems,
            state.config,
            strategy=state.strategy,
            record=state.record,
            open_services=self.services or open_services,
            done=state.done,
            progress=state.progress,
            stats=state.stats,
        )


# ---------------------------------------------------------------------------------------------
# Evaluate
# ---------------------------------------------------------------------------------------------


class RunOptions(TypedDict, total=False):
    """The options of one evaluation (`prover.api.evaluate` documents them)."""

    out: Path | str | None
    resume: bool | None
    progress: bool
    strategy: Strategy | None


async def aevaluate(
    problems: Sequence[Problem],
    config: ProverConfig | None = None,
    *,
    executor: Executor | None = None,
    **options: Unpack[RunOptions],
) -> EvalResult:
    """Evaluate `problems` into a run directory (see `prover.api.evaluate`; `run_sync` blocks on it)."""
    out, resume, strategy = options.get("out"), options.get("resume"), options.get("strategy")
    progress = options.get("progress", True)
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
    strategy = strategy if strategy is not None else make_strategy(config)
    executor = executor if executor is not None else LocalExecutor()
    if not (resume and (run_dir / "run.json").is_file()):
        # Nothing to skip: every problem needs Lean, so refuse before creating the run directory.
        strategy.validate(config)
        if executor.needs_local_lean:
            check_lean_setup(config)
    store = ResultsStore.open(run_dir, RunInfo.from_config(config, problems), resume=resume)
    stats = PipelineStats()
    outcome = "finished"
    recorder = BatchedRecorder(store.append_many)
    try:
        done = {p.name: store.done(p) for p in problems}
        state = RunState(problems, config, strategy, done, store, recorder.record, Progress(stats, enabled=progress))
        await executor.run(state)
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
        store.event("pipeline", outcome=outcome, new_attempts=store.written, **_stats_dict(stats))
        total = len(store)
        store.close()
    summary = render_report(run_dir)
    return EvalResult(
        run_dir=run_dir,
        summary=summary,
        attempts=total,
        new_attempts=store.written,
        wall_seconds=time.monotonic() - started,
    )


def _stats_dict(stats: PipelineStats) -> dict[str, object]:
    return {
        "seconds": round(stats.elapsed, 3),
        "samples": stats.samples,
        "checks": stats.checks,
        "requests": stats.requests,
        "solved": stats.solved,
        "problems_done": stats.problems_done,
    }


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
