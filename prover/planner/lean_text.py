"""The planner's one door to Lean's lexer: Lean text as tokens, comments skipped, strings whole.

Every planner module reads Lean text through this file, never with word regexes on raw text, so
`sorry` in a comment, `h.sorry` or `sorry_lemma` are never mistaken for a hole. The lexing itself
(what is a comment, a string, a char literal, an identifier character) is the project's lexer,
`prover.lean_syntax`.

Tokens follow Lean's tokenizer where the planner needs it: identifiers (dotted, `«quoted»` parts,
`h'`, `x₁`), numbers, string and char literals, and symbols (`:=`, `=>`, `<;>` ... as one token).
Pretty-printed goals also use names Lean cannot read back (`x✝`, `inst✝¹`); a `✝` and superscript
digits after an identifier stay part of it, so they can be found and renamed.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

from prover.lean_syntax import blank_comments_and_strings, position
from prover.lean_syntax import is_id_first as _id_first
from prover.lean_syntax import is_id_rest as _id_rest
from prover.types import Pos

__all__ = ["Token", "code_view", "is_inaccessible", "offset_of", "position", "token_texts", "tokens"]

TokenKind = Literal["ident", "number", "string", "char", "symbol"]

_SYMBOLS = ("<;>", "<|>", "|>.", ":=", "=>", "..", "::", "->", "<-", "|>", "<|")
"""Multi-character symbols the planner compares (longest first); other symbols are one character."""
_DAGGER = "✝"
_SUPERSCRIPTS = frozenset("⁰¹²³⁴⁵⁶⁷⁸⁹")


class Token(NamedTuple):
    """One token: its text and [start, end) offsets in the lexed text."""

    kind: TokenKind
    text: str
    start: int
    end: int


def code_view(text: str) -> str:
    """`text` with comments and string/char contents blanked (same length, newlines kept)."""
    return blank_comments_and_strings(text)


def is_inaccessible(name: str) -> bool:
    """A name Lean printed with `✝` (inaccessible or shadowed: it cannot be written back)."""
    return _DAGGER in name


@functools.lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[Token, ...]:
    """The tokens of `text` in order (comments and whitespace skipped).

    Memoised (a pure function of `text`): rendering one goal as a lemma reads the same hypothesis
    and target texts many times, and many holes share their context."""
    clean = code_view(text)
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = clean[i]
        if c.isspace():
            if text[i] == "«" and _quoted_end(text, clean, i) is not None:
                end = _ident_end(text, clean, i)
                out.append(Token("ident", text[i:end], i, end))
                i = end
            else:
                i += 1
            continue
        if _id_first(c):
            end = _ident_end(text, clean, i)
            out.append(Token("ident", text[i:end], i, end))
        elif c.isascii() and c.isdigit():
            end = _number_end(clean, i)
            out.append(Token("number", text[i:end], i, end))
        elif c == '"':
            close = clean.find('"', i + 1)
            end = n if close < 0 else close + 1
            out.append(Token("string", text[i:end], i, end))
        elif c == "'" and (char_end := _char_end(clean, i)) is not None:
            end = char_end
            out.append(Token("char", text[i:end], i, end))
        else:
            symbol = next((s for s in _SYMBOLS if clean.startswith(s, i)), c)
            end = i + len(symbol)
            out.append(Token("symbol", text[i:end], i, end))
        i = end
    return tuple(out)


def token_texts(text: str) -> tuple[str, ...]:
    """The token texts of `text`: equal for two texts that differ only in whitespace and comments."""
    return tuple(t.text for t in tokens(text))


def offset_of(text: str, pos: Pos) -> int | None:
    """The offset of a REPL position (1-based line, 0-based codepoint column) in `text`, or None
    when the position is outside it."""
    if pos.line < 1 or pos.column < 0:
        return None
    start = 0
    for _ in range(pos.line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            return None
        start = nl + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    return start + pos.column if start + pos.column <= line_end else None


def _quoted_end(text: str, clean: str, i: int) -> int | None:
    """End of a `«name»` part starting at `i` when it is code (its content is not blanked)."""
    close = text.find("»", i + 1)
    if close < 0 or text[i + 1 : close] != clean[i + 1 : close] or "\n" in text[i + 1 : close]:
        return None
    return close + 1


def _ident_end(text: str, clean: str, i: int) -> int:
    """End of the identifier starting at `i`: dotted components, `«»` parts, a trailing `✝¹`."""
    n = len(text)
    while True:
        if text[i] == "«":
            i = _quoted_end(text, clean, i) or i + 1
        else:
            i += 1
            while i < n and _id_rest(clean[i]):
                i += 1
        if i < n and text[i] == _DAGGER:
            i += 1
            while i < n and text[i] in _SUPERSCRIPTS:
                i += 1
        dotted = i + 1 < n and clean[i] == "." and (_id_first(clean[i + 1]) or text[i + 1] == "«")
        if not dotted:
            return i
        i += 1


def _number_end(clean: str, i: int) -> int:
    n = len(clean)
    while i < n and (clean[i].isalnum() or clean[i] == "_" or clean[i] == "." and clean[i + 1 : i + 2].isdigit()):
        i += 1
    return i


def _char_end(clean: str, i: int) -> int | None:
    """End of a char literal at `i` (its content is blanked by the lexer, the quotes are not)."""
    close = clean.find("'", i + 1)
    if 1 < close - i <= 10 and not clean[i + 1 : close].strip():
        return close + 1
    return None
