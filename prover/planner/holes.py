"""From a checked sketch to the goals to prove: Lean's `sorries` paired with the sketch's holes.

Subgoals come from Lean, never from the model's text: each hole must have exactly one `sorries`
entry at its position (its goal with the local context Lean saw there). A hole Lean reports no
goal for (a `sorry` in a term without expected type, such as `nlinarith [sorry]`) or several
goals for (`all_goals sorry`) cannot be filled by one proof of one goal: the sketch goes back to
the planner with that explanation. Holes with the same goal share one subgoal.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from prover.lean_env.checker import SketchCheck
from prover.lean_env.session import normalise_goals
from prover.planner.lean_text import is_inaccessible, token_texts
from prover.planner.sketch import Hole, Sketch
from prover.types import Pos

__all__ = ["HoleGoal", "HolesRefused", "hole_goals", "lemma_name"]

FROZEN = ConfigDict(frozen=True, extra="forbid")


class HoleGoal(BaseModel):
    """One distinct goal of a sketch and the holes its proof fills."""

    model_config = FROZEN
    index: int
    goal: str
    """As Lean printed it."""
    sorry_index: int
    """Its first entry in the reply's `sorries` (the state a sub-prover continues from)."""
    positions: tuple[Pos, ...]
    name: str
    """The claim's name: its `have`'s, or `hole<i>`."""
    claim: str
    """The claim as the sketch states it (`name : type`), else the goal's target; for prompts."""


class HolesRefused(BaseModel):
    """Why Lean's `sorries` do not give one goal per hole."""

    model_config = FROZEN
    detail: str


def hole_goals(sketch: Sketch, check: SketchCheck) -> tuple[HoleGoal, ...] | HolesRefused:
    """The distinct goals of an accepted sketch, in the order of their first hole."""
    goals: dict[str, HoleGoal] = {}
    names: set[str] = set()
    index_of = {id(s): i for i, s in enumerate(check.sorries)}
    for hole, entries in sketch.sorries_by_hole(check.sorries):
        where = f"the `sorry` at line {hole.pos.line}, column {hole.pos.column}"
        if not entries:
            return HolesRefused(detail=f"Lean reports no goal for {where} (a `sorry` inside a term without an "
                                "expected type, such as `nlinarith [sorry]`, is not a hole): make each `sorry` the "
                                "proof of a `have name : claim`")
        if len(entries) > 1:
            return HolesRefused(detail=f"{where} runs on {len(entries)} goals (under `all_goals`, `<;>` or a "
                                "combinator): write one `have` per claim, each proved by its own `sorry`")
        entry = entries[0]
        key = normalise_goals((entry.goal,))
        known = goals.get(key)
        if known is not None:
            goals[key] = known.model_copy(update={"positions": (*known.positions, hole.pos)})
            continue
        name = _claim_name(hole, len(goals), names)
        names.add(name)
        goals[key] = HoleGoal(index=len(goals), goal=entry.goal, sorry_index=index_of[id(entry)],
                              positions=(hole.pos,), name=name, claim=_claim(hole, name, entry.goal))
    stray = [s for s in check.sorries if sketch.hole_at(s.pos) is None] if check.sorries else []
    if stray:
        return HolesRefused(detail=f"Lean reports a goal at line {stray[0].pos.line if stray[0].pos else '?'} that is "
                            "not a `sorry` of the sketch")
    return tuple(goals.values())


def lemma_name(theorem: str, claim: str) -> str:
    """`<theorem>_<claim>` as one Lean identifier (the last component of a qualified name)."""
    base = theorem.replace("«", "").replace("»", "").rsplit(".", 1)[-1]
    name = f"{base}_{claim}"
    return name if token_texts(name) == (name,) else f"subgoal_{claim}"


def _claim_name(hole: Hole, index: int, taken: set[str]) -> str:
    name = hole.name or ""
    if not name or token_texts(name) != (name,) or is_inaccessible(name) or "." in name or name in taken:
        name = f"hole{index}"
    while name in taken:
        name += "'"
    return name


def _claim(hole: Hole, name: str, goal: str) -> str:
    if hole.type:
        return f"{name} : {hole.type}"
    target = goal.strip().rsplit("⊢", 1)[-1].strip()
    return f"{name} : {target}"
