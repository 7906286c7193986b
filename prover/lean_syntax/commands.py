"""Where Lean's parser starts a new top-level command, read from tokens.

A command may start anywhere, not only at a line start: the tactic block or term of a
declaration ends at the first token that cannot continue it, and a command keyword never can
(`by simp theorem x ...` is a declaration followed by another one). A command is:

    [@[attrs]] [modifiers] keyword ...           `private theorem`, `@[simp] lemma`, `local notation`
    #command ...                                 `#eval`, `#print axioms`
    open X in / set_option o v in / attribute [a] x in   followed by a command: a prefix of it

`open ... in`, `set_option ... in` followed by anything else are tactic or term prefixes inside a
proof, not commands. Words inside `@[...]` and `attribute [...]` are attribute names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prover.lean_syntax.tokens import Token, TokenKind, matching_close

DECLARATION_KEYWORDS: frozenset[str] = frozenset({
    "theorem", "lemma", "def", "abbrev", "example", "instance", "axiom", "opaque", "structure", "class",
    "inductive", "coinductive", "irreducible_def",
})
MODIFIERS: frozenset[str] = frozenset({
    "private", "protected", "noncomputable", "nonrec", "unsafe", "partial", "local", "scoped",
})
PREFIX_KEYWORDS: frozenset[str] = frozenset({"open", "set_option", "attribute"})
"""Commands that become a prefix of the next command (or of a tactic/term) when `in` follows."""
COMMAND_KEYWORDS: frozenset[str] = DECLARATION_KEYWORDS | MODIFIERS | PREFIX_KEYWORDS | frozenset({
    "import", "prelude", "namespace", "section", "end", "variable", "variables", "universe", "export",
    "include", "omit", "mutual", "macro", "macro_rules", "syntax", "declare_syntax_cat", "notation",
    "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "elab", "elab_rules", "run_cmd",
    "run_elab", "run_meta", "initialize", "builtin_initialize", "simproc", "dsimproc", "simproc_decl",
    "dsimproc_decl", "builtin_simproc", "builtin_dsimproc", "builtin_simproc_decl", "unif_hint", "alias",
    "add_decl_doc", "register_simp_attr", "register_option", "register_label_attr", "declare_config_elab",
    "suppress_compilation", "unseal", "seal", "assert_not_exists", "library_note", "deriving",
    "initialize_simps_projections", "mk_iff_of_inductive_prop", "declare_aesop_rule_sets", "add_aesop_rules",
    "erase_aesop_rules", "binder_predicate", "compile_inductive", "compile_def",
})
"""Words that begin a top-level command (Lean core, Batteries, Mathlib, Aesop)."""
_OPEN_DECL_SYMBOLS = frozenset({"(", ")", "→", ",", "-", ">"})


@dataclass(frozen=True)
class CommandStart:
    index: int
    """Token index where the command begins (its attributes, modifiers or prefixes included)."""
    keyword: int
    """Token index of the command's keyword (`theorem`, `open`, `#eval`, ...)."""
    prefixes: tuple[tuple[int, int], ...] = ()
    """(first, last) token indices of each `open/set_option/attribute ... in` prefix."""


def command_starts(tokens: Sequence[Token]) -> list[CommandStart]:
    """Every top-level command in `tokens`, in order (see the module docstring)."""
    starts: list[CommandStart] = []
    i, n = 0, len(tokens)
    while i < n:
        start = _command_at(tokens, i)
        if start is None:
            i += 1
            continue
        starts.append(start)
        i = _after_keyword(tokens, start.keyword)
    return starts


