"""Source preflight: refuse model text that uses a banned construct, before Lean ever sees it.

This is defence in depth, not the soundness argument: regexes are evadable (an option name built
from string pieces, a `sorryAx` assembled by a macro ...), so the checker still audits errors,
sorries, axioms and the statement afterwards. What the preflight adds: it stops code that would
*run* something at elaboration time (`#eval`, `run_cmd`, `initialize`, custom elaborators: E12),
change what the benchmark statement *means* (notation, macros, instances, namespaces: E8), or
hijack the trusted `#print axioms` (E7) — none of which a later check can undo.

Matching is done on the text with comments and string literals blanked out (same length, newlines
kept, so positions stay valid) and with Lean-style word boundaries: `sorry_free_lemma`, `h.sorry`,
or `sorry` inside a comment do not match `sorry`. The lexer follows Lean's tokenizer (identifiers,
char literals, `«»` names, nested comments, `s!` interpolation), because any disagreement on where
a comment or string ends would hide code from the scan; items the axiom audit cannot back up are
also searched inside string literals, and strings Lean might interpolate are refused.

Each item has a name; a hit is reported as the verdict rule `preflight:<name>`.

Examples:
    >>> preflight("  exact sorry").rule
    'preflight:sorry'
    >>> preflight("  -- no sorry here\\n  exact sorry_free_lemma").ok
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from prover.config import CheckerConfig
from prover.errors import ConfigError
from prover.types import Pos

FROZEN = ConfigDict(frozen=True, extra="forbid")

_ID = r"[\w'!?]"
"""A character that continues a Lean identifier (letters incl. unicode, digits, `_`, `'`, `!`, `?`)."""


def _kw(word: str) -> str:
    """A keyword/identifier token: not part of a longer identifier, not a field (`x.word`)."""
    return rf"(?<![\w'.]){re.escape(word)}(?!{_ID})"


def _name(word: str) -> str:
    """A name component: may be qualified (`Lean.word`), not part of a longer identifier."""
    return rf"(?<![\w']){re.escape(word)}(?!{_ID})"


def _cmd(word: str) -> str:
    """A `#command` token."""
    return rf"(?<![\w#]){re.escape(word)}(?![\w'])"


class BanItem(BaseModel):
    """One preflight rule: a name (for `preflight:<name>`), why it is banned, its patterns."""

    model_config = FROZEN
    name: str
    reason: str
    patterns: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    """Attribute names (`@[x]`, `attribute [x] ...`) that trigger this item."""


_ITEMS: tuple[BanItem, ...] = (
    BanItem(name="sorry", reason="`sorry` / `sorryAx` leaves the proof unfinished (E1, E2)",
            patterns=(_kw("sorry"), _name("sorryAx"))),
    BanItem(name="admit", reason="`admit` is `sorry` without a `sorries` entry (E1)", patterns=(_kw("admit"),)),
    BanItem(name="axiom", reason="a new axiom can prove anything (E3)", patterns=(_kw("axiom"),)),
    BanItem(name="native_decide",
            reason="`native_decide` / `decide +native` trust the compiler (axiom Lean.ofReduceBool, E4)",
            patterns=(_kw("native_decide"), _kw("bv_decide"), r"(?<![\w'.])decide\s*\+\s*native(?![\w'])",
                      r"(?<![\w'.])native\s*:=\s*true(?![\w'])", _name("ofReduceBool"), _name("ofReduceNat"),
                      _name("trustCompiler"), _name("reduceBool"), _name("reduceNat"))),
    BanItem(name="implemented_by", reason="compiled code may disagree with the kernel definition (E5)",
            patterns=(_kw("implemented_by"),), attributes=("implemented_by",)),
    BanItem(name="extern", reason="`@[extern]` replaces a definition by foreign code (E5)",
            patterns=(_kw("extern"),), attributes=("extern",)),
    BanItem(name="unsafe", reason="`unsafe` code escapes the kernel's checks (E11)",
            patterns=(_kw("unsafe"), _name("unsafeCast"), _name("unsafeIO"), _name("unsafeBaseIO"),
                      _name("unsafeEIO"))),
    BanItem(name="partial", reason="`partial` definitions (relevant to code-with-proof tasks, E11)",
            patterns=(_kw("partial"),)),
    BanItem(name="debug", reason="`set_option debug.*` (e.g. debug.skipKernelTC) skips the kernel (E6)",
            patterns=(r"(?<![\w'.])set_option\s+debug\.", _name("skipKernelTC"),
                      _name("addDeclWithoutChecking"))),
    BanItem(name="eval", reason="`#eval` runs arbitrary code at elaboration time (E12)",
            patterns=(_cmd("#eval"), _cmd("#eval!"))),
    BanItem(name="run_cmd", reason="`run_cmd`/`run_elab`/`run_meta` run arbitrary code (E12)",
            patterns=(_kw("run_cmd"), _kw("run_elab"), _kw("run_meta"))),
    BanItem(name="run_tac", reason="`run_tac` runs arbitrary tactic-monad code (E12)", patterns=(_kw("run_tac"),)),
    BanItem(name="initialize", reason="`initialize` runs code when the environment is loaded (E12)",
            patterns=(_kw("initialize"), _kw("builtin_initialize")), attributes=("init", "builtin_init")),
    BanItem(name="macro", reason="macros can change what the statement means (E8)",
            patterns=(_kw("macro"), _kw("macro_rules")), attributes=("macro",)),
    BanItem(name="syntax", reason="new syntax can change how the statement parses (E7, E8)",
            patterns=(_kw("syntax"), _kw("declare_syntax_cat"))),
    BanItem(name="notation", reason="notation can change what the statement means (E8)",
            patterns=tuple(_kw(w) for w in ("notation", "notation3", "infix", "infixl", "infixr", "prefix",
                                            "postfix"))),
    BanItem(name="elab", reason="custom elaborators run code and can close goals without a proof (E6, E7)",
            patterns=(_kw("elab"), _kw("elab_rules"), _kw("by_elab")),
            attributes=("term_elab", "command_elab", "tactic", "delab", "app_unexpander", "builtin_term_elab",
                        "builtin_command_elab", "builtin_tactic", "builtin_macro", "builtin_delab")),
    BanItem(name="instance",
            reason="instances (also local/scoped, default_instance, unif_hint) can change what the "
            "statement means (E8); `instance : Fact p` is allowed",
            patterns=(_kw("default_instance"), _kw("unif_hint")), attributes=("instance", "default_instance")),
    BanItem(name="scope",
            reason="namespace/variable/include/omit/export/unbalanced `end`/`open ... renaming` change "
            "how the benchmark statement after them elaborates (E8, E10)",
            patterns=(_kw("namespace"), _kw("variable"), _kw("variables"), _kw("include"), _kw("omit"),
                      _kw("renaming"), r"(?m)^[ \t]*export(?![\w'])")),
    BanItem(name="import", reason="imports other than the benchmark header's (environment substitution)"),
    BanItem(name="prelude", reason="`prelude` drops the core library (environment substitution)",
            patterns=(r"(?m)^[ \t]*prelude(?![\w'])",)),
    BanItem(name="exit", reason="`#exit` stops elaboration of the rest of the file", patterns=(_cmd("#exit"),)),
    BanItem(name="guard_msgs", reason="`#guard_msgs` swallows error and sorry messages",
            patterns=(_cmd("#guard_msgs"),)),
    BanItem(name="interpolation",
            reason="a string literal with `{` that is not an `s!`/`m!`/`f!` string: Lean may read its "
            "`{...}` as code (`throwError`, `println!`, `trace[..]` ...), which the preflight cannot see"),
    BanItem(name="metaprogram",
            reason="meta-level code (MetaM/TacticM/IO, environment access) is not a proof (E6, E12)",
            patterns=tuple(_name(w) for w in ("MetaM", "TacticM", "TermElabM", "CommandElabM", "CoreM",
                                                "modifyEnv", "setEnv", "addDecl", "evalTactic"))
            + (r"(?<![\w'.])Lean\.(?:Elab|Meta|Environment|Kernel|Compiler)(?![\w'])",)),
)

BAN_ITEMS = MappingProxyType({item.name: item for item in _ITEMS})
"""Every known item by name (read-only)."""

DEFAULT_BANNED: tuple[str, ...] = tuple(name for name in BAN_ITEMS if name != "partial")
"""The default list. `partial` is off: a `partial def` is an opaque constant to the kernel, so it
cannot make a false theorem provable; it matters only where compiled code is trusted (code tasks,
or `native_decide`, which is banned separately)."""

SEMANTICALLY_CHECKED: frozenset[str] = frozenset({"sorry", "admit", "axiom", "native_decide", "partial"})
"""Items the checker's axiom audit also catches. Every other item is searched in string literals
too (`LexedText.strings_visible`): if the lexer and Lean ever disagree on where a string ends, what
the lexer took for string content is still seen (a false alarm on a string that merely mentions
`#eval` is the price)."""

MATHLIB_DEPENDENCIES: tuple[str, ...] = (
    "Aesop", "Batteries", "Std", "Qq", "ProofWidgets", "Plausible", "ImportGraph", "LeanSearchClient",
    "Lean", "Init",
)
"""Modules every `import Mathlib` header already loads: a model importing them adds nothing."""


class PreflightHit(BaseModel):
    model_config = FROZEN
    item: str
    pos: Pos
    text: str
    """The matched source text (from the original proof)."""


class PreflightResult(BaseModel):
    model_config = FROZEN
    hits: tuple[PreflightHit, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.hits

    @property
    def rule(self) -> str:
        """`preflight:<item>` of the first hit (in source order), or `accepted`."""
        return f"preflight:{self.hits[0].item}" if self.hits else "accepted"

    def describe(self) -> str:
        """One line per hit: `line 3, col 2: \\`native_decide\\` (native_decide: ...)`."""
        return "\n".join(
            f"line {h.pos.line}, col {h.pos.column}: `{h.text}` ({h.item}: {BAN_ITEMS[h.item].reason})"
            for h in self.hits
        )


# ---------------------------------------------------------------------------------------------
# Lexing
# ---------------------------------------------------------------------------------------------

_CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)|[^\\'\n])'")
_RAW_STRING = re.compile(r'r(#*)"')
_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]*|0[bB][01_]*|0[oO][0-7_]*|[0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTERPOLATING = ("s!", "m!", "f!")
"""Keyword tokens whose string argument is always interpolated (`{...}` parts are code)."""


def _letter_like(c: str) -> bool:
    """Lean's `isLetterLike`: Greek (but λ, Π, Σ), Coptic, letter-like symbols (ℕ, ℝ), math letters."""
    v = ord(c)
    return (
        (0x3B1 <= v <= 0x3C9 and v != 0x3BB) or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))
        or 0x3CA <= v <= 0x3FB or 0x1F00 <= v <= 0x1FFE or 0x2100 <= v <= 0x214F or 0x1D49C <= v <= 0x1D59F
    )


