"""Read a planner model's reply into a Lean sketch: the plan, the body to check, and its holes.

A planner reply is an informal plan followed by Lean code (the last complete Lean block; a block
that declares the benchmark theorem is preferred over a bare proof body). The code is either the
whole theorem, restating the benchmark statement, or just the proof that follows `:= by`. Either
way the body is cut out by the checker's own assembler (`prover.lean_env.assemble`), so the sketch
Lean checks is exactly `benchmark statement + body`, the text the checker will later see with the
holes filled.

The holes are the `sorry` tokens of the body as Lean's tokenizer sees them (never a `sorry` in a
comment or string, nor `h.sorry` or `sorry_lemma`), each with the `have`/`obtain`/... step it
closes when there is one, and positions in the REPL's convention relative to `Sketch.command`, so
each can be paired with the `sorries` entry the REPL reports for it.

A reply that cannot be a sketch gives a `SketchRejected` with a typed reason (no Lean block, a
reply cut off, a restated statement that differs from the benchmark's, no holes, ...) that the
planner loop can record and send back to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.lean_env.assemble import AssembledProof, AssemblyRejected, assemble
from prover.lean_env.protocol import Sorry
from prover.llm.formats import CodeBlock, find_code_blocks, split_thinking
from prover.planner.lean_text import Token, offset_of, position, tokens
from prover.types import Pos, Problem

FROZEN = ConfigDict(frozen=True, extra="forbid")

LEAN_FENCES = frozenset({"lean4", "lean", ""})
"""Fence languages that count as Lean (```` ```lean4 ````, ```` ```lean ````, bare ```` ``` ````)."""

HoleMode = Literal["tactic", "term"]

_HEADS = frozenset({"have", "haveI", "have'", "replace", "obtain", "let", "letI", "suffices", "show"})
"""Tactic/term keywords whose `:= proof` a hole can be (the `have`-like steps of a sketch)."""
_HEAD_STOPS = frozenset({":=", "by", ";", "<;>", "·", "=>", "|", "calc", "at", "with"})
_OPEN, _CLOSE = "([{⦃⟨", ")]}⦄⟩"
_TACTIC_AFTER = frozenset({"<;>", ";", "|", "then", "else", "<|>"})
_COMBINATORS = frozenset({"all_goals", "any_goals", "try", "repeat", "repeat'", "focus", "classical"})
"""Tactics that take a tactic sequence: a sorry right after one starts that sequence."""
_DECLARATIONS = frozenset({"theorem", "lemma"})


class SketchFailure(str, Enum):
    """Why a planner reply is not a usable sketch."""

    TRUNCATED = "truncated"
    """The reply was cut off (inside its reasoning or inside its Lean block)."""
    NO_LEAN_BLOCK = "no_lean_block"
    MISSING_THEOREM = "missing_theorem"
    """The code declares other things but not the benchmark theorem (or it has no `:=` proof)."""
    STATEMENT_CHANGED = "statement_changed"
    """The code restates the benchmark theorem with a different statement."""
    EXTRA_DECLARATIONS = "extra_declarations"
    """The code adds declarations or `open ... in` prefixes: a sketch is one proof body."""
    EMPTY_PROOF = "empty_proof"
    NO_HOLES = "no_holes"
    """The proof has no `sorry`: it is a whole-proof attempt, not a decomposition."""
    WHOLE_GOAL = "whole_goal"
    """The proof is a single `sorry`: nothing was decomposed."""


class Hole(BaseModel):
    """One `sorry` of a sketch body, and the step it closes."""

    model_config = FROZEN
    index: int
    start: int
    """Offset of the `sorry` in the text it was found in (`end` = start + 5)."""
    end: int
    pos: Pos
    """REPL position (1-based line, 0-based codepoint column) relative to the command sent."""
    end_pos: Pos
    mode: HoleMode
    """`tactic`: the sorry is a tactic (`by sorry`, a tactic line, `· sorry`); `term`: a term
    (`:= sorry`, `exact foo sorry`, `⟨sorry, h⟩`)."""
    starts_block: bool
    """A tactic sorry that begins a tactic block (after `by`, `·`, `=>` or alone at a line start)
    with nothing after it on its line: a multi-line proof can replace it in place."""
    head: str | None = None
    """The step keyword whose proof this sorry is (`have`, `obtain`, `suffices`, ...), if any."""
    name: str | None = None
    """The step's name as written (`h₁`, a pattern `⟨x, hx⟩`); None for an anonymous `have`."""
    type: str | None = None
    """The step's stated type as written (None when the step gives no type)."""


class Sketch(BaseModel):
    """A planner reply read as a sketch of the benchmark theorem's proof."""

    model_config = FROZEN
    kind: Literal["sketch"] = "sketch"
    plan: str
    """The informal plan: the answer text before the chosen Lean block."""
    code: str
    """The Lean block as the model wrote it."""
    form: Literal["body", "code"]
    """`code`: the block restated the theorem; `body`: it was the proof alone."""
    mode: HoleMode
    """How the proof starts: `tactic` (after `:= by`) or `term` (after `:=`)."""
    body: str
    """The proof exactly as it sits in `command`, after the benchmark statement."""
    command: str
    """`benchmark statement + body` as the checker assembles it (sent on the header env)."""
    body_offset: Pos
    """REPL position in `command` where `body` starts (the offset `stitch` needs for `body`)."""
    holes: tuple[Hole, ...]

    def hole_at(self, pos: Pos) -> Hole | None:
        """The hole a REPL `sorries` entry at `pos` belongs to."""
        return next((h for h in self.holes if h.pos == pos), None)

    def sorries_by_hole(self, sorries: Sequence[Sorry]) -> tuple[tuple[Hole, tuple[Sorry, ...]], ...]:
        """Each hole with the REPL `sorries` entries reported at its position: none when Lean never
        reached it or the sorry has no expected type (`nlinarith [sorry]`: the REPL filters such
        term sorries out), several when it runs on several goals (`all_goals sorry`)."""
        return tuple((h, tuple(s for s in sorries if s.pos == h.pos)) for h in self.holes)


class SketchRejected(BaseModel):
    """A planner reply that is not a usable sketch, and why."""

    model_config = FROZEN
    kind: Literal["rejected"] = "rejected"
    reason: SketchFailure
    detail: str
    plan: str = ""
    code: str | None = None
    """The chosen Lean block, when there was one."""


def extract_sketch(problem: Problem, reply: str) -> Sketch | SketchRejected:
    """Read `reply` (a planner model's full answer) as a sketch for `problem`.

    Raises:
        ValueError: the problem's statement declares no theorem (benchmark statements always do).
    """
    thinking, answer, closed = split_thinking(reply)
    if not closed:
        return SketchRejected(reason=SketchFailure.TRUNCATED, detail="the reply ends inside its reasoning "
                              "(`<think>` is never closed)")
    source = answer if _lean_blocks(answer) else thinking  # drafts in the reasoning only as a last resort
    blocks = _lean_blocks(source)
    complete = [b for b in blocks if b.closed]
    if not complete:
        if blocks:
            return SketchRejected(reason=SketchFailure.TRUNCATED, detail="the reply ends inside its Lean "
                                  "block (no closing ```)", code=blocks[-1].code)
        return SketchRejected(reason=SketchFailure.NO_LEAN_BLOCK, detail="the reply has no ```lean4 code block")
    block = _choose(complete, problem)
    plan = source[: block.start].strip()
    return _read_code(problem, plan, block.code.strip("\n").rstrip())


