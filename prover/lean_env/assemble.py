"""Build the Lean code to check from a benchmark Problem and a model's proof.

The checker never trusts the model's statement. Whatever the model wrote, the code checked is

    benchmark header                       (elaborated once per worker; the warm env)
    model's auxiliary declarations         (lemmas, defs before its theorem; commands the header
                                            already has, e.g. a restated `def`, removed)
    [model's `open .. in` / `set_option .. in` prefixes of its theorem]
    BENCHMARK statement                    (`Problem.formal_statement`, verbatim)
    model's proof body                     (what followed `:= by`, or a term after `:=`)

`proof` is either a tactic body (what follows the statement's `:= by`) or complete Lean code
(imports, `open`s, auxiliary lemmas, the model's restatement of the theorem) as Kimina-Prover and
DeepSeek-Prover-V2 write it. Code with declarations but none named like the statement's
declaration (`Problem.theorem_name`, which can differ from `Problem.name`) is refused
(`missing_theorem`).

The model's theorem (and so its proof body) ends where Lean's parser ends the declaration: at
the first token that starts another command, wherever it is (`lean_syntax.command_starts`), so an
indented command after the last tactic or after a `where` clause is a command of its own, never
part of the body; commands after the model's theorem are dropped.

A body that starts on the line of `by` and goes on over more lines is moved to a new line at the
column its first tactic had in the model's text: Lean requires the tactics of a block to share one
column, which the benchmark statement (longer or shorter than the model's) would otherwise shift.

`AssembledProof.command` is what is sent to the REPL on the header env; `code` (= header +
command) is the self-contained file. Lines of `command` map 1:1 onto `code` after the header, and
`to_proof_pos` maps a position in `code` back to the model's own text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.lean_env.preflight import neutral_lines
from prover.lean_syntax import (
    DECLARATION_KEYWORDS,
    CommandStart,
    Lexed,
    Token,
    TokenKind,
    command_starts,
    is_close_bracket,
    is_open_bracket,
    name_parts,
    position,
    tokenize,
)
from prover.types import Pos, Problem

FROZEN = ConfigDict(frozen=True, extra="forbid")

ASSEMBLER_VERSION = "assemble/v3-tokens"
"""Bump when what is assembled from a given proof changes: it is part of every verdict cache key."""

_TARGET_KEYWORDS = frozenset({"theorem", "lemma", "def", "abbrev", "instance", "example"})
_LOCAL_BINDINGS = ("letI", "haveI", "let", "have")
_OPEN_LINE = re.compile(r"^open\s+(?:scoped\s+)?([\w.\s]+)$")

Part = Literal["header", "aux", "prefix", "statement", "body"]


class AssemblyRejected(ValueError):
    """The proof cannot be assembled; `rule` is the verdict rule (`missing_theorem`, `empty_proof`)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


class Segment(BaseModel):
    """A run of lines of `code` that came from one place."""

    model_config = FROZEN
    part: Part
    first_line: int
    """1-based line in `code` where the segment starts."""
    line_count: int
    first_column: int = 0
    """Column in `code` where the segment starts on `first_line` (the body follows `:= by`)."""
    proof_line: int | None = None
    """1-based line in the model's proof text that `first_line` came from (None: not model text)."""
    proof_column: int = 0
    """Column in the proof text corresponding to `first_column`."""


