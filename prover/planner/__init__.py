"""The planner strategy (`--strategy planner`): decompose a theorem, prove the holes, stitch.

One planning episode, and which module serves each step:

1. prompt the planner model for a sketch ............................ `prompts`
2. read its reply into a sketch: plan, body, `sorry` holes .......... `sketch`
3. check the sketch in Lean (`ProofChecker.check_sketch`, pretty-printer
   options from `lemma.SUBGOAL_PP_OPTIONS`); pair Lean's `sorries`
   with the holes, parse them into typed goals ...................... `holes`, `goals`
4. prove every distinct goal at once, the proof cache first: a lemma
   for whole-proof sub-provers, or the proof state in tactic mode
   or for best-first search ......................................... `dispatch`, `subprovers`, `lemma`
5. put the proofs in place of the holes, then the full checker ...... `stitch`
6. on failure: repair / re-plan / decompose prompts ................. `prompts`

`episode` runs those steps (and recursion into a failed hole), `records` finds each recorded step
again on resume, `subgoal` is what goes to a sub-prover and back, `strategy` runs the episodes of
a problem, `settings` is the config section and registry entry. The building blocks (`sketch`,
`goals`, `lemma`, `stitch`, `prompts`) do no I/O; Lean text is read through `lean_text` only.
The names below are the building blocks; the strategy is loaded through the registry.
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
