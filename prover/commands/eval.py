"""`prover eval` and `prover report`: thin layers over `prover.api.evaluate` and the report.

Settings come from (lowest to highest): defaults, the user config written by `prover setup lean`
(Lean workspace), `--config FILE` (YAML or TOML), then command-line flags. With no flags,
`prover eval minif2f --pass 32` samples with vLLM in-process (the model's prompt format is
inferred from its name) and checks with the workspace of `prover setup lean`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from prover.commands.arguments import count
from prover.config import ProverConfig
from prover.errors import ConfigError, ProverError
from prover.eval.report import register_report
from prover.registry import StrategySpec, get_strategy_spec, section_fields, strategy_specs
from prover.search.base import PROVER_ROLE

EPILOG = """\
examples:
  prover eval minif2f --pass 32 --model deepseek-ai/DeepSeek-Prover-V2-7B
  prover eval minif2f --pass 32 --model M --resume --out runs/X      continue a stopped run
  prover eval jsonl:mine.jsonl --backend openai --base-url http://127.0.0.1:8000/v1 --model M
  prover eval minif2f --backend scripted --script generations.jsonl --model M
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `prover eval` and `prover report`."""
    register_eval(subparsers)
    register_report(subparsers)


def register_eval(subparsers: argparse._SubParsersAction) -> None:
    """Add `prover eval`."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a prover model on a benchmark (pass@k, report, every attempt on disk)",
        description="Sample proofs, check them with Lean, and write a resumable run directory "
        "(run.json, attempts.jsonl, summary.json, report.md, passk.png).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "benchmark", nargs="?", metavar="BENCH",
        help="minif2f, minif2f-dsv15, proofnet, putnambench, leangeo, core-smoke, jsonl:PATH, lean:PATH, "
        "hf:ORG/NAME[:split] / hf:PATH or leandojo:PATH (default: eval.benchmark of --config)",
    )
    what = p.add_argument_group("what to run")
    what.add_argument("--pass", dest="passes", type=count(1), metavar="K", help="samples per problem (pass@K budget)")
    what.add_argument("--model", help="Hugging Face id or local path (vllm), or served model name (openai)")
    what.add_argument("--backend", choices=("vllm", "openai", "scripted"), help="sampler backend (default vllm)")
    what.add_argument("--script", type=Path, metavar="FILE", help="JSONL completions for --backend scripted")
    what.add_argument("--prompt-format", metavar="F", help="prompt format (default: inferred from --model)")
    what.add_argument("--base-url", metavar="URL", help="OpenAI-compatible server for --backend openai")
    specs = strategy_specs()
    what.add_argument(
        "--strategy", choices=tuple(specs), metavar="NAME",
        help="proving strategy: " + "; ".join(f"{name} ({spec.description})" for name, spec in specs.items()),
    )
    what.add_argument("--seed", type=int, metavar="N", help="base sampling seed")
    add_sampling_flags(what)
    _add_role_flags(p, specs)
    _add_strategy_flags(p, specs)
    data = p.add_argument_group("problems")
    data.add_argument("--data-dir", type=Path, metavar="DIR", help="folder with the benchmark files")
    data.add_argument("--split", metavar="S", help="benchmark split (default: the benchmark's own; 'all')")
    data.add_argument("--limit", type=int, metavar="N", help="first N problems only")
    data.add_argument("--names", metavar="a,b", help="only these problems (comma-separated)")
    data.add_argument("--columns", metavar="SPEC", help="hf: column mapping: a preset and/or field=column pairs")
    lean = p.add_argument_group("Lean")
    lean.add_argument("--workspace", type=Path, metavar="DIR", help="Lean workspace (default: from prover setup lean)")
    lean.add_argument("--repl-cmd", metavar="CMD", help="command that starts one REPL (overrides the workspace's)")
    lean.add_argument("--workers", type=count(1), metavar="N", help="Lean REPL workers")
    lean.add_argument("--timeout", type=float, metavar="S", help="seconds per Lean check")
    lean.add_argument("--retries", type=count(0), metavar="N",
                      help="re-runs of a check or tactic step after a crash, OOM kill or infrastructure failure "
                      "on a fresh worker before it becomes the verdict (default 2)")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, metavar="DIR", help="run directory (default runs/<bench>-<model>-<time>)")
    run.add_argument("--resume", action="store_true", default=None,
                     help="continue the run in --out (or the latest matching one under runs/)")
    run.add_argument("--no-retry-errors", dest="retry_errors", action="store_false", default=None,
                     help="with --resume, keep attempts that ended in infrastructure errors instead of "
                     "re-checking them (pass@k stays a lower bound)")
    run.add_argument("--config", type=Path, metavar="FILE", help="settings file (.yaml/.yml/.toml)")
    run.add_argument("--quiet", action="store_true", help="no live progress line")
    run.add_argument("--ray", action="store_true", default=None, help="run on a Ray cluster (prover.cluster)")
    run.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local one)")
    p.set_defaults(run=run_eval)


def add_sampling_flags(group: argparse._ArgumentGroup) -> None:
    """`--temperature`, `--top-p`, `--max-tokens` (shared by `prover eval` and `prover collect`)."""
    group.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (whole proofs and tactics)")
    group.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling top-p")
    group.add_argument("--max-tokens", type=int, metavar="N", help="generation budget per sample (per tactic for bfs)")


