"""Prompts for the planner model: first sketch, sketch repair, re-plan, decomposing a subgoal.

The planner is a general reasoning model, not a prover fine-tuned on one prompt shape, so the
prompts say what a sketch is. The defaults follow the two systems that decompose this way:
DeepSeek-Prover-V2 (DeepSeek-V3 writes a natural-language plan, then a Lean skeleton of
`have ... := by sorry` steps; its prompt opens "Complete the following Lean 4 code" and asks for the
plan first) and Hilbert (the sketch restates the theorem unchanged, one named `have` per line, no
`sorry` outside a `have`, numerals typed and no ℕ subtraction/division; repairs show Lean's errors;
a revision keeps the proved claims and replaces the failed one).

Every template is a `str.format` string whose placeholders are checked when `PlannerPrompts` is
built (a configured template with an unknown or missing placeholder is a `ConfigError`). Each
function returns chat messages for a `GenRequest`.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prover.errors import ConfigError
from prover.types import ChatMessage, LeanMessage, Problem

FROZEN = ConfigDict(frozen=True, extra="forbid")

DEFAULT_SYSTEM = (
    "You are an expert in Lean 4 and Mathlib who plans formal proofs. You break a theorem into "
    "intermediate claims that an automatic prover then proves one by one, and you write the proof "
    "that combines them."
)

_RULES = """\
- Restate the theorem exactly as given: same name, hypotheses and conclusion.
- Prove it with `have name : claim := by sorry` steps, then tactics that prove the theorem from \
the claims without `sorry`.
- Each claim is one small step: provable from the hypotheses and the earlier claims with a few \
tactics. Do not repeat a hypothesis as a claim.
- Name every claim; write each `have` on one line; do not nest `have`s.
- Type numeric literals that are not natural numbers, e.g. `(2 : ℝ) / 3`; avoid subtraction and \
division on ℕ unless the statement uses them.
- Use `sorry` only as the proof of a `have`. No imports, definitions or extra lemmas."""

DEFAULT_SKETCH = """\
Complete the following Lean 4 code with a proof sketch:

```lean4
{statement}
```
{informal}
First write a detailed informal proof plan: the key ideas and the intermediate claims, in order. \
Then write the Lean 4 sketch in one ```lean4 block:
{rules}"""

DEFAULT_REPAIR = """\
The sketch does not work yet.

{problems}

Fix it and write the corrected sketch in one ```lean4 block. Keep the theorem statement unchanged \
and keep `sorry` as the proof of each `have`; the closing tactics must prove the theorem from the \
claims."""

DEFAULT_REPLAN = """\
We are proving this theorem:

```lean4
{statement}
```
{informal}
A previous sketch was:

```lean4
{previous}
```

Claims proved so far (they can be kept as they are):
{proven}

Claims that could not be proved (they may be false, or too big a step):
{failed}
{errors}
Write a revised plan and a new sketch. Keep the proved claims where they still help; replace each \
failed claim by a correct one or split it into smaller claims. One ```lean4 block:
{rules}"""

DEFAULT_DECOMPOSE = """\
In a proof of `{parent}`, this claim could not be proved directly:

```lean4
{statement}
```

It is a step of this sketch:

```lean4
{parent_sketch}
```

Decompose the claim in the same way. First write an informal plan for it, then a sketch of its \
proof in one ```lean4 block:
{rules}"""

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # template: (required placeholders, allowed placeholders)
    "sketch": (frozenset({"statement"}), frozenset({"statement", "informal", "rules"})),
    "repair": (frozenset({"problems"}), frozenset({"problems", "rules"})),
    "replan": (frozenset({"statement", "previous"}),
               frozenset({"statement", "informal", "previous", "proven", "failed", "errors", "rules"})),
    "decompose": (frozenset({"statement"}), frozenset({"statement", "parent", "parent_sketch", "rules"})),
}


class PlannerPrompts(BaseModel):
    """The planner's prompt templates (configurable; defaults in this module)."""

    model_config = FROZEN
    system: str = DEFAULT_SYSTEM
    rules: str = _RULES
    sketch: str = DEFAULT_SKETCH
    repair: str = DEFAULT_REPAIR
    replan: str = DEFAULT_REPLAN
    decompose: str = DEFAULT_DECOMPOSE
    max_errors: int = Field(default=8, ge=1)
    """Lean errors shown per prompt (the first ones, in Lean's order)."""

    @model_validator(mode="after")
    def _check_placeholders(self) -> PlannerPrompts:
        for name, (required, allowed) in _FIELDS.items():
            template = getattr(self, name)
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as exc:
                raise ConfigError(f"planner prompt `{name}`: not a format string ({exc}); write literal "
                                  "braces as {{ and }}") from exc
            if fields - allowed or required - fields:
                raise ConfigError(f"planner prompt `{name}`: unknown placeholders {sorted(fields - allowed)}, "
                                  f"missing {sorted(required - fields)}; allowed: {sorted(allowed)}")
        return self


class SubgoalReport(BaseModel):
    """A claim of a previous sketch and what became of it, for a re-plan prompt."""

    model_config = FROZEN
    claim: str
    """The claim as Lean code: `name : type` of its `have`, or the subgoal rendered as a lemma."""
    status: Literal["proved", "failed"]
    detail: str = ""
    """Why it failed (budget exhausted, judged false, Lean's error ...)."""


