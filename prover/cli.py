"""The `prover` command: a thin layer over the library.

Each module of `prover.commands` registers its subcommands (`register(subparsers)`), so this
file only wires them together and turns `ProverError` into a message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from prover.errors import ProverError

COMMAND_MODULES: tuple[str, ...] = (
    "prover.commands.check",  # check, setup
    "prover.commands.eval",  # eval, report
    "prover.commands.compare",  # compare
    "prover.commands.collect",  # collect, data (stats, from-repo, leandojo-steps)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prover", description="LLM theorem proving in Lean 4.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except ProverError as exc:
        print(f"prover: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