def _command_at(tokens: Sequence[Token], i: int) -> CommandStart | None:
    """The command beginning at token `i`, or None if no command begins there."""
    prefixes: list[tuple[int, int]] = []
    head = False  # attributes or modifiers seen
    k, n = i, len(tokens)
    while k < n:
        token = tokens[k]
        if is_attribute_block(tokens, k):
            k, head = matching_close(tokens, k + 1) + 1, True
        elif token.kind is TokenKind.WORD and token.text in PREFIX_KEYWORDS:
            end = prefix_end(tokens, k)
            if end is None:  # the `open`/`set_option`/`attribute` command itself
                return CommandStart(i, k, tuple(prefixes))
            prefixes.append((k, end))
            k = end + 1
        elif token.kind is TokenKind.WORD and token.text in MODIFIERS:
            k, head = k + 1, True
            if token.text == "scoped" and k < n and tokens[k].is_symbol("["):
                k = matching_close(tokens, k) + 1
        elif token.kind is TokenKind.COMMAND:
            return CommandStart(i, k, tuple(prefixes))
        elif token.kind is TokenKind.WORD and token.text in COMMAND_KEYWORDS:
            if token.text == "deriving" and not (k + 1 < n and tokens[k + 1].is_word("instance")):
                break  # a `deriving` clause of an inductive or structure
            return CommandStart(i, k, tuple(prefixes))
        else:
            break
    if not head:
        return None  # nothing, or only `... in` prefixes of a tactic or term (`open Real in simp`)
    # attributes or modifiers without a keyword after them: Lean starts a command there (and fails)
    return CommandStart(i, min(k, n) - 1, tuple(prefixes))


def _after_keyword(tokens: Sequence[Token], keyword: int) -> int:
    """Where to look for the next command: after the keyword (and `deriving instance`, the
    attribute list of an `attribute` command)."""
    token = tokens[keyword]
    if token.is_word("deriving"):
        return keyword + 2
    if token.is_word("attribute") and keyword + 1 < len(tokens) and tokens[keyword + 1].is_symbol("["):
        return matching_close(tokens, keyword + 1) + 1
    return keyword + 1


def is_attribute_block(tokens: Sequence[Token], k: int) -> bool:
    """`@[` with no space between (an attribute list before a declaration)."""
    return (
        k + 1 < len(tokens) and tokens[k].is_symbol("@") and tokens[k + 1].is_symbol("[")
        and tokens[k].end == tokens[k + 1].start
    )


def prefix_end(tokens: Sequence[Token], k: int) -> int | None:
    """Index of the `in` ending the `open`/`set_option`/`attribute` at `k`, or None if there is none."""
    n = len(tokens)
    word = tokens[k].text
    if word == "set_option":
        end = k + 3
        return end if end < n and tokens[end].is_word("in") else None
    j = k + 1
    if word == "attribute":
        if not (j < n and tokens[j].is_symbol("[")):
            return None
        j = matching_close(tokens, j) + 1
    while j < n:
        token = tokens[j]
        if token.is_word("in"):
            return j
        if token.kind is TokenKind.WORD and (token.text not in COMMAND_KEYWORDS or token.text == "scoped"):
            j += 1
        elif token.kind is TokenKind.SYMBOL and token.text in _OPEN_DECL_SYMBOLS:
            j += 1
        else:
            return None
    return None


def attribute_entries(tokens: Sequence[Token], open_bracket: int) -> list[list[Token]]:
    """The comma-separated entries of the attribute list whose `[` is at `open_bracket`."""
    close = matching_close(tokens, open_bracket)
    entries: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[open_bracket + 1 : close]:
        if token.kind is TokenKind.SYMBOL and token.text in "([{⟨":
            depth += 1
        elif token.kind is TokenKind.SYMBOL and token.text in ")]}⟩":
            depth -= 1
        if depth == 0 and token.is_symbol(","):
            entries.append([])
        else:
            entries[-1].append(token)
    return [e for e in entries if e]


def attribute_name(entry: Sequence[Token]) -> Token | None:
    """The attribute's name token in one entry (`local simp` -> simp, `-simp` -> simp)."""
    for token in entry:
        if token.is_word("local", "scoped") or token.is_symbol("-"):
            continue
        return token if token.kind is TokenKind.WORD else None
    return None


def current_namespace(tokens: Sequence[Token]) -> tuple[str, ...]:
    """The namespace open at the end of `tokens` (`namespace A.B` ... `end B`): where a
    declaration written after them lands (`theorem t` is `A.B.t`)."""
    scopes: list[tuple[str, ...]] = []  # one entry per open block; () for a `section`
    for k, token in enumerate(tokens):
        following = tokens[k + 1] if k + 1 < len(tokens) else None
        if token.is_word("namespace") and following is not None and following.kind is TokenKind.WORD:
            scopes.append(following.parts)
        elif token.is_word("section"):
            scopes.append(())
        elif token.is_word("end") and scopes:
            scopes.pop()
    return tuple(part for scope in scopes for part in scope)