def sampling_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides of the sampling flags: the sampler's, and every strategy section that
    samples with its own (a `temperature` / `max_tokens` field, e.g. best-first tactic sampling)."""
    overrides: dict[str, Any] = {
        "sampler.temperature": args.temperature,
        "sampler.top_p": args.top_p,
        "sampler.max_tokens": args.max_tokens,
    }
    for field in ("temperature", "max_tokens"):
        overrides.update(dict.fromkeys(section_fields(field), getattr(args, field)))
    return overrides


def build_config(args: argparse.Namespace) -> ProverConfig:
    """Defaults < user config < --config FILE < flags."""
    config = ProverConfig.load(args.config)
    names = tuple(n.strip() for n in args.names.split(",") if n.strip()) if args.names else None
    overrides: dict[str, Any] = {
        "eval.benchmark": args.benchmark,
        "eval.split": args.split,
        "eval.limit": args.limit,
        "eval.names": names,
        "eval.data_dir": args.data_dir,
        "eval.out": args.out,
        "eval.resume": args.resume,
        "eval.retry_errors": args.retry_errors,
        "eval.strategy": args.strategy,
        "eval.passes": args.passes,
        **_strategy_overrides(args),
        **_role_overrides(args),
        "sampler.model": args.model,
        "sampler.backend": args.backend,
        "sampler.script": args.script,
        "sampler.prompt_format": args.prompt_format,
        "sampler.base_url": args.base_url,
        "sampler.seed": args.seed,
        "lean.workspace": args.workspace,
        "lean.repl_cmd": shlex.split(args.repl_cmd) if args.repl_cmd else None,
        "lean.workers": args.workers,
        "lean.timeout": args.timeout,
        "lean.retries": args.retries,
        "ray.enabled": args.ray,
        "ray.address": args.address,
        **sampling_overrides(args),
    }
    config = config.with_overrides(overrides)
    for role in get_strategy_spec(config.eval.strategy).roles:
        sampler = config.sampler_for(role)
        if sampler.backend == "scripted" and sampler.script is None:
            flag = "--script" if role == PROVER_ROLE else f"--{role}-script"
            raise ConfigError(f"a scripted backend needs {flag} FILE (JSONL completions) for the {role} model")
    return config


_FLAG_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}
ROLE_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "Hugging Face id or local path (vllm), or served model name (openai)"),
    ("backend", "backend", "sampler backend (vllm, openai, scripted)"),
    ("base-url", "base_url", "OpenAI-compatible server"),
    ("script", "script", "JSONL completions for a scripted backend"),
    ("prompt-format", "prompt_format", "prompt format"),
)
"""`--<role>-<name>` flags for every model role besides the default one (`samplers.<role>.<field>`)."""


def _extra_roles(specs: Mapping[str, StrategySpec[Any]]) -> list[str]:
    return sorted({role for spec in specs.values() for role in spec.roles if role != PROVER_ROLE})


def _add_role_flags(parser: argparse.ArgumentParser, specs: Mapping[str, StrategySpec[Any]]) -> None:
    for role in _extra_roles(specs):
        group = parser.add_argument_group(f"{role} model (default: the --model settings)")
        for name, field, text in ROLE_FLAGS:
            group.add_argument(f"--{role}-{name}", dest=f"role__{role}__{field}", metavar="X", help=f"{role}: {text}")


def _role_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        f"samplers.{key.split('__')[1]}.{key.split('__')[2]}": value
        for key, value in vars(args).items()
        if key.startswith("role__") and value is not None
    }


def _add_strategy_flags(parser: argparse.ArgumentParser, specs: Mapping[str, StrategySpec[Any]]) -> None:
    for spec in specs.values():
        if not spec.cli_flags:
            continue
        group = parser.add_argument_group(f"strategy {spec.name}")
        for flag in spec.cli_flags:
            dest = f"strategy__{spec.name}__{flag.field}"
            if flag.kind == "flag":
                group.add_argument(flag.flag, dest=dest, action="store_true", default=None, help=flag.help)
            else:
                group.add_argument(
                    flag.flag, dest=dest, type=_FLAG_TYPES[flag.kind], metavar=flag.metavar, choices=flag.choices,
                    help=flag.help,
                )


def _strategy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        f"{key.split('__')[1]}.{key.split('__')[2]}": value
        for key, value in vars(args).items()
        if key.startswith("strategy__") and value is not None
    }


def run_eval(args: argparse.Namespace) -> int:
    from prover.api import evaluate, resolve_run_dir
    from prover.datasets import load_benchmark
    from prover.eval.report import short_summary

    config = build_config(args)
    problems = load_benchmark(
        config.eval.benchmark,
        split=config.eval.split,
        data_dir=config.eval.data_dir,
        limit=config.eval.limit,
        names=config.eval.names,
        columns=args.columns,
    )
    out = resolve_run_dir(config, None, config.eval.resume)
    try:
        result = evaluate(problems, config, out=out, resume=config.eval.resume, progress=not args.quiet)
    except (ProverError, KeyboardInterrupt):
        _print_resume_hint(out)
        raise
    print(short_summary(result.summary, result.run_dir))
    return 0


def _print_resume_hint(out: Path) -> None:
    attempts = out / "attempts.jsonl"
    if not attempts.is_file():
        return
    with attempts.open("rb") as handle:
        count = sum(1 for line in handle if line.strip())
    if count:
        print(
            f"prover: {count} attempts recorded in {out} are kept; continue with --resume --out {out}",
            file=sys.stderr,
        )
