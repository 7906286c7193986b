"""Put subgoal proofs in place of a sketch's `sorry`s, at the positions the REPL reported.

Positions are the REPL's (1-based lines, 0-based codepoint columns) and relative to the command
that was sent; `source` may be that command or a part of it that starts at `offset` (e.g. a
sketch's body, `offset=Sketch.body_offset`). Each position must be a `sorry` token of `source` as
Lean's tokenizer sees it, or the stitch is refused (`StitchError`): a fill never lands anywhere else.

A proof is a tactic block (or a term, `Fill.mode="term"`) whose lines keep their relative
indentation; it is placed so Lean parses it as one proof of that hole, whatever the hole's layout:

=====================================  ======================================================
hole                                   placed as
=====================================  ======================================================
tactic that starts a block: `by sorry`  in place; further lines at the sorry's column (the
(same or next line), `· sorry`, a      block's column in Lean's layout rule), so nested haves
tactic line, `=> sorry`; nothing       keep their own indentation under it
after it on its line
any other tactic (`t <;> sorry`, ...)  `(proof)`: a parenthesised tactic sequence
term (`:= sorry`, `⟨sorry, h⟩`, ...)    `(by proof)`, or `(term)` for a term proof
=====================================  ======================================================

A proof that is one token in the hole's own mode goes in bare (`simp`, `rfl`, `h`), so stitching
`sorry` back into every hole gives the source unchanged. `Stitched.spans` says where each proof
landed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from prover.errors import ProverError
from prover.planner.lean_text import code_view, offset_of, token_texts
from prover.planner.sketch import Hole, HoleMode, find_holes
from prover.types import Pos

FROZEN = ConfigDict(frozen=True, extra="forbid")
ORIGIN = Pos(line=1, column=0)


class StitchError(ProverError, ValueError):
    """The fills do not fit the source (no `sorry` there, two proofs for one hole, bad layout)."""


class Fill(BaseModel):
    """A proof for the `sorry` the REPL reported at `pos` (relative to the command sent)."""

    model_config = FROZEN
    pos: Pos
    proof: str
    mode: HoleMode = "tactic"
    """`tactic`: a tactic block; `term`: a term (placed with `exact` in a tactic hole)."""


class Stitched(BaseModel):
    """The source with the proofs in place."""

    model_config = FROZEN
    text: str
    spans: tuple[tuple[int, int], ...]
    """[start, end) in `text` of each placed proof, in source order."""


def stitch(
    source: str, fills: Sequence[Fill], *, offset: Pos = ORIGIN, start: HoleMode = "term"
) -> Stitched:
    """`source` with each fill's proof in place of its `sorry` (see the module docstring).

    Args:
        source: the text the REPL positions refer to, starting at `offset` in the sent command.
        fills: one per `sorries` position to fill; several fills for one position must agree
            (a `sorry` under `all_goals`/`<;>` is reported once per goal it ran on).
        offset: where `source` starts in the command (`Sketch.body_offset` for a sketch body).
        start: the mode at the start of `source`, as for `find_holes`: `term` for a command,
            `Sketch.mode` for a sketch body.

    Stitching `Sketch.command` gives complete code (the benchmark statement and the filled
    body) and stitching `Sketch.body` gives the filled body; the checker accepts either.
    """
    holes = {(h.pos.line, h.pos.column): h for h in find_holes(source, start=start, offset=offset)}
    chosen: dict[int, tuple[Hole, Fill]] = {}
    for fill in fills:
        hole = holes.get((fill.pos.line, fill.pos.column))
        if hole is None:
            raise StitchError(_no_hole(source, fill.pos, offset))
        earlier = chosen.get(hole.index)
        if earlier is not None and (earlier[1].proof, earlier[1].mode) != (fill.proof, fill.mode):
            raise StitchError(f"two different proofs for the `sorry` at line {fill.pos.line}, column "
                              f"{fill.pos.column}: it runs on several goals (under `all_goals` or `<;>`), so "
                              "one proof text must close all of them")
        chosen[hole.index] = (hole, fill)
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    last, length = 0, 0
    for hole, fill in sorted(chosen.values(), key=lambda pair: pair[0].start):
        placed = _place(fill, hole)
        pieces.append(source[last : hole.start])
        length += hole.start - last
        spans.append((length, length + len(placed)))
        pieces.append(placed)
        length += len(placed)
        last = hole.end
    pieces.append(source[last:])
    return Stitched(text="".join(pieces), spans=tuple(spans))


def _no_hole(source: str, pos: Pos, offset: Pos) -> str:
    line = pos.line - offset.line + 1
    local = Pos(line=max(line, 1), column=pos.column - (offset.column if line == 1 else 0))
    at = offset_of(source, local) if line >= 1 else None
    if at is None:
        return f"no `sorry` at line {pos.line}, column {pos.column}: the position is outside the text"
    found = source[at : at + 20].split("\n")[0]
    return f"no `sorry` token at line {pos.line}, column {pos.column} (the text there is {found!r})"


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def _place(fill: Fill, hole: Hole) -> str:
    """The text that replaces the hole's `sorry` (see the module docstring's table)."""
    lines = _proof_lines(fill.proof, hole)
    column = hole.pos.column
    if len(lines) == 1 and token_texts(lines[0]) == (lines[0],) and fill.mode == hole.mode:
        return lines[0]  # one token, no comment: `sorry` back in its hole is the identity
    if fill.mode == "term" and hole.mode == "tactic":
        lines = ["exact " + lines[0], *(("  " + line) if line else line for line in lines[1:])]
    if hole.mode == "tactic":
        prefix, suffix = ("", "") if hole.starts_block else ("(", ")")
    else:
        prefix, suffix = ("(", ")") if fill.mode == "term" else ("(by ", ")")
    indent = " " * (column + len(prefix))
    text = prefix + lines[0] + "".join("\n" + (indent + line if line else "") for line in lines[1:])
    if suffix:
        last = lines[-1]
        text += ("\n" + " " * column + suffix) if len(code_view(last).rstrip()) < len(last) else suffix
    return text


def _proof_lines(proof: str, hole: Hole) -> list[str]:
    """The proof's lines without blank edges and common indentation; refuses what Lean would not
    read as one block."""
    where = f"the proof for the `sorry` at line {hole.pos.line}, column {hole.pos.column}"
    if "\t" in proof:
        raise StitchError(f"{where} contains a tab character (Lean rejects tabs in source)")
    lines = [line.rstrip() for line in proof.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise StitchError(f"{where} is empty")
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line]
    if indents[0] > min(indents):
        raise StitchError(f"{where} has a line indented less than its first line: Lean would end the "
                          "block there")
    return [line[indents[0] :] for line in lines]
