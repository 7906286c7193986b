"""The planner's view of Lean text: tokens as Lean's tokenizer sees them, REPL positions."""

from __future__ import annotations

from prover.planner.lean_text import offset_of, token_texts, tokens
from prover.types import Pos


def test_tokens_skip_comments_and_keep_literals_and_names_whole():
    text = "h.le.trans x₁ -- sorry\n«my name».foo /- c -/ 'a' \"s -- t\" x✝¹ := <;> ⟨a, b⟩ 2.5"
    assert token_texts(text) == (
        "h.le.trans", "x₁", "«my name».foo", "'a'", '"s -- t"', "x✝¹", ":=", "<;>", "⟨", "a", ",", "b", "⟩", "2.5",
    )
    kinds = [t.kind for t in tokens(text)]
    assert kinds[:6] == ["ident", "ident", "ident", "char", "string", "ident"]


def test_a_projection_number_and_a_quote_in_a_name_are_not_identifier_parts():
    assert token_texts("h.1 h' x.2.le") == ("h", ".", "1", "h'", "x", ".", "2", ".", "le")
    assert token_texts("-- «sorry»\nx") == ("x",)  # a quoted name inside a comment is comment


def test_offsets_of_repl_positions():
    text = "ab\n∀ x, sorry\n"
    assert offset_of(text, Pos(line=2, column=5)) == text.index("sorry")  # columns count codepoints
    assert offset_of(text, Pos(line=1, column=2)) == 2  # the end of a line is a position
    assert offset_of(text, Pos(line=1, column=3)) is None
    assert offset_of(text, Pos(line=4, column=0)) is None and offset_of(text, Pos(line=0, column=0)) is None
