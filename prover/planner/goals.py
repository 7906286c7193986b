"""Typed goal states from the REPL's pretty-printed goals (`sorries` entries, tactic replies).

Lean prints a goal (`Lean.Meta.ppGoal`) as one entry per line at column 0:

    case succ                      optional case tag (the goal's user name)
    x y : ℕ                        consecutive hypotheses of one type share a line
    h :                            a type too long for one line goes on the next lines,
      x < y ∧ ...                  nested two spaces (so does every continuation line)
    n : ℕ := 3                     a `let` hypothesis, with its value
    inst✝ : Fact p                 `✝`: inaccessible or shadowed, cannot be written back
    ⊢ x ≤ y                        the target

Several goals are separated by a blank line (unsolved-goals messages, a `sorries` entry of the
simulated REPL); `no goals` is none. Proofs and deep subterms may be elided as `⋯` under the
default pretty-printer options (see `planner.lemma.SUBGOAL_PP_OPTIONS`); `Goal.elided` says so.

`subgoals_from_sorries` turns a sketch's `sorries` into `Subgoal`s: the goal, the proof state
tactic mode continues from, and where the `sorry` is (relative to the command that was sent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from prover.errors import ProverError
from prover.lean_env.protocol import Sorry, split_replies
from prover.planner.lean_text import token_texts, tokens
from prover.types import Pos

FROZEN = ConfigDict(frozen=True, extra="forbid")

TURNSTILE = "⊢"
ELISION = "⋯"
_NEST = "  "
_OPEN, _CLOSE = "([{⦃⟨", ")]}⦄⟩"


class GoalParseError(ProverError, ValueError):
    """A goal text is not in the shape Lean prints goals in."""


class Hypothesis(BaseModel):
    """One line of a goal's context: names sharing a type, or one `let` name with its value."""

    model_config = FROZEN
    names: tuple[str, ...]
    type: str
    """As printed, continuation lines without the two-space nesting."""
    value: str | None = None
    """The value of a `let` hypothesis (`n : ℕ := 3`), else None."""

    @property
    def is_let(self) -> bool:
        return self.value is not None


class Goal(BaseModel):
    """One goal: optional case tag, hypotheses in context order, target."""

    model_config = FROZEN
    case: str | None = None
    hypotheses: tuple[Hypothesis, ...] = ()
    target: str
    text: str
    """The goal exactly as Lean printed it."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every hypothesis name, in context order."""
        return tuple(n for h in self.hypotheses for n in h.names)

    @property
    def elided(self) -> bool:
        """Does the printed goal hide a subterm as `⋯` (outside string literals)?"""
        return ELISION in token_texts(self.text)

    def same_as(self, other: Goal) -> bool:
        """Same hypotheses (name, type and value, one by one) and target, up to whitespace; case
        tags and how names were grouped on lines do not matter."""
        return self._shape() == other._shape()

    def _shape(self) -> tuple[object, ...]:
        hyps = tuple((n, token_texts(h.type), token_texts(h.value or "")) for h in self.hypotheses for n in h.names)
        return hyps, token_texts(self.target)


class Subgoal(BaseModel):
    """A `sorry` of a checked sketch as the REPL reported it."""

    model_config = FROZEN
    index: int
    """Position of the entry in the reply's `sorries`."""
    goal: Goal
    proof_state: int | None
    """The proof state to continue from in tactic mode (None when Lean gave none)."""
    pos: Pos | None
    end_pos: Pos | None
    shares_position: bool = False
    """Another entry has the same position: one `sorry` that runs on several goals (under
    `all_goals`, `<;>`), so one proof text must close all of them."""


def parse_goals(text: str) -> tuple[Goal, ...]:
    """Every goal in `text` (blank-line separated, and a goal never has a blank line; `no goals`
    gives none)."""
    if text.strip() in ("", "no goals"):
        return ()
    return tuple(parse_goal(block) for block in split_replies(text))


def parse_goal(text: str) -> Goal:
    """The one goal in `text`; GoalParseError if it has none, several, or is malformed."""
    blocks = split_replies(text)
    if len(blocks) != 1:
        raise GoalParseError(f"expected one goal, found {len(blocks)} in {text[:200]!r}")
    entries = _entries(blocks[0])
    case = None
    if entries and entries[0].startswith("case "):
        case = entries.pop(0)[len("case ") :].strip()
    if not entries or not entries[-1].startswith(TURNSTILE):
        raise GoalParseError(f"goal without a `{TURNSTILE}` target line: {text[:200]!r}")
    target = entries.pop()[len(TURNSTILE) :].strip()
    if not target:
        raise GoalParseError(f"goal with an empty target: {text[:200]!r}")
    hypotheses = tuple(_hypothesis(entry, text) for entry in entries)
    return Goal(case=case, hypotheses=hypotheses, target=target, text=text.strip("\n"))


def subgoals_from_sorries(sorries: Sequence[Sorry]) -> tuple[Subgoal, ...]:
    """The `sorries` entries of a sketch's reply as typed subgoals, in the reply's order."""
    at = Counter((s.pos.line, s.pos.column) for s in sorries if s.pos is not None)
    return tuple(
        Subgoal(index=i, goal=parse_goal(s.goal), proof_state=s.proof_state, pos=s.pos, end_pos=s.end_pos,
                shares_position=s.pos is not None and at[(s.pos.line, s.pos.column)] > 1)
        for i, s in enumerate(sorries)
    )


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _entries(block: str) -> list[str]:
    """Lines at column 0 start an entry; indented lines continue the one before."""
    entries: list[str] = []
    for line in block.split("\n"):
        if line[:1].isspace() and entries:
            entries[-1] += "\n" + (line[len(_NEST) :] if line.startswith(_NEST) else line.lstrip())
        elif line[:1].isspace():
            raise GoalParseError(f"goal starts with an indented line: {block[:200]!r}")
        else:
            entries.append(line)
    return entries


def _hypothesis(entry: str, goal: str) -> Hypothesis:
    """`x y : T`, `h :\\n  T`, or `n : T := v`."""
    toks = tokens(entry)
    colon = next((i for i, t in enumerate(toks) if t.text == ":"), None)
    if not colon or any(t.kind != "ident" for t in toks[:colon]):
        raise GoalParseError(f"not a hypothesis line (`names : type`): {entry[:120]!r} in goal {goal[:200]!r}")
    names = tuple(t.text for t in toks[:colon])
    rest = entry[toks[colon].end :]
    assign = _let_assign(rest)
    if assign is None:
        return Hypothesis(names=names, type=rest.strip())
    if len(names) != 1:
        raise GoalParseError(f"a `let` hypothesis has one name: {entry[:120]!r}")
    value = rest[assign + 2 :].strip()
    if not value:
        raise GoalParseError(f"a `let` hypothesis without a value: {entry[:120]!r}")
    return Hypothesis(names=names, type=rest[:assign].strip(), value=value)


def _let_assign(text: str) -> int | None:
    """Offset of the `:=` that starts a `let` hypothesis's value: at bracket depth 0 and not the
    `:=` of a `let`/`have` inside the type itself."""
    depth, pending = 0, 0
    for t in tokens(text):
        if t.text in _OPEN:
            depth += 1
        elif t.text in _CLOSE:
            depth -= 1
        elif depth == 0 and t.text in ("let", "have", "let_fun"):
            pending += 1
        elif depth == 0 and t.text == ":=":
            if not pending:
                return t.start
            pending -= 1
    return None
