"""Source preflight: refuse model text that uses a banned construct, before Lean ever sees it.

This is defence in depth, not the soundness argument (that is the checker's audit in a clean
environment and the kernel replay): a ban list is evadable, so errors, sorries, axioms and the
statement are audited afterwards. What the preflight adds: it stops code that would *run*
something at elaboration time (`#eval`, `run_cmd`, `initialize`, simprocs, custom elaborators,
attributes that register tactic/elaborator/delaborator code, meta code: E12), change what the
benchmark statement *means* (notation, macros, instances, namespaces, options: E8), or hide
diagnostics (`#guard_msgs`, `set_option warn.sorry`) — none of which a later check can undo.

Matching is on Lean's tokens (`prover.lean_syntax.tokenize`), never on words in raw text: a
keyword glued to the token before it (`x⁻¹sorry`, `)sorry`, `"a"sorry`, `1sorry`) is that
keyword, while `sorry_free_lemma`, `h.sorry` (one identifier), comments and string contents are
not. Where Lean reports a lexical error (unterminated literal or comment, bad escape, malformed
numeral, tab), its error recovery reads the following text as code: such text is refused
(`preflight:lexical`). Items the axiom audit cannot back up are also searched inside string
literals, tokenized as code: should the lexer and Lean ever disagree on where a string ends, what
the lexer took for string content is still seen (a false alarm on a string mentioning `#eval` is
the price), and strings Lean might interpolate are refused.

Each item has a name; a hit is reported as the verdict rule `preflight:<name>`.

Examples:
    >>> preflight("  exact sorry").rule
    'preflight:sorry'
    >>> preflight("  -- no sorry here\\n  exact sorry_free_lemma").ok
    True
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from prover.config import CheckerConfig
from prover.errors import ConfigError
from prover.lean_syntax import (
    COMMAND_KEYWORDS,
    Lexed,
    Token,
    TokenKind,
    attribute_entries,
    attribute_name,
    is_attribute_block,
    is_close_bracket,
    is_open_bracket,
    position,
    tokenize,
)
from prover.types import Pos, content_hash

FROZEN = ConfigDict(frozen=True, extra="forbid")

PREFLIGHT_VERSION = "preflight/v3-tokens"
"""Bump when matching logic changes meaning; the rules hash covers the data below."""


class BanItem(BaseModel):
    """One preflight rule: a name (for `preflight:<name>`), why it is banned, what it matches."""

    model_config = FROZEN
    name: str
    reason: str
    words: tuple[str, ...] = ()
    """Identifier-shaped tokens spelled so (keywords; `«sorry»` counts as `sorry`)."""
    names: tuple[str, ...] = ()
    """Any name component (`Lean.sorryAx`, `x.sorryAx`, `` `sorryAx ``)."""
    roots: tuple[str, ...] = ()
    """Names under these namespaces (`Lean` matches `Lean.Elab.Command.elabCommand`)."""
    commands: tuple[str, ...] = ()
    """`#` commands, by prefix (Lean's longest-match tokenizer reads `#evalx` as `#eval x`)."""
    sequences: tuple[tuple[str, ...], ...] = ()
    """Consecutive tokens (`decide +native`); symbol strings match one character per token."""
    attributes: tuple[str, ...] = ()
    """Attribute names (`@[x]`, `attribute [x] ...`) that trigger this item."""
    options: tuple[str, ...] = ()
    """Option name prefixes (`set_option debug.x ...`) that trigger this item."""


_META_NAMES = (
    "MetaM", "TacticM", "TermElabM", "CommandElabM", "CoreM", "SimpM", "DelabM", "MacroM", "AttrM", "ImportM",
    "CommandElab", "TermElab", "Simproc", "DSimproc", "modifyEnv", "setEnv", "addDecl", "addAndCompile",
    "evalTactic", "admitGoal", "modifyScope", "liftTermElabM", "liftCommandElabM", "liftCoreM", "liftMetaM",
    "elabCommand", "evalExpr", "evalConst", "Environment",
)
META_ROOTS: tuple[str, ...] = (
    "Lean", "Qq", "Mathlib.Tactic", "Mathlib.Meta", "Mathlib.Util", "Batteries.Tactic", "Batteries.Lean",
    "Std.Tactic", "Aesop", "Plausible", "ProofWidgets",
)
"""Namespaces of meta code (elaborators, tactics, environment access): never a proof's business."""
META_NAMESPACES: frozenset[str] = frozenset({
    "Elab", "Meta", "Tactic", "Command", "Term", "Parser", "PrettyPrinter", "Delaborator", "Compiler", "Kernel",
    "Core", "IR", "Macro",
})
"""`open`ing a namespace ending like this reaches meta code by short names (`open Lean Elab`)."""

_ITEMS: tuple[BanItem, ...] = (
    BanItem(name="lexical",
            reason="a lexical error (unterminated literal or comment, bad escape, malformed numeral, tab): "
            "Lean's error recovery then reads the rest as code, which the preflight cannot follow"),
    BanItem(name="sorry", reason="`sorry` / `sorryAx` leaves the proof unfinished (E1, E2)",
            words=("sorry",), names=("sorryAx",)),
    BanItem(name="admit", reason="`admit` is `sorry` without a `sorries` entry (E1)", words=("admit",)),
    BanItem(name="axiom", reason="a new axiom can prove anything (E3)", words=("axiom",)),
    BanItem(name="native_decide",
            reason="`native_decide` / `decide +native` trust the compiler (axiom Lean.ofReduceBool, E4)",
            words=("native_decide", "bv_decide"), sequences=(("decide", "+", "native"), ("native", ":=", "true")),
            names=("ofReduceBool", "ofReduceNat", "trustCompiler", "reduceBool", "reduceNat")),
    BanItem(name="implemented_by", reason="compiled code may disagree with the kernel definition (E5)",
            words=("implemented_by",), attributes=("implemented_by",)),
    BanItem(name="extern", reason="`@[extern]` replaces a definition by foreign code (E5)",
            words=("extern",), attributes=("extern",)),
    BanItem(name="unsafe", reason="`unsafe` code escapes the kernel's checks (E11)",
            words=("unsafe",), names=("unsafeCast", "unsafeIO", "unsafeBaseIO", "unsafeEIO")),
    BanItem(name="partial", reason="`partial` definitions (relevant to code-with-proof tasks, E11)", words=("partial",)),
    BanItem(name="debug", reason="`set_option debug.*` (e.g. debug.skipKernelTC) skips the kernel (E6)",
            options=("debug",), names=("skipKernelTC", "addDeclWithoutChecking")),
    BanItem(name="option",
            reason="an option outside the allow-list (maxHeartbeats, maxRecDepth, synthInstance.*, "
            "tactic.hygienic, linter.*, pp.*, trace.*, ...): options such as warn.sorry hide diagnostics, "
            "others change how the statement elaborates"),
    BanItem(name="eval", reason="`#eval` runs arbitrary code at elaboration time (E12)", commands=("#eval",)),
    BanItem(name="run_cmd", reason="`run_cmd`/`run_elab`/`run_meta` run arbitrary code (E12)",
            words=("run_cmd", "run_elab", "run_meta")),
    BanItem(name="run_tac", reason="`run_tac` runs arbitrary tactic-monad code (E12)", words=("run_tac",)),
    BanItem(name="initialize", reason="`initialize` runs code when the environment is loaded (E12)",
            words=("initialize", "builtin_initialize"), attributes=("init", "builtin_init")),
    BanItem(name="simproc", reason="simprocs are code that `simp` runs (E12)",
            words=("simproc", "dsimproc", "simproc_decl", "dsimproc_decl", "builtin_simproc", "builtin_dsimproc",
                   "builtin_simproc_decl", "builtin_dsimproc_decl"),
            attributes=("simproc", "builtin_simproc", "sevalproc", "seval")),
    BanItem(name="macro", reason="macros can change what the statement means (E8)",
            words=("macro", "macro_rules"), attributes=("macro", "builtin_macro")),
    BanItem(name="syntax", reason="new syntax can change how the statement parses (E7, E8)",
            words=("syntax", "declare_syntax_cat")),
    BanItem(name="notation", reason="notation can change what the statement means (E8)",
            words=("notation", "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "binder_predicate")),
    BanItem(name="elab", reason="custom elaborators run code and can close goals without a proof (E6, E7)",
            words=("elab", "elab_rules", "by_elab"),
            attributes=("term_elab", "command_elab", "tactic", "delab", "app_delab", "app_unexpander",
                        "builtin_term_elab", "builtin_command_elab", "builtin_tactic", "builtin_delab",
                        "term_parser", "command_parser", "tactic_parser", "builtin_term_parser",
                        "builtin_command_parser", "builtin_tactic_parser", "code_action", "command_code_action",
                        "hole_code_action", "tactic_code_action", "incremental", "builtin_incremental")),
    BanItem(name="instance",
            reason="instances (also local/scoped, default_instance, unif_hint) can change what the "
            "statement means (E8); `instance : Fact p` is allowed",
            words=("default_instance", "unif_hint"), attributes=("instance", "default_instance")),
    BanItem(name="scope",
            reason="namespace/variable/include/omit/export/unbalanced `end`/`open ... renaming` change "
            "how the benchmark statement after them elaborates (E8, E10)",
            words=("namespace", "variable", "variables", "include", "omit", "renaming", "export")),
    BanItem(name="import", reason="imports other than the benchmark header's (environment substitution)"),
    BanItem(name="prelude", reason="`prelude` drops the core library (environment substitution)",
            words=("prelude",)),
    BanItem(name="exit", reason="`#exit` stops elaboration of the rest of the file", commands=("#exit",)),
    BanItem(name="guard_msgs", reason="`#guard_msgs` swallows error and sorry messages", commands=("#guard_msgs",)),
    BanItem(name="interpolation",
            reason="a string literal Lean may read as interpolated (`{` in a plain string: `throwError`, "
            "`println!`, `trace[..]` ... read `{...}` as code), which the preflight cannot see"),
    BanItem(name="attribute",
            reason="an attribute outside the allow-list (simp, ext, norm_cast, reducible, ...): others register "
            "tactic, elaborator or delaborator code (@[norm_num], @[positivity], @[app_delab], ...)"),
    BanItem(name="metaprogram",
            reason="meta-level code (MetaM/TacticM/IO, environment access, `open Lean ...`) is not a proof "
            "(E6, E12)",
            names=_META_NAMES, roots=META_ROOTS),
)

BAN_ITEMS = MappingProxyType({item.name: item for item in _ITEMS})
"""Every known item by name (read-only)."""

DEFAULT_BANNED: tuple[str, ...] = tuple(name for name in BAN_ITEMS if name != "partial")
"""The default list. `partial` is off: a `partial def` is an opaque constant to the kernel, so it
cannot make a false theorem provable; it matters only where compiled code is trusted (code tasks,
or `native_decide`, which is banned separately)."""

SEMANTICALLY_CHECKED: frozenset[str] = frozenset({"sorry", "admit", "axiom", "native_decide", "partial"})
"""Items the checker's axiom audit also catches. Every other item is also searched in string
literals (tokenized as code): a false alarm on a string that mentions `#eval` is the price."""

ALLOWED_ATTRIBUTES: frozenset[str] = frozenset({
    "simp", "simps", "norm_cast", "push_cast", "field_simps", "ext", "reducible", "irreducible", "semireducible",
    "inline", "noinline", "specialize", "nospecialize", "match_pattern", "elab_as_elim", "nolint", "deprecated",
    "inherit_doc", "to_additive", "symm", "refl", "trans", "congr", "gcongr", "mono", "continuity",
    "measurability", "fun_prop", "bound", "nontriviality", "induction_eliminator", "cases_eliminator", "aesop",
    "reassoc", "grind",
})
"""Attributes that only record data about a lemma or definition (no code is registered)."""

ALLOWED_OPTIONS: tuple[str, ...] = (
    "maxHeartbeats", "maxRecDepth", "maxSynthPendingDepth", "synthInstance", "tactic.hygienic",
    "tactic.simp.trace", "linter", "pp", "trace", "profiler", "simprocs", "exponentiation.threshold",
    "push_neg.use_distrib",
)
"""Option name prefixes a proof may set: resource limits, linters, printing, tracing."""

MATHLIB_DEPENDENCIES: tuple[str, ...] = (
    "Aesop", "Batteries", "Std", "Qq", "ProofWidgets", "Plausible", "ImportGraph", "LeanSearchClient",
    "Lean", "Init",
)
"""Modules every `import Mathlib` header already loads: a model importing them adds nothing."""


def rules_hash() -> str:
    """Hash of the whole ban list (items, allow-lists, keywords): part of every verdict cache key."""
    return content_hash(
        PREFLIGHT_VERSION,
        *(item.model_dump_json() for item in _ITEMS),
        ",".join(sorted(ALLOWED_ATTRIBUTES)), ",".join(ALLOWED_OPTIONS), ",".join(sorted(META_NAMESPACES)),
        ",".join(MATHLIB_DEPENDENCIES), ",".join(sorted(COMMAND_KEYWORDS)),
    )


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


Span = tuple[int, int, str]
"""(start, end, item) of one hit in the proof text."""


# ---------------------------------------------------------------------------------------------
# Token matchers
# ---------------------------------------------------------------------------------------------


def _path(token: Token) -> tuple[str, ...]:
    parts = token.parts
    return parts[1:] if parts[:1] == ("_root_",) else parts


def _is_name(token: Token) -> bool:
    return token.kind in (TokenKind.WORD, TokenKind.NAME)


def _roots(roots: Sequence[str]) -> list[tuple[str, ...]]:
    return [tuple(r.split(".")) for r in roots]


def _expand(sequence: Sequence[str]) -> list[str]:
    """Sequence elements as token texts: symbol strings become one element per character."""
    out: list[str] = []
    for element in sequence:
        if element[:1].isalpha() or element[:1] == "_":
            out.append(element)
        else:
            out.extend(element)
    return out


class _Matcher:
    """The word/name/root/command/sequence rules of some items, applied in one pass over tokens."""

    def __init__(self, items: Iterable[BanItem]) -> None:
        self.words: dict[str, list[str]] = {}
        self.names: dict[str, list[str]] = {}
        self.roots: list[tuple[tuple[str, ...], str]] = []
        self.commands: list[tuple[str, str]] = []
        self.sequences: list[tuple[list[str], str]] = []
        for item in items:
            for word in item.words:
                self.words.setdefault(word, []).append(item.name)
            for name in item.names:
                self.names.setdefault(name, []).append(item.name)
            self.roots += [(root, item.name) for root in _roots(item.roots)]
            self.commands += [(command, item.name) for command in item.commands]
            self.sequences += [(_expand(sequence), item.name) for sequence in item.sequences]

    def hits(self, tokens: Sequence[Token]) -> Iterable[Span]:
        for k, token in enumerate(tokens):
            span = (token.start, token.end)
            if token.kind is TokenKind.WORD:
                key = token.parts[0] if len(token.parts) == 1 else token.text
                for item in self.words.get(token.text, self.words.get(key, ())):
                    yield *span, item
            if _is_name(token):
                for part in token.parts:
                    for item in self.names.get(part, ()):
                        yield *span, item
                path = _path(token)
                for root, item in self.roots:
                    if path[: len(root)] == root:
                        yield *span, item
            elif token.kind is TokenKind.COMMAND:
                for command, item in self.commands:
                    if token.text.startswith(command):
                        yield *span, item
            for sequence, item in self.sequences:
                run = tokens[k : k + len(sequence)]
                if token.text == sequence[0] and len(run) == len(sequence) and all(
                    t.text == e for t, e in zip(run, sequence)
                ):
                    yield run[0].start, run[-1].end, item


def _string_contents(lexed: Lexed) -> list[tuple[Token, ...]]:
    """The content of every string literal, tokenized as code (positions in the proof text)."""
    out = []
    for token in lexed.tokens:
        if token.kind in (TokenKind.STRING, TokenKind.ERROR) and token.inner is not None:
            start, end = token.inner
            inner = tokenize(lexed.text[start:end]).tokens
            out.append(tuple(_shift(t, start) for t in inner))
    return out


def _shift(token: Token, offset: int) -> Token:
    return Token(token.kind, token.start + offset, token.end + offset, token.text, token.parts, None, token.detail)


# ---------------------------------------------------------------------------------------------
# Checks that need more than one token
# ---------------------------------------------------------------------------------------------


def _attribute_hits(tokens: Sequence[Token], names: Sequence[str]) -> Iterable[Span]:
    """Attribute names in `@[...]` / `attribute [...]`: an item's own, or `attribute` when the
    name is outside the allow-list."""
    owner = {a: item for item in names for a in BAN_ITEMS[item].attributes}
    for k, token in enumerate(tokens):
        if is_attribute_block(tokens, k):
            bracket = k + 1
        elif token.is_word("attribute") and k + 1 < len(tokens) and tokens[k + 1].is_symbol("["):
            bracket = k + 1
        else:
            continue
        for entry in attribute_entries(tokens, bracket):
            name = attribute_name(entry)
            if name is None:
                continue
            key = ".".join(name.parts)
            if key in owner:
                yield name.start, name.end, owner[key]
            elif key not in ALLOWED_ATTRIBUTES and "attribute" in names:
                yield name.start, name.end, "attribute"


def _option_hits(tokens: Sequence[Token], names: Sequence[str]) -> Iterable[Span]:
    """`set_option <name> ...`: debug.* is `debug`; other names outside ALLOWED_OPTIONS are `option`."""
    prefixes = [(p, item) for item in names for p in BAN_ITEMS[item].options]
    for k, token in enumerate(tokens[:-1]):
        if not token.is_word("set_option"):
            continue
        option = tokens[k + 1]
        if option.kind is not TokenKind.WORD:
            continue
        name = ".".join(option.parts)
        owner = next((item for p, item in prefixes if name == p or name.startswith(p + ".")), None)
        if owner is not None:
            yield option.start, option.end, owner
        elif "option" in names and not any(name == p or name.startswith(p + ".") for p in ALLOWED_OPTIONS):
            yield option.start, option.end, "option"


def _open_hits(tokens: Sequence[Token]) -> Iterable[Span]:
    """`open` of a meta namespace (`open Lean`, `open Lean.Elab in`, `open Mathlib Tactic`)."""
    roots = _roots(META_ROOTS)
    for k, token in enumerate(tokens):
        if not token.is_word("open"):
            continue
        for name in tokens[k + 1 :]:
            if name.kind is not TokenKind.WORD or name.text in COMMAND_KEYWORDS and name.text != "scoped":
                break
            path = _path(name)
            if any(path[: len(r)] == r for r in roots) or (path and path[-1] in META_NAMESPACES):
                yield name.start, name.end, "metaprogram"
            if name.is_word("in"):
                break


def _instance_hits(tokens: Sequence[Token]) -> Iterable[tuple[int, int]]:
    """`instance` declarations other than `instance ... : Fact p` (proof-irrelevant, so harmless).

    An instance without a type (`instance foo := v`) takes its class from the value: refused."""
    for k, token in enumerate(tokens):
        if not token.is_word("instance") or _inside_attribute(tokens, k):
            continue
        if k > 0 and tokens[k - 1].is_word("deriving"):
            yield token.start, token.end
            continue
        if not _is_fact_instance(tokens, k):
            yield token.start, token.end


def _is_fact_instance(tokens: Sequence[Token], k: int) -> bool:
    depth = 0
    for j in range(k + 1, len(tokens)):
        t = tokens[j]
        following = tokens[j + 1] if j + 1 < len(tokens) else None
        if is_open_bracket(t):
            depth += 1
        elif is_close_bracket(t):
            depth -= 1
        elif depth == 0 and t.is_symbol(":"):
            return following is not None and following.is_word("Fact")
        elif depth == 0 and t.is_word("where"):
            return False
    return False


def _inside_attribute(tokens: Sequence[Token], k: int) -> bool:
    """Is token `k` inside the brackets of `@[...]` / `attribute [...]`?"""
    depth = 0
    for j in range(k - 1, -1, -1):
        t = tokens[j]
        if is_close_bracket(t):
            depth += 1
        elif is_open_bracket(t):
            if depth == 0:
                return t.is_symbol("[") and (is_attribute_block(tokens, j - 1) or (j > 0 and tokens[j - 1].is_word("attribute")))
            depth -= 1
    return False


def _scope_hits(tokens: Sequence[Token]) -> Iterable[tuple[int, int]]:
    """An `end` with no `section`/`mutual` of the model's own to close (it would close the header's)."""
    open_blocks = 0
    for token in tokens:
        if token.is_word("section", "mutual"):
            open_blocks += 1
        elif token.is_word("end"):
            if open_blocks:
                open_blocks -= 1
            else:
                yield token.start, token.end


def _interpolation_hits(lexed: Lexed) -> Iterable[tuple[int, int]]:
    """Strings whose extent depends on whether Lean interpolates them.

    A plain string with `{` (Lean interpolates it after `throwError`, `println!`, `trace[..]` ...),
    and an `m!`/`f!` string with a quote in its code parts (read as plain, it would end there)."""
    tokens = lexed.tokens
    for k, token in enumerate(tokens):
        if token.kind is TokenKind.STRING and token.detail == "plain" and token.inner is not None:
            if "{" in lexed.text[token.inner[0] : token.inner[1]]:
                yield token.start, token.end
        elif token.is_word("m!", "f!") and k + 1 < len(tokens) and tokens[k + 1].detail == "interpolated":
            j = k + 1
            while j < len(tokens) and not (tokens[j].detail == "interpolated" and tokens[j].text.endswith('"')):
                j += 1
            code = [t for t in tokens[k + 2 : j] if t.detail != "interpolated"]
            if any(t.kind in (TokenKind.STRING, TokenKind.CHAR) and '"' in t.text for t in code):
                yield token.start, tokens[min(j, len(tokens) - 1)].end


def _import_hits(tokens: Sequence[Token], allowed: Sequence[str]) -> Iterable[tuple[int, int]]:
    for k, token in enumerate(tokens[:-1]):
        module = tokens[k + 1]
        if token.is_word("import") and module.kind is TokenKind.WORD and not import_allowed(".".join(module.parts), allowed):
            yield token.start, module.end
        elif token.is_word("import") and module.kind is not TokenKind.WORD:
            yield token.start, token.end


# ---------------------------------------------------------------------------------------------
# Header helpers (shared with the assembler)
# ---------------------------------------------------------------------------------------------


def neutral_lines(header: str) -> frozenset[str]:
    """Model lines that repeat the header's scoping (`namespace X`, and the matching `end X`).

    Models trained on whole files (LeanGeo: `namespace LeanGeo ... end LeanGeo`) repeat them; the
    assembler drops such lines, so they are not scope changes. Whitespace-normalised."""
    tokens = tokenize(header).tokens
    names = [tokens[k + 1].text for k in range(len(tokens) - 1)
             if tokens[k].is_word("namespace") and tokens[k + 1].kind is TokenKind.WORD]
    return frozenset([*(f"namespace {n}" for n in names), *(f"end {n}" for n in names)])


def _neutral_tokens(lexed: Lexed, neutral: frozenset[str]) -> tuple[Token, ...]:
    """The tokens without those on lines that are exactly a neutral `namespace X` / `end X`."""
    if not neutral:
        return lexed.tokens
    lines = lexed.blanked().split("\n")
    dropped = {i for i, line in enumerate(lines) if " ".join(line.split()) in neutral}
    if not dropped:
        return lexed.tokens
    newlines = [k for k, c in enumerate(lexed.text) if c == "\n"]
    return tuple(t for t in lexed.tokens if bisect.bisect_left(newlines, t.start) not in dropped)


def header_imports(header: str) -> tuple[str, ...]:
    """Modules imported by a header (comments ignored)."""
    tokens = tokenize(header).tokens
    return tuple(".".join(tokens[k + 1].parts) for k in range(len(tokens) - 1)
                 if tokens[k].is_word("import") and tokens[k + 1].kind is TokenKind.WORD)


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
    lexed = tokenize(proof)
    tokens = _neutral_tokens(lexed, neutral_lines(header))
    code = tuple(t for k, t in enumerate(tokens) if not (k and tokens[k - 1].is_word("import")))  # no module names
    spans: list[Span] = list(_Matcher(BAN_ITEMS[n] for n in names).hits(code))
    in_strings = _Matcher(BAN_ITEMS[n] for n in names if n not in SEMANTICALLY_CHECKED)
    for content in _string_contents(lexed):
        spans.extend(in_strings.hits(content))
    if "lexical" in names:
        spans.extend((t.start, t.end, "lexical") for t in lexed.errors)
    spans.extend(_attribute_hits(tokens, names))
    spans.extend(_option_hits(tokens, names))
    if "metaprogram" in names:
        spans.extend(_open_hits(tokens))
    if "interpolation" in names:
        spans.extend((s, e, "interpolation") for s, e in _interpolation_hits(lexed))
    if "instance" in names:
        spans.extend((s, e, "instance") for s, e in _instance_hits(tokens))
    if "scope" in names:
        spans.extend((s, e, "scope") for s, e in _scope_hits(tokens))
    if "import" in names:
        spans.extend((s, e, "import") for s, e in _import_hits(tokens, allowed_imports))
    unique = sorted(set(spans))
    hits = tuple(PreflightHit(item=item, pos=position(proof, s), text=proof[s:e]) for s, e, item in unique)
    return PreflightResult(hits=hits)


__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_OPTIONS",
    "BAN_ITEMS",
    "DEFAULT_BANNED",
    "BanItem",
    "PreflightHit",
    "PreflightResult",
    "banned_items",
    "header_imports",
    "import_allowed",
    "neutral_lines",
    "preflight",
    "rules_hash",
]
