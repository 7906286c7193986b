"""LeanGeo: workspace pins, geometry prompt additions and checker settings."""

from prover.leangeo.settings import (
    EXTRA_AXIOMS,
    HEADER,
    LEAN_TOOLCHAIN,
    MATHLIB_REV,
    PROMPT_ADDITION,
    SYSTEM_PROMPT,
)

__all__ = [
    "EXTRA_AXIOMS",
    "HEADER",
    "LEAN_TOOLCHAIN",
    "MATHLIB_REV",
    "PROMPT_ADDITION",
    "SYSTEM_PROMPT",
]
