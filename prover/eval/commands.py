"""`prover eval`, `prover report` and `prover compare`."""

from __future__ import annotations

import argparse

from prover.eval.compare_command import register_compare
from prover.eval.report import register_report
from prover.eval.run_command import register_eval


def register(subparsers: argparse._SubParsersAction) -> None:
    register_eval(subparsers)
    register_report(subparsers)
    register_compare(subparsers)
