"""I/O-free building blocks of the planner (decompose a theorem, prove the holes, stitch).

One planning episode, and which module serves each step:

1. prompt the planner model for a sketch ............................ `prompts`
2. read its reply into a sketch: plan, body, `sorry` holes .......... `sketch`
3. check `Sketch.command` in Lean (pretty-printer options from
   `lemma.SUBGOAL_PP_OPTIONS`); its `sorries` become typed subgoals .. `goals`
4. render each subgoal as a standalone lemma for a whole-proof
   sub-prover, or prove it from its proof state in tactic mode ...... `lemma`
5. put the proofs in place of the holes, then the full checker ...... `stitch`
6. on failure: repair / re-plan / decompose prompts ................. `prompts`

Nothing here talks to Lean or a model; Lean text is read through `lean_text` only.
"""

from prover.planner.goals import (
    Goal,
    GoalParseError,
    Hypothesis,
    Subgoal,
    parse_goal,
    parse_goals,
    subgoals_from_sorries,
)
from prover.planner.lemma import (
    SUBGOAL_PP_OPTIONS,
    NotRenderable,
    PpOption,
    RenderedLemma,
    render_lemma,
    set_option_commands,
)
from prover.planner.prompts import (
    PlannerPrompts,
    SubgoalReport,
    decompose_messages,
    repair_messages,
    replan_messages,
    sketch_messages,
)
from prover.planner.sketch import Hole, Sketch, SketchFailure, SketchRejected, extract_sketch, find_holes
from prover.planner.stitch import Fill, StitchError, Stitched, stitch

__all__ = [
    "SUBGOAL_PP_OPTIONS",
    "Fill",
    "Goal",
    "GoalParseError",
    "Hole",
    "Hypothesis",
    "NotRenderable",
    "PlannerPrompts",
    "PpOption",
    "RenderedLemma",
    "Sketch",
    "SketchFailure",
    "SketchRejected",
    "StitchError",
    "Stitched",
    "Subgoal",
    "SubgoalReport",
    "decompose_messages",
    "extract_sketch",
    "find_holes",
    "parse_goal",
    "parse_goals",
    "render_lemma",
    "repair_messages",
    "replan_messages",
    "set_option_commands",
    "sketch_messages",
    "stitch",
    "subgoals_from_sorries",
]
