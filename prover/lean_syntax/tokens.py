"""Lean 4 source split into the tokens Lean's own tokenizer (`Lean.Parser.tokenFn`) sees.

Lean needs no whitespace between tokens: `x⁻¹sorry`, `)sorry`, `"a"sorry` and `1sorry` all contain
the keyword `sorry` (a numeral stops at its last digit; letters after it start a new token). What
decides is where identifiers, literals and comments begin and end, so this module follows
`tokenFnAux`, `identFnAux`, `numberFnAux`, `strLitFnAux`, `charLitFnAux`, `rawStrLitFnAux`,
`interpolatedStrFn` and `whitespace` exactly:

- identifiers: components of `isIdFirst isIdRest*` or `«...»`, joined by `.` when a component
  follows; a keyword is an identifier-shaped token (which words are keywords depends on the
  imported syntax, so both come out as WORD and the caller decides);
- numerals: `0b`/`0o`/`0x` digits, decimals with `_` separators, optional `.digits` and exponent;
- char literals (a `'` that does not start `''`), string literals with escapes, raw strings
  `r#"..."#`, name literals `` `x.y ``, nested `/- -/` comments and `--` line comments;
- `s!`/`m!`/`f!` strings: the `{...}` parts are code and are tokenized as code.

Symbols come out one character per token (Lean takes the longest entry of its token table; two
adjacent SYMBOLs can be one token to Lean, which never hides a word). `#` followed by identifier
characters is one COMMAND token; Lean takes the longest `#`-token of its table, so `#evalx` is
`#eval` followed by `x`: callers match COMMAND tokens by prefix.

Where Lean reports a lexical error (unterminated literal or comment, bad escape, malformed
numeral, tab) an ERROR token is produced and scanning goes on as code right after the offending
character: Lean's error recovery then reads what follows as code too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from prover.lean_syntax.chars import (
    ID_BEGIN_ESCAPE,
    ID_END_ESCAPE,
    is_ascii_digit,
    is_id_first,
    is_id_rest,
)
from prover.types import Pos

INTERPOLATING: frozenset[str] = frozenset({"s!", "m!", "f!"})
"""Tokens whose string argument is interpolated (`{...}` is code). `s!` is core syntax; `m!` and
`f!` exist once `Lean` is imported (Mathlib does)."""

_QUOTABLE = "\\\"'rnt"
_HEX = "0123456789abcdefABCDEF"
_BRACKETS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "⟦": "⟧"}
_CLOSERS = frozenset(_BRACKETS.values())


class TokenKind(str, Enum):
    WORD = "word"
    """Identifier or keyword (`sorry`, `Nat.succ`, `x.«my name»`, `s!`)."""
    SYMBOL = "symbol"
    COMMAND = "command"
    """`#` + identifier characters (`#eval`, `#print`)."""
    NUMBER = "number"
    CHAR = "char"
    STRING = "string"
    """A string literal, or one literal piece of an interpolated string."""
    NAME = "name"
    """A name literal (`` `Nat.succ ``); `parts` are its components."""
    ERROR = "error"
    """Where Lean reports a lexical error; `detail` says which."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    start: int
    end: int
    text: str
    parts: tuple[str, ...] = ()
    """WORD/NAME: the name components with `«»` removed (`a.«b.c»` -> ("a", "b.c"))."""
    inner: tuple[int, int] | None = None
    """STRING/CHAR: the span of the literal's content (between its delimiters)."""
    detail: str = ""
    """STRING: "plain", "raw" or "interpolated"; ERROR: the problem."""

    def is_word(self, *words: str) -> bool:
        """A WORD spelled exactly like one of `words` (a `«»`-quoted word is an identifier)."""
        return self.kind is TokenKind.WORD and self.text in words

    def is_symbol(self, chars: str) -> bool:
        return self.kind is TokenKind.SYMBOL and self.text == chars


@dataclass(frozen=True, slots=True)
class Comment:
    start: int
    end: int
    doc: bool
    """`/--` or `/-!`: a doc comment (belongs to the declaration after it)."""


@dataclass(frozen=True)
class Lexed:
    """A text and its tokens (in source order) and comments."""

    text: str
    tokens: tuple[Token, ...]
    comments: tuple[Comment, ...] = field(default=())

    @property
    def errors(self) -> tuple[Token, ...]:
        return tuple(t for t in self.tokens if t.kind is TokenKind.ERROR)

    def blanked(self) -> str:
        """The text with comments, literal contents and `«»` replaced by spaces (newlines kept)."""
        chars = list(self.text)

        def blank(start: int, end: int) -> None:
            for k in range(start, min(end, len(chars))):
                if chars[k] != "\n":
                    chars[k] = " "

        for comment in self.comments:
            blank(comment.start, comment.end)
        for token in self.tokens:
            if token.inner is not None:
                blank(*token.inner)
            elif token.kind is TokenKind.WORD and ID_BEGIN_ESCAPE in token.text:
                for k in range(token.start, token.end):
                    if chars[k] in (ID_BEGIN_ESCAPE, ID_END_ESCAPE):
                        chars[k] = " "
        return "".join(chars)


def tokenize(text: str) -> Lexed:
    """Split `text` into Lean tokens and comments (see the module docstring)."""
    scanner = _Scanner(text)
    scanner.code(0)
    return Lexed(text=text, tokens=tuple(scanner.tokens), comments=tuple(scanner.comments))


def blank_comments_and_strings(text: str) -> str:
    """`text` with comments and string/char contents blanked (same length, newlines kept).

    `{...}` parts of `s!`/`m!`/`f!` strings are code and stay; `«»` become spaces so a quoted
    keyword is still seen by a pattern."""
    return tokenize(text).blanked()


def name_parts(name: str) -> tuple[str, ...]:
    """A Lean name's components (`a.«b.c»` -> ("a", "b.c")); the text itself if it is no name."""
    tokens = tokenize(name.strip()).tokens
    if len(tokens) == 1 and tokens[0].kind is TokenKind.WORD:
        return tokens[0].parts
    return (name.strip(),)


def position(text: str, offset: int) -> Pos:
    """1-based line, 0-based column of `offset` in `text` (the REPL convention)."""
    line = text.count("\n", 0, offset) + 1
    return Pos(line=line, column=offset - (text.rfind("\n", 0, offset) + 1))


def matching_close(tokens: tuple[Token, ...] | list[Token], index: int) -> int:
    """Index of the token closing the bracket at `tokens[index]` (len(tokens) if unclosed).

    Brackets of any kind count together, like Lean's parser would see nesting."""
    depth = 0
    for k in range(index, len(tokens)):
        token = tokens[k]
        if token.kind is not TokenKind.SYMBOL:
            continue
        if token.text in _BRACKETS:
            depth += 1
        elif token.text in _CLOSERS:
            depth -= 1
            if depth == 0:
                return k
    return len(tokens)


def is_open_bracket(token: Token) -> bool:
    return token.kind is TokenKind.SYMBOL and token.text in _BRACKETS


def is_close_bracket(token: Token) -> bool:
    return token.kind is TokenKind.SYMBOL and token.text in _CLOSERS


class _Scanner:
    """Lean's `tokenFnAux` + `whitespace`, collecting tokens and comments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.tokens: list[Token] = []
        self.comments: list[Comment] = []

    def emit(self, kind: TokenKind, start: int, end: int, **extra: object) -> None:
        self.tokens.append(Token(kind, start, end, self.text[start:end], **extra))  # type: ignore[arg-type]

    def error(self, start: int, end: int, detail: str) -> None:
        self.emit(TokenKind.ERROR, start, end, detail=detail)

    # -- code ---------------------------------------------------------------------------------
    def code(self, i: int, *, interpolation: bool = False) -> int:
        """Scan code from `i`; in an interpolation, return after the `}` that closes it."""
        text, n, depth = self.text, self.n, 0
        while i < n:
            c = text[i]
            if c in " \r\n":
                i += 1
            elif c == "\t":
                self.error(i, i + 1, "tabs are not allowed")
                i += 1
            elif text.startswith("--", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                self.comments.append(Comment(i, end, doc=False))
                i = end
            elif text.startswith("/-", i):
                i = self.block_comment(i)
            elif c == '"':
                i = self.string(i)
            elif c == "'" and not text.startswith("''", i):
                i = self.char(i)
            elif is_ascii_digit(c):
                i = self.number(i)
            elif c == "`" and i + 1 < n and (is_id_first(text[i + 1]) or text[i + 1] == ID_BEGIN_ESCAPE):
                end, parts = self.ident(i + 1)
                if end < 0:
                    i = -end
                else:
                    self.emit(TokenKind.NAME, i, end, parts=parts)
                    i = end
            elif c == "r" and self._raw_string_start(i):
                i = self.raw_string(i)
            elif c == "#" and i + 1 < n and is_id_first(text[i + 1]):
                end = i + 1
                while end < n and is_id_rest(text[end]):
                    end += 1
                self.emit(TokenKind.COMMAND, i, end)
                i = end
            elif c == ID_BEGIN_ESCAPE or is_id_first(c):
                end, parts = self.ident(i)
                if end < 0:
                    i = -end
                else:
                    self.emit(TokenKind.WORD, i, end, parts=parts)
                    i = end
            elif interpolation and c == "}" and depth == 0:
                return i
            else:
                if interpolation and c == "{":
                    depth += 1
                elif interpolation and c == "}":
                    depth -= 1
                self.emit(TokenKind.SYMBOL, i, i + 1)
                i += 1
        return n

    def block_comment(self, start: int) -> int:
        text, depth, j = self.text, 1, start + 2
        while j < self.n and depth:
            if text.startswith("/-", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("-/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        doc = text.startswith(("/--", "/-!"), start) and not text.startswith("/--/", start)
        self.comments.append(Comment(start, j, doc=doc))
        if depth:
            self.error(start, j, "unterminated comment")
        return j

    # -- identifiers --------------------------------------------------------------------------
    def ident(self, i: int) -> tuple[int, tuple[str, ...]]:
        """(end, components) of the identifier at `i`; (-resume, ()) after an unterminated «."""
        text, n, parts = self.text, self.n, []
        while True:
            if text[i] == ID_BEGIN_ESCAPE:
                close = text.find(ID_END_ESCAPE, i + 1)
                if close < 0:
                    self.error(i, n, "unterminated identifier escape")
                    return -(i + 1), ()
                parts.append(text[i + 1 : close])
                i = close + 1
            else:
                j = i + 1
                while j < n and is_id_rest(text[j]):
                    j += 1
                parts.append(text[i:j])
                i = j
            if i + 1 < n and text[i] == "." and (is_id_first(text[i + 1]) or text[i + 1] == ID_BEGIN_ESCAPE):
                i += 1
                continue
            return i, tuple(parts)

    # -- numerals -----------------------------------------------------------------------------
    def number(self, start: int) -> int:
        text, n = self.text, self.n
        if text[start] == "0" and start + 1 < n and text[start + 1] in "bBoOxX":
            base = text[start + 1].lower()
            digits = {"b": "01", "o": "01234567", "x": _HEX}[base]
            end, ok = self.digits(start + 2, digits, need_digit=True)
            if not ok:
                self.error(start, end, "malformed numeral")
                return max(end, start + 2)
            self.emit(TokenKind.NUMBER, start, end)
            return end
        end, ok = self.digits(start, "0123456789", need_digit=False)
        if ok and end < n and text[end] == ".":
            end += 1
            if end < n and is_ascii_digit(text[end]):
                end, ok = self.digits(end, "0123456789", need_digit=False)
        if ok and end < n and text[end] in "eE":
            exp = end + 1
            if exp < n and text[exp] in "+-":
                exp += 1
            if exp < n and is_ascii_digit(text[exp]):
                end, ok = self.digits(exp, "0123456789", need_digit=False)
            else:
                self.error(start, exp, "missing exponent digits in scientific literal")
                return exp
        if not ok:
            self.error(start, end, "malformed numeral")
            return end
        self.emit(TokenKind.NUMBER, start, end)
        return end

    def digits(self, i: int, digits: str, *, need_digit: bool) -> tuple[int, bool]:
        """Lean's `takeDigitsFn`: `(_* digit+)*`; (end, False) where a digit was required."""
        text, n = self.text, self.n
        while i < n:
            if text[i] == "_":
                need_digit, i = True, i + 1
            elif text[i] in digits:
                need_digit, i = False, i + 1
            else:
                break
        return i, not need_digit

    # -- literals -----------------------------------------------------------------------------
    def escape(self, i: int, *, quotable: str) -> int | None:
        """Index after the escape whose backslash is at `i`, or None if Lean rejects it."""
        text, n = self.text, self.n
        if i + 1 >= n:
            return None
        c = text[i + 1]
        if c in quotable:
            return i + 2
        if c == "x":
            return i + 4 if all(k < n and text[k] in _HEX for k in range(i + 2, i + 4)) else None
        if c == "u":
            return i + 6 if all(k < n and text[k] in _HEX for k in range(i + 2, i + 6)) else None
        if c == "\n":  # a string gap: the backslash-newline and the next line's indentation go
            return i + 2
        return None

    def char(self, start: int) -> int:
        text, n = self.text, self.n
        j = start + 1
        if j < n and text[j] == "\\":
            after = self.escape(j, quotable=_QUOTABLE)
            j = after if after is not None and text[j + 1] != "\n" else -1
        elif j < n:
            j += 1
        else:
            j = -1
        if j < 0 or j >= n or text[j] != "'":
            self.error(start, start + 1, "missing end of character literal")
            return start + 1
        self.emit(TokenKind.CHAR, start, j + 1, inner=(start + 1, j))
        return j + 1

    def string(self, start: int) -> int:
        previous = self.tokens[-1] if self.tokens else None
        if previous is not None and previous.kind is TokenKind.WORD and previous.text in INTERPOLATING:
            return self.interpolated(start)
        text, n, j = self.text, self.n, start + 1
        while j < n and text[j] != '"':
            if text[j] == "\\":
                after = self.escape(j, quotable=_QUOTABLE)
                if after is None:
                    self.emit(TokenKind.STRING, start, j, inner=(start + 1, j), detail="plain")
                    self.error(j, j + 1, "invalid escape sequence")
                    return j + 1
                j = after
            else:
                j += 1
        if j >= n:
            self.emit(TokenKind.ERROR, start, n, inner=(start + 1, n), detail="unterminated string literal")
            return n
        self.emit(TokenKind.STRING, start, j + 1, inner=(start + 1, j), detail="plain")
        return j + 1

    def interpolated(self, start: int) -> int:
        """`interpolatedStrFn`: literal pieces as STRING tokens, `{...}` scanned as code."""
        text, n = self.text, self.n
        piece, j = start, start + 1
        while j < n:
            c = text[j]
            if c == '"':
                self.emit(TokenKind.STRING, piece, j + 1, inner=(piece + 1, j), detail="interpolated")
                return j + 1
            if c == "\\":
                after = self.escape(j, quotable=_QUOTABLE + "{")
                if after is None:
                    self.emit(TokenKind.STRING, piece, j, inner=(piece + 1, j), detail="interpolated")
                    self.error(j, j + 1, "invalid escape sequence")
                    return j + 1
                j = after
            elif c == "{":
                self.emit(TokenKind.STRING, piece, j + 1, inner=(piece + 1, j), detail="interpolated")
                close = self.code(j + 1, interpolation=True)
                if close >= n:
                    self.error(j, n, "unterminated string interpolation")
                    return n
                piece, j = close, close + 1
            else:
                j += 1
        self.emit(TokenKind.ERROR, piece, n, inner=(piece + 1, n), detail="unterminated string literal")
        return n

    def _raw_string_start(self, i: int) -> bool:
        j = i + 1
        while j < self.n and self.text[j] == "#":
            j += 1
        return j < self.n and self.text[j] == '"'

    def raw_string(self, start: int) -> int:
        text = self.text
        hashes = 0
        while text[start + 1 + hashes] == "#":
            hashes += 1
        opener = start + 2 + hashes
        closer = '"' + "#" * hashes
        end = text.find(closer, opener)
        if end < 0:
            self.emit(TokenKind.ERROR, start, self.n, inner=(opener, self.n), detail="unterminated raw string literal")
            return self.n
        self.emit(TokenKind.STRING, start, end + len(closer), inner=(opener, end), detail="raw")
        return end + len(closer)
