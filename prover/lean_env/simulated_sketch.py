"""SIMULATED elaboration of tactic blocks with `have` steps (sketches), for the simulated REPL.

No Lean runs here. A tactic body whose top-level steps include a `have` is elaborated step by step
with the scenario's data, the way the real REPL reports such a body (transcripts `have_by_sorry`,
`sorry_hypotheses`, `no_goal_sorry_2`):

* `have name : T := by <block>` (or `:= <term>`) proves `T` from the goal's context: its block
  runs on the goal `<hypotheses so far>\\n⊢ T`; then `name : T` joins the main goal's context (an
  earlier hypothesis of that name is shown as `name✝`). Without a name it is `this`.
* `sorry` (a tactic, or the term after `:=`) closes the first goal and is reported in `sorries`
  with that goal and a fresh proof state (with `pos`/`endPos` in command mode, without in tactic
  mode, as the REPL does). Tactic steps from that proof state follow the scenario's `steps`.
* `· <block>` runs the block on the first goal, which it must close.
* A tactic-mode request of several steps (or starting with `have`) that is not itself a scenario
  step runs as a block, step by step, like a sketch body.
* Any other tactic must be a scenario step from the current goals (`steps`: `from` = the goals
  exactly as printed here, `tactic` = the step's text whitespace-normalised); a missing step, or a
  step with `error`/`throw`, logs an error and ends the block (Lean's error recovery admits the
  goal, so no "unsolved goals" follows). An error in a `have`'s own proof does not end the outer
  block: the `have` still adds its hypothesis.
* Goals left at the end of a command's body, or of a `have`'s `by` block, are an
  "unsolved goals" error from the `by` to the end of the block.
* When anything logged an error, the declaration gets no "declaration uses `sorry`" warning
  (Lean only warns about a sorry in a declaration that elaborated without errors).

Types are shown as written, whitespace-normalised (real Lean shows them re-pretty-printed); a
`have` without a stated type is refused with an error naming the simulation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prover.lean_syntax import blank_comments_and_strings, position

if TYPE_CHECKING:
    from prover.lean_env.simulated_lean import StepSpec

StepLookup = Callable[[tuple[str, ...], str], "StepSpec | None"]
NewState = Callable[[tuple[str, ...]], int]

_HAVE = re.compile(r"(?:have|haveI)(?![\w'!?])")
_BY = re.compile(r"by(?![\w'!?])")
_SORRY = re.compile(r"sorry(?![\w'!?])")
_CDOT = re.compile(r"[·.](?=\s)")


def normalize(text: str) -> str:
    """Collapse whitespace: how scenario bodies and tactics are compared."""
    return " ".join(text.split())


def has_have_step(body: str) -> bool:
    """Is `body` (what follows `:=`) a tactic block with a top-level `have` step?"""
    clean = blank_comments_and_strings(body)
    by = _BY.match(clean, len(clean) - len(clean.lstrip()))
    if by is None:
        return False
    return any(_HAVE.match(clean, start) for start, _ in _items(clean, by.end(), len(clean))[0])


def starts_with_have(tactic: str) -> bool:
    clean = blank_comments_and_strings(tactic)
    return _HAVE.match(clean, len(clean) - len(clean.lstrip())) is not None


def runs_as_block(tactic: str) -> bool:
    """Is a tactic-mode request a block to run step by step: a `have` step, or several steps
    (lines at the block's column), as the REPL runs `rw [h]` and `norm_num` on two lines sent as
    one tactic?"""
    if starts_with_have(tactic):
        return True
    clean = blank_comments_and_strings(tactic)
    return len(_items(clean, 0, len(clean))[0]) > 1


@dataclass
class SketchRun:
    """Elaborates blocks of one source text; collects what the REPL reply reports."""

    source: str
    lookup: StepLookup
    new_state: NewState
    positions: bool
    """Command mode (messages and sorries carry positions) or tactic mode (they do not)."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    sorries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clean = blank_comments_and_strings(self.source)

    @property
    def failed(self) -> bool:
        return any(m["severity"] == "error" for m in self.messages)

    def body(self, body_at: int, goals: tuple[str, ...]) -> None:
        """A declaration's body `by <block>` starting at `body_at`: must close every goal."""
        by = _BY.match(self.clean, _skip_space(self.clean, body_at))
        if by is None:
            raise ValueError("a sketch body starts with `by`")
        _, block_end = _items(self.clean, by.end(), len(self.source))
        rest = _skip_space(self.clean, block_end)
        if rest < len(self.source):  # a line left of the block's column: Lean stops parsing there
            self._error("unexpected token at the end of the tactic block (simulated REPL: layout rule)",
                        rest, len(self.source))
            return
        self.block(by.start(), by.end(), len(self.source), goals, closed=True)

    def block(
        self, by_at: int | None, start: int, end: int, goals: tuple[str, ...], *, closed: bool
    ) -> tuple[str, ...] | None:
        """Run the tactic block in [start, end) on `goals`: the goals left, or None when a step
        failed (the error is logged and the rest of the block is not run)."""
        items, _ = _items(self.clean, start, end)
        for item_start, item_end in items:
            if not goals:
                self._error("No goals to be solved", item_start, item_end)
                return None
            outcome = self._item(item_start, item_end, goals)
            if outcome is None:
                return None
            goals = outcome
        if goals and closed:
            stop = items[-1][1] if items else end
            self._error("unsolved goals\n" + "\n\n".join(goals), by_at if by_at is not None else start, stop)
            return None
        return goals

    def tactic(self, goals: tuple[str, ...]) -> tuple[str, ...] | None:
        """The whole source as one tactic-mode request on `goals` (open goals may remain)."""
        return self.block(None, 0, len(self.source), goals, closed=False)

    # -- one step ------------------------------------------------------------------------------
    def _item(self, start: int, end: int, goals: tuple[str, ...]) -> tuple[str, ...] | None:
        """Goals after the step in [start, end); None when it failed (the block ends)."""
        clean = self.clean
        have = _HAVE.match(clean, start)
        if have:
            return self._have(start, have.end(), end, goals)
        if _SORRY.fullmatch(clean[start:end].strip()):
            self._sorry(start, goals[0])
            return goals[1:]
        cdot = _CDOT.match(clean, start)
        if cdot:  # `· tacs` is `focus (tacs; done)`: a failure inside ends the outer block too
            closed = self.block(start, cdot.end(), end, goals[:1], closed=True)
            return None if closed is None else goals[1:]
        return self._step(start, end, goals)

    def _have(self, start: int, after_keyword: int, end: int, goals: tuple[str, ...]) -> tuple[str, ...] | None:
        clean = self.clean
        colon, assign = _have_parts(clean, start, end)
        if colon is None or assign is None:
            self._error("simulated REPL: a `have` needs a stated type (`have h : T := ...`)", start, end)
            return None
        name = normalize(self.source[after_keyword:colon]) or "this"
        stated = normalize(self.source[colon + 1 : assign])
        goal = _with_target(goals[0], stated)
        proof_at = _skip_space(clean, assign + 2)
        by = _BY.match(clean, proof_at)
        if by:  # a nested `by` is a term of its own: its failure is logged, the `have` still holds
            self.block(by.start(), by.end(), end, (goal,), closed=True)
        elif _SORRY.fullmatch(clean[proof_at:end].strip()):
            self._sorry(proof_at, goal)
        elif self._step(proof_at, end, (goal,), prefix="exact "):
            self._error("unsolved goals\n" + goal, proof_at, end)  # a term proof leaves no goals
        return (_with_hypothesis(goals[0], name, stated), *goals[1:])

    def _step(self, start: int, end: int, goals: tuple[str, ...], *, prefix: str = "") -> tuple[str, ...] | None:
        tactic = prefix + normalize(self.source[start:end])
        step = self.lookup(tuple(g.strip() for g in goals), tactic)
        if step is None:
            self._error(f"tactic '{tactic}' failed (simulated REPL: no scenario step)", start, end)
            return None
        if step.throw is not None or step.error is not None:
            self._error(step.throw if step.throw is not None else step.error or "", start, end)
            return None
        self.messages.extend(self._message(m.severity, m.data, start, end) for m in step.messages)
        return tuple(step.to)

    # -- reporting -----------------------------------------------------------------------------
    def _sorry(self, at: int, goal: str) -> None:
        entry: dict[str, Any] = {"proofState": self.new_state((goal,))}
        if self.positions:
            entry["pos"] = _pos(self.source, at)
        entry["goal"] = goal
        if self.positions:
            entry["endPos"] = _pos(self.source, at + len("sorry"))
        self.sorries.append(entry)

    def _error(self, data: str, start: int, end: int) -> None:
        self.messages.append(self._message("error", data, start, end))

    def _message(self, severity: str, data: str, start: int, end: int) -> dict[str, Any]:
        stop = start + len(self.clean[start:end].rstrip())  # a trailing comment is not the step
        if self.positions:
            return {"severity": severity, "pos": _pos(self.source, start), "endPos": _pos(self.source, stop),
                    "data": data}
        origin = {"line": 0, "column": 0}
        return {"severity": severity, "pos": origin, "endPos": origin, "data": data}


# ---------------------------------------------------------------------------------------------
# Layout and goal text
# ---------------------------------------------------------------------------------------------


def _items(clean: str, start: int, end: int) -> tuple[list[tuple[int, int]], int]:
    """([start, end) of each step, end of the block) for the block in clean[start:end]: steps
    begin at the block's column (that of its first token); deeper lines continue a step; a
    shallower line ends the block (Lean's layout rule)."""
    first = _skip_space(clean, start)
    if first >= end:
        return [], end
    column = first - (clean.rfind("\n", 0, first) + 1)
    items = [[first, end]]
    line_start = clean.find("\n", first)
    while 0 <= line_start < end:
        code = _skip_space(clean, line_start + 1)
        if code >= end:
            break
        at = code - (clean.rfind("\n", 0, code) + 1)
        if at < column:
            items[-1][1] = line_start
            break
        if at == column:
            items[-1][1] = line_start
            items.append([code, end])
        line_start = clean.find("\n", code)
    block_end = items[-1][1]
    return [(s, len(clean[:e].rstrip())) for s, e in items], block_end


def _skip_space(clean: str, k: int) -> int:
    while k < len(clean) and clean[k].isspace():
        k += 1
    return k


def _have_parts(clean: str, start: int, end: int) -> tuple[int | None, int | None]:
    """Offsets of the type's `:` and the proof's `:=` of the `have` at `start` (bracket depth 0)."""
    depth, colon = 0, None
    for k in range(start, end):
        ch = clean[k]
        if ch in "([{⦃⟨":
            depth += 1
        elif ch in ")]}⦄⟩":
            depth -= 1
        elif depth == 0 and clean.startswith(":=", k):
            return colon, k
        elif depth == 0 and ch == ":" and colon is None:
            colon = k
    return colon, None


def _split(goal: str) -> tuple[list[str], list[str], str]:
    """(case line if any, hypothesis lines, `⊢ target`) of one printed goal."""
    lines = goal.strip().split("\n")
    turnstile = max(i for i, line in enumerate(lines) if line.startswith("⊢"))
    case = lines[:1] if lines[0].startswith("case ") else []
    return case, lines[len(case) : turnstile], "\n".join(lines[turnstile:])


def _with_target(goal: str, target: str) -> str:
    """The goal a `have`'s proof starts from: the same hypotheses, the stated type as target."""
    _, hyps, _ = _split(goal)
    return "\n".join([*hyps, "⊢ " + target])


def _with_hypothesis(goal: str, name: str, stated: str) -> str:
    """`goal` after `have name : stated`: an earlier `name` becomes `name✝`."""
    case, hyps, target = _split(goal)
    shadowed = []
    for line in hyps:
        names, sep, rest = line.partition(" : ")
        renamed = " ".join(n + "✝" if n == name else n for n in names.split(" "))
        shadowed.append(renamed + sep + rest)
    return "\n".join([*case, *shadowed, f"{name} : {stated}", target])


def _pos(source: str, offset: int) -> dict[str, int]:
    p = position(source, offset)
    return {"line": p.line, "column": p.column}
