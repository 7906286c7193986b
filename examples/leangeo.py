"""LeanGeo through the Python API: build geometry problems in code, prove them, print the report.

    # a model on this machine (vLLM), checked in the LeanGeo workspace of `prover setup lean --project leangeo`
    python examples/leangeo.py --model AI-MO/Kimina-Prover-Distill-8B --pass 4
    # a served model
    python examples/leangeo.py --backend openai --base-url http://127.0.0.1:8000/v1 --model M
    # re-check generations made elsewhere
    python examples/leangeo.py --backend scripted --script generations.jsonl

The statements below were written for this example in LeanGeo's language (points, segments
`|(A─B)|`, angles `∠ A:B:C`, predicates like `MidPoint`, `IsoTriangle`); they have not been
type-checked here. LeanGeo's `euclid_*` tactics admit SMT results through the axiom `SMT_VERIF`,
so the checker must allow it (it still rejects `sorryAx` and axioms a proof adds itself).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from prover import Problem, ProverConfig, ProverError, evaluate
from prover.leangeo import EXTRA_AXIOMS, HEADER

STATEMENTS: dict[str, tuple[str, str, str]] = {
    # name: (category, informal statement, formal statement ending in `:= by`)
    "midpoint_halves": (
        "basic",
        "The midpoint M of a segment AB is as far from A as from B.",
        "theorem midpoint_halves : ∀ (A B M : Point), MidPoint A M B → |(A─M)| = |(M─B)| := by",
    ),
    "iso_base_angles": (
        "triangle",
        "The base angles of an isosceles triangle ABC with AB = AC are equal.",
        "theorem iso_base_angles : ∀ (A B C : Point), IsoTriangle A B C → ∠ A:B:C = ∠ A:C:B := by",
    ),
    "midline_half_base": (
        "triangle",
        "The segment joining the midpoints of two sides of a triangle is half the third side.",
        "theorem midline_half_base : ∀ (A B C D E : Point),\n"
        "    Triangle A B C ∧ MidPoint A D B ∧ MidPoint A E C → |(B─C)| = 2 * |(D─E)| := by",
    ),
}


def leangeo_problems() -> list[Problem]:
    """The example's problems. `benchmark="leangeo"` gives them LeanGeo's prompt addition."""
    return [
        Problem(
            name=name,
            header=HEADER,
            formal_statement=statement,
            informal_statement=informal,
            benchmark="leangeo",
            category=category,
            source="examples/leangeo.py",
            lean_version="v4.15.0",
        )
        for name, (category, informal, statement) in STATEMENTS.items()
    ]


def leangeo_config(args: argparse.Namespace) -> ProverConfig:
    """Settings: the user's config (`prover setup lean`), then this example's choices."""
    config = ProverConfig.load(args.config)
    allowed = tuple(dict.fromkeys([*config.checker.extra_allowed_axioms, *EXTRA_AXIOMS]))
    return config.with_overrides(
        {
            "eval.benchmark": "leangeo-examples",
            "checker.extra_allowed_axioms": allowed,  # SMT_VERIF: how euclid_* tactics admit SMT results
            "checker.allow_header_axioms": True,  # SystemE/LeanGeo axiomatise geometry in the header env
            "eval.passes": args.passes,
            "sampler.backend": args.backend,
            "sampler.model": args.model,
            "sampler.script": args.script,
            "sampler.base_url": args.base_url,
            "sampler.prompt_format": args.prompt_format,
            "lean.workspace": args.workspace,
            "lean.repl_cmd": shlex.split(args.repl_cmd) if args.repl_cmd else None,
            "lean.workers": args.workers,
        }
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model id (vllm), served name (openai), or the script's source (scripted)")
    parser.add_argument("--backend", choices=("vllm", "openai", "scripted"), default=None)
    parser.add_argument("--script", type=Path, help="JSONL completions for --backend scripted")
    parser.add_argument("--base-url", help="OpenAI-compatible server for --backend openai")
    parser.add_argument("--prompt-format", help="prompt format (default: inferred from --model)")
    parser.add_argument("--pass", dest="passes", type=int, default=4, help="samples per problem")
    parser.add_argument("--workspace", type=Path, help="the LeanGeo Lake workspace (default: from prover setup lean)")
    parser.add_argument("--repl-cmd", help="command that starts one REPL (overrides the workspace's)")
    parser.add_argument("--workers", type=int, help="Lean REPL workers")
    parser.add_argument("--config", type=Path, help="settings file (.yaml/.toml)")
    parser.add_argument("--out", type=Path, default=Path("runs/leangeo-examples"), help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = evaluate(leangeo_problems(), leangeo_config(args), out=args.out, resume=args.resume, progress=False)
    except ProverError as exc:
        print(f"leangeo example: error: {exc}", file=sys.stderr)
        return 2
    print((result.run_dir / "report.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
