"""The Lean tokenizer: tokens where Lean's `tokenFn` has them, comments and literals, command starts.

Cases are written from Lean's rules (Lean.Parser.Basic: identFnAux, numberFnAux, strLitFnAux,
charLitFnAux, rawStrLitFnAux, interpolatedStrFn, whitespace; Init.Meta: isLetterLike,
isSubScriptAlnum): no Lean runs here.
"""

from __future__ import annotations

import pytest

from prover.lean_syntax import (
    TokenKind,
    blank_comments_and_strings,
    command_starts,
    current_namespace,
    is_id_first,
    is_id_rest,
    matching_close,
    tokenize,
)


def _words(text: str) -> list[str]:
    return [t.text for t in tokenize(text).tokens if t.kind is TokenKind.WORD]


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind.value, t.text) for t in tokenize(text).tokens]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x⁻¹sorry", ["x", "sorry"]),  # ⁻ and ¹ are not identifier characters
        ("sᶜsorry", ["s", "sorry"]),  # ᶜ (U+1D9C) neither
        (")sorry", ["sorry"]),
        ('"a"sorry', ["sorry"]),
        ("'a'sorry", ["sorry"]),
        ("1sorry", ["sorry"]),  # a numeral ends at its last digit
        ("0xdeadsorry", ["sorry"]),  # hex digits d,e,a,d then `sorry`
        ("1e5sorry", ["sorry"]),
        ("2.5sorry", ["sorry"]),
        ("2.sorry", ["sorry"]),  # `2.` is a scientific literal: the dot is consumed
        ("1_000sorry", ["sorry"]),
        ('r#"raw"#sorry', ["sorry"]),
        ("⟨h⟩sorry", ["h", "sorry"]),
        ("h.sorry", ["h.sorry"]),  # one dotted identifier, not the keyword
        ("h'sorry", ["h'sorry"]),  # `'` continues an identifier
        ("h₁sorry", ["h₁sorry"]),  # subscript digits too
        ("x₊sorry", ["x", "sorry"]),  # but not the subscript plus sign
        ("αsorry", ["αsorry"]),  # Greek letters are letter-like
        ("λx", ["x"]),  # λ is not
        ("Πx Σy", ["x", "y"]),  # neither are Π and Σ
        ("ℝsorry", ["ℝsorry"]),  # letter-like symbols
        ("𝔽sorry", ["𝔽sorry"]),  # mathematical alphanumerics
        ("«my thm».sorry", ["«my thm».sorry"]),
        ("x.«a.b».c", ["x.«a.b».c"]),
        ("x.1.sorry", ["x", "sorry"]),  # `.1` is not an identifier component
        ("s!x", ["s!x"]),
        ("h?x!", ["h?x!"]),
    ],
)
def test_identifier_boundaries(text: str, words: list[str]) -> None:
    assert _words(text) == words


def test_components_are_unescaped() -> None:
    [token] = tokenize("x.«a.b».c").tokens
    assert token.parts == ("x", "a.b", "c")
    [quoted] = tokenize("«sorry»").tokens
    assert quoted.parts == ("sorry",) and quoted.text == "«sorry»"


def test_character_classes_follow_lean() -> None:
    assert is_id_first("ℕ") and is_id_first("α") and not is_id_first("λ") and not is_id_first("1")
    assert is_id_rest("₀") and is_id_rest("ₐ") and is_id_rest("ᵢ") and not is_id_rest("₊")
    assert not is_id_first("é")  # narrowest classes: splitting is the safe mistake


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("0b101", [("number", "0b101")]),
        ("0o17", [("number", "0o17")]),
        ("1.5e-3", [("number", "1.5e-3")]),
        ("0x", [("error", "0x")]),
        ("1e", [("error", "1e")]),
        ("1_", [("error", "1_")]),
        ("'a'", [("char", "'a'")]),
        ("'\\n'", [("char", "'\\n'")]),
        ("'\\x41'", [("char", "'\\x41'")]),
        ("'\\u03bb'", [("char", "'\\u03bb'")]),
        ("'ab'", [("error", "'"), ("word", "ab'")]),  # `'` continues the identifier
        ("`Nat.succ", [("name", "`Nat.succ")]),
        ("#eval 1", [("command", "#eval"), ("number", "1")]),
        ("#[1]", [("symbol", "#"), ("symbol", "["), ("number", "1"), ("symbol", "]")]),
        ('"a\\"b"', [("string", '"a\\"b"')]),
        ('"gap\\\n   x"', [("string", '"gap\\\n   x"')]),
        ("a\tb", [("word", "a"), ("error", "\t"), ("word", "b")]),
    ],
)
def test_literals_and_errors(text: str, kinds: list[tuple[str, str]]) -> None:
    assert _kinds(text) == kinds


def test_invalid_escape_ends_the_string_and_the_rest_is_code() -> None:
    lexed = tokenize('"\\q #eval evil" x')
    assert [t.kind for t in lexed.tokens][:2] == [TokenKind.STRING, TokenKind.ERROR]
    assert any(t.kind is TokenKind.COMMAND and t.text == "#eval" for t in lexed.tokens)