class AssembledProof(BaseModel):
    """The code the checker runs, and where each line came from."""

    model_config = FROZEN
    header: str
    command: str
    """Sent to the REPL on the warm header env (everything after the header)."""
    theorem_name: str
    form: Literal["body", "code"]
    """`body`: the proof was a tactic body; `code`: complete Lean code with the theorem."""
    mode: Literal["tactic", "term"]
    aux: str = ""
    """The model's auxiliary declarations that were kept."""
    body: str
    """The proof of the benchmark statement (after `:= by`, or after `:=` in term mode)."""
    segments: tuple[Segment, ...] = ()

    @property
    def code(self) -> str:
        """The whole file: header + command."""
        return self.header + self.command

    @property
    def header_lines(self) -> int:
        return self.header.count("\n")

    def part_of(self, line: int) -> Part:
        """Which part of `code` a 1-based line belongs to."""
        for seg in reversed(self.segments):
            if seg.first_line <= line < seg.first_line + seg.line_count:
                return seg.part
        return "header"

    def to_proof_pos(self, pos: Pos) -> Pos | None:
        """Map a position in `code` back to the model's proof text (None if not model text)."""
        for seg in reversed(self.segments):
            if not seg.first_line <= pos.line < seg.first_line + seg.line_count:
                continue
            if pos.line == seg.first_line and pos.column < seg.first_column:
                continue
            if seg.proof_line is None:
                return None
            if pos.line == seg.first_line:
                return Pos(line=seg.proof_line, column=seg.proof_column + pos.column - seg.first_column)
            return Pos(line=seg.proof_line + pos.line - seg.first_line, column=pos.column)
        return None


def assemble(problem: Problem, proof: str) -> AssembledProof:
    """Assemble `header + aux + benchmark statement + body` (see the module docstring).

    Raises:
        AssemblyRejected: `missing_theorem` (code without the statement's theorem, or without a
            `:=` proof for it) or `empty_proof`.
    """
    header = problem.header if not problem.header or problem.header.endswith("\n") else problem.header + "\n"
    text = proof.replace("\r\n", "\n")
    lexed = tokenize(text)
    starts = command_starts(lexed.tokens)
    if any(_is_code(lexed.tokens, s) for s in starts):
        return _assemble_code(problem, header, lexed, starts)
    return _assemble_body(problem, header, lexed, starts)


def _is_code(tokens: Sequence[Token], start: CommandStart) -> bool:
    keyword = tokens[start.keyword]
    return keyword.is_word("import", *DECLARATION_KEYWORDS) or keyword.is_symbol("]")


def _assign_at(tokens: Sequence[Token], k: int) -> bool:
    """Is `tokens[k]` the `:` of a `:=` (two adjacent symbols)?"""
    return (
        k + 1 < len(tokens) and tokens[k].is_symbol(":") and tokens[k + 1].is_symbol("=")
        and tokens[k].end == tokens[k + 1].start
    )


def _end_of_code(tokens: Sequence[Token], first: int, stop: int, default: int) -> int:
    """End offset of the last token in `tokens[first:stop]` (`default` if there is none)."""
    return tokens[stop - 1].end if stop > first else default


# ---------------------------------------------------------------------------------------------
# Tactic body
# ---------------------------------------------------------------------------------------------


def _assemble_body(problem: Problem, header: str, lexed: Lexed, starts: list[CommandStart]) -> AssembledProof:
    tokens, text = lexed.tokens, lexed.text
    stop = starts[0].index if starts else len(tokens)  # a command after the tactics is not the proof
    k, start = 0, 0
    lead = _assign_at(tokens, 0)
    if lead:
        k, start = 2, tokens[1].end
    by = k < stop and tokens[k].is_word("by")
    if by:
        start = tokens[k].end
        k += 1
    if k >= stop:
        raise AssemblyRejected("empty_proof", "the proof is empty")
    mode: Literal["tactic", "term"] = "term" if lead and not by else "tactic"
    body = text[start : tokens[stop - 1].end].rstrip()
    return _build(problem, header, problem.theorem_name, form="body", mode=mode, aux="", aux_line=1, prefix="",
                  prefix_line=None, body=body, body_pos=position(text, start))


# ---------------------------------------------------------------------------------------------
# Complete code
# ---------------------------------------------------------------------------------------------