def _id_first(c: str) -> bool:
    return (c.isascii() and c.isalpha()) or c == "_" or _letter_like(c)


def _id_rest(c: str) -> bool:
    v = ord(c)
    return (_id_first(c) or (c.isascii() and c.isdigit()) or c in "'!?" or 0x2080 <= v <= 0x209C
            or 0x1D62 <= v <= 0x1D6A)


class LexedText(BaseModel):
    """Model text seen the way Lean's tokenizer sees it (all views have the text's length)."""

    model_config = FROZEN
    clean: str
    """Comments and string/char literal contents blanked (newlines kept); `«»` quotes blanked."""
    strings_visible: str
    """Only comments blanked: what string literals hide stays visible (see `preflight`)."""
    ambiguous_strings: tuple[tuple[int, int], ...] = ()
    """(start, end) of string literals with a `{` that are not `s!`/`m!`/`f!` strings: Lean reads
    them as interpolated after `throwError`, `println!`, `trace[..]` ..., so where they end (and
    what in them is code) cannot be told from the text alone."""


class _Lexer:
    """A small model of Lean's tokenizer: just enough to know what is comment, string and code."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.clean = list(text)
        self.visible = list(text)
        self.ambiguous: list[tuple[int, int]] = []

    def blank(self, start: int, end: int, *, comment: bool) -> None:
        for k in range(start, min(end, len(self.text))):
            if self.text[k] != "\n":
                self.clean[k] = " "
                if comment:
                    self.visible[k] = " "

    def code(self, i: int, *, in_braces: bool = False) -> int:
        """Scan code from `i`; inside an interpolation, stop after the `}` that closes it."""
        text, n, depth = self.text, len(self.text), 0
        while i < n:
            ch = text[i]
            if text.startswith("--", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                self.blank(i, end, comment=True)
                i = end
            elif text.startswith("/-", i):
                end = comment_end(text, i)
                self.blank(i, end, comment=True)
                i = end
            elif ch == '"':
                i = self.string(i, interpolated=self._interpolating(i))
            elif ch == "r" and _RAW_STRING.match(text, i):
                hashes = _RAW_STRING.match(text, i).group(1)  # type: ignore[union-attr]
                start = i + 2 + len(hashes)
                end = text.find('"' + hashes, start)
                end = n if end < 0 else end
                self.blank(start, end, comment=False)
                i = end + 1 + len(hashes)
            elif ch == "'" and _CHAR_LIT.match(text, i):
                end = _CHAR_LIT.match(text, i).end()  # type: ignore[union-attr]
                self.blank(i + 1, end - 1, comment=False)
                i = end
            elif ch == "«":  # a quoted name part: its content is a name, never a comment or string
                end = text.find("»", i + 1)
                end = n if end < 0 else end
                self.clean[i] = self.visible[i] = " "
                if end < n:
                    self.clean[end] = self.visible[end] = " "
                i = end + 1
            elif _id_first(ch):  # a whole identifier: its `'`s are not char literals
                i += 1
                while i < n and _id_rest(text[i]):
                    i += 1
            elif ch.isascii() and ch.isdigit():
                i = _NUMBER.match(text, i).end()  # type: ignore[union-attr]
            elif in_braces and ch == "{":
                depth, i = depth + 1, i + 1
            elif in_braces and ch == "}":
                if depth == 0:
                    return i + 1
                depth, i = depth - 1, i + 1
            else:
                i += 1
        return n

    def string(self, start: int, *, interpolated: bool) -> int:
        """Blank a `"..."` literal opening at `start`; returns the index after it."""
        text, n = self.text, len(self.text)
        j, segment, brace = start + 1, start + 1, False
        while j < n and text[j] != '"':
            if text[j] == "\\":
                j += 2
            elif text[j] == "{" and interpolated:
                self.blank(segment, j, comment=False)
                j = segment = self.code(j + 1, in_braces=True)
            else:
                brace = brace or text[j] == "{"
                j += 1
        end = min(j, n)
        self.blank(segment, end, comment=False)
        if brace:
            self.ambiguous.append((start, end + 1))
        return end + 1

    def _interpolating(self, quote: int) -> bool:
        """Is the string at `quote` the argument of `s!`/`m!`/`f!` (whitespace allowed between)?"""
        j = quote
        while j > 0 and self.text[j - 1] in " \t\n":
            j -= 1
        if self.text[max(j - 2, 0) : j] not in _INTERPOLATING:
            return False
        return j == 2 or not (_id_rest(self.text[j - 3]) or self.text[j - 3] in ".»")


def comment_end(text: str, start: int) -> int:
    """Index after the (nested) block comment opening at `start`."""
    depth, j = 1, start + 2
    while j < len(text) and depth:
        if text.startswith("/-", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("-/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j


def lex(text: str) -> LexedText:
    """Split `text` into code, comments and literals the way Lean's tokenizer would."""
    lexer = _Lexer(text)
    lexer.code(0)
    return LexedText(clean="".join(lexer.clean), strings_visible="".join(lexer.visible),
                     ambiguous_strings=tuple(lexer.ambiguous))


