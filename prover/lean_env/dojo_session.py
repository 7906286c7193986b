"""`DojoLeanSession`: tactic states from LeanDojo's `Dojo`, behind the `LeanSession` interface.

ReProver-style set-ups search with LeanDojo: a theorem of a traced repository is opened with
`lean_dojo.Dojo(Theorem(LeanGitRepo(url, commit), file_path, full_name))`, which replaces its
proof with LeanDojo's `lean_dojo_repl` tactic, and `dojo.run_tac(state, tactic)` answers with a
`TacticState`, `ProofFinished`, `LeanError` or `ProofGivenUp` (timeouts and crashes raise
`DojoTacticTimeoutError` / `DojoCrashError`). This session opens one `Dojo` per tree, classifies
those answers into the same `StepKind`s as the REPL session (the search cannot tell them apart),
and re-opens a crashed or timed-out `Dojo` by replaying the state's tactic path.

Only theorems with a repository reference (`StateOrigin.repo`, from `Problem.repo`) are opened in
a `Dojo`; every command (the checker's, a planner's sketch check) and every other origin goes to
`fallback`, the REPL session, so a proof found here still passes the command-mode checker before
it counts. `Dojo` is synchronous and slow to open (it elaborates the file up to the theorem):
calls run on worker threads, one at a time per tree.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from prover.errors import ConfigError
from prover.lean_env.session import (
    CommandOutcome,
    GoalState,
    LeanSession,
    StartOutcome,
    StateOrigin,
    StepBatch,
    StepKind,
    StepOutcome,
    apply_in_turn,
)

__all__ = ["DojoLeanSession", "load_lean_dojo", "split_goals"]


def load_lean_dojo() -> ModuleType:
    """The installed `lean_dojo` package (ConfigError saying how to install it otherwise)."""
    try:
        return importlib.import_module("lean_dojo")
    except ImportError as exc:
        raise ConfigError(f"lean.backend = 'dojo' needs LeanDojo: pip install 'prover[dojo]' ({exc})") from exc


def split_goals(pp: str) -> tuple[str, ...]:
    """A `TacticState.pp` (goals separated by blank lines, hypotheses never are) as a goal list."""
    return tuple(goal for goal in (part.strip("\n") for part in pp.split("\n\n")) if goal.strip())


@dataclass
class _DojoTree:
    """One open `Dojo` and the LeanDojo states of the tree's paths (valid for this `Dojo` only)."""

    dojo: Any = None
    context: Any = None
    states: dict[tuple[str, ...], Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DojoLeanSession(LeanSession):
    """`LeanSession` over LeanDojo for theorems of traced repositories; everything else (commands,
    sketches, origins without `repo`) is served by `fallback`.

    Args:
        fallback: the REPL session (`PoolLeanSession`) of the run.
        timeout: seconds per tactic (`Dojo(timeout=...)`).
        lean_dojo: the `lean_dojo` module (default: the installed package).
    """

    def __init__(self, fallback: LeanSession, *, timeout: float = 600.0, lean_dojo: ModuleType | None = None) -> None:
        super().__init__()
        self.fallback = fallback
        self.timeout = timeout
        self._ld = lean_dojo if lean_dojo is not None else load_lean_dojo()
        self._trees: dict[str, _DojoTree] = {}
        self._prefix = f"dojo-{secrets.token_hex(4)}"
        self._ids = itertools.count(1)

    # -- the interface ------------------------------------------------------------------------

    async def command(self, header: str, code: str, *, timeout: float | None = None) -> CommandOutcome:
        return await self.fallback.command(header, code, timeout=timeout)

    async def start(self, origin: StateOrigin, *, timeout: float | None = None) -> StartOutcome:
        if not self._ours(origin):
            return await self.fallback.start(origin, timeout=timeout)
        tree = f"{self._prefix}-{next(self._ids)}"
        home = self._trees.setdefault(tree, _DojoTree())
        started = time.monotonic()
        try:
            async with home.lock:
                init = await self._open(origin, home)
        except self._ld.DojoInitError as exc:
            self._trees.pop(tree, None)
            return StartOutcome(None, f"LeanDojo cannot start {origin.repo.full_name}: {exc}", False, 1, self._spent(started))
        except Exception as exc:  # noqa: BLE001 - a Dojo that cannot start is an infrastructure failure
            self._trees.pop(tree, None)
            return StartOutcome(None, f"LeanDojo failed to start: {type(exc).__name__}: {exc}", True, 1, self._spent(started))
        return StartOutcome(GoalState(origin, tree, (), split_goals(init.pp)), "", False, 1, self._spent(started))

    async def apply(
        self, state: GoalState, tactics: Sequence[str], *, chain: bool = False, timeout: float | None = None
    ) -> StepBatch:
        if not self._ours(state.origin):
            return await self.fallback.apply(state, tactics, chain=chain, timeout=timeout)
        calls, secs, remat = self.stats.lean_calls, self.stats.lean_seconds, self.stats.rematerialisations
        home = self._trees.setdefault(state.tree, _DojoTree())  # a state from elsewhere: a new tree here
        async with home.lock:
            outcomes = await apply_in_turn(state, tactics, chain, lambda current, tactic: self._step(home, current, tactic))
        return StepBatch(
            tuple(outcomes),
            self.stats.lean_calls - calls,
            self.stats.lean_seconds - secs,
            self.stats.rematerialisations - remat,
        )

    async def release(self, tree: str) -> None:
        home = self._trees.pop(tree, None)
        if home is None:
            await self.fallback.release(tree)
            return
        async with home.lock:
            await self._close(home)

    async def close(self) -> None:
        for tree in list(self._trees):
            await self.release(tree)
        await self.fallback.close()

    # -- Dojo processes -------------------------------------------------------------------------

    @staticmethod
    def _ours(origin: StateOrigin) -> bool:
        """A theorem of a traced repository, started from its own proof (not from a sketch's hole)."""
        return origin.repo is not None and origin.sorry_index == 0

    def _spent(self, started: float) -> float:
        seconds = time.monotonic() - started
        self.stats.lean_calls += 1
        self.stats.lean_seconds += seconds
        return seconds

    async def _open(self, origin: StateOrigin, home: _DojoTree) -> Any:
        """Open a `Dojo` on the origin's theorem; its initial state is the tree's root."""
        assert origin.repo is not None
        ld, ref = self._ld, origin.repo
        theorem = ld.Theorem(ld.LeanGitRepo(ref.url, ref.commit), Path(ref.file_path), ref.full_name)
        context = ld.Dojo(theorem, timeout=max(1, round(self.timeout)))
        dojo, init = await asyncio.to_thread(context.__enter__)
        home.context, home.dojo, home.states = context, dojo, {(): init}
        return init

    async def _close(self, home: _DojoTree) -> None:
        context, home.context, home.dojo, home.states = home.context, None, None, {}
        if context is not None:
            try:
                await asyncio.to_thread(context.__exit__, None, None, None)
            except Exception:  # noqa: BLE001 - a crashed Dojo may fail to clean up; it is gone anyway
                pass

    async def _state_of(self, home: _DojoTree, state: GoalState) -> Any:
        """LeanDojo's state for `state`, re-opening the `Dojo` and replaying the path if needed."""
        known = home.states.get(state.path)
        if known is not None:
            return known
        self.stats.rematerialisations += 1
        if home.dojo is None:
            await self._open(state.origin, home)
            self.stats.lean_calls += 1
        current = home.states[()]
        for i, tactic in enumerate(state.path):
            found = home.states.get(state.path[: i + 1])
            if found is None:
                result = await self._run(home, current, tactic)
                if not isinstance(result, self._ld.TacticState):
                    raise RuntimeError(f"replaying {tactic!r} no longer reaches the state: {result!r}")
                found = home.states[state.path[: i + 1]] = result
            current = found
        return current

    async def _run(self, home: _DojoTree, dojo_state: Any, tactic: str) -> Any:
        started = time.monotonic()
        try:
            return await asyncio.to_thread(home.dojo.run_tac, dojo_state, tactic)
        finally:
            self._spent(started)

    async def _step(self, home: _DojoTree, state: GoalState, tactic: str) -> StepOutcome:
        ld = self._ld
        started = time.monotonic()
        try:
            dojo_state = await self._state_of(home, state)
            result = await self._run(home, dojo_state, tactic)
        except ld.DojoTacticTimeoutError as exc:
            await self._close(home)  # the process may still be busy: a fresh Dojo serves the next call
            return StepOutcome(tactic, StepKind.TIMEOUT, error=str(exc) or "tactic timed out", seconds=time.monotonic() - started)
        except ld.DojoCrashError as exc:
            await self._close(home)
            kind = StepKind.OUT_OF_MEMORY if exc.is_out_of_memory else StepKind.CRASH
            return StepOutcome(tactic, kind, error=f"LeanDojo crashed: {exc}", seconds=time.monotonic() - started)
        except Exception as exc:  # noqa: BLE001 - lost state or a broken Dojo: never Lean's verdict
            await self._close(home)
            return StepOutcome(tactic, StepKind.INFRASTRUCTURE, error=f"{type(exc).__name__}: {exc}",
                               seconds=time.monotonic() - started)
        seconds = time.monotonic() - started
        if isinstance(result, ld.TacticState):
            child = state.at((*state.path, tactic), split_goals(result.pp))
            home.states[child.path] = result
            return StepOutcome(tactic, StepKind.OK, child, seconds=seconds)
        if isinstance(result, ld.ProofFinished):
            return StepOutcome(tactic, StepKind.PROVED, seconds=seconds)
        if isinstance(result, ld.ProofGivenUp):
            return StepOutcome(tactic, StepKind.INCOMPLETE, error="the proof contains sorry", seconds=seconds)
        if isinstance(result, ld.LeanError):
            return StepOutcome(tactic, StepKind.ERROR, error=result.error, seconds=seconds)
        return StepOutcome(tactic, StepKind.INFRASTRUCTURE, error=f"unexpected LeanDojo result {result!r}", seconds=seconds)