def find_holes(text: str, *, start: HoleMode = "term", offset: Pos | None = None) -> tuple[Hole, ...]:
    """The `sorry` holes of `text`, in order.

    Args:
        text: Lean text: a whole command, or a part of one such as a sketch's body.
        start: the mode at the start of `text`: `term` for a command (the default; its `:= by`
            switches to tactics) or a term body, `tactic` for a body that follows `:= by`
            (`Sketch.mode` says which a sketch body is).
        offset: REPL position in the sent command where `text` starts (default 1:0, `text` is
            the command): hole positions are reported in the command's coordinates.
    """
    toks = tokens(text)
    holes: list[Hole] = []
    for k, tok in enumerate(toks):
        if tok.kind != "ident" or tok.text != "sorry":
            continue
        mode, starts_block = _classify(text, toks, k, start)
        head = _head(text, toks, k)
        holes.append(Hole(
            index=len(holes), start=tok.start, end=tok.end, pos=_shift(position(text, tok.start), offset),
            end_pos=_shift(position(text, tok.end), offset), mode=mode, starts_block=starts_block,
            **(head or {}),
        ))
    return tuple(holes)


# ---------------------------------------------------------------------------------------------
# Reading the reply
# ---------------------------------------------------------------------------------------------


def _lean_blocks(text: str) -> list[CodeBlock]:
    return [b for b in find_code_blocks(text) if b.lang in LEAN_FENCES and b.code.strip()]


