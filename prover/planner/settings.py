"""The planner's settings (its `planner:` config section), its model role and its registry entry.

The strategy decomposes a theorem: a planner model writes a sketch of `have ... := by sorry`
steps, Lean checks it and reports each hole's goal, sub-provers prove the holes in parallel
through the shared proof cache, the proofs are stitched into the sketch and the full checker
decides (`prover.planner.episode` describes one episode). This module stays light: the registry
imports it to validate configs, and the strategy itself is imported only when a run builds one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prover.planner.lemma import SUBGOAL_PP_OPTIONS, PpOption
from prover.planner.prompts import PlannerPrompts
from prover.registry import CliFlag, StrategySpec
from prover.search.base import PROVER_ROLE
from prover.search.bfs import SPEC as BFS_SPEC
from prover.search.whole_proof import SPEC as WHOLE_PROOF_SPEC

__all__ = ["DEFAULT_PLANNER_MAX_TOKENS", "PLANNER_ROLE", "SPEC", "SUBGOAL_STRATEGIES", "PlannerConfig"]

NAME = "planner"
PLANNER_ROLE = "planner"
"""The model role that writes sketches (`samplers.planner`, `--planner-model` ...); sub-provers
sample with the default role."""

SUBGOAL_STRATEGIES: tuple[str, ...] = (WHOLE_PROOF_SPEC.name, BFS_SPEC.name)
"""How a subgoal can be proved: whole proofs of its lemma (tactic mode where it cannot be a
lemma), or best-first search from its proof state."""

DEFAULT_PLANNER_MAX_TOKENS = 16384
"""Generation budget of one planner call when `samplers.planner.max_tokens` is not set: a plan
and a sketch from a reasoning model."""

_PP_OPTIONS = {o.name: o for o in SUBGOAL_PP_OPTIONS}


class PlannerConfig(BaseModel):
    """Decompose, prove the holes in parallel, stitch, re-plan (the `planner:` section).

    `eval.passes` (`--pass K`) is the number of episodes per problem; pass@k counts episodes.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    subgoal_strategy: str = WHOLE_PROOF_SPEC.name
    """Sub-prover of every hole: whole proofs (of the hole rendered as a lemma, or of its proof
    state in tactic mode where the lemma does not round-trip) or best-first search."""
    subgoal_passes: int = Field(default=8, ge=1)
    """Per hole: whole-proof samples (the `whole_proof` section's chunk and rounds apply), or
    best-first searches (the `bfs` section's limits apply)."""
    parallel_subgoals: int = Field(default=8, ge=1)
    """Holes of one sketch proved at once."""
    max_sketches: int = Field(default=4, ge=1)
    """Plans per episode: the first sketch and the re-plans after it."""
    repair_turns: int = Field(default=2, ge=0)
    """Times a plan's sketch goes back to the planner with Lean's errors before it is given up."""
    max_depth: int = Field(default=1, ge=0)
    """How often a hole that its sub-prover could not prove may itself be decomposed (0: never)."""
    decompose_sketches: int = Field(default=1, ge=1)
    """Plans of one decomposition (each with its repair turns)."""
    parallel_episodes: int = Field(default=1, ge=1)
    """Episodes of one problem run at once (later ones profit from earlier ones' proof cache)."""
    early_stop: bool = False
    """Stop a problem's episodes once one proves it (breaks unbiased pass@k)."""
    pp_options: tuple[str, ...] = tuple(_PP_OPTIONS)
    """Pretty-printer options set while a sketch or a lemma is checked, so the holes' goals print
    without elisions and round-trip as lemmas (`prover.planner.lemma.SUBGOAL_PP_OPTIONS`; drop
    the ones an older Lean does not know)."""
    prompts: PlannerPrompts = Field(default_factory=PlannerPrompts)
    """The planner's prompt templates."""

    @field_validator("subgoal_strategy")
    @classmethod
    def _known_sub_strategy(cls, value: str) -> str:
        if value not in SUBGOAL_STRATEGIES:
            raise ValueError(f"subgoal_strategy must be one of {', '.join(SUBGOAL_STRATEGIES)}, not {value!r}")
        return value

    @field_validator("pp_options")
    @classmethod
    def _known_options(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in _PP_OPTIONS]
        if unknown:
            raise ValueError(f"unknown pretty-printer option(s) {unknown}; known: {', '.join(_PP_OPTIONS)}")
        return value

    def options(self) -> tuple[PpOption, ...]:
        return tuple(_PP_OPTIONS[name] for name in self.pp_options)


def _make_strategy() -> Any:
    from prover.planner.strategy import PlannerStrategy

    return PlannerStrategy()


SPEC: StrategySpec[PlannerConfig] = StrategySpec(
    name=NAME,
    config_model=PlannerConfig,
    factory=_make_strategy,
    roles=(PLANNER_ROLE, PROVER_ROLE),
    description="a planner model sketches `have` steps, sub-provers prove them in parallel, stitch, re-plan",
    uses_proof_cache=True,
    resume_settings=("subgoal_strategy", "subgoal_passes", "max_sketches", "repair_turns", "max_depth",
                     "decompose_sketches", "pp_options"),
    cli_flags=(
        CliFlag("--subgoal-strategy", "subgoal_strategy",
                f"planner: sub-prover of each hole ({' or '.join(SUBGOAL_STRATEGIES)})",
                kind="str", metavar="S", choices=SUBGOAL_STRATEGIES),
        CliFlag("--subgoal-passes", "subgoal_passes", "planner: samples (or searches) per hole", metavar="N"),
        CliFlag("--parallel-subgoals", "parallel_subgoals", "planner: holes proved at once", metavar="N"),
        CliFlag("--max-sketches", "max_sketches", "planner: plans per episode (first + re-plans)", metavar="N"),
        CliFlag("--repair-turns", "repair_turns", "planner: fixes of a sketch Lean rejects", metavar="N"),
        CliFlag("--max-depth", "max_depth", "planner: how often a failed hole may be decomposed", metavar="N"),
    ),
)
"""The planner's registry entry (`prover.registry.BUILTIN_SPECS`)."""
