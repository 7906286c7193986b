"""Benchmarks: the registry (minif2f, proofnet, putnambench, leangeo, ...), the loaders of what
users bring (`jsonl:`, `lean:`, `hf:`, `leandojo:`, repositories traced with lean-dojo), and the
first-use download into the user cache."""

from prover.datasets.download import convert_dsv15, convert_goedel
from prover.datasets.lean_files import load_lean_path, parse_lean_text
from prover.datasets.loaders import read_jsonl, validate_row
from prover.datasets.registry import (
    REGISTRY,
    BenchmarkSpec,
    benchmark_allows_header_axioms,
    benchmark_extra_axioms,
    get_spec,
    list_benchmarks,
    load_benchmark,
)

__all__ = [
    "REGISTRY",
    "BenchmarkSpec",
    "benchmark_allows_header_axioms",
    "benchmark_extra_axioms",
    "convert_dsv15",
    "convert_goedel",
    "get_spec",
    "list_benchmarks",
    "load_benchmark",
    "load_lean_path",
    "parse_lean_text",
    "read_jsonl",
    "validate_row",
]
