"""Cut a Lean `theorem`/`lemma` declaration into its parts the way Lean's parser does.

Benchmarks from other tools (LeanDojo traces, Hugging Face datasets) give a declaration's source
text, sometimes with the file's header in front and a proof behind. A problem needs the header,
the statement up to its proof's `:=`, the docstring, and whether the proof is just `sorry`.

Everything is decided on text whose comments and string/char literals are blanked
(`blank_comments_and_strings`): a `:=` or `theorem` inside a comment or string is never code.
The proof starts at the first `:=` at bracket depth 0 that no `let`/`have` of the statement's
type claims for itself; the declaration starts before its doc comment, attributes, modifiers and
`open ... in` / `set_option ... in` prefixes, because those belong to it, not to the header.
"""

from __future__ import annotations

from dataclasses import dataclass

from prover.lean_syntax import blank_comments_and_strings

OPENING = "([{⟨⦃⟦‹⁅"
CLOSING = ")]}⟩⦄⟧›⁆"
DECLARATION_KEYWORDS = frozenset({"theorem", "lemma"})
MODIFIERS = frozenset({"private", "protected", "noncomputable", "nonrec", "unsafe", "partial"})
BINDERS_WITH_VALUE = frozenset({"let", "have", "letI", "haveI"})
"""Keywords whose own `:=` can appear in a statement's type (`theorem t : let x := 1; x = 1`)."""
PREFIX_COMMANDS = ("open", "set_option")
"""Commands that prefix a declaration as `open X in` / `set_option o v in`."""


def _ident_char(ch: str) -> bool:
    """A character that continues a Lean identifier (letters, digits, subscripts, `_ ' ! ?`)."""
    return ch.isalnum() or ch in "_'!?"


@dataclass(frozen=True)
class Word:
    """An identifier token: where it is in the text, and its spelling."""

    start: int
    end: int
    text: str


def words(clean: str, start: int = 0, stop: int | None = None) -> list[Word]:
    """Identifier tokens of blanked text (`a.b.c` is one token: dots join identifier parts)."""
    stop = len(clean) if stop is None else stop
    found: list[Word] = []
    i = start
    while i < stop:
        if _ident_char(clean[i]) and not clean[i].isdigit():
            j = i
            while j < stop and (_ident_char(clean[j]) or (clean[j] == "." and j + 1 < stop and _ident_char(clean[j + 1]))):
                j += 1
            found.append(Word(i, j, clean[i:j]))
            i = j
        elif clean[i].isdigit():  # numerals (`2`, `0.5`, `1e3`) are not identifiers
            while i < stop and (_ident_char(clean[i]) or clean[i] == "."):
                i += 1
        else:
            i += 1
    return found


def _depths(clean: str) -> list[int]:
    """Bracket depth before each character (never below 0, so a stray closer cannot hide code)."""
    depth, out = 0, []
    for ch in clean:
        out.append(depth)
        if ch in OPENING:
            depth += 1
        elif ch in CLOSING:
            depth = max(depth - 1, 0)
    return out


def proof_start(clean: str, start: int = 0) -> int | None:
    """Offset of the `:=` that begins the proof of the declaration starting at `start`.

    None when there is none: equation-compiler proofs (`| 0 => ...` alternatives) and `where`
    structure proofs have no `:=` of their own."""
    depth_at = _depths(clean)
    pending = 0
    names = {w.start: w for w in words(clean, start)}
    i = start
    while i < len(clean):
        word = names.get(i)
        if word is not None:
            if depth_at[i] == 0 and word.text in BINDERS_WITH_VALUE:
                pending += 1
            i = word.end
            continue
        if clean.startswith(":=", i) and depth_at[i] == 0:
            if not pending:
                return None if _match_alternative_before(clean, start, i, depth_at) else i
            pending -= 1
            i += 2
            continue
        i += 1
    return None


