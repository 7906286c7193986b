"""`prover collect`, `prover data stats` (+ the `prover data` actions of `prover.commands.data`).

Heavy imports (pyarrow, Ray, engines) happen inside the commands, so `prover --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prover.commands.data import register_data_commands
from prover.errors import ConfigError
from prover.commands.eval import add_sampling_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    collect = subparsers.add_parser(
        "collect",
        help="run strategies over a problem set and write RL trajectory shards (Parquet)",
        description=(
            "Run the configured strategy with exploration settings and write whole-proof and "
            "step-level trajectory rows as Parquet shards. Settings: the usual sections plus a "
            "`collect:` section (strategy, problems, temperature, filters, problems_per_shard)."
        ),
    )
    collect.add_argument("--config", required=True, type=Path, metavar="FILE", help="YAML or TOML settings file")
    collect.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: collect.out)")
    collect.add_argument("--resume", action="store_true", default=None, help="continue an interrupted collection")
    collect.add_argument("--ray", action="store_true", default=None, help="run on a Ray cluster (ray: section)")
    collect.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local one)")
    collect.add_argument("--limit", type=int, help="only the first N problems")
    collect.add_argument("--columns", metavar="SPEC", help="hf: column mapping: a preset and/or field=column pairs")
    add_sampling_flags(collect.add_argument_group("sampling (override the collect: section)"))
    collect.set_defaults(run=run_collect)

    data = subparsers.add_parser("data", help="trajectory data and users' data: stats, from-repo, leandojo-steps")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    stats = data_sub.add_parser("stats", help="summarise a collect directory")
    stats.add_argument("dir", type=Path, metavar="DIR")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(run=run_data_stats)
    register_data_commands(data_sub)


def run_collect(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from prover.cluster.collect import CollectConfig, collect, load_collect_config
    from prover.datasets import load_benchmark

    config, settings = load_collect_config(args.config)
    if args.address:
        config = config.with_overrides({"ray.address": args.address})
    flags = {k: v for k, v in {"temperature": args.temperature, "top_p": args.top_p}.items() if v is not None}
    try:
        settings = CollectConfig.model_validate({**settings.model_dump(), **flags})
    except ValidationError as exc:
        raise ConfigError(f"invalid sampling flags:\n{exc}") from exc
    config = config.with_overrides({"sampler.max_tokens": args.max_tokens, "bfs.max_tokens": args.max_tokens})
    out = args.out or settings.out
    if out is None:
        raise ConfigError("prover collect needs --out DIR or `collect.out` in the config file")
    benchmark = f"jsonl:{settings.problems}" if settings.problems is not None else config.eval.benchmark
    if settings.problems is not None and not settings.problems.is_absolute():
        benchmark = f"jsonl:{(args.config.parent / settings.problems).resolve()}"
    problems = load_benchmark(
        benchmark,
        split=config.eval.split,
        data_dir=config.eval.data_dir,
        limit=args.limit if args.limit is not None else config.eval.limit,
        names=config.eval.names,
        columns=args.columns,
    )
    use_ray = bool(args.ray or args.address or settings.ray or config.ray.enabled)
    summary = collect(config, problems, out, settings, resume=args.resume, use_ray=use_ray)
    rows = "  ".join(f"{k}={v}" for k, v in summary.rows.items())
    print(
        f"collected {summary.collected} problem(s) into {summary.out_dir}: {summary.problems} in total, "
        f"{summary.proved_problems} proved; rows {rows}"
    )
    return 0


def run_data_stats(args: argparse.Namespace) -> int:
    from prover.cluster.collect import data_stats, format_stats

    stats = data_stats(args.dir)
    if args.json:
        print(stats.model_dump_json(indent=2))
    else:
        print(format_stats(stats, args.dir))
    return 0
