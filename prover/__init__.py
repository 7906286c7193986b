"""prover: LLM theorem proving in Lean 4.

The public API, importable from the package root:

    import prover
    from prover import Problem, Prover, ProverConfig

    with Prover(ProverConfig.load()) as p:                          # one problem
        result = p.prove(problem)
    problems = prover.load_benchmark("minif2f", limit=10)
    run = prover.evaluate(problems, config, out="runs/x")         # a run directory, like the CLI
    run.summary.pass_at_k

Only the light data types are imported eagerly; the API, datasets and everything that pulls in
engines are loaded on first use, so `import prover` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prover.config import ProverConfig
from prover.errors import ProverError
from prover.lazy_exports import lazy_exports
from prover.types import Attempt, Problem, Verdict

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Prover": "prover.api",
    "ProveResult": "prover.api",
    "EvalResult": "prover.api",
    "evaluate": "prover.api",
    "aevaluate": "prover.api",
    "load_benchmark": "prover.datasets",
    "list_benchmarks": "prover.datasets",
}

__all__ = [
    "Attempt",
    "EvalResult",
    "Problem",
    "ProveResult",
    "Prover",
    "ProverConfig",
    "ProverError",
    "Verdict",
    "aevaluate",
    "evaluate",
    "list_benchmarks",
    "load_benchmark",
]

if TYPE_CHECKING:
    from prover.api import EvalResult, ProveResult, Prover, aevaluate, evaluate
    from prover.datasets import list_benchmarks, load_benchmark


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
