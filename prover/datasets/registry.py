"""The benchmark registry: which files make up each benchmark, and how problems are categorised.

A benchmark is a set of uniform-schema JSONL files (one per split) that live in a data folder
(`--data-dir`, `$PROVER_DATA_DIR`, or the user cache filled by `prover.datasets.download`).
Pseudo-benchmarks read what users bring: `jsonl:PATH`, `lean:PATH`, `hf:DATASET` (Hugging Face,
`prover.datasets.hf`) and `leandojo:PATH` (a LeanDojo Benchmark 4 split, `prover.datasets.leandojo`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prover.config import user_cache_dir
from prover.datasets.download import download
from prover.datasets.lean_files import load_lean_path
from prover.datasets.loaders import Categorizer, read_jsonl, select
from prover.errors import DataError
from prover.leangeo.settings import EXTRA_AXIOMS as LEANGEO_AXIOMS
from prover.types import Problem

DATA_DIR_ENV = "PROVER_DATA_DIR"
USER_PREFIXES: tuple[str, ...] = ("jsonl:", "lean:", "hf:", "leandojo:")
"""Benchmarks named by what the user brings; they carry no checker settings of their own."""

_MINIF2F_PREFIX = re.compile(
    r"^(mathd_algebra|mathd_numbertheory|amc12|aime|imo|induction|algebra|numbertheory)", re.IGNORECASE
)
_PUTNAM_YEAR = re.compile(r"^putnam_(\d{4})_")
_LEANGEO_FOLDER = re.compile(r"LeanGeo-Bench/([^/]+)/")


def minif2f_category(name: str, source: str = "") -> str | None:
    """Competition family from the name prefix: amc12a/amc12b -> amc12, aimeI/aimeII -> aime,
    imosl -> imo; unknown prefixes fall back to the first `_`-separated word."""
    match = _MINIF2F_PREFIX.match(name)
    if match:
        return match.group(1).lower()
    return name.split("_", 1)[0] or None


def proofnet_category(name: str, source: str = "") -> str | None:
    """The textbook: `Dummit_Foote_exercise_1_1_2a` -> `Dummit_Foote`."""
    book, sep, _ = name.partition("_exercise")
    return book if sep and book else None


def putnam_category(name: str, source: str = "") -> str | None:
    """The decade of the competition year: `putnam_1962_a1` -> `1960s`."""
    match = _PUTNAM_YEAR.match(name)
    return f"{int(match.group(1)) // 10 * 10}s" if match else None


def leangeo_category(name: str, source: str = "") -> str | None:
    """The LeanGeo-Bench folder named in `source` (e.g. `IMO_00+`, `UniGeo`)."""
    match = _LEANGEO_FOLDER.search(source)
    return match.group(1) if match else None


@dataclass(frozen=True)
class BenchmarkSpec:
    """One registered benchmark: its files per split and its per-benchmark settings."""

    name: str
    description: str
    files: dict[str, str]
    """split -> file name inside the data folder (same names as `../shared/datasets`)."""
    default_split: str | None
    """Split loaded when none is given; None loads every split."""
    categorize: Categorizer | None = None
    extra_axioms: tuple[str, ...] = ()
    """Axioms the checker must also allow for this benchmark (LeanGeo's SMT oracle)."""
    header_axioms: bool = False
    """The benchmark's library axiomatises its domain (LeanGeo/SystemE): the checker also allows
    axioms declared by the header environment (see `CheckerConfig.allow_header_axioms`)."""
    lean_version: str | None = None
    download: str | None = None
    """Key of the downloader in `prover.datasets.download` (None: cannot be downloaded here)."""
    download_note: str = ""
    """Why a benchmark cannot be downloaded automatically (shown in the error)."""
    aliases: tuple[str, ...] = field(default=())

    def split_files(self, split: str | None) -> dict[str, str]:
        """Files to load for `split` (None -> the default split, `all` -> every split)."""
        chosen = split if split is not None else self.default_split
        if chosen is None or chosen == "all":
            return dict(self.files)
        if chosen not in self.files:
            raise DataError(
                f"benchmark {self.name!r} has no split {chosen!r}; "
                f"available: {', '.join(sorted(self.files))} (or 'all')"
            )
        return {chosen: self.files[chosen]}


_NEEDS_TREE = (
    "it is built from the source repository's .lean file tree, which is not downloaded "
    "automatically; point --data-dir (or $PROVER_DATA_DIR) at a folder that holds {file} "
    "(e.g. a copy of the shared datasets folder)"
)

_SPECS: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec(
        name="minif2f",
        description="miniF2F (DeepSeek lineage); test = Goedel-Prover-V2 / Kimina-rectified statements",
        files={"valid": "minif2f_valid.jsonl", "test": "minif2f_test.jsonl"},
        default_split="test",
        categorize=minif2f_category,
        lean_version="v4.9.0",
        download="minif2f",
    ),
    BenchmarkSpec(
        name="minif2f-dsv15",
        description="miniF2F as published by DeepSeek-Prover-V1.5 (uncorrected test split)",
        files={"valid": "minif2f_valid.jsonl", "test": "minif2f_test_dsv15.jsonl"},
        default_split="test",
        categorize=minif2f_category,
        lean_version="v4.9.0",
        download="minif2f",
    ),
    BenchmarkSpec(
        name="minif2f-lean4.24",
        description="yangky11/miniF2F-lean4 (Lean/Mathlib v4.24.0, modern syntax)",
        files={"valid": "minif2f_valid_lean4.24.jsonl", "test": "minif2f_test_lean4.24.jsonl"},
        default_split="test",
        categorize=minif2f_category,
        lean_version="v4.24.0",
        download_note=_NEEDS_TREE,
    ),
    BenchmarkSpec(
        name="proofnet",
        description="ProofNet (Lean 4 port of DeepSeek-Prover-V1.5; names from the original ProofNet)",
        files={"valid": "proofnet_valid.jsonl", "test": "proofnet_test.jsonl"},
        default_split="test",
        categorize=proofnet_category,
        lean_version="v4.9.0",
        download="proofnet",
    ),
    BenchmarkSpec(
        name="putnambench",
        description="PutnamBench (solutions written into the statements; Lean/Mathlib v4.27.0)",
        files={"test": "putnambench.jsonl"},
        default_split="test",
        categorize=putnam_category,
        lean_version="v4.27.0",
        download_note=_NEEDS_TREE,
        aliases=("putnam",),
    ),
    BenchmarkSpec(
        name="leangeo",
        description="LeanGeo-Bench (geometry; needs the LeanGeo workspace, Lean v4.15.0)",
        files={"test": "leangeo_bench.jsonl"},
        default_split="test",
        categorize=leangeo_category,
        extra_axioms=LEANGEO_AXIOMS,
        header_axioms=True,
        lean_version="v4.15.0",
        download_note=_NEEDS_TREE,
        aliases=("leangeo-bench",),
    ),
    BenchmarkSpec(
        name="core-smoke",
        description="30 miniF2F problems stated for core Lean (no Mathlib; unchecked)",
        files={"valid": "core_smoke.jsonl", "test": "core_smoke.jsonl"},
        default_split=None,
        categorize=minif2f_category,
        download_note="it is a hand-made subset that ships with the shared datasets; " + _NEEDS_TREE,
    ),
)