def _assemble_code(problem: Problem, header: str, lexed: Lexed, starts: list[CommandStart]) -> AssembledProof:
    tokens, text = lexed.tokens, lexed.text
    name = problem.theorem_name
    found = _find_target(tokens, starts, name)
    if found is None:
        raise AssemblyRejected(
            "missing_theorem",
            f"the proof is Lean code without a declaration of `{name}` (the statement's theorem)",
        )
    target, name_index = found
    position_in_starts = starts.index(target)
    stop = starts[position_in_starts + 1].index if position_in_starts + 1 < len(starts) else len(tokens)
    assign = _top_level_assign(tokens, name_index + 1, stop)
    if assign is None:
        raise AssemblyRejected("missing_theorem", f"the model's `{name}` has no `:=` proof")
    by = assign < stop and tokens[assign].is_word("by")
    mode: Literal["tactic", "term"] = "tactic" if by else "term"
    first = assign + 1 if by else assign
    if first >= stop:
        raise AssemblyRejected("empty_proof", f"the model's `{name}` has an empty proof")
    body_start = tokens[assign].end if by else tokens[assign - 1].end
    body = text[body_start : tokens[stop - 1].end].rstrip()
    cmd_start = tokens[target.index].start
    prefix_text = "".join(text[tokens[a].start : tokens[b].end] + "\n" for a, b in target.prefixes)
    aux, aux_line = _aux(header, lexed, starts[:position_in_starts], _before_docstring(lexed, target.index))
    return _build(problem, header, name, form="code", mode=mode, aux=aux, aux_line=aux_line,
                  prefix=prefix_text, prefix_line=position(text, cmd_start).line, body=body,
                  body_pos=position(text, body_start))


def _find_target(tokens: Sequence[Token], starts: list[CommandStart], name: str) -> tuple[CommandStart, int] | None:
    """The command declaring the model's theorem `name`, and the index of its name token.

    The last exact match wins (the final restatement); a qualified match (`Ns.name`, or `name`
    when the statement's name is qualified) counts when there is no exact one. `«x»` and `x` are
    the same name."""
    wanted = name_parts(name)
    exact, qualified = None, None
    for start in starts:
        k = start.keyword
        if not tokens[k].is_word(*_TARGET_KEYWORDS) or k + 1 >= len(tokens) or tokens[k + 1].kind is not TokenKind.WORD:
            continue
        parts = tokens[k + 1].parts
        if parts == wanted:
            exact = (start, k + 1)
        elif parts[-len(wanted):] == wanted or wanted[-len(parts):] == parts:
            qualified = (start, k + 1)
    return exact or qualified


def _top_level_assign(tokens: Sequence[Token], first: int, stop: int) -> int | None:
    """Index just after the statement's `:=` (bracket depth 0, not a binder default value, not
    the `:=` of a `let`/`have` inside the statement's type)."""
    depth, pending = 0, 0
    for k in range(first, stop):
        token = tokens[k]
        if is_open_bracket(token):
            depth += 1
        elif is_close_bracket(token):
            depth -= 1
        elif depth == 0 and token.is_word(*_LOCAL_BINDINGS):
            pending += 1
        elif depth == 0 and _assign_at(tokens, k):
            if not pending:
                return k + 2
            pending -= 1
    return None


def _before_docstring(lexed: Lexed, index: int) -> int:
    """Where the command at token `index` begins, its doc comment included."""
    start = lexed.tokens[index].start
    previous_end = lexed.tokens[index - 1].end if index else 0
    docs = [c.start for c in lexed.comments if c.doc and previous_end <= c.start and c.end <= start]
    return docs[0] if docs else start


