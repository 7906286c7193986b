"""The narrow Lean interface a tactic-level search needs.

A search names states by their *tactic path from the root* (a tuple of tactic strings), never by
REPL handles. `PoolTacticEnv` maps paths to proof-state handles on one pool worker and keeps every
step of the search on that worker (`lease(key, affinity=worker)`). When the worker restarted
(crash, timeout, OOM, recycling: a `StaleHandleError`, or a new `WorkerRef` generation) the env
re-materialises the state it needs by replaying its tactic path from a fresh theorem-with-`sorry`,
so a search survives worker restarts instead of failing.

Reading a tactic reply (lean_interaction.md section 1.5):
- any `error` message -> failed edge, even when `goals == []`;
- only `proofStatus == "Completed"` closes the proof; `goals == []` otherwise is INCOMPLETE;
- a `{"message": ...}` reply is an ERROR; timeout / crash / OOM are their own outcomes.

`CallbackTacticEnv` is an in-process stand-in driven by a Python function, for tests and the
bookkeeping benchmark; it is not Lean.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from prover.errors import LeanError, StaleHandleError
from prover.search.tree import EdgeOutcome, normalise_goals
from prover.types import Problem

Path_ = tuple[str, ...]
"""A state, named by the tactics applied from the root (the theorem's `sorry`)."""

StepCall = Callable[[Path_, str, "float | None"], Awaitable["StepOutcome"]]
"""Apply one tactic to the state at a path, with a timeout."""

_KIND_TO_OUTCOME = {
    "timeout": EdgeOutcome.TIMEOUT,
    "out_of_memory": EdgeOutcome.OUT_OF_MEMORY,
    "crash": EdgeOutcome.CRASH,
    "infrastructure": EdgeOutcome.INFRASTRUCTURE,
}


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one tactic did to one state."""

    tactic: str
    outcome: EdgeOutcome
    goals: tuple[str, ...] | None = None
    """New goals for OK; None otherwise (PROVED has none, failures have no state)."""
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StepBatch:
    """Outcomes of several tactics plus the Lean cost of producing them (replays included)."""

    outcomes: tuple[StepOutcome, ...]
    lean_calls: int = 0
    lean_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StartOutcome:
    goals: tuple[str, ...] | None
    """Goals of the theorem's `sorry`; None when the statement could not be started."""
    error: str = ""
    infrastructure: bool = False
    """The failure was a timeout/crash/infrastructure problem, not Lean rejecting the statement."""
    lean_calls: int = 0
    lean_seconds: float = 0.0


@dataclass
class EnvStats:
    lean_calls: int = 0
    lean_seconds: float = 0.0
    rematerialisations: int = 0
    """Times a state had to be rebuilt by replaying its path after a worker restart."""


class TacticEnv(ABC):
    """Start a theorem in tactic mode and apply tactics to its states (one search, one env).

    Subclasses say how one tactic is applied (`_stepper`); sibling batches and chain replays, and
    their Lean-cost accounting, are the same for every env.
    """

    def __init__(self) -> None:
        self.stats = EnvStats()

    @abstractmethod
    async def start(self, problem: Problem) -> StartOutcome:
        """Elaborate `statement sorry` on the header env; the root state is path ()."""

    @abstractmethod
    def _stepper(self) -> AbstractAsyncContextManager[StepCall]:
        """A context (e.g. one worker lease) in which tactics are applied to states by path."""

    async def apply_many(self, path: Path_, tactics: Sequence[str], *, timeout: float | None = None) -> StepBatch:
        """Apply each tactic to the state at `path` (siblings, in order); stop once one proves it."""
        return await self._run(path, tactics, timeout, chain=False)

    async def replay(self, path: Path_, tactics: Sequence[str], *, timeout: float | None = None) -> StepBatch:
        """Apply `tactics` one after another from `path`; stops at the first non-OK outcome."""
        return await self._run(path, tactics, timeout, chain=True)

    async def _run(self, path: Path_, tactics: Sequence[str], timeout: float | None, *, chain: bool) -> StepBatch:
        calls0, secs0 = self.stats.lean_calls, self.stats.lean_seconds
        outcomes: list[StepOutcome] = []
        current = tuple(path)
        async with self._stepper() as step:
            for tactic in tactics:
                outcome = await step(current, tactic, timeout)
                outcomes.append(outcome)
                if chain:
                    if outcome.outcome is not EdgeOutcome.OK:
                        break
                    current = current + (tactic,)
                elif outcome.outcome is EdgeOutcome.PROVED:
                    break
        return StepBatch(tuple(outcomes), self.stats.lean_calls - calls0, self.stats.lean_seconds - secs0)

    async def close(self) -> None:
        """Forget states. Idempotent."""


# ---------------------------------------------------------------------------------------------
# Reading REPL replies
# ---------------------------------------------------------------------------------------------


def _error_text(response: Any) -> str:
    messages = getattr(response, "messages", None) or ()
    errors = [m.data for m in messages if getattr(m, "severity", "") == "error"]
    return "\n".join(errors)


def classify_tactic_result(tactic: str, result: Any) -> tuple[StepOutcome, Any]:
    """Turn a pool `ReplResult` of a tactic request into a StepOutcome (+ the new handle if OK)."""
    kind = str(getattr(result.kind, "value", result.kind))
    seconds = float(getattr(result, "seconds", 0.0))
    if kind in _KIND_TO_OUTCOME:
        return StepOutcome(tactic, _KIND_TO_OUTCOME[kind], error=result.detail or kind, seconds=seconds), None
    response = result.response
    if response is None:
        return StepOutcome(tactic, EdgeOutcome.INFRASTRUCTURE, error=result.detail or "no reply", seconds=seconds), None
    if not hasattr(response, "goals"):  # ReplErrorResponse: {"message": ...}
        message = getattr(response, "message", "") or result.detail
        return StepOutcome(tactic, EdgeOutcome.ERROR, error=message, seconds=seconds), None
    errors = _error_text(response)
    if errors:
        return StepOutcome(tactic, EdgeOutcome.ERROR, error=errors, seconds=seconds), None
    status = getattr(response, "proof_status", None) or ""
    goals = tuple(response.goals or ())
    if status == "Completed" and not goals:
        return StepOutcome(tactic, EdgeOutcome.PROVED, seconds=seconds), None
    if not goals:
        return StepOutcome(tactic, EdgeOutcome.INCOMPLETE, error=status or "no goals but not Completed",
                           seconds=seconds), None
    has_sorry = getattr(response, "has_sorry", None)
    if callable(has_sorry) and has_sorry():
        return StepOutcome(tactic, EdgeOutcome.INCOMPLETE, error="tactic introduced sorry", seconds=seconds), None
    if result.proof_state is None:
        return StepOutcome(tactic, EdgeOutcome.INFRASTRUCTURE, error="reply without a proof state",
                           seconds=seconds), None
    return StepOutcome(tactic, EdgeOutcome.OK, goals=goals, seconds=seconds), result.proof_state


class _Rematerialise(Exception):
    """A state could not be rebuilt by replaying its path."""


# ---------------------------------------------------------------------------------------------
# The pool-backed env
# ---------------------------------------------------------------------------------------------


class PoolTacticEnv(TacticEnv):
    """Tactic mode on a `LeanPool` (or any proxy with the same lease API), sticky to one worker.

    Args:
        pool: a `prover.lean_env.pool.LeanPool`.
        max_rematerialise: rebuild attempts per request before giving up on a state (its tactics
            then fail with INFRASTRUCTURE, a non-definitive outcome).
        crash_retries: times a tactic whose request ended in a process crash is re-sent to the
            restarted process. A crash can be the tactic's fault or an accident (the process was
            recycled or killed while the request was in flight); one retry keeps a good tactic
            from being lost to an accident, and costs one more restart for a tactic that really
            kills Lean.
    """

    def __init__(self, pool: Any, *, max_rematerialise: int = 3, crash_retries: int = 1) -> None:
        super().__init__()
        self._pool = pool
        self._max_remat = max(1, max_rematerialise, crash_retries + 1)
        self._crash_retries = crash_retries
        self._problem: Problem | None = None
        self._key: Any = None
        self._worker: Any = None
        self._handles: dict[Path_, Any] = {}

    # -- public API -------------------------------------------------------------------------

    async def start(self, problem: Problem) -> StartOutcome:
        self._problem = problem
        self._key = self._pool.env_key(problem.header)
        calls0, secs0 = self.stats.lean_calls, self.stats.lean_seconds
        async with self._lease() as lease:
            try:
                goals, error, infra = await self._start_on(lease)
            except _Rematerialise as exc:
                goals, error, infra = None, f"lost the worker: {exc}", True
        return StartOutcome(
            goals, error, infra, self.stats.lean_calls - calls0, self.stats.lean_seconds - secs0
        )

    @contextlib.asynccontextmanager
    async def _stepper(self) -> AsyncIterator[StepCall]:
        async with self._lease() as lease:
            yield lambda path, tactic, timeout: self._step(lease, path, tactic, timeout)

    async def close(self) -> None:
        self._handles.clear()

    # -- internals --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[Any]:
        """A lease on this search's worker (any worker if it is gone), adopted on entry."""
        if self._key is None:
            raise RuntimeError("PoolTacticEnv: call start(problem) first")
        async with self._pool.lease(self._key, affinity=self._worker) as lease:
            self._adopt(lease)
            yield lease

    def _adopt(self, lease: Any) -> None:
        """Handles are only valid on the worker (and generation) that made them."""
        if lease.worker != self._worker:
            self._worker = lease.worker
            self._handles.clear()

    def _account(self, result: Any) -> None:
        self.stats.lean_calls += 1
        self.stats.lean_seconds += float(getattr(result, "seconds", 0.0))

    async def _start_on(self, lease: Any) -> tuple[tuple[str, ...] | None, str, bool]:
        assert self._problem is not None
        code = self._problem.formal_statement.rstrip() + " sorry"
        try:
            result = await lease.command(code)
        except StaleHandleError as exc:
            # the lease itself is gone (a restarted pool actor on Ray): this request's tactics end
            # as INFRASTRUCTURE (never a dead end) and the next request takes a fresh lease
            self._handles.clear()
            raise _Rematerialise(str(exc)) from exc
        self._account(result)
        kind = str(getattr(result.kind, "value", result.kind))
        if kind in _KIND_TO_OUTCOME or result.response is None:
            return None, f"{kind}: {result.detail}", True
        response = result.response
        if not hasattr(response, "sorries"):
            return None, getattr(response, "message", "") or result.detail, False
        errors = _error_text(response)
        if errors:
            return None, errors, False
        sorries = list(response.sorries or ())
        states = list(result.sorry_states or ())
        if len(sorries) != 1 or not states or states[0] is None:
            return None, f"expected one sorry proof state, got {len(sorries)}", False
        self._handles[()] = states[0]
        goal = sorries[0].goal
        return (goal,), "", False

    async def _handle(self, lease: Any, path: Path_) -> Any:
        """The handle of `path` on this lease's worker, replaying the path if needed."""
        self._adopt(lease)
        handle = self._handles.get(path)
        if handle is not None and getattr(handle, "worker", lease.worker) == lease.worker:
            return handle
        self.stats.rematerialisations += 1
        return await self._rebuild(lease, path)

    async def _rebuild(self, lease: Any, path: Path_) -> Any:
        depth = len(path)
        while depth > 0 and path[:depth] not in self._handles:
            depth -= 1
        if depth == 0 and () not in self._handles:
            goals, error, _ = await self._start_on(lease)
            if goals is None:
                raise _Rematerialise(f"restart failed: {error}")
        for i in range(depth, len(path)):
            result = await self._raw_tactic(lease, self._handles[path[:i]], path[i], None)
            outcome, handle = classify_tactic_result(path[i], result)
            if handle is None:
                self._forget_after_failure(outcome)
                raise _Rematerialise(f"replaying {path[i]!r} gave {outcome.outcome.value}: {outcome.error}")
            self._handles[path[: i + 1]] = handle
        return self._handles[path]

    async def _raw_tactic(self, lease: Any, handle: Any, tactic: str, timeout: float | None) -> Any:
        try:
            result = await lease.tactic(handle, tactic, timeout=timeout)
        except StaleHandleError as exc:
            self._handles.clear()
            raise _Rematerialise(str(exc)) from exc
        self._account(result)
        return result

    def _forget_after_failure(self, outcome: StepOutcome) -> None:
        """After a timeout/crash/OOM the worker restarted: every handle is gone."""
        if outcome.outcome in (EdgeOutcome.TIMEOUT, EdgeOutcome.CRASH, EdgeOutcome.OUT_OF_MEMORY,
                               EdgeOutcome.INFRASTRUCTURE):
            self._handles.clear()

    async def _step(self, lease: Any, path: Path_, tactic: str, timeout: float | None) -> StepOutcome:
        """Apply one tactic, rebuilding the state after restarts. INFRASTRUCTURE (the request never
        reached Lean) is retried; CRASH `crash_retries` times; other outcomes are final."""
        last: StepOutcome | None = None
        crashes = 0
        for _ in range(self._max_remat):
            try:
                handle = await self._handle(lease, path)
                result = await self._raw_tactic(lease, handle, tactic, timeout)
            except _Rematerialise as exc:
                last = StepOutcome(tactic, EdgeOutcome.INFRASTRUCTURE, error=f"lost the state: {exc}")
                continue
            outcome, new_handle = classify_tactic_result(tactic, result)
            if new_handle is not None:
                self._handles[path + (tactic,)] = new_handle
            self._forget_after_failure(outcome)
            if outcome.outcome is EdgeOutcome.CRASH and crashes < self._crash_retries:
                crashes += 1
            elif outcome.outcome is not EdgeOutcome.INFRASTRUCTURE:
                return outcome
            last = outcome
        assert last is not None
        return last


# ---------------------------------------------------------------------------------------------
# In-process stand-in (tests, benchmarks)
# ---------------------------------------------------------------------------------------------

StepFn = Callable[[str, str], StepOutcome]
"""(normalised goals text of the state, tactic) -> outcome."""


@dataclass
class CallbackTacticEnv(TacticEnv):
    """A fake tactic env: transitions come from `step_fn`; each call is charged `seconds_per_call`
    of (accounted, not slept) Lean time.

    States are tracked by path exactly like `PoolTacticEnv`, so searches cannot tell the two apart
    (except that this one never talks to Lean).
    """

    root_goals: tuple[str, ...]
    step_fn: StepFn
    seconds_per_call: float = 0.0
    _states: dict[Path_, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        TacticEnv.__init__(self)

    def _charge(self) -> None:
        self.stats.lean_calls += 1
        self.stats.lean_seconds += self.seconds_per_call

    async def start(self, problem: Problem) -> StartOutcome:
        self._charge()
        self._states[()] = normalise_goals(self.root_goals)
        return StartOutcome(self.root_goals, lean_calls=1, lean_seconds=self.seconds_per_call)

    def _one(self, path: Path_, tactic: str) -> StepOutcome:
        self._charge()
        try:
            state = self._states[path]
        except KeyError as exc:
            raise LeanError(f"CallbackTacticEnv: unknown state path {list(path)}") from exc
        outcome = self.step_fn(state, tactic)
        if outcome.outcome is EdgeOutcome.OK and outcome.goals is not None:
            self._states[path + (tactic,)] = normalise_goals(outcome.goals)
        if not outcome.seconds and self.seconds_per_call:
            outcome = StepOutcome(outcome.tactic, outcome.outcome, outcome.goals, outcome.error, self.seconds_per_call)
        return outcome

    @contextlib.asynccontextmanager
    async def _stepper(self) -> AsyncIterator[StepCall]:
        async def step(path: Path_, tactic: str, timeout: float | None) -> StepOutcome:
            return self._one(path, tactic)

        yield step