def blank_comments_and_strings(text: str) -> str:
    """Replace comments and the contents of string/char literals by spaces (newlines kept).

    Nested `/- -/` comments (and doc comments) and `--` comments go entirely; string contents go,
    except `{...}` parts of `s!`/`m!`/`f!` strings, which are code. `«name»` quotes become spaces
    so a quoted keyword is still seen. The result has the same length as `text`.
    """
    return lex(text).clean


def position(text: str, offset: int) -> Pos:
    """1-based line, 0-based column of `offset` in `text` (the REPL convention)."""
    line = text.count("\n", 0, offset) + 1
    return Pos(line=line, column=offset - (text.rfind("\n", 0, offset) + 1))


# ---------------------------------------------------------------------------------------------
# Checks that need more than a regex
# ---------------------------------------------------------------------------------------------

_ATTR_BLOCK = re.compile(r"(?:@\[|(?<![\w'.])attribute\s*\[)")
_INSTANCE = re.compile(_kw("instance"))
_WHERE = re.compile(r"where(?![\w'])")
_FACT = re.compile(r"\s*Fact(?![\w'.])")
_IMPORT = re.compile(r"(?m)^[ \t]*import[ \t]+([^\s]+)")
_SCOPE = re.compile("|".join(_kw(w) for w in ("section", "mutual", "end")))


