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

A body that starts on the line of `by` and goes on over more lines is moved to a new line at the
column its first tactic had in the model's text: Lean requires the tactics of a block to share one
column, which the benchmark statement (longer or shorter than the model's) would otherwise shift.

`AssembledProof.command` is what is sent to the REPL on the header env; `code` (= header +
command) is the self-contained file. Lines of `command` map 1:1 onto `code` after the header, and
`to_proof_pos` maps a position in `code` back to the model's own text.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.lean_env.preflight import (
    blank_comments_and_strings,
    closing_bracket,
    comment_end,
    neutral_lines,
    position,
)
from prover.types import Pos, Problem

FROZEN = ConfigDict(frozen=True, extra="forbid")

_DECL_KEYWORDS = (
    "theorem", "lemma", "def", "abbrev", "example", "instance", "axiom", "opaque", "structure", "class",
    "inductive", "noncomputable", "private", "protected", "nonrec", "unsafe", "partial", "irreducible_def",
)
_COMMAND_KEYWORDS = _DECL_KEYWORDS + (
    "import", "open", "set_option", "namespace", "section", "end", "variable", "universe", "attribute",
    "macro", "macro_rules", "syntax", "notation", "notation3", "infix", "infixl", "infixr", "prefix",
    "postfix", "elab", "elab_rules", "run_cmd", "mutual", "export", "include", "omit", "local", "scoped",
    "initialize", "deriving", "prelude",
)
_COMMAND_START = re.compile(
    r"(?m)^[ \t]*(?:@\[|#[A-Za-z_]|(?:" + "|".join(_COMMAND_KEYWORDS) + r")(?![\w'!?]))"
)
_IS_CODE = re.compile(
    r"(?m)^[ \t]*(?:@\[|import\s|(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(?:theorem|lemma|def|abbrev|example|instance|axiom|opaque|structure|class|inductive)(?![\w'!?]))"
)
"""Both match on the blanked text at a line start, or after a comment (`/-- doc -/ theorem ..`);
an indented keyword after plain spaces is tactic syntax (`open Real in`), not a command."""
_MODIFIER = re.compile(r"(?:private|protected|noncomputable|nonrec|unsafe|partial)(?![\w'!?])\s*")
_PREFIX = re.compile(
    r"(?:open(?![\w'!?])[^\n]*?\sin|set_option\s+[\w.«»]+\s+\S+\s+in)(?![\w'!?])\s*"
)
_DECL = re.compile(r"(?:theorem|lemma|def|abbrev|instance|example)(?![\w'!?])[ \t\n]*")
_NAME_PART = r"(?:«[^»\n]*»|[^\s:({\[⦃.«»]+)"
_NAME = re.compile(rf"{_NAME_PART}(?:\.{_NAME_PART})*")
"""A declaration name, read from the model's text (`«»` parts can hold spaces and dots)."""
_LOCAL_BINDING = re.compile(r"(?:letI|haveI|let|have)(?![\w'!?])")
_ID_CHAR = re.compile(r"[\w'!?.]")
_BY = re.compile(r"\s*by(?![\w'!?])")
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
    name = problem.theorem_name
    header = problem.header if not problem.header or problem.header.endswith("\n") else problem.header + "\n"
    text = proof.replace("\r\n", "\n")
    clean = blank_comments_and_strings(text)
    if _line_starts(_IS_CODE, text, clean):
        return _assemble_code(problem, header, name, text, clean)
    return _assemble_body(problem, header, name, text, clean)


def _line_starts(pattern: re.Pattern[str], text: str, clean: str) -> list[int]:
    """Where `pattern` (anchored at a line start, optional indentation) matches in `clean` with
    nothing but comments before it on its line; returns the index after the indentation."""
    found = []
    for match in pattern.finditer(clean):
        start = _skip_space(clean, match.start())
        if start == match.start() or text[match.start() : start].strip():
            found.append(start)
    return found


# ---------------------------------------------------------------------------------------------
# Tactic body
# ---------------------------------------------------------------------------------------------


def _assemble_body(problem: Problem, header: str, name: str, text: str, clean: str) -> AssembledProof:
    start = 0
    lead = re.match(r"\s*:=", clean)
    if lead:
        start = lead.end()
    by = _BY.match(clean, start)
    if by:
        start = by.end()
    mode: Literal["tactic", "term"] = "term" if lead and not by else "tactic"
    body = text[start:].rstrip()
    if not clean[start:].strip():
        raise AssemblyRejected("empty_proof", "the proof is empty")
    return _build(problem, header, name, form="body", mode=mode, aux="", aux_line=1, prefix="",
                  prefix_line=None, body=body, body_pos=position(text, start))


# ---------------------------------------------------------------------------------------------
# Complete code
# ---------------------------------------------------------------------------------------------


def _assemble_code(problem: Problem, header: str, name: str, text: str, clean: str) -> AssembledProof:
    starts = _line_starts(_COMMAND_START, text, clean)
    target = _find_target(text, clean, starts, name)
    if target is None:
        raise AssemblyRejected(
            "missing_theorem",
            f"the proof is Lean code without a declaration of `{name}` (the statement's theorem)",
        )
    cmd_start, decl_start, decl_end = target
    later = [s for s in starts if s > decl_start]
    cmd_end = later[0] if later else len(text)
    assign = _top_level_assign(clean, decl_end, cmd_end)
    if assign is None:
        raise AssemblyRejected("missing_theorem", f"the model's `{name}` has no `:=` proof")
    by = _BY.match(clean, assign)
    mode: Literal["tactic", "term"] = "tactic" if by else "term"
    body_start = by.end() if by else assign
    if not clean[body_start:cmd_end].strip():
        raise AssemblyRejected("empty_proof", f"the model's `{name}` has an empty proof")
    body = text[body_start : _before_trailing_docstring(text, clean, body_start, cmd_end)].rstrip()
    prefix_text = _prefix_text(text, clean, cmd_start, decl_start)
    aux, aux_line = _aux(header, text, clean, [s for s in starts if s < cmd_start], cmd_start)
    return _build(problem, header, name, form="code", mode=mode, aux=aux, aux_line=aux_line,
                  prefix=prefix_text, prefix_line=position(text, cmd_start).line, body=body,
                  body_pos=position(text, body_start))


