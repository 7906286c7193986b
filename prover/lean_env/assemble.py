"""Build the Lean code to check from a benchmark Problem and a model's proof.

The checker never trusts the model's statement. Whatever the model wrote, the code checked is

    benchmark header                       (elaborated once per worker; the warm env)
    model's auxiliary declarations         (lemmas, defs before its theorem; header duplicates removed)
    [model's `open .. in` / `set_option .. in` prefixes of its theorem]
    BENCHMARK statement                    (`Problem.formal_statement`, verbatim)
    model's proof body                     (what followed `:= by`, or a term after `:=`)

`proof` is either a tactic body (what follows the statement's `:= by`) or complete Lean code
(imports, `open`s, auxiliary lemmas, the model's restatement of the theorem) as Kimina-Prover and
DeepSeek-Prover-V2 write it. Code with declarations but none named like the statement's
declaration (`Problem.theorem_name`, which can differ from `Problem.name`) is refused
(`missing_theorem`).

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
    r"(?m)^(?:@\[|#[A-Za-z_]|(?:" + "|".join(_COMMAND_KEYWORDS) + r")(?![\w'!?]))"
)
_IS_CODE = re.compile(
    r"(?m)^(?:@\[|import\s|(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(?:theorem|lemma|def|abbrev|example|instance|axiom|opaque|structure|class|inductive)(?![\w'!?]))"
)
_MODIFIER = re.compile(r"(?:private|protected|noncomputable|nonrec|unsafe|partial)(?![\w'!?])\s*")
_PREFIX = re.compile(
    r"(?:open(?![\w'!?])[^\n]*?\sin|set_option\s+[\w.«»]+\s+\S+\s+in)(?![\w'!?])\s*"
)
_DECL = re.compile(r"(theorem|lemma|def|abbrev|instance|example)(?![\w'!?])\s+([^\s:({\[⦃]+)")
_HEADER_LINE = re.compile(r"(?m)^(import|set_option\s+maxHeartbeats|open|namespace|end)(?![\w'!?]).*$")
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
    if _IS_CODE.search(clean):
        return _assemble_code(problem, header, name, text, clean)
    return _assemble_body(problem, header, name, text, clean)


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
    starts = [m.start() for m in _COMMAND_START.finditer(clean)]
    target = _find_target(clean, starts, name)
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
    body = text[body_start:cmd_end].rstrip()
    if not clean[body_start:cmd_end].strip():
        raise AssemblyRejected("empty_proof", f"the model's `{name}` has an empty proof")
    prefix_text = _prefix_text(text, clean, cmd_start, decl_start)
    aux, aux_line = _aux(header, text, clean, cmd_start)
    return _build(problem, header, name, form="code", mode=mode, aux=aux, aux_line=aux_line,
                  prefix=prefix_text, prefix_line=position(text, cmd_start).line, body=body,
                  body_pos=position(text, body_start))


def _find_target(clean: str, starts: list[int], name: str) -> tuple[int, int, int] | None:
    """(command start, decl keyword start, end of the name) of the model's theorem `name`.

    The last exact match wins (the final restatement); a qualified match (`Ns.name`, or `name`
    when the statement's name is qualified) counts when there is no exact one.
    """
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
        found, hit = decl.group(2), (start, decl.start(), decl.end())
        if found == name:
            exact = exact if exact and exact[1] == hit[1] else hit  # earliest start of one decl
        elif found.endswith("." + name) or name.endswith("." + found):
            qualified = qualified if qualified and qualified[1] == hit[1] else hit
    return exact or qualified


def _skip_space(text: str, k: int) -> int:
    while k < len(text) and text[k].isspace():
        k += 1
    return k


def _top_level_assign(clean: str, start: int, end: int) -> int | None:
    """Index just after the statement's `:=` (bracket depth 0, not a binder default value)."""
    depth = 0
    for k in range(start, end):
        ch = clean[k]
        if ch in "([{⦃⟨":
            depth += 1
        elif ch in ")]}⦄⟩":
            depth -= 1
        elif depth == 0 and clean.startswith(":=", k):
            return k + 2
    return None


def _prefix_text(text: str, clean: str, cmd_start: int, decl_start: int) -> str:
    """The model's `open X in` / `set_option o v in` prefixes of its theorem (kept: the body may
    need them); attributes, modifiers and docstrings of the model's theorem are dropped."""
    kept = [text[m.start() : m.end()].strip() for m in _PREFIX.finditer(clean, cmd_start, decl_start)]
    return "".join(p + "\n" for p in kept if p)


def _aux(header: str, text: str, clean: str, cmd_start: int) -> tuple[str, int]:
    """The model's code before its theorem, with header duplicates blanked and a trailing
    docstring (which belonged to the theorem) removed; returns (aux, its first proof line)."""
    header_opens = _opened_namespaces(header)
    header_lines = {" ".join(line.split()) for line in header.splitlines()} | neutral_lines(header)
    lines = text[:cmd_start].split("\n")
    clean_lines = clean[:cmd_start].split("\n")
    for i, line in enumerate(clean_lines):
        stripped = " ".join(line.split())
        if not _HEADER_LINE.match(stripped):
            continue
        if stripped.startswith("import") or stripped in header_lines or _redundant_open(stripped, header_opens):
            lines[i] = ""
            clean_lines[i] = ""
    aux_text = _drop_trailing_docstring("\n".join(lines), "\n".join(clean_lines))
    body_lines = aux_text.split("\n")
    first = 0
    while first < len(body_lines) and not body_lines[first].strip():
        first += 1
    aux = "\n".join(body_lines[first:]).rstrip()
    return aux, first + 1


def _drop_trailing_docstring(text: str, clean: str) -> str:
    stripped = clean.rstrip()
    tail = text[len(stripped) :]
    if tail.strip():  # trailing comment(s) blanked in `clean`
        doc = text.rfind("/--", len(stripped))
        if doc >= 0:
            return text[:doc]
    return text


def _opened_namespaces(header: str) -> set[str]:
    opened: set[str] = set()
    for line in blank_comments_and_strings(header).splitlines():
        match = _OPEN_LINE.match(" ".join(line.split()))
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
    body_column = len(statement) - (statement.rfind("\n") + 1)
    if not body[:1].isspace():
        statement += " "
        body_column += 1
    segments.append(
        Segment(part="body", first_line=line + stmt_lines, line_count=body.count("\n") + 1,
                first_column=body_column, proof_line=body_pos.line, proof_column=body_pos.column)
    )
    pieces.append(statement + body + "\n")
    return AssembledProof(
        header=header, command="".join(pieces), theorem_name=name, form=form, mode=mode, aux=aux,
        body=body, segments=tuple(segments),
    )
