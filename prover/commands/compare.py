"""`prover compare RUN_A RUN_B [...]`: argparse only; the work is in `prover.eval.compare`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `prover compare`."""
    parser = subparsers.add_parser(
        "compare",
        help="compare runs of one benchmark: pass@k side by side, differences with bootstrap intervals",
        description="Write compare.md and compare.png: pass@k of every run, the difference to the first "
        "run (the baseline) with a paired bootstrap interval, problems only one run solved, per-category "
        "differences.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (the first is the baseline)")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where compare.md/png go (default: .)")
    parser.add_argument("--bootstrap", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    parser.add_argument("--confidence", type=float, default=0.95, metavar="C", help="interval level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="bootstrap seed (default 0)")
    parser.add_argument("--json", action="store_true", help="also print the comparison as JSON")
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from prover.eval.compare import compare_runs, write_comparison

    comparison = compare_runs(args.runs, bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    markdown, plot = write_comparison(comparison, args.out)
    if args.json:
        print(comparison.model_dump_json(indent=2))
    base = comparison.runs[0]
    for run in comparison.runs[1:]:
        top = comparison.deltas[run.label][-1]
        print(
            f"{run.label} vs {base.label}: pass@{top.k} {100 * top.delta:+.1f} pp "
            f"[{100 * top.low:+.1f}, {100 * top.high:+.1f}] ({top.verdict}) on {len(comparison.problems)} problems"
        )
    print(f"comparison: {markdown} {plot}")
    return 0
