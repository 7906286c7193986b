"""`ScriptedLeanSession`: an in-process stand-in for Lean, driven by a Python function.

Tests and the search-bookkeeping benchmark use it to run strategies without any REPL process:
transitions come from `step_fn(goals_text, tactic)`, each call is charged `seconds_per_call` of
(accounted, not slept) Lean time. It is not Lean and checks nothing; states are tracked by tree
and path exactly like `PoolLeanSession`, so a search cannot tell the two apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prover.errors import LeanError
from prover.lean_env.results import OutcomeKind
from prover.lean_env.session import (
    CommandOutcome,
    GoalState,
    LeanSession,
    StartOutcome,
    StateOrigin,
    StepBatch,
    StepKind,
    StepOutcome,
    continues,
    normalise_goals,
)

__all__ = ["ScriptedLeanSession", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    """What a scripted tactic does: a kind, the new goals (OK), an error text."""

    kind: StepKind
    goals: tuple[str, ...] | None = None
    error: str = ""


StepFn = Callable[[str, str], Transition]
"""(normalised goals text of the state, tactic) -> transition."""


class ScriptedLeanSession(LeanSession):
    """A stand-in session: every tree starts at `root_goals`; `step_fn` decides each tactic."""

    def __init__(self, root_goals: Sequence[str], step_fn: StepFn, *, seconds_per_call: float = 0.0) -> None:
        super().__init__()
        self.root_goals = tuple(root_goals)
        self.step_fn = step_fn
        self.seconds_per_call = seconds_per_call
        self._trees: dict[str, set[tuple[str, ...]]] = {}
        """tree -> tactic paths of the states it produced."""
        self._ids = itertools.count(1)

    def _charge(self) -> None:
        self.stats.lean_calls += 1
        self.stats.lean_seconds += self.seconds_per_call

    async def command(self, header: str, code: str, *, timeout: float | None = None) -> CommandOutcome:
        self._charge()
        return CommandOutcome(OutcomeKind.OK, seconds=self.seconds_per_call)

    async def start(self, origin: StateOrigin, *, timeout: float | None = None) -> StartOutcome:
        self._charge()
        tree = f"scripted-{next(self._ids)}"
        self._trees[tree] = {()}
        state = GoalState(origin, tree, (), self.root_goals)
        return StartOutcome(state, lean_calls=1, lean_seconds=self.seconds_per_call)

    async def apply(
        self, state: GoalState, tactics: Sequence[str], *, chain: bool = False, timeout: float | None = None
    ) -> StepBatch:
        # The sibling / chain rule of `apply_in_turn`, without a coroutine per tactic: siblings
        # share one lookup of their state.
        outcomes: list[StepOutcome] = []
        current, text = state, self._text(state)
        produced = self._trees[state.tree]
        for tactic in tactics:
            outcome = self._step(current, text, tactic, produced)
            outcomes.append(outcome)
            if not continues(outcome, chain):
                break
            if chain:
                current, text = outcome.state, normalise_goals(outcome.state.goals)
        made = len(outcomes)
        self.stats.lean_calls += made
        self.stats.lean_seconds += made * self.seconds_per_call
        return StepBatch(tuple(outcomes), made, made * self.seconds_per_call)

    def _text(self, state: GoalState) -> str:
        """Normalised goals of a state this session produced (LeanError for any other)."""
        tree = self._trees.get(state.tree)
        if tree is None or state.path not in tree:
            raise LeanError(f"ScriptedLeanSession: unknown state path {list(state.path)} of tree {state.tree}")
        return normalise_goals(state.goals)

    def _step(self, state: GoalState, text: str, tactic: str, produced: set[tuple[str, ...]]) -> StepOutcome:
        step = self.step_fn(text, tactic)
        child = None
        if step.kind is StepKind.OK and step.goals is not None:
            child = GoalState(state.origin, state.tree, (*state.path, tactic), tuple(step.goals))
            produced.add(child.path)
        return StepOutcome(tactic, step.kind, child, step.error, self.seconds_per_call)

    async def release(self, tree: str) -> None:
        self._trees.pop(tree, None)