def _attribute_hits(clean: str, banned: dict[str, str]) -> Iterable[tuple[str, int, int]]:
    """(item, start, end) for banned attribute names inside `@[...]` / `attribute [...]`."""
    for match in _ATTR_BLOCK.finditer(clean):
        start = match.end()
        end = closing_bracket(clean, start - 1)
        for entry in clean[start:end].split(","):
            words = re.findall(r"[\w'!?.]+", entry)
            while words and words[0] in ("local", "scoped", "-"):
                words = words[1:]
            if words and words[0] in banned:
                offset = start + clean[start:end].find(words[0])
                yield banned[words[0]], offset, offset + len(words[0])


def closing_bracket(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (or len(text))."""
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] in "([{⦃⟨":
            depth += 1
        elif text[k] in ")]}⦄⟩":
            depth -= 1
            if depth == 0:
                return k
    return len(text)


def _instance_hits(clean: str) -> Iterable[tuple[int, int]]:
    """`instance` declarations other than `instance ... : Fact p` (proof-irrelevant, so harmless)."""
    for match in _INSTANCE.finditer(clean):
        before = clean[: match.start()].rstrip()
        if before.endswith("deriving"):
            yield match.start(), match.end()
            continue
        depth, k = 0, match.end()
        while k < len(clean):
            ch = clean[k]
            if ch in "([{⦃⟨":
                depth += 1
            elif ch in ")]}⦄⟩":
                depth -= 1
            elif depth == 0 and (clean.startswith(":=", k) or _WHERE.match(clean, k)):
                break
            elif depth == 0 and ch == ":":
                if _FACT.match(clean, k + 1):
                    break
                yield match.start(), match.end()
                break
            k += 1
        else:
            yield match.start(), match.end()


def _scope_hits(clean: str) -> Iterable[tuple[int, int]]:
    """An `end` with no `section`/`mutual` of the model's own to close (it would close the header's)."""
    open_blocks = 0
    for match in _SCOPE.finditer(clean):
        if match.group(0) in ("section", "mutual"):
            open_blocks += 1
        elif open_blocks:
            open_blocks -= 1
        else:
            yield match.start(), match.end()


def neutral_lines(header: str) -> frozenset[str]:
    """Model lines that repeat the header's scoping (`namespace X`, and the matching `end X`).

    Models trained on whole files (LeanGeo: `namespace LeanGeo ... end LeanGeo`) repeat them; the
    assembler drops such lines, so they are not scope changes. Whitespace-normalised."""
    spaces = [" ".join(line.split()) for line in blank_comments_and_strings(header).splitlines()]
    names = [line.split(" ", 1)[1] for line in spaces if line.startswith("namespace ")]
    return frozenset([*(f"namespace {n}" for n in names), *(f"end {n}" for n in names)])


def _blank_neutral(clean: str, neutral: frozenset[str]) -> str:
    if not neutral:
        return clean
    return "\n".join(
        " " * len(line) if " ".join(line.split()) in neutral else line for line in clean.split("\n")
    )


def header_imports(header: str) -> tuple[str, ...]:
    """Modules imported by a header (comments ignored)."""
    return tuple(m.group(1) for m in _IMPORT.finditer(blank_comments_and_strings(header)))


def import_allowed(module: str, allowed: Sequence[str]) -> bool:
    """Same module, a submodule of one, or a dependency of Mathlib when Mathlib is imported."""
    if any(module == a or module.startswith(a + ".") for a in allowed):
        return True
    root = module.split(".")[0]
    return "Mathlib" in allowed and root in MATHLIB_DEPENDENCIES or root == "Init"


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def banned_items(config: CheckerConfig) -> tuple[str, ...]:
    """The item names a checker config bans; ConfigError on an unknown name."""
    names = DEFAULT_BANNED if config.banned is None else tuple(config.banned)
    unknown = [n for n in names if n not in BAN_ITEMS]
    if unknown:
        raise ConfigError(f"checker.banned: unknown preflight item(s) {unknown}; known: {sorted(BAN_ITEMS)}")
    if config.allow_native_decide:
        names = tuple(n for n in names if n != "native_decide")
    return names


def preflight(
    proof: str,
    *,
    banned: Sequence[str] | None = None,
    header: str = "",
    allowed_imports: Sequence[str] | None = None,
) -> PreflightResult:
    """Scan model-written text (never the benchmark header/statement) for banned constructs.

    Args:
        proof: the model's proof text (tactic body or complete code).
        banned: item names to apply (default `DEFAULT_BANNED`).
        header: the benchmark header: its imports are allowed, and model lines repeating its
            `namespace X` (or closing it with `end X`) are neutral (see `neutral_lines`).
        allowed_imports: modules that may be imported (default: the header's imports); any
            other `import` is `preflight:import`.

    Returns:
        every hit in source order; `.rule` names the first one.
    """
    names = DEFAULT_BANNED if banned is None else tuple(banned)
    unknown = [n for n in names if n not in BAN_ITEMS]
    if unknown:
        raise ConfigError(f"unknown preflight item(s) {unknown}; known: {sorted(BAN_ITEMS)}")
    if allowed_imports is None:
        allowed_imports = header_imports(header)
    lexed = lex(proof)
    neutral = neutral_lines(header)
    clean = _blank_neutral(lexed.clean, neutral)
    views = {"clean": clean, "strings": _blank_neutral(lexed.strings_visible, neutral)}
    spans: list[tuple[int, int, str]] = []
    for name in names:
        for view in ("clean",) if name in SEMANTICALLY_CHECKED else ("clean", "strings"):
            for pattern in BAN_ITEMS[name].patterns:
                spans.extend((m.start(), m.end(), name) for m in re.finditer(pattern, views[view]))
    if "interpolation" in names:
        spans.extend((s, e, "interpolation") for s, e in lexed.ambiguous_strings)
    attrs = {a: name for name in names for a in BAN_ITEMS[name].attributes}
    spans.extend((s, e, item) for item, s, e in _attribute_hits(clean, attrs))
    if "instance" in names:
        spans.extend((s, e, "instance") for s, e in _instance_hits(clean))
    if "scope" in names:
        spans.extend((s, e, "scope") for s, e in _scope_hits(clean))
    if "import" in names:
        spans.extend(
            (m.start(), m.end(), "import")
            for m in _IMPORT.finditer(clean)
            if not import_allowed(m.group(1), allowed_imports)
        )
    unique = sorted(set(spans))
    hits = tuple(PreflightHit(item=item, pos=position(proof, s), text=proof[s:e]) for s, e, item in unique)
    return PreflightResult(hits=hits)