def _match_alternative_before(clean: str, start: int, stop: int, depth_at: list[int]) -> bool:
    """Whether a line between `start` and `stop` opens an equation-compiler alternative
    (`| pattern => ...` at depth 0): then the `:=` found belongs to a `have` in a proof."""
    line_start = start
    while line_start < stop:
        line_end = clean.find("\n", line_start, stop)
        line_end = stop if line_end < 0 else line_end
        line = clean[line_start:line_end]
        first = len(line) - len(line.lstrip())
        at = line_start + first
        if line.lstrip().startswith("|") and depth_at[at] == 0 and "=>" in line:
            return True
        line_start = line_end + 1
    return False


def keyword_after(clean: str, start: int) -> Word | None:
    """The declaration keyword that follows `start` past modifiers (attribute contents are inside
    brackets, so they are skipped by depth)."""
    depth_at = _depths(clean[start:])
    for word in words(clean, start):
        if depth_at[word.start - start] != 0:
            continue
        if word.text in DECLARATION_KEYWORDS:
            return word
        if word.text not in MODIFIERS:
            return None
    return None


def declared_name(clean: str, keyword: Word) -> str | None:
    """The name right after `theorem`/`lemma` (None if the keyword is not followed by one)."""
    following = words(clean, keyword.end, min(len(clean), keyword.end + 2048))
    if not following or clean[keyword.end : following[0].start].strip():
        return None
    return following[0].text


def last_declaration_keyword(clean: str) -> Word | None:
    """The last `theorem`/`lemma` keyword at bracket depth 0 (the main declaration of a file)."""
    depth_at = _depths(clean)
    candidates = [w for w in words(clean) if w.text in DECLARATION_KEYWORDS and depth_at[w.start] == 0]
    return candidates[-1] if candidates else None


def declaration_start(text: str, clean: str, keyword_at: int) -> int:
    """Where the declaration whose keyword (or first modifier) is at `keyword_at` begins.

    Walks back over modifiers (`private`, `protected`, ...), `@[...]` attributes, a
    `/-- doc -/` comment and `open ... in` / `set_option ... in` lines. A doc comment is the
    first part of a declaration, so the walk stops there."""
    at = keyword_at
    if text.startswith("/--", at):
        return at
    while True:
        gap = at
        while gap > 0 and clean[gap - 1].isspace():
            gap -= 1
        doc = _doc_comment_in(text, gap, at)
        if doc is not None:
            return doc
        before = words(clean, _line_start(clean, gap), gap)
        last = before[-1] if before and before[-1].end == gap else None
        if last is not None and last.text in MODIFIERS:
            at = last.start
        elif gap > 0 and clean[gap - 1] == "]":
            opening = _matching_open(clean, gap - 1)
            if opening is None or opening == 0 or clean[opening - 1] != "@":
                return at
            at = opening - 1
        elif last is not None and last.text == "in" and _prefix_command_line(clean, last.start) is not None:
            at = _prefix_command_line(clean, last.start)  # type: ignore[assignment]
        else:
            return at


def _line_start(clean: str, at: int) -> int:
    return clean.rfind("\n", 0, at) + 1


def _prefix_command_line(clean: str, in_at: int) -> int | None:
    """Start of an `open ... in` / `set_option ... in` line whose `in` is at `in_at`."""
    line = _line_start(clean, in_at)
    head = words(clean, line, in_at)
    if head and head[0].text in PREFIX_COMMANDS and not clean[line : head[0].start].strip():
        return head[0].start
    return None


def _matching_open(clean: str, close_at: int) -> int | None:
    depth = 0
    for i in range(close_at, -1, -1):
        if clean[i] in CLOSING:
            depth += 1
        elif clean[i] in OPENING:
            depth -= 1
            if depth == 0:
                return i if clean[i] == "[" else None
    return None


