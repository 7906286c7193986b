"""Lean 4 source read the way Lean reads it: tokens, comments, literals, command boundaries.

Shared by the checker (preflight ban list, proof assembly) and the dataset loaders. Depends on
nothing in `prover` but `prover.types`.
"""

from prover.lean_syntax.chars import is_id_first, is_id_rest, is_letter_like, is_subscript_alnum
from prover.lean_syntax.commands import (
    COMMAND_KEYWORDS,
    DECLARATION_KEYWORDS,
    MODIFIERS,
    PREFIX_KEYWORDS,
    CommandStart,
    attribute_entries,
    attribute_name,
    command_starts,
    current_namespace,
    is_attribute_block,
    prefix_end,
)
from prover.lean_syntax.tokens import (
    INTERPOLATING,
    Comment,
    Lexed,
    Token,
    TokenKind,
    blank_comments_and_strings,
    is_close_bracket,
    is_open_bracket,
    matching_close,
    name_parts,
    position,
    tokenize,
)

__all__ = [
    "COMMAND_KEYWORDS",
    "DECLARATION_KEYWORDS",
    "INTERPOLATING",
    "MODIFIERS",
    "PREFIX_KEYWORDS",
    "CommandStart",
    "Comment",
    "Lexed",
    "Token",
    "TokenKind",
    "attribute_entries",
    "attribute_name",
    "blank_comments_and_strings",
    "command_starts",
    "current_namespace",
    "is_attribute_block",
    "is_close_bracket",
    "is_id_first",
    "is_id_rest",
    "is_letter_like",
    "is_open_bracket",
    "is_subscript_alnum",
    "matching_close",
    "name_parts",
    "position",
    "prefix_end",
    "tokenize",
]
