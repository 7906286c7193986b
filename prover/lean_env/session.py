"""`LeanSession`: the one Lean interface strategies use, and its pool-backed implementation.

A strategy asks for three things, and gets typed, already-classified answers:

- `command(header, code)`: elaborate code on the header's warm env -> `CommandOutcome` (messages,
  and every `sorry` as a `SorryHole` with its goal and a ready `GoalState`);
- `start(origin)`: a goal state from a theorem stated with `sorry`, or from one `sorry` of any
  command (a planner's sketch) -> `StartOutcome`;
- `apply(state, tactics)`: tactics on a goal state, as siblings or as a chain -> `StepBatch`.

Goal states are values (`GoalState`: where the state came from, the tactics applied since, its
goals), never REPL handles. `PoolLeanSession` maps them to proof-state handles on one worker per
tree and keeps a tree on that worker (`lease(key, affinity=worker)`); when the worker restarted
(crash, timeout, OOM, recycling, a restarted Ray pool actor) it re-materialises the state by
replaying the tactic path from the origin, so searches survive worker restarts. Replies are
classified once: the worker classifies the REPL's answer (`OutcomeKind`); here a tactic's OK
is only split into PROVED (`proofStatus == "Completed"`, no goals) and a new state.

Reading a tactic reply (lean_interaction.md section 1.5): any error -> ERROR, even with
`goals == []`; only "Completed" closes the proof, `goals == []` otherwise is INCOMPLETE; a
`{"message": ...}` reply is an ERROR; timeout / crash / OOM / infrastructure are their own kinds.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple, Protocol

from prover.errors import StaleHandleError
from prover.lean_env.protocol import CommandResponse, ProofStepResponse
from prover.lean_env.results import EnvKey, OutcomeKind, ProofStateHandle, ReplResult, WorkerRef
from prover.lean_env.retry import RetryPolicy
from prover.types import LeanMessage, Pos, Problem, RepoRef

__all__ = [
    "CommandOutcome",
    "GoalState",
    "LeanSession",
    "PoolLeanSession",
    "SessionStats",
    "SorryHole",
    "StartOutcome",
    "StateOrigin",
    "StepBatch",
    "StepKind",
    "StepOutcome",
    "apply_in_turn",
    "continues",
    "classify_step",
    "normalise_goals",
]


class StepKind(str, Enum):
    """What one tactic did to one state (the values are the search tree's edge outcomes)."""

    OK = "ok"
    PROVED = "proved"
    ERROR = "error"
    INCOMPLETE = "incomplete"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    CRASH = "crash"
    INFRASTRUCTURE = "infrastructure"


LEAN_VERDICTS = frozenset({StepKind.OK, StepKind.PROVED, StepKind.ERROR, StepKind.INCOMPLETE})
"""Step kinds that are Lean's answer about the tactic (not an accident of the process)."""

_PROCESS_FAILURES = {
    OutcomeKind.TIMEOUT: StepKind.TIMEOUT,
    OutcomeKind.OUT_OF_MEMORY: StepKind.OUT_OF_MEMORY,
    OutcomeKind.CRASH: StepKind.CRASH,
    OutcomeKind.INFRASTRUCTURE: StepKind.INFRASTRUCTURE,
}
_RESTARTING = frozenset(_PROCESS_FAILURES.values())
"""After these the worker process restarted: every handle of its previous generation is gone."""
_FAILURE_OF_STEP = {step: outcome for outcome, step in _PROCESS_FAILURES.items()}


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


_NEEDS_LINE_STRIP = re.compile(r"[^\S\n]\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""Whitespace before a line break, or a line break other than `\\n` (what `splitlines` also splits
at): only such goals need the line-by-line pass; the rest are already canonical once stripped."""


def normalise_goals(goals: Sequence[str]) -> str:
    """Canonical text of a goal list (search-tree node ids, proof-cache keys): trailing spaces
    dropped, goals separated by a blank line."""
    if len(goals) != 1:
        return "\n\n".join(map(_normalise_goal, goals))
    goal = goals[0].strip()  # the common case, without a call per goal
    return goal if _NEEDS_LINE_STRIP.search(goal) is None else _normalise_goal(goal)


def _normalise_goal(goal: str) -> str:
    goal = goal.strip()
    if _NEEDS_LINE_STRIP.search(goal) is not None:
        goal = "\n".join(line.rstrip() for line in goal.splitlines())
    return goal


@dataclass(frozen=True, slots=True)
class StateOrigin:
    """How to (re)create the root of a goal-state tree: `sorries[sorry_index]` of `code` on the
    header's env. A theorem's origin is its statement with `sorry` as the proof, and names the
    theorem's place in its repository when the problem knows it (sessions that work on traced
    repositories, like LeanDojo's, start from there)."""

    header: str
    code: str
    sorry_index: int = 0
    repo: RepoRef | None = None

    @classmethod
    def theorem(cls, problem: Problem) -> StateOrigin:
        return cls(problem.header, problem.formal_statement.rstrip() + " sorry", repo=problem.repo)


class GoalState(NamedTuple):
    """A proof state: its origin, the tactics applied since, and its goals.

    `tree` names the tree of states that share a worker (one per `start`); states of different
    trees never wait for each other's worker. Any session can re-materialise a state from
    `origin` and `path`, so a state may be handed to another process.

    A named tuple (immutable like the frozen dataclasses here, but built several times faster):
    a search makes one per tactic, as it makes a `StepOutcome`.
    """

    origin: StateOrigin
    tree: str
    path: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()

    def at(self, path: Sequence[str], goals: Sequence[str] = ()) -> GoalState:
        """The state of the same tree reached by `path` from the origin."""
        return GoalState(self.origin, self.tree, tuple(path), tuple(goals))


class StepOutcome(NamedTuple):
    """What one tactic did: the new state (OK), nothing (PROVED), or why it failed."""

    tactic: str
    kind: StepKind
    state: GoalState | None = None
    error: str = ""
    seconds: float = 0.0

    @property
    def goals(self) -> tuple[str, ...] | None:
        return None if self.state is None else self.state.goals


@dataclass(frozen=True, slots=True)
class StepBatch:
    """Outcomes of several tactics plus the Lean cost of producing them (replays included)."""

    outcomes: tuple[StepOutcome, ...]
    lean_calls: int = 0
    lean_seconds: float = 0.0
    rematerialisations: int = 0


@dataclass(frozen=True, slots=True)
class StartOutcome:
    """The root state of a tree, or why it could not be started."""

    state: GoalState | None
    error: str = ""
    infrastructure: bool = False
    """The failure was a timeout/crash/infrastructure problem, not Lean rejecting the code."""
    lean_calls: int = 0
    lean_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SorryHole:
    """One `sorry` of an elaborated command: its goal (with context), where it is, its state."""

    goal: str
    pos: Pos | None
    end_pos: Pos | None
    state: GoalState | None
    """None when the REPL gave no proof state for it."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """A command's result: the worker's classification, Lean's messages, the sorries."""

    kind: OutcomeKind
    messages: tuple[LeanMessage, ...] = ()
    sorries: tuple[SorryHole, ...] = ()
    seconds: float = 0.0
    detail: str = ""

    @property
    def errors(self) -> tuple[LeanMessage, ...]:
        return tuple(m for m in self.messages if m.severity == "error")

    @property
    def infrastructure(self) -> bool:
        """The process failed (timeout, crash, OOM, infrastructure): not Lean's verdict."""
        return self.kind in _PROCESS_FAILURES


@dataclass
class SessionStats:
    lean_calls: int = 0
    lean_seconds: float = 0.0
    rematerialisations: int = 0
    """Times a state had to be rebuilt by replaying its path after a worker restart."""


# ---------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------


class LeanSession(ABC):
    """Lean as strategies see it. Safe for concurrent callers; implementations keep the Lean
    cost of every call in the returned values (and in `stats`)."""

    def __init__(self) -> None:
        self.stats = SessionStats()

    @abstractmethod
    async def command(self, header: str, code: str, *, timeout: float | None = None) -> CommandOutcome:
        """Elaborate `code` on `header`'s env; its sorries come back as holes with goal states."""

    @abstractmethod
    async def start(self, origin: StateOrigin, *, timeout: float | None = None) -> StartOutcome:
        """The root goal state of a new tree (`origin.code`'s `sorry` number `sorry_index`)."""

    @abstractmethod
    async def apply(
        self, state: GoalState, tactics: Sequence[str], *, chain: bool = False, timeout: float | None = None
    ) -> StepBatch:
        """Apply `tactics` to `state`.

        Siblings (`chain=False`): each tactic on `state`, stopping once one proves it.
        Chain (`chain=True`): one after another, stopping at the first outcome that is not OK.
        """

    async def release(self, tree: str) -> None:
        """Forget the handles of a tree (the search is over). Idempotent."""

    async def close(self) -> None:
        """Forget everything. Idempotent."""


async def apply_in_turn(
    state: GoalState, tactics: Sequence[str], chain: bool, step: Callable[[GoalState, str], Awaitable[StepOutcome]]
) -> list[StepOutcome]:
    """The sibling / chain rule of `LeanSession.apply`, with `step` applying one tactic."""
    outcomes: list[StepOutcome] = []
    current = state
    for tactic in tactics:
        outcome = await step(current, tactic)
        outcomes.append(outcome)
        if not continues(outcome, chain):
            break
        if chain:
            current = outcome.state
    return outcomes


def continues(outcome: StepOutcome, chain: bool) -> bool:
    """Whether `apply` goes on after `outcome`: siblings stop once one proves the state, a chain
    at its first step that is not OK."""
    if chain:
        return outcome.kind is StepKind.OK and outcome.state is not None
    return outcome.kind is not StepKind.PROVED


def classify_step(tactic: str, result: ReplResult, state: GoalState) -> tuple[StepOutcome, ProofStateHandle | None]:
    """A tactic request's `ReplResult` as a `StepOutcome` (+ the new handle when OK).

    The worker already classified Lean's answer; only OK is refined here: "Completed" with no
    goals is PROVED, no goals otherwise INCOMPLETE, goals a new state of `state`'s tree.
    """
    seconds = result.seconds
    if result.kind in _PROCESS_FAILURES:
        kind = _PROCESS_FAILURES[result.kind]
        return StepOutcome(tactic, kind, error=result.detail or kind.value, seconds=seconds), None
    if result.kind is not OutcomeKind.OK:
        kind = StepKind.ERROR if result.kind is OutcomeKind.LEAN_ERROR else StepKind.INCOMPLETE
        return StepOutcome(tactic, kind, error=result.detail or result.kind.value, seconds=seconds), None
    response = result.response
    if not isinstance(response, ProofStepResponse):
        return StepOutcome(tactic, StepKind.INFRASTRUCTURE, error="reply is not a tactic reply", seconds=seconds), None
    goals = tuple(response.goals)
    if not goals:
        if response.proof_status == "Completed":
            return StepOutcome(tactic, StepKind.PROVED, seconds=seconds), None
        error = response.proof_status or "no goals but not Completed"
        return StepOutcome(tactic, StepKind.INCOMPLETE, error=error, seconds=seconds), None
    if result.proof_state is None:
        return StepOutcome(tactic, StepKind.INFRASTRUCTURE, error="reply without a proof state", seconds=seconds), None
    child = state.at((*state.path, tactic), goals)
    return StepOutcome(tactic, StepKind.OK, state=child, seconds=seconds), result.proof_state


# ---------------------------------------------------------------------------------------------
# The pool-backed session
# ---------------------------------------------------------------------------------------------


class LeasePool(Protocol):
    """What `PoolLeanSession` needs of a pool: `LeanPool`, or the Ray pool proxy."""

    def env_key(self, header: str) -> EnvKey: ...

    def lease(self, key: EnvKey, *, affinity: WorkerRef | None = None) -> contextlib.AbstractAsyncContextManager[Any]: ...


class _LostState(Exception):
    """A state could not be (re)built on the leased worker."""


@dataclass
class _Tree:
    """Handles of one tree on its home worker."""

    worker: WorkerRef | None = None
    handles: dict[tuple[str, ...], ProofStateHandle] = field(default_factory=dict)


class PoolLeanSession(LeanSession):
    """`LeanSession` over a `LeanPool` (in-process) or a `RayPoolProxy` (in a Ray agent).

    Args:
        pool: anything with `env_key(header)` and `lease(key, affinity=...)`.
        retry: which process failures of a tactic step, a command or a start are tried again on
            the restarted process, and how often (`RetryPolicy.from_config(config.lean)`, the
            checker's rule). A crash can be the tactic's fault or an accident (the process was
            recycled or killed meanwhile); retries keep a good tactic from being lost to an
            accident, and a tactic that really kills Lean ends as CRASH after them. A state that
            cannot be rebuilt after a restart counts as an infrastructure failure (its tactic
            then ends as INFRASTRUCTURE, which is never a dead end).
    """

    def __init__(self, pool: LeasePool, *, retry: RetryPolicy | None = None) -> None:
        super().__init__()
        self._pool = pool
        self._retry = retry or RetryPolicy()
        self._trees: dict[str, _Tree] = {}
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)

    # -- the interface ------------------------------------------------------------------------

    async def command(self, header: str, code: str, *, timeout: float | None = None) -> CommandOutcome:
        origin = StateOrigin(header, code)
        tree = self._new_tree()
        async with self._lease(origin, tree) as lease:
            for _ in range(self._retry.tries):
                try:
                    result = await lease.command(code, timeout=timeout)
                except StaleHandleError as exc:  # the lease itself is gone (restarted pool actor)
                    return CommandOutcome(OutcomeKind.INFRASTRUCTURE, detail=f"lost the worker: {exc}")
                self._account(result)
                if not self._retry.retried(result.kind):
                    break
            response = result.response
            if not isinstance(response, CommandResponse):
                detail = result.detail or "reply is not a command reply"
                kind = result.kind if result.kind is not OutcomeKind.OK else OutcomeKind.INFRASTRUCTURE
                return CommandOutcome(kind, seconds=result.seconds, detail=detail)
            holes = []
            for index, (sorry, handle) in enumerate(itertools.zip_longest(response.sorries, result.sorry_states)):
                state = None
                if handle is not None:
                    hole_tree = tree if index == 0 else self._new_tree()
                    self._trees[hole_tree].handles[()] = handle
                    self._trees[hole_tree].worker = lease.worker
                    state = GoalState(StateOrigin(header, code, index), hole_tree, (), (sorry.goal,))
                holes.append(SorryHole(sorry.goal, sorry.pos, sorry.end_pos, state))
            if not holes:
                self._trees.pop(tree, None)
            return CommandOutcome(result.kind, tuple(response.messages), tuple(holes), result.seconds, result.detail)

    async def start(self, origin: StateOrigin, *, timeout: float | None = None) -> StartOutcome:
        tree = self._new_tree()
        calls, secs = self.stats.lean_calls, self.stats.lean_seconds
        async with self._lease(origin, tree) as lease:
            for _ in range(self._retry.tries):
                try:
                    goals, error, failure = await self._start_on(lease, origin, tree, timeout)
                except _LostState as exc:
                    goals, error, failure = None, f"lost the worker: {exc}", OutcomeKind.INFRASTRUCTURE
                if failure is None or not self._retry.retried(failure):
                    break
        if goals is None:
            self._trees.pop(tree, None)
        state = None if goals is None else GoalState(origin, tree, (), goals)
        infra = failure is not None
        return StartOutcome(state, error, infra, self.stats.lean_calls - calls, self.stats.lean_seconds - secs)

    async def apply(
        self, state: GoalState, tactics: Sequence[str], *, chain: bool = False, timeout: float | None = None
    ) -> StepBatch:
        calls, secs, remat = self.stats.lean_calls, self.stats.lean_seconds, self.stats.rematerialisations
        async with self._lease(state.origin, state.tree) as lease:
            outcomes = await apply_in_turn(
                state, tactics, chain, lambda current, tactic: self._step(lease, current, tactic, timeout)
            )
        return StepBatch(
            tuple(outcomes),
            self.stats.lean_calls - calls,
            self.stats.lean_seconds - secs,
            self.stats.rematerialisations - remat,
        )

    async def release(self, tree: str) -> None:
        self._trees.pop(tree, None)

    async def close(self) -> None:
        self._trees.clear()

    # -- trees and leases ---------------------------------------------------------------------

    def _new_tree(self) -> str:
        name = f"{self._prefix}-{next(self._ids)}"
        self._trees[name] = _Tree()
        return name

    @contextlib.asynccontextmanager
    async def _lease(self, origin: StateOrigin, tree: str) -> AsyncIterator[Any]:
        """A lease on the tree's home worker (any worker if it is gone), adopted on entry."""
        home = self._trees.setdefault(tree, _Tree())  # a state from another session: a new tree here
        async with self._pool.lease(self._pool.env_key(origin.header), affinity=home.worker) as lease:
            self._adopt(home, lease)
            yield lease

    @staticmethod
    def _adopt(home: _Tree, lease: Any) -> None:
        """Handles are only valid on the worker (and generation) that made them."""
        if lease.worker != home.worker:
            home.worker = lease.worker
            home.handles.clear()

    def _account(self, result: ReplResult) -> None:
        self.stats.lean_calls += 1
        self.stats.lean_seconds += result.seconds

    async def _start_on(
        self, lease: Any, origin: StateOrigin, tree: str, timeout: float | None
    ) -> tuple[tuple[str, ...] | None, str, OutcomeKind | None]:
        """Elaborate the origin and keep the proof state of its sorry as the tree's root.

        Returns (root goals or None, why not, the process failure if that is why)."""
        try:
            result = await lease.command(origin.code, timeout=timeout)
        except StaleHandleError as exc:
            self._trees[tree].handles.clear()
            raise _LostState(str(exc)) from exc
        self._account(result)
        if result.kind in _PROCESS_FAILURES or result.response is None:
            failure = result.kind if result.kind in _PROCESS_FAILURES else OutcomeKind.INFRASTRUCTURE
            return None, f"{result.kind.value}: {result.detail}", failure
        response = result.response
        if not isinstance(response, CommandResponse):
            return None, result.detail or "reply is not a command reply", None
        if response.has_errors():
            return None, "\n".join(m.data for m in response.errors()), None
        states = result.sorry_states
        if origin.sorry_index >= len(states) or states[origin.sorry_index] is None:
            return None, f"no proof state for sorry {origin.sorry_index} (the code has {len(states)})", None
        self._trees[tree].handles[()] = states[origin.sorry_index]  # type: ignore[assignment]
        return (response.sorries[origin.sorry_index].goal,), "", None

    async def _handle(self, lease: Any, state: GoalState) -> ProofStateHandle:
        """The handle of `state` on this lease's worker, replaying its path if needed."""
        home = self._trees.setdefault(state.tree, _Tree())
        self._adopt(home, lease)
        handle = home.handles.get(state.path)
        if handle is not None and handle.worker == lease.worker:
            return handle
        self.stats.rematerialisations += 1
        return await self._rebuild(lease, state, home)

    async def _rebuild(self, lease: Any, state: GoalState, home: _Tree) -> ProofStateHandle:
        path = state.path
        depth = len(path)
        while depth > 0 and path[:depth] not in home.handles:
            depth -= 1
        if depth == 0 and () not in home.handles:
            goals, error, _ = await self._start_on(lease, state.origin, state.tree, None)
            if goals is None:
                raise _LostState(f"restart failed: {error}")
        for i in range(depth, len(path)):
            result = await self._raw_tactic(lease, home.handles[path[:i]], path[i], None, home)
            outcome, handle = classify_step(path[i], result, state.at(path[:i]))
            if handle is None:
                self._forget_after(outcome, home)
                raise _LostState(f"replaying {path[i]!r} gave {outcome.kind.value}: {outcome.error}")
            home.handles[path[: i + 1]] = handle
        return home.handles[path]

    async def _raw_tactic(
        self, lease: Any, handle: ProofStateHandle, tactic: str, timeout: float | None, home: _Tree
    ) -> ReplResult:
        try:
            result = await lease.tactic(handle, tactic, timeout=timeout)
        except StaleHandleError as exc:
            home.handles.clear()
            raise _LostState(str(exc)) from exc
        self._account(result)
        return result

    @staticmethod
    def _forget_after(outcome: StepOutcome, home: _Tree) -> None:
        if outcome.kind in _RESTARTING:
            home.handles.clear()

    async def _step(self, lease: Any, state: GoalState, tactic: str, timeout: float | None) -> StepOutcome:
        """Apply one tactic, rebuilding the state after restarts. A process failure or a lost state
        is tried again as the retry policy says (the last try's outcome counts); Lean's answers
        are final."""
        home = self._trees.setdefault(state.tree, _Tree())
        for _ in range(self._retry.tries):
            try:
                handle = await self._handle(lease, state)
                result = await self._raw_tactic(lease, handle, tactic, timeout, home)
            except _LostState as exc:
                outcome = StepOutcome(tactic, StepKind.INFRASTRUCTURE, error=f"lost the state: {exc}")
                continue
            outcome, new_handle = classify_step(tactic, result, state)
            if new_handle is not None:
                home.handles[(*state.path, tactic)] = new_handle
            self._forget_after(outcome, home)
            failure = _FAILURE_OF_STEP.get(outcome.kind)
            if failure is None or not self._retry.retried(failure):
                return outcome
        return outcome