DEFAULT_PROMPTS = PlannerPrompts()


def sketch_messages(problem: Problem, prompts: PlannerPrompts = DEFAULT_PROMPTS) -> tuple[ChatMessage, ...]:
    """The first planner call for `problem`."""
    user = prompts.sketch.format(statement=_statement(problem), informal=_informal(problem), rules=prompts.rules)
    return _chat(prompts, user)


def repair_messages(
    history: Sequence[ChatMessage],
    reply: str,
    *,
    rejection: str | None = None,
    errors: Sequence[LeanMessage] = (),
    code: str = "",
    prompts: PlannerPrompts = DEFAULT_PROMPTS,
) -> tuple[ChatMessage, ...]:
    """The conversation continued after a sketch that failed: `history` (the messages that
    produced `reply`), the reply, and a user turn with what was wrong.

    Args:
        rejection: why the reply is not a sketch (`SketchRejected.detail`), if it is not.
        errors: Lean's messages for the checked sketch; positions refer to `code`, the command
            that was sent (errors are shown first, then warnings if there are no errors).
    """
    if rejection is None and not errors:
        raise ValueError("a repair turn needs a rejection reason or Lean errors")
    problems = rejection if rejection is not None else render_lean_errors(code, errors, prompts.max_errors)
    user = prompts.repair.format(problems=problems, rules=prompts.rules)
    return (*history, ChatMessage(role="assistant", content=reply), ChatMessage(role="user", content=user))


def replan_messages(
    problem: Problem,
    previous: str,
    *,
    subgoals: Sequence[SubgoalReport] = (),
    errors: Sequence[LeanMessage] = (),
    code: str = "",
    prompts: PlannerPrompts = DEFAULT_PROMPTS,
) -> tuple[ChatMessage, ...]:
    """A fresh planner call after a sketch whose subgoals or stitched proof failed.

    Args:
        previous: the previous sketch's Lean code (what the model wrote, or the checked command).
        subgoals: its claims, proved and failed.
        errors: the last Lean errors (of the stitched proof or the sketch), positions in `code`.
    """
    proven = [s for s in subgoals if s.status == "proved"]
    failed = [s for s in subgoals if s.status == "failed"]
    shown_errors = ""
    if errors:
        rendered = render_lean_errors(code, errors, prompts.max_errors)
        shown_errors = f"\nLean's errors on the last attempt:\n{rendered}\n"
    user = prompts.replan.format(
        statement=_statement(problem), informal=_informal(problem), previous=previous.strip("\n"),
        proven=_claims(proven), failed=_claims(failed), errors=shown_errors, rules=prompts.rules,
    )
    return _chat(prompts, user)


def decompose_messages(
    statement: str,
    *,
    parent: Problem,
    parent_sketch: str,
    prompts: PlannerPrompts = DEFAULT_PROMPTS,
) -> tuple[ChatMessage, ...]:
    """A planner call that decomposes a failed subgoal, given as a lemma statement (`RenderedLemma
    .statement`, ending in `:= by`), inside the sketch of `parent` it came from."""
    user = prompts.decompose.format(
        statement=statement.rstrip() + "\n  sorry", parent=parent.theorem_name, parent_sketch=parent_sketch.strip("\n"),
        rules=prompts.rules,
    )
    return _chat(prompts, user)


def render_lean_errors(code: str, messages: Sequence[LeanMessage], max_errors: int) -> str:
    """Lean's errors (else its warnings) with the line of `code` each one points at."""
    shown = [m for m in messages if m.severity == "error"] or [m for m in messages if m.severity == "warning"]
    lines = code.split("\n")
    parts = []
    for m in shown[:max_errors]:
        where = f"line {m.pos.line}" if m.pos.line > 0 else "tactic mode"
        text = f"- {where}: {m.data.strip()}"
        if 1 <= m.pos.line <= len(lines):
            text += f"\n  at: `{lines[m.pos.line - 1].strip()}`"
        parts.append(text)
    if len(shown) > max_errors:
        parts.append(f"- ... and {len(shown) - max_errors} more")
    return "\n".join(parts) if parts else "- Lean reported no error, but the sketch was not accepted"


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


def _chat(prompts: PlannerPrompts, user: str) -> tuple[ChatMessage, ...]:
    system = (ChatMessage(role="system", content=prompts.system),) if prompts.system else ()
    return (*system, ChatMessage(role="user", content=user))


def _statement(problem: Problem) -> str:
    """Header and statement as the model should restate them, with `sorry` where the proof goes."""
    return f"{problem.header}{problem.formal_statement.rstrip()}".strip("\n") + "\n  sorry"


def _informal(problem: Problem) -> str:
    parts = []
    if problem.informal_statement:
        parts.append(f"Informal statement: {problem.informal_statement.strip()}")
    if problem.informal_proof:
        parts.append(f"Informal proof: {problem.informal_proof.strip()}")
    return "\n" + "\n\n".join(parts) + "\n" if parts else ""


def _claims(reports: Sequence[SubgoalReport]) -> str:
    if not reports:
        return "(none)"
    return "\n".join(f"- `{r.claim.strip()}`" + (f" ({r.detail})" if r.detail else "") for r in reports)