REGISTRY: dict[str, BenchmarkSpec] = {spec.name: spec for spec in _SPECS}
_ALIASES: dict[str, str] = {alias: spec.name for spec in _SPECS for alias in spec.aliases}


def list_benchmarks() -> list[str]:
    """Registered benchmark names (the `jsonl:PATH` and `lean:PATH` forms are always accepted)."""
    return sorted(REGISTRY)


def get_spec(name: str) -> BenchmarkSpec:
    """The registry entry for `name` (case-insensitive; aliases allowed)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    spec = REGISTRY.get(key)
    if spec is None:
        raise DataError(
            f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}, "
            "or jsonl:PATH (uniform JSONL schema), lean:PATH (.lean file or folder with sorry theorems), "
            "hf:ORG/NAME[:split] or hf:PATH (Hugging Face dataset), leandojo:PATH (LeanDojo Benchmark 4 split)"
        )
    return spec


def benchmark_extra_axioms(name: str) -> tuple[str, ...]:
    """Axioms the checker must allow in addition to the defaults for this benchmark.

    User benchmarks (`jsonl:`, `lean:`, `hf:`, `leandojo:`) add none (users pass
    `--allow-axiom` for their own)."""
    if name.startswith(USER_PREFIXES):
        return ()
    return get_spec(name).extra_axioms


def benchmark_allows_header_axioms(name: str) -> bool:
    """Whether proofs of this benchmark may use axioms its header environment declares."""
    if name.startswith(USER_PREFIXES):
        return False
    return get_spec(name).header_axioms


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return user_cache_dir() / "datasets"


def resolve_data_file(spec: BenchmarkSpec, file_name: str, data_dir: Path | str | None) -> Path:
    """Where `file_name` of `spec` is: explicit dir > $PROVER_DATA_DIR > user cache (downloaded)."""
    explicit = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if explicit is not None:
        folder = Path(explicit).expanduser()
        origin = "--data-dir / eval.data_dir" if data_dir is not None else f"${DATA_DIR_ENV}"
        path = folder / file_name
        if not folder.is_dir():
            raise DataError(f"data folder {folder} (from {origin}) does not exist")
        if not path.is_file():
            raise DataError(f"benchmark {spec.name!r} needs {file_name}, which is not in {folder} (from {origin})")
        return path
    cache = default_cache_dir()
    path = cache / file_name
    if path.is_file():
        return path
    if spec.download is None:
        note = spec.download_note.format(file=file_name) or "no download source is known"
        raise DataError(f"benchmark {spec.name!r} is not in the cache {cache} and cannot be downloaded: {note}")
    download(spec.download, cache)
    if not path.is_file():
        raise DataError(f"download of benchmark {spec.name!r} did not produce {path}")
    return path


def load_benchmark(
    name: str,
    *,
    split: str | None = None,
    data_dir: Path | str | None = None,
    limit: int | None = None,
    names: Sequence[str] = (),
    columns: str | None = None,
) -> list[Problem]:
    """Load a registered benchmark or a user benchmark as `Problem`s.

    Args:
        name: registry name (`minif2f`, `proofnet`, `putnambench`, `leangeo`, ...), `jsonl:PATH`
            (uniform schema), `lean:PATH` (a .lean file or a folder of them), `hf:ORG/NAME[:split]`
            or `hf:PATH` (a Hugging Face dataset, a `datasets` folder or a Parquet file), or
            `leandojo:PATH` (a LeanDojo Benchmark 4 split file).
        split: split to load (default: the benchmark's default split; `all` for every split).
            For `jsonl:` files it filters on the `split` field; for `hf:` it is the dataset split.
        data_dir: folder with the benchmark files (overrides `$PROVER_DATA_DIR` and the cache);
            for `leandojo:` the checkout of the traced repository whose sources hold the statements.
        limit: keep the first `limit` problems (after the `names` filter).
        names: keep only these problems (an unknown name is an error).
        columns: `hf:` only: a preset and/or `field=column` pairs (see `prover.datasets.hf`).

    Raises:
        DataError: unknown benchmark or split, missing/malformed file (naming file and line),
            failed download, unknown problem name, missing dataset columns.
    """
    if columns and not name.startswith("hf:"):
        raise DataError(f"--columns applies to hf: benchmarks only, not {name!r}")
    if name.startswith("hf:"):
        from prover.datasets.hf import load_hf

        problems = load_hf(name[3:], split=split, columns=columns, benchmark=name)
    elif name.startswith("leandojo:"):
        from prover.datasets.leandojo import load_leandojo

        source_dir = Path(data_dir).expanduser() if data_dir is not None else None
        problems = load_leandojo(Path(name[9:]).expanduser(), source_dir=source_dir, benchmark=name)
        if split not in (None, "all") and split != problems[0].split:
            raise DataError(f"{name}: the file is split {problems[0].split!r}, not {split!r}")
    elif name.startswith("jsonl:"):
        problems = read_jsonl(Path(name[6:]).expanduser(), benchmark=name)
        if split not in (None, "all"):
            problems = [p for p in problems if p.split == split]
            if not problems:
                raise DataError(f"{name}: no problems with split {split!r}")
    elif name.startswith("lean:"):
        problems = load_lean_path(Path(name[5:]).expanduser(), benchmark=name)
    else:
        problems = _load_registered(get_spec(name), split, data_dir)
    return select(problems, names=names, limit=limit, what=name)


def _load_registered(spec: BenchmarkSpec, split: str | None, data_dir: Path | str | None) -> list[Problem]:
    files = spec.split_files(split)
    splits_by_file: dict[str, list[str]] = {}
    for split_name, file_name in files.items():
        splits_by_file.setdefault(file_name, []).append(split_name)
    problems: list[Problem] = []
    for file_name, splits in splits_by_file.items():
        path = resolve_data_file(spec, file_name, data_dir)
        loaded = read_jsonl(path, benchmark=spec.name, categorize=spec.categorize, default_split=splits[0])
        shared = sum(1 for f in spec.files.values() if f == file_name) > 1
        if shared:  # one file holds several splits (core-smoke): filter on the split field
            loaded = [p for p in loaded if p.split in splits]
        problems.extend(loaded)
    return problems