def _aux(header: str, lexed: Lexed, starts: list[CommandStart], end: int) -> tuple[str, int]:
    """The model's code before its theorem (commands at `starts`, up to offset `end`), without
    what the header already has and without a trailing docstring (it belonged to the theorem);
    returns (aux, its first proof line). Dropped commands are blanked, so lines still map 1:1
    onto the model's."""
    header_lexed = tokenize(header)
    header_clean = header_lexed.blanked()
    header_starts = [header_lexed.tokens[s.index].start for s in command_starts(header_lexed.tokens)]
    header_commands = {
        _normalise(header_clean[a:b]) for a, b in zip(header_starts, [*header_starts[1:], len(header_clean)])
    } | neutral_lines(header)
    header_opens = _opened_namespaces(header_clean)
    clean = lexed.blanked()
    kept = list(lexed.text[:end])
    offsets = [lexed.tokens[s.index].start for s in starts]
    for start, stop in zip(offsets, [*offsets[1:], end]):
        command = _normalise(clean[start:stop])
        if command.startswith("import ") or command in header_commands or _redundant_open(command, header_opens):
            drop = slice(len(clean[:start].rstrip()), len(clean[:stop].rstrip()))  # with its docstring
            kept[drop] = [c if c == "\n" else " " for c in kept[drop]]
    lines = [line.rstrip() for line in "".join(kept).split("\n")]
    first = 0
    while first < len(lines) and not lines[first]:
        first += 1
    return "\n".join(lines[first:]).rstrip(), first + 1


def _normalise(code: str) -> str:
    return " ".join(code.split())


def _opened_namespaces(header_clean: str) -> set[str]:
    opened: set[str] = set()
    for line in header_clean.splitlines():
        match = _OPEN_LINE.match(_normalise(line))
        if match:
            opened.update(match.group(1).split())
    return opened


def _redundant_open(line: str, header_opens: set[str]) -> bool:
    match = _OPEN_LINE.match(line)
    return bool(match) and set(match.group(1).split()) <= header_opens


# ---------------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------------


def _build(
    problem: Problem,
    header: str,
    name: str,
    *,
    form: Literal["body", "code"],
    mode: Literal["tactic", "term"],
    aux: str,
    aux_line: int,
    prefix: str,
    prefix_line: int | None,
    body: str,
    body_pos: Pos,
) -> AssembledProof:
    statement = problem.formal_statement.rstrip()
    if mode == "term":
        statement = re.sub(r"\s*by\s*$", "", statement)
        if not statement.endswith(":="):
            raise AssemblyRejected("missing_theorem", "the benchmark statement does not end with `:= by`")
    segments: list[Segment] = []
    line = header.count("\n") + 1
    pieces: list[str] = []
    if aux:
        segments.append(Segment(part="aux", first_line=line, line_count=aux.count("\n") + 1, proof_line=aux_line))
        pieces.append(aux + "\n\n")
        line += aux.count("\n") + 2
    if prefix:
        segments.append(Segment(part="prefix", first_line=line, line_count=prefix.count("\n"), proof_line=prefix_line))
        pieces.append(prefix)
        line += prefix.count("\n")
    stmt_lines = statement.count("\n")
    segments.append(Segment(part="statement", first_line=line, line_count=stmt_lines + 1))
    placed, body_segment = _place_body(statement, body, body_pos, line + stmt_lines)
    segments.append(body_segment)
    pieces.append(statement + placed + "\n")
    return AssembledProof(
        header=header, command="".join(pieces), theorem_name=name, form=form, mode=mode, aux=aux,
        body=body, segments=tuple(segments),
    )


def _place_body(statement: str, body: str, at: Pos, line: int) -> tuple[str, Segment]:
    """The text that follows the statement (whose last line is `line`) and its segment; `at` is
    where `body` starts in the model's text (see the module docstring for moved bodies)."""
    column = len(statement) - (statement.rfind("\n") + 1)
    first, _, rest = body.partition("\n")
    if first.strip() and rest:
        indent = at.column + len(first) - len(first.lstrip())
        placed = "\n" + " " * indent + first.lstrip() + "\n" + rest
        return placed, Segment(part="body", first_line=line + 1, line_count=rest.count("\n") + 2,
                               first_column=indent, proof_line=at.line, proof_column=indent)
    if not body[:1].isspace():
        body, column = " " + body, column + 1
    return body, Segment(part="body", first_line=line, line_count=body.count("\n") + 1, first_column=column,
                         proof_line=at.line, proof_column=at.column)