def _find_target(text: str, clean: str, starts: list[int], name: str) -> tuple[int, int, int] | None:
    """(command start, decl keyword start, end of the name) of the model's theorem `name`.

    The last exact match wins (the final restatement); a qualified match (`Ns.name`, or `name`
    when the statement's name is qualified) counts when there is no exact one. `«x»` and `x` are
    the same name.
    """
    name = _unquote(name)
    exact, qualified = None, None
    for start in starts:
        k = start
        while True:
            k = _skip_space(clean, k)
            if clean.startswith("@[", k):
                k = min(closing_bracket(clean, k + 1), len(clean) - 1) + 1
                continue
            prefix = _PREFIX.match(clean, k)
            if prefix:
                k = prefix.end()
                continue
            modifier = _MODIFIER.match(clean, k)
            if modifier:
                k = modifier.end()
                continue
            break
        decl = _DECL.match(clean, k)
        if not decl:
            continue
        at = decl.end() - 1 if text[decl.end() - 1] == "«" else decl.end()  # `«` is blank in `clean`
        read = _NAME.match(text, at)
        if not read:
            continue
        found, hit = _unquote(read.group()), (start, decl.start(), read.end())
        if found == name:
            exact = exact if exact and exact[1] == hit[1] else hit  # earliest start of one decl
        elif found.endswith("." + name) or name.endswith("." + found):
            qualified = qualified if qualified and qualified[1] == hit[1] else hit
    return exact or qualified


def _unquote(name: str) -> str:
    return name.replace("«", "").replace("»", "")


def _skip_space(text: str, k: int) -> int:
    while k < len(text) and text[k].isspace():
        k += 1
    return k


def _top_level_assign(clean: str, start: int, end: int) -> int | None:
    """Index just after the statement's `:=` (bracket depth 0, not a binder default value, not
    the `:=` of a `let`/`have` inside the statement's type)."""
    depth, pending = 0, 0
    for k in range(start, end):
        ch = clean[k]
        if ch in "([{⦃⟨":
            depth += 1
        elif ch in ")]}⦄⟩":
            depth -= 1
        elif depth == 0 and _LOCAL_BINDING.match(clean, k) and not _ID_CHAR.match(clean, k - 1):
            pending += 1
        elif depth == 0 and clean.startswith(":=", k):
            if not pending:
                return k + 2
            pending -= 1
    return None


def _prefix_text(text: str, clean: str, cmd_start: int, decl_start: int) -> str:
    """The model's `open X in` / `set_option o v in` prefixes of its theorem (kept: the body may
    need them); attributes, modifiers and docstrings of the model's theorem are dropped."""
    kept = [text[m.start() : m.end()].strip() for m in _PREFIX.finditer(clean, cmd_start, decl_start)]
    return "".join(p + "\n" for p in kept if p)


def _aux(header: str, text: str, clean: str, starts: list[int], cmd_start: int) -> tuple[str, int]:
    """The model's code before its theorem (commands at `starts`), without what the header
    already has and without a trailing docstring (it belonged to the theorem); returns (aux, its
    first proof line). Dropped commands are blanked, so lines still map 1:1 onto the model's."""
    header_clean = blank_comments_and_strings(header)
    header_commands = {_normalise(c) for c in _commands(header_clean, _COMMAND_START)} | neutral_lines(header)
    header_opens = _opened_namespaces(header_clean)
    kept = list(text[: _before_trailing_docstring(text, clean, 0, cmd_start)])
    for start, end in zip(starts, [*starts[1:], cmd_start]):
        command = _normalise(clean[start:end])
        if command.startswith("import ") or command in header_commands or _redundant_open(command, header_opens):
            drop = slice(len(clean[:start].rstrip()), len(clean[:end].rstrip()))  # with its docstring
            kept[drop] = [c if c == "\n" else " " for c in kept[drop]]
    lines = [line.rstrip() for line in "".join(kept).split("\n")]
    first = 0
    while first < len(lines) and not lines[first]:
        first += 1
    return "\n".join(lines[first:]).rstrip(), first + 1


def _commands(clean: str, pattern: re.Pattern[str]) -> list[str]:
    """The commands of an already-blanked text (each up to the next command start)."""
    starts = [m.start() for m in pattern.finditer(clean)]
    return [clean[s:e] for s, e in zip(starts, [*starts[1:], len(clean)])]


def _normalise(code: str) -> str:
    return " ".join(code.split())


def _before_trailing_docstring(text: str, clean: str, start: int, end: int) -> int:
    """`end`, or where a doc comment after the last code of `text[start:end]` begins (a doc
    comment belongs to the declaration after it; Lean rejects one that is followed by none)."""
    k = len(clean[:end].rstrip())
    k = max(k, start)
    doc = None
    while k < end:
        if text.startswith("--", k):
            k = text.find("\n", k)
            k = end if k < 0 else k
        elif text.startswith("/-", k):
            if text.startswith("/--", k) and not text.startswith("/--/", k):
                doc = k
            k = comment_end(text, k)
        else:
            k += 1
    return end if doc is None else doc


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