def _doc_comment_in(text: str, start: int, stop: int) -> int | None:
    """Start of the last `/-- ... -/` comment in `text[start:stop]`, which holds only
    comments and whitespace (Lean block comments nest)."""
    found = None
    i = start
    while i < stop:
        if text[i].isspace():
            i += 1
        elif text.startswith("/-", i):
            end = block_comment_end(text, i)
            if text.startswith("/--", i) and not text.startswith("/--/", i):
                found = i
            i = end
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            i = stop if newline < 0 else newline + 1
        else:
            break
    return found


def block_comment_end(text: str, start: int) -> int:
    """Offset after the block comment opened at `start` (nested `/- -/` counted)."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/-", i):
            depth += 1
            i += 2
        elif text.startswith("-/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def split_doc_comment(text: str) -> tuple[str | None, str]:
    """(`/-- text -/` body, the rest) when `text` starts with a doc comment."""
    stripped = text.lstrip()
    if not stripped.startswith("/--") or stripped.startswith("/--/"):
        return None, text
    end = block_comment_end(stripped, 0)
    body = stripped[3 : end - 2].strip()
    return body or None, stripped[end:].lstrip()


def is_sorry_proof(clean_proof: str) -> bool:
    """Whether a blanked proof (what follows the `:=`) is `sorry` or `by sorry`."""
    return clean_proof.split() in (["sorry"], ["by", "sorry"])


@dataclass(frozen=True)
class Declaration:
    """A declaration's parts: `header + statement` re-creates the text up to the proof."""

    header: str
    statement: str
    """From the first attribute/modifier to the proof's `:=`, ending in exactly `:= by`."""
    docstring: str | None
    name: str
    clean_proof: str
    """The blanked source text after the proof's `:=` (may be empty)."""

    @property
    def proof_is_sorry(self) -> bool:
        return is_sorry_proof(self.clean_proof)

    @property
    def has_proof(self) -> bool:
        """Whether a real proof follows (anything but nothing, `by`, `sorry` or `by sorry`)."""
        return self.clean_proof.split() not in ([], ["by"], ["sorry"], ["by", "sorry"])


class NotADeclaration(ValueError):
    """The text has no `theorem`/`lemma` whose statement can be cut (the message says why)."""


class NoColonProof(NotADeclaration):
    """The declaration is there, but its proof has no `:=` (equation compiler, `where`)."""


def parse_declaration(
    text: str, *, keyword_at: int | None = None, end: int | None = None, clean: str | None = None
) -> Declaration:
    """Cut the declaration whose keyword (or first modifier or doc comment) is at `keyword_at`
    (default: the last `theorem`/`lemma` of `text`); everything before it is the header, the
    proof runs to `end` (default: the end of `text`). Pass `clean` (the blanked `text`) when
    cutting many declarations of one file.

    Raises:
        NotADeclaration: no such declaration or no name; NoColonProof: no `:=` proof.
    """
    clean = blank_comments_and_strings(text) if clean is None else clean
    stop = len(text) if end is None else end
    if keyword_at is None:
        last = last_declaration_keyword(clean[:stop])
        if last is None:
            raise NotADeclaration("no `theorem` or `lemma` declaration")
        keyword_at = last.start
    segment = clean[keyword_at:stop]
    keyword = keyword_after(segment, 0)
    if keyword is None:
        raise NotADeclaration(f"no `theorem` or `lemma` keyword at {text[keyword_at:keyword_at + 40]!r}")
    name = declared_name(segment, keyword)
    if name is None:
        raise NotADeclaration("the declaration has no name")
    colon = proof_start(segment, keyword.end)
    if colon is None:
        raise NoColonProof(f"`{name}` has no `:=` proof (equation compiler or `where` proofs are not supported)")
    colon += keyword_at
    begin = declaration_start(text, clean, keyword_at)
    docstring, statement = split_doc_comment(text[begin:colon])
    return Declaration(
        header=text[:begin],
        statement=statement.rstrip() + " := by",
        docstring=docstring,
        name=name,
        clean_proof=clean[colon + 2 : stop],
    )
