"""Fakes and fixtures for the best-first search tests (owned by the bfs area).

`TableSampler` answers a tactic request from a table keyed by the goal state in the prompt (the
`bfs` format's `{goals}:::`), so each state gets its own scripted suggestions and log-probs.
`table_env` builds an in-process `ScriptedLeanSession` from a transition table. Neither is Lean or
a model; the simulated-REPL tests use the real pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from prover.config import LeanConfig
from prover.llm.base import Sampler
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import StepKind, normalise_goals
from prover.types import (
    CheckStatus,
    Completion,
    GenRequest,
    GenResult,
    Problem,
    Verdict,
)

Suggestions = Mapping[str, Sequence[tuple[str, float]]]


class TableSampler(Sampler):
    """Scripted tactic suggestions per goal state: {goals text: [(tactic, logprob), ...]}."""

    backend = "table"

    def __init__(self, table: Suggestions, *, default: Sequence[tuple[str, float]] = ()) -> None:
        super().__init__()
        self.table = {normalise_goals([k]): list(v) for k, v in table.items()}
        self.default = list(default)
        self.prompts: list[str] = []

    async def generate(self, request: GenRequest) -> GenResult:
        goals = normalise_goals([(request.prompt or "").removesuffix(":::")])
        self.prompts.append(goals)
        items = self.table.get(goals, self.default)[: request.n]
        completions = tuple(Completion(text=t, tokens=1, cumulative_logprob=lp) for t, lp in items)
        result = GenResult(completions=completions)
        self.stats.add(request, result)
        return result


Transitions = Mapping[tuple[str, str], object]
"""(goals text, tactic) -> list of goals | "QED" | "error: ..." | StepKind."""


def table_env(root: Sequence[str], transitions: Transitions, *, seconds_per_call: float = 0.0) -> ScriptedLeanSession:
    table = {(normalise_goals([g]), t): v for (g, t), v in transitions.items()}

    def step(goals: str, tactic: str) -> Transition:
        value = table.get((goals, tactic))
        if value is None:
            return Transition(StepKind.ERROR, error=f"tactic '{tactic}' failed")
        if value == "QED":
            return Transition(StepKind.PROVED)
        if isinstance(value, StepKind):
            return Transition(value, error=value.value)
        if isinstance(value, str):
            return Transition(StepKind.ERROR, error=value)
        return Transition(StepKind.OK, goals=tuple(value))  # type: ignore[arg-type]

    return ScriptedLeanSession(tuple(root), step, seconds_per_call=seconds_per_call)


# -- simulated REPL pool and problems -----------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data" / "bfs"


@contextlib.asynccontextmanager
async def sim_pool(scenario: str = "nat.yaml", *, workers: int = 1) -> AsyncIterator:
    """A real `LeanPool` over simulated REPL processes driven by tests/data/bfs/<scenario>."""
    from prover.lean_env.pool import LeanPool
    from prover.lean_env.simulated_repl import simulated_repl_command

    config = LeanConfig(repl_cmd=simulated_repl_command(DATA / scenario), workers=workers, timeout=20,
                        rss_limit_mb=None)
    async with LeanPool(config) as pool:
        yield pool


P_ADD = Problem(name="t_add_zero", formal_statement="theorem t_add_zero (x : Nat) : x + 0 = x := by")
P_TRAP = Problem(name="t_trap", formal_statement="theorem t_trap (a b : Nat) (h : a = b) : b = a := by")
P_CHAIN = Problem(name="t_chain", formal_statement="theorem t_chain (n : Nat) : n * 1 = n := by")
P_LONG = Problem(name="t_long", formal_statement="theorem t_long : L0 := by")
P_TACTIC_ONLY = Problem(name="t_tactic_only", formal_statement="theorem t_tactic_only : M := by")

R, A = "x : Nat\n⊢ x + 0 = x", "x : Nat\n⊢ x = x"
T, T2 = "a b : Nat\nh : a = b\n⊢ b = a", "a : Nat\n⊢ a = a"
C0, C1, C2 = "n : Nat\n⊢ n * 1 = n", "n : Nat\n⊢ C1", "n : Nat\n⊢ C2"
C3, D1 = "n : Nat\n⊢ C3", "n : Nat\n⊢ D1"

SUGGESTIONS: dict[str, list[tuple[str, float]]] = {
    R: [("exact foo", -0.05), ("rw [Nat.add_zero]", -0.1), ("exact?", -0.01), ("sorry", -0.02),
        ("simp only [Nat.add_zero]", -0.3), ("rw [Nat.add_zero]", -0.2)],
    A: [("rfl", -0.1)],
    T: [("omega_trap", -0.01), ("subst h", -0.5)],
    T2: [("rfl", -0.1)],
    C0: [("step_a", -0.1)],
    C1: [("detour", -0.05), ("step_b", -0.2)],
    C2: [("step_c", -0.1)],
    C3: [("close", -0.1)],
    D1: [("nope", -0.1)],
    **{f"⊢ L{k}": [("next", -0.1), ("side", -0.2)] for k in range(9)},
    **{f"⊢ S{k}": [("nothing", -0.1)] for k in range(4)},
    "⊢ M": [("magic", -0.1)],
}


class VerdictChecker:
    """A checker stand-in that returns one fixed verdict (to test what a rejection does)."""

    def __init__(self, status: CheckStatus, rule: str) -> None:
        self.verdict = Verdict(status=status, rule=rule)
        self.checked: list[str] = []

    async def check(self, problem: Problem, proof: str) -> Verdict:
        self.checked.append(proof)
        return self.verdict
