"""`prover data from-repo` and `prover data leandojo-steps`: argparse only, the work is in
`prover.datasets.dojo_trace` and `prover.datasets.leandojo`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register_data_commands(data_sub: argparse._SubParsersAction) -> None:
    """Add the actions that bring users' data under `prover data`."""
    repo = data_sub.add_parser(
        "from-repo",
        help="trace a Lean repository with lean-dojo and write a benchmark JSONL of its theorems",
        description="Trace URL at COMMIT with lean-dojo (pip install 'prover[dojo]'; needs Lean, git, "
        "and time: it builds the repository) and write its theorems as a uniform-schema JSONL.",
    )
    repo.add_argument("url", metavar="URL", help="git URL of a Lean 4 repository")
    repo.add_argument("--commit", required=True, metavar="C", help="commit hash (or tag) to trace")
    repo.add_argument("--out", required=True, type=Path, metavar="FILE", help="benchmark JSONL to write")
    repo.add_argument("--sorry-only", action="store_true", help="only theorems whose proof is `sorry`")
    repo.add_argument("--steps", type=Path, metavar="FILE", help="also write the proofs' tactic traces as step rows (Parquet)")
    repo.add_argument("--no-build-deps", action="store_true", help="do not trace the dependencies (faster)")
    repo.set_defaults(run=run_from_repo)

    steps = data_sub.add_parser(
        "leandojo-steps",
        help="export a LeanDojo Benchmark 4 split's tactic traces as step rows (Parquet) for SFT",
        description="Write one row per traced tactic with the schema of `prover collect`'s steps shards.",
    )
    steps.add_argument("split_file", type=Path, metavar="PATH", help="e.g. leandojo_benchmark_4/random/train.json")
    steps.add_argument("--out", required=True, type=Path, metavar="FILE", help="Parquet file to write")
    steps.set_defaults(run=run_leandojo_steps)


def run_from_repo(args: argparse.Namespace) -> int:
    from prover.datasets.dojo_trace import repo_benchmark

    result = repo_benchmark(
        args.url, args.commit, args.out, sorry_only=args.sorry_only, steps=args.steps, build_deps=not args.no_build_deps
    )
    print(f"wrote {result.problems} problem(s) of {result.traced} traced theorem(s) to {result.out}")
    if result.steps is not None:
        print(f"wrote {result.step_rows} step row(s) to {result.steps}")
    print(f"evaluate with: prover eval jsonl:{result.out} --workspace {result.root_dir}")
    return 0


def run_leandojo_steps(args: argparse.Namespace) -> int:
    from prover.datasets.leandojo import read_traced_theorems, trace_step_rows, write_step_rows

    rows = trace_step_rows(read_traced_theorems(args.split_file))
    write_step_rows(rows, args.out)
    print(f"wrote {len(rows)} step row(s) to {args.out}")
    return 0
