"""`prover eval`: a thin layer over `prover.api.evaluate`.

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
from typing import Any

from prover.config import ProverConfig
from prover.errors import ConfigError, ProverError

EPILOG = """\
examples:
  prover eval minif2f --pass 32 --model deepseek-ai/DeepSeek-Prover-V2-7B
  prover eval minif2f --pass 32 --model M --resume --out runs/X      continue a stopped run
  prover eval jsonl:mine.jsonl --backend openai --base-url http://127.0.0.1:8000/v1 --model M
  prover eval minif2f --backend scripted --script generations.jsonl --model M
"""


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
    what.add_argument("--pass", dest="passes", type=int, metavar="K", help="samples per problem (pass@K budget)")
    what.add_argument("--model", help="Hugging Face id or local path (vllm), or served model name (openai)")
    what.add_argument("--backend", choices=("vllm", "openai", "scripted"), help="sampler backend (default vllm)")
    what.add_argument("--script", type=Path, metavar="FILE", help="JSONL completions for --backend scripted")
    what.add_argument("--prompt-format", metavar="F", help="prompt format (default: inferred from --model)")
    what.add_argument("--base-url", metavar="URL", help="OpenAI-compatible server for --backend openai")
    what.add_argument("--strategy", choices=("whole_proof", "bfs"), help="proving strategy")
    what.add_argument("--rounds", type=int, metavar="R", help="self-correction rounds after each failed sample")
    what.add_argument("--chunk", type=int, metavar="N", help="samples per sampler request")
    what.add_argument("--early-stop", action="store_true", default=None, help="stop a problem once proved")
    what.add_argument("--seed", type=int, metavar="N", help="base sampling seed")
    add_sampling_flags(what)
    data = p.add_argument_group("problems")
    data.add_argument("--data-dir", type=Path, metavar="DIR", help="folder with the benchmark files")
    data.add_argument("--split", metavar="S", help="benchmark split (default: the benchmark's own; 'all')")
    data.add_argument("--limit", type=int, metavar="N", help="first N problems only")
    data.add_argument("--names", metavar="a,b", help="only these problems (comma-separated)")
    data.add_argument("--columns", metavar="SPEC", help="hf: column mapping: a preset and/or field=column pairs")
    lean = p.add_argument_group("Lean")
    lean.add_argument("--workspace", type=Path, metavar="DIR", help="Lean workspace (default: from prover setup lean)")
    lean.add_argument("--repl-cmd", metavar="CMD", help="command that starts one REPL (overrides the workspace's)")
    lean.add_argument("--workers", type=int, metavar="N", help="Lean REPL workers")
    lean.add_argument("--timeout", type=float, metavar="S", help="seconds per Lean check")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, metavar="DIR", help="run directory (default runs/<bench>-<model>-<time>)")
    run.add_argument("--resume", action="store_true", default=None,
                     help="continue the run in --out (or the latest matching one under runs/)")
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
    """Config overrides of the sampling flags (the strategy's own sampling section too)."""
    return {
        "sampler.temperature": args.temperature,
        "bfs.temperature": args.temperature,
        "sampler.top_p": args.top_p,
        "sampler.max_tokens": args.max_tokens,
        "bfs.max_tokens": args.max_tokens,
    }


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
        "eval.strategy": args.strategy,
        "whole_proof.passes": args.passes,
        "whole_proof.rounds": args.rounds,
        "whole_proof.chunk": args.chunk,
        "whole_proof.early_stop": args.early_stop,
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
        "ray.enabled": args.ray,
        "ray.address": args.address,
        **sampling_overrides(args),
    }
    config = config.with_overrides(overrides)
    if config.sampler.backend == "scripted" and config.sampler.script is None:
        raise ConfigError("--backend scripted needs --script FILE (JSONL completions)")
    return config


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
