"""Argument types shared by the subcommands: counts that refuse impossible values up front.

`--pass 0` or `--retries -1` fail in argparse with the flag's name and the allowed range (exit 2),
before any config is loaded or a run directory is created.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["count"]


def count(minimum: int) -> Callable[[str], int]:
    """An argparse `type` for whole numbers >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