def test_comments_nest_and_hide() -> None:
    lexed = tokenize("a /- b /- c -/ sorry -/ d -- sorry\ne")
    assert _words("a /- b /- c -/ sorry -/ d -- sorry\ne") == ["a", "d", "e"]
    assert [c.doc for c in lexed.comments] == [False, False]
    assert [c.doc for c in tokenize("/-- doc -/ /-! mod -/ /--/ x").comments] == [True, True, False]
    unterminated = tokenize("x /- never closed sorry")
    assert [t.detail for t in unterminated.errors] == ["unterminated comment"]


def test_strings_and_chars_hide_their_content() -> None:
    assert _words('"sorry" \'s\' r"sorry" r##"a"# sorry"##') == []
    assert _words("(2'\"')\nx") == ["x"]  # a char literal after a numeral
    assert _words("(λ'\"')\nx") == ["x"]


def test_interpolated_string_code_is_tokenized() -> None:
    lexed = tokenize('s!"a {f "}" x} b" y')
    assert [t.text for t in lexed.tokens if t.kind is TokenKind.WORD] == ["s!", "f", "x", "y"]
    pieces = [t.text for t in lexed.tokens if t.kind is TokenKind.STRING]
    assert pieces == ['"a {', '"}"', '} b"']
    nested = tokenize('s!"{"n" ++ s!"{sorry}"}"')
    assert "sorry" in [t.text for t in nested.tokens]
    assert _words('m! "{x}"') == ["m!", "x"]  # whitespace between the token and the string
    assert _words('xs!"{x}"') == ["xs!"]  # `xs!` is an identifier: a plain string follows


def test_blanking_keeps_length_newlines_and_code() -> None:
    text = 'a -- c\n/- x\n -/ "s\\"t" s!"{sorry} x" \'c\' r#"raw"# «sorry»'
    clean = blank_comments_and_strings(text)
    assert len(clean) == len(text) and clean.count("\n") == text.count("\n")
    assert "sorry" in clean  # interpolated code and quoted names stay visible
    assert "raw" not in clean and "s\\" not in clean and "«" not in clean


def test_matching_close_counts_all_brackets() -> None:
    tokens = tokenize("f (a [b ⟨c⟩] {d}) e").tokens
    open_at = next(i for i, t in enumerate(tokens) if t.text == "(")
    assert tokens[matching_close(tokens, open_at)].text == ")"
    assert tokens[matching_close(tokens, open_at) + 1].text == "e"


def _starts(text: str) -> list[str]:
    lexed = tokenize(text)
    return [lexed.tokens[s.keyword].text for s in command_starts(lexed.tokens)]


@pytest.mark.parametrize(
    ("text", "keywords"),
    [
        ("theorem a : P := by\n  simp\ntheorem b : Q := rfl", ["theorem", "theorem"]),
        ("theorem a : P := by\n  simp\n  instance : X := y", ["theorem", "instance"]),  # indented command
        ("theorem a : P := by simp theorem b : Q := rfl", ["theorem", "theorem"]),  # mid-line
        ("theorem a : P := trivial)attribute [simp] x", ["theorem", "attribute"]),  # glued
        ("theorem a : P := by\n  open Real in\n  nlinarith", ["theorem"]),  # a tactic prefix
        ("theorem a : P := by\n  set_option maxRecDepth 100 in\n  simp", ["theorem"]),
        ("open Real in\nset_option maxHeartbeats 1 in\ntheorem a : P := x", ["theorem"]),
        ("attribute [local simp] f in\ntheorem a : P := x", ["theorem"]),
        ("open Real\ntheorem a : P := x", ["open", "theorem"]),
        ("@[simp] private lemma a : P := x\n#print axioms a", ["lemma", "#print"]),
        ("attribute [instance] foo\nexample : P := x", ["attribute", "example"]),
        ("noncomputable section\ndef f := 1\nend", ["section", "def", "end"]),
        ("inductive T | a deriving Repr\nderiving instance Repr for T", ["inductive", "deriving"]),
        ("theorem a : P := h\nwhere\n  h : P := x\n  instance : Y := z", ["theorem", "instance"]),
        ("local notation \"x\" => 1\nscoped[Real] instance : A := b", ["notation", "instance"]),
        ("exact «theorem» x", []),  # a quoted keyword is an identifier
    ],
)
def test_command_starts(text: str, keywords: list[str]) -> None:
    assert _starts(text) == keywords


def test_prefixes_of_a_command_are_recorded() -> None:
    lexed = tokenize("open Real in\nset_option maxHeartbeats 1 in\ntheorem a : P := x")
    [start] = command_starts(lexed.tokens)
    assert start.index == 0
    spans = [lexed.text[lexed.tokens[a].start : lexed.tokens[b].end] for a, b in start.prefixes]
    assert spans == ["open Real in", "set_option maxHeartbeats 1 in"]


@pytest.mark.parametrize(
    ("header", "namespace"),
    [
        ("import Mathlib\nopen Real\n", ()),
        ("import Mathlib\nnamespace LeanGeo\n", ("LeanGeo",)),
        ("namespace A.B\nsection\nend\nnamespace C\nend C\n", ("A", "B")),
        ("namespace A\n-- namespace B\nend A\n", ()),
    ],
)
def test_current_namespace(header: str, namespace: tuple[str, ...]) -> None:
    assert current_namespace(tokenize(header).tokens) == namespace
