"""Lean 4's identifier character classes (`Init/Meta`: `isLetterLike`, `isSubScriptAlnum`, ...).

These are the ranges of Lean releases up to at least v4.2x. Later releases widened `isLetterLike`
(Latin-1 and Latin Extended-A letters); keeping the narrower classes errs on the safe side: a
character we do not count as an identifier character splits a word, so a keyword glued behind it
is seen as the keyword (a false alarm on such names at worst, never a hidden keyword).
"""

from __future__ import annotations


def is_letter_like(c: str) -> bool:
    """Greek (but λ, Π, Σ), Coptic, polytonic Greek, letter-like symbols (ℕ, ℝ), math letters."""
    v = ord(c)
    return (
        (0x3B1 <= v <= 0x3C9 and v != 0x3BB)
        or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))
        or 0x3CA <= v <= 0x3FB
        or 0x1F00 <= v <= 0x1FFE
        or 0x2100 <= v <= 0x214F
        or 0x1D49C <= v <= 0x1D59F
    )


def is_subscript_alnum(c: str) -> bool:
    """Subscript digits ₀-₉, subscript letters ₐ-ₜ, and ᵢ-ᵪ (not the subscript symbols ₊₋₌₍₎)."""
    v = ord(c)
    return 0x2080 <= v <= 0x2089 or 0x2090 <= v <= 0x209C or 0x1D62 <= v <= 0x1D6A


def is_ascii_letter(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def is_ascii_digit(c: str) -> bool:
    return "0" <= c <= "9"


def is_id_first(c: str) -> bool:
    """May start an identifier component (Lean's `Char.isAlpha` is ASCII only)."""
    return is_ascii_letter(c) or c == "_" or is_letter_like(c)


def is_id_rest(c: str) -> bool:
    """May continue an identifier component."""
    return (
        is_ascii_letter(c) or is_ascii_digit(c) or c in "_'!?" or is_letter_like(c) or is_subscript_alnum(c)
    )


ID_BEGIN_ESCAPE = "«"
ID_END_ESCAPE = "»"