def _choose(blocks: Sequence[CodeBlock], problem: Problem) -> CodeBlock:
    """The last block that declares the benchmark theorem, else the last block."""
    name = problem.theorem_name
    declaring = [b for b in blocks if _declaration_at(tokens(b.code), name) is not None]
    return (declaring or list(blocks))[-1]


def _read_code(problem: Problem, plan: str, code: str) -> Sketch | SketchRejected:
    def rejected(reason: SketchFailure, detail: str) -> SketchRejected:
        return SketchRejected(reason=reason, detail=detail, plan=plan, code=code)

    try:
        asm = assemble(problem, code)
    except AssemblyRejected as exc:
        reason = SketchFailure.EMPTY_PROOF if exc.rule == "empty_proof" else SketchFailure.MISSING_THEOREM
        return rejected(reason, exc.detail)
    if asm.aux or any(s.part == "prefix" for s in asm.segments):
        extra = asm.aux or "an `open ... in` / `set_option ... in` prefix"
        return rejected(SketchFailure.EXTRA_DECLARATIONS, f"a sketch is the theorem's proof alone; the code "
                        f"also has: {extra.strip()[:300]}")
    if asm.form == "code":
        changed = _statement_change(problem, code, asm)
        if changed:
            return rejected(SketchFailure.STATEMENT_CHANGED, changed)
    statement = _assembled_statement(problem, asm.mode)
    body = asm.command[len(statement) : -1]
    if asm.command != statement + body + "\n":
        raise AssertionError(f"assembled command does not end with the statement's body: {asm.command!r}")
    body_offset = position(asm.command, len(statement))
    holes = find_holes(body, start=asm.mode, offset=body_offset)
    if not holes:
        return rejected(SketchFailure.NO_HOLES, "the proof has no `sorry`: there is nothing to decompose")
    if [t.text for t in tokens(body)] == ["sorry"]:
        return rejected(SketchFailure.WHOLE_GOAL, "the proof is a single `sorry`: nothing was decomposed")
    return Sketch(plan=plan, code=code, form=asm.form, mode=asm.mode, body=body, command=asm.command,
                  body_offset=body_offset, holes=holes)


def _assembled_statement(problem: Problem, mode: HoleMode) -> str:
    """The benchmark statement as the assembler places it before a body in `mode` (the one source
    of truth for that is the assembler itself, asked with a one-token body)."""
    probe = " sorry" if mode == "tactic" else ":= sorry"
    command = assemble(problem, probe).command
    return command[: -len(" sorry\n")]


def _unquote(name: str) -> str:
    return name.replace("«", "").replace("»", "")


def _declaration_at(toks: Sequence[Token], name: str) -> int | None:
    """Index of the name token of the last `theorem`/`lemma` declaring `name` (or a qualified
    form of it), or None."""
    name = _unquote(name)
    found = None
    for k in range(len(toks) - 1):
        if toks[k].text in _DECLARATIONS and toks[k + 1].kind == "ident":
            read = _unquote(toks[k + 1].text)
            if read == name or read.endswith("." + name) or name.endswith("." + read):
                found = k + 1
    return found


def _statement_change(problem: Problem, code: str, asm: AssembledProof) -> str | None:
    """How the model's restated statement differs from the benchmark's (None: same tokens)."""
    body_segment = next(s for s in asm.segments if s.part == "body")
    body_start = offset_of(code, Pos(line=body_segment.proof_line or 1, column=body_segment.proof_column))
    code_toks = tokens(code)
    at = _declaration_at(code_toks, problem.theorem_name)
    reference_toks = tokens(problem.formal_statement)
    ref_at = _declaration_at(reference_toks, problem.theorem_name)
    if at is None or ref_at is None or body_start is None:
        return None  # the assembler found the theorem by rules this check does not need to repeat
    model = _signature([t.text for t in code_toks[at + 1 :] if t.start < body_start])
    reference = _signature([t.text for t in reference_toks[ref_at + 1 :]])
    if model == reference:
        return None
    return (f"the code restates `{problem.theorem_name}` with a different statement:\n  benchmark: "
            f"{' '.join(reference)}\n  sketch:    {' '.join(model)}\nKeep the statement exactly as given.")


