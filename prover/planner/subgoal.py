"""What crosses between an episode and a sub-prover: a hole to prove, and what became of it.

A `SubgoalJob` is self-contained (the goal as Lean printed it, where its proof state comes from,
the sub-prover and its budget, the seed), so any prover agent of a Ray cluster can run it. Its
`SubgoalOutcome` carries the proof text for the hole(s) and the job's attempts, numbered from 0
within the job; the episode numbers and records them (`prover.planner.records`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.lean_env.session import StateOrigin
from prover.planner.lemma import RenderedLemma
from prover.search.proof_cache import CacheKey
from prover.types import Attempt, Problem

__all__ = ["SubgoalJob", "SubgoalMethod", "SubgoalOutcome"]

FROZEN = ConfigDict(frozen=True, extra="forbid")

SubgoalMethod = Literal["cache", "lemma", "tactic", "search", "decomposed"]
"""How a hole was proved: a cached proof replayed on its state, whole proofs of its lemma,
whole proofs run on its proof state (tactic mode), best-first search, or a decomposition."""


class SubgoalJob(BaseModel):
    """One distinct goal of a checked sketch, to be proved by a sub-prover."""

    model_config = FROZEN
    problem: Problem
    """The theorem whose sketch has the hole (the benchmark problem, or a decomposed hole's lemma)."""
    step: str
    """Where in the episode the hole is (`prover.planner.records` step ids)."""
    name: str
    """The claim's name (the `have`'s, or `hole<i>`): prompts and the lemma's name use it."""
    lemma_name: str
    goal: str
    """The goal exactly as Lean printed it (context and target)."""
    origin_code: str
    """The sketch as it was elaborated (`SketchCheck.sent`): the hole's state is re-created from it."""
    sorry_index: int
    strategy: str
    """`planner.subgoal_strategy`."""
    passes: int
    seed: int
    pp_options: tuple[tuple[str, str], ...] = ()
    """Set while the rendered lemma is checked (the same as for the sketch)."""

    @property
    def origin(self) -> StateOrigin:
        return StateOrigin(self.problem.header, self.origin_code, self.sorry_index)

    @property
    def cache_key(self) -> CacheKey:
        """The hole's goal state in the proof cache (the key best-first search uses for its root)."""
        return CacheKey.of(self.problem.header, (self.goal,))


class SubgoalOutcome(BaseModel):
    """What a sub-prover made of one job."""

    model_config = FROZEN
    step: str
    goal: str
    proved: bool
    proof: str | None = None
    """A tactic block that closes the goal in the hole (relative indentation, no common indent)."""
    aux: str = ""
    """Declarations the proof needs before the theorem (a lemma proof's own auxiliary lemmas)."""
    method: SubgoalMethod | None = None
    cache_hit: bool = False
    """Proved by a cached proof: no sampling."""
    lemma: RenderedLemma | None = None
    """The hole as a standalone lemma, when it rendered and Lean confirmed it (decomposable)."""
    detail: str = ""
    """Why it is not proved (or how it was)."""
    infrastructure: bool = False
    """A process fault (timeout, crash, lost worker) stood in the way: not the claim's fault."""
    ran_on: str = ""
    """`host:pid` of the process that ran the job (a Ray agent, or this process)."""
    attempts: tuple[Attempt, ...] = ()
    """The job's attempts (`sample_index` from 0 within the job; the episode renumbers them)."""

    def summary(self) -> dict[str, object]:
        """The outcome as recorded with the job's last attempt (everything but the attempts)."""
        return self.model_dump(mode="json", exclude={"attempts"})