def _signature(texts: list[str]) -> list[str]:
    """Binders and type of a statement: its tokens after the name, without the final `:= by`."""
    while texts and texts[-1] in ("by", ":="):
        texts = texts[:-1]
    return texts


# ---------------------------------------------------------------------------------------------
# Holes
# ---------------------------------------------------------------------------------------------


def _shift(pos: Pos, offset: Pos | None) -> Pos:
    if offset is None:
        return pos
    column = pos.column + (offset.column if pos.line == 1 else 0)
    return Pos(line=offset.line + pos.line - 1, column=column)


def _line_start(text: str, toks: Sequence[Token], k: int) -> bool:
    return k == 0 or "\n" in text[toks[k - 1].end : toks[k].start]


def _classify(text: str, toks: Sequence[Token], k: int, start: HoleMode) -> tuple[HoleMode, bool]:
    """(mode, starts_block) of the `sorry` at token `k`, from the tokens before it."""
    in_tactics = start == "tactic" or any(t.text == "by" for t in toks[:k])
    alone = k + 1 >= len(toks) or "\n" in text[toks[k].end : toks[k + 1].start]
    prev = toks[k - 1].text if k else None
    if prev == ":=":
        return "term", False
    if prev == "by" or prev in _COMBINATORS and in_tactics:
        return "tactic", alone
    if prev == "." and _line_start(text, toks, k - 1) or prev == "·":
        return "tactic", alone
    if prev == "=>":
        if _lambda_arrow(text, toks, k - 1) or not in_tactics:
            return "term", False
        return "tactic", alone
    if not in_tactics:
        return "term", False
    if prev is None or _line_start(text, toks, k):
        return "tactic", alone
    if prev in _TACTIC_AFTER:
        return "tactic", False
    return "term", False


def _lambda_arrow(text: str, toks: Sequence[Token], arrow: int) -> bool:
    """Is the `=>` at `arrow` the arrow of a `fun`/`λ` on the same line?"""
    for k in range(arrow - 1, -1, -1):
        if toks[k].text in ("fun", "λ"):
            return True
        if _line_start(text, toks, k):
            return False
    return False


def _head(text: str, toks: Sequence[Token], k: int) -> dict[str, str | None] | None:
    """`head`, `name` and `type` of the step a sorry (at token `k`) is the proof of."""
    assign = k - 1
    if assign >= 0 and toks[assign].text == "by":
        assign -= 1
    if assign < 0 or toks[assign].text != ":=":
        return None
    depth, m = 0, assign - 1
    while m >= 0:
        t = toks[m].text
        if t in _CLOSE:
            depth += 1
        elif t in _OPEN:
            if depth == 0:
                return None
            depth -= 1
        elif depth == 0 and t in _HEADS:
            break
        elif depth == 0 and t in _HEAD_STOPS:
            return None
        m -= 1
    if m < 0:
        return None
    inner = toks[m + 1 : assign]
    colon = _top_level_colon(inner)
    names = inner[: len(inner) if colon is None else colon]
    name = None
    if names:  # `have h (x : ℕ) : T` names `h`; `obtain ⟨x, hx⟩ : T` names the pattern
        name = names[0].text if names[0].kind == "ident" else text[names[0].start : names[-1].end]
    stated = text[inner[colon].end : toks[assign].start].strip() if colon is not None else ""
    return {"head": toks[m].text, "name": name, "type": stated or None}


def _top_level_colon(toks: Sequence[Token]) -> int | None:
    depth = 0
    for i, t in enumerate(toks):
        if t.text in _OPEN:
            depth += 1
        elif t.text in _CLOSE:
            depth -= 1
        elif depth == 0 and t.text == ":":
            return i
    return None
