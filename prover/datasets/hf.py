"""Benchmarks from Hugging Face datasets: `hf:ORG/NAME[:split]`, a local `datasets` folder or a
data file (Parquet, JSON Lines, CSV), read through the `datasets` library (`pip install prover[hf]`).

Datasets lay out their columns differently. A `Layout` maps problem fields to columns; presets
cover the common prover datasets, and `--columns` names a preset and/or `field=column` pairs
(`--columns kimina`, `--columns name=id,formal_statement=stmt,header=imports`). Without
`--columns`, a known dataset id picks its preset and any other dataset is read with the uniform
field names. Every statement is normalised like the shared benchmark files: a header or
docstring written into the statement column is split off (Kimina / Goedel / NuminaMath style),
and the statement ends in exactly `:= by` (`:= sorry`, `:= by sorry` and `:=` are accepted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from prover.datasets.declarations import NotADeclaration, parse_declaration
from prover.datasets.download import strip_docstring
from prover.errors import ConfigError, DataError
from prover.types import Problem

FIELDS: tuple[str, ...] = (
    "name", "formal_statement", "header", "split", "informal_statement", "informal_proof", "category", "lean_version",
)
REQUIRED_FIELDS: tuple[str, ...] = ("name", "formal_statement")
MATHLIB_HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
"""The header DeepSeek-Prover and its successors put before header-less competition statements."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DATA_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}
_SAVED_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


class Layout(BaseModel):
    """Which column holds which problem field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str]
    """field -> column."""
    optional: frozenset[str] = frozenset()
    """Fields left out when their column is missing (presets guess; explicit mappings must hold)."""
    default_header: str = ""
    """Header for statements that bring none (neither a header column nor imports in the text)."""
    description: str = ""


def _layout(description: str, default_header: str = "", **columns: str) -> Layout:
    soft = frozenset(f for f in columns if f not in REQUIRED_FIELDS)
    return Layout(columns=columns, optional=soft, default_header=default_header, description=description)


PRESETS: dict[str, Layout] = {
    "uniform": _layout(
        "prover's own JSONL schema (the shared benchmark files)",
        **{f: f for f in FIELDS},
    ),
    "deepseek": _layout(
        "DeepSeek-Prover V1/V1.5 datasets, DeepSeek-ProverBench: header + statement, docstring in informal_prefix",
        name="name", formal_statement="formal_statement", header="header", split="split",
        informal_statement="informal_prefix",
    ),
    "kimina": _layout(
        "Kimina / Goedel-Prover-V2 miniF2F: header and docstring inside formal_statement",
        name="name", formal_statement="formal_statement", informal_statement="informal_prefix", split="split",
    ),
    "goedel-pset": _layout(
        "Goedel-Pset: problem_id, complete Lean file in formal_statement",
        name="problem_id", formal_statement="formal_statement", informal_statement="informal_statement",
    ),
    "numina-lean": _layout(
        "NuminaMath-LEAN: uuid, complete Lean file in formal_statement, problem text",
        name="uuid", formal_statement="formal_statement", informal_statement="problem",
    ),
    "lean-workbook": _layout(
        "Lean Workbook: header-less statements ending in `:= by sorry` (DeepSeek's Mathlib header added)",
        default_header=MATHLIB_HEADER,
        name="id", formal_statement="formal_statement", split="split", informal_statement="natural_language_statement",
    ),
    "minif2f-lean4": _layout(
        "cat-searcher/minif2f-lean4: id, split, header, formal_statement, informal_stmt, informal_proof",
        name="id", formal_statement="formal_statement", header="header", split="split",
        informal_statement="informal_stmt", informal_proof="informal_proof",
    ),
}

KNOWN_DATASETS: dict[str, str] = {
    "ai-mo/minif2f_test": "kimina",
    "ai-mo/kimina-prover-promptset": "kimina",
    "deepseek-ai/deepseek-prover-v1": "deepseek",
    "deepseek-ai/deepseek-proverbench": "deepseek",
    "goedel-lm/goedel-pset-v1": "goedel-pset",
    "ai-mo/numinamath-lean": "numina-lean",
    "internlm/lean-workbook": "lean-workbook",
    "cat-searcher/minif2f-lean4": "minif2f-lean4",
}
"""Hub dataset id (lower case) -> its preset."""


def parse_columns(text: str, default: Layout | None = None) -> Layout:
    """`--columns`: comma-separated items, each a preset name or `field=column`. Pairs override
    the preset named (else `default`, else the uniform names) and their columns must exist.

    Raises:
        DataError: unknown preset or field, empty column, two presets, nothing given.
    """
    preset: str | None = None
    explicit: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        field, sep, column = (part.strip() for part in item.partition("="))
        if not sep:
            if preset is not None:
                raise DataError(f"--columns names two presets ({preset!r}, {field!r}); give one")
            if field not in PRESETS:
                raise DataError(f"--columns: unknown preset {field!r}; presets: {', '.join(PRESETS)}")
            preset = field
            continue
        if field not in FIELDS:
            raise DataError(f"--columns: unknown field {field!r}; fields: {', '.join(FIELDS)}")
        if not column:
            raise DataError(f"--columns: no column given for field {field!r}")
        explicit[field] = column
    if preset is None and not explicit:
        raise DataError(f"--columns is empty; give a preset ({', '.join(PRESETS)}) or field=column pairs")
    base = PRESETS[preset] if preset else default or PRESETS["uniform"]
    return base.model_copy(
        update={"columns": {**base.columns, **explicit}, "optional": base.optional - set(explicit)}
    )


def layout_for(dataset: str, columns: str | None) -> Layout:
    """The known dataset's preset (else the uniform names), with `--columns` applied."""
    known = PRESETS[KNOWN_DATASETS.get(dataset.lower(), "uniform")]
    return parse_columns(columns, known) if columns else known


def applicable(layout: Layout, available: list[str], what: str) -> Layout:
    """The layout without optional fields whose column is missing.

    Raises:
        DataError: a required or explicitly mapped column is missing (all columns are listed).
    """
    missing = [(f, c) for f, c in layout.columns.items() if c not in available and f not in layout.optional]
    if missing:
        named = ", ".join(f"{c!r} (for {f})" for f, c in missing)
        noun = "columns" if len(missing) > 1 else "column"
        raise DataError(
            f"{what}: {noun} {named} not in the dataset; its columns are: {', '.join(available)}. "
            f"Map them with --columns name=COL,formal_statement=COL[,header=COL,...] "
            f"or a preset ({', '.join(PRESETS)})"
        )
    kept = {f: c for f, c in layout.columns.items() if c in available}
    return layout.model_copy(update={"columns": kept})


# ---------------------------------------------------------------------------------------------
# Opening the dataset
# ---------------------------------------------------------------------------------------------


class HfSource(BaseModel):
    """Where `hf:SPEC` points: a hub id or a local path, and the split asked for."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    local: Path | None = None
    split: str | None = None


def parse_spec(spec: str, split: str | None) -> HfSource:
    """`ORG/NAME`, `ORG/NAME:split`, `PATH` or `PATH:split` (a path that exists wins).

    Raises:
        DataError: the split given twice differently, a missing local path, a malformed id.
    """
    text = spec.strip()
    if not text:
        raise DataError("hf: needs a dataset: hf:ORG/NAME[:split] or hf:PATH")
    name, from_spec = text, None
    head, sep, tail = text.rpartition(":")
    if sep and tail and "/" not in tail and not Path(text).expanduser().exists():
        name, from_spec = head, tail
    if from_spec and split and from_spec != split:
        raise DataError(f"hf:{spec}: split {from_spec!r} in the name and --split {split!r} differ")
    chosen = from_spec or split
    path = Path(name).expanduser()
    if path.exists():
        return HfSource(dataset=name, local=path, split=chosen)
    if name.startswith((".", "/", "~")) or path.suffix in _DATA_FILE_BUILDERS:
        raise DataError(f"hf:{spec}: local dataset {path} not found")
    if not _HUB_ID.match(name):
        raise DataError(f"hf:{spec}: {name!r} is neither an existing path nor a Hugging Face dataset id (ORG/NAME)")
    return HfSource(dataset=name, split=chosen)


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(f"hf: benchmarks need the datasets library: pip install 'prover[hf]' ({exc})") from exc
    return datasets


def open_splits(source: HfSource) -> list[tuple[Any, str]]:
    """[(the `datasets.Dataset` of a chosen split, its name)]: one split, or all for `all`."""
    datasets = _datasets()
    what = f"hf:{source.dataset}"
    wanted = None if source.split == "all" else source.split
    try:
        if source.local is None:
            loaded = datasets.load_dataset(source.dataset, split=wanted) if wanted else datasets.load_dataset(source.dataset)
        elif source.local.is_dir() and any((source.local / f).is_file() for f in _SAVED_DATASET_FILES):
            loaded = datasets.load_from_disk(str(source.local))
        elif source.local.is_dir():
            loaded = datasets.load_dataset(str(source.local))
        else:
            builder = _DATA_FILE_BUILDERS.get(source.local.suffix.lower())
            if builder is None:
                raise DataError(f"{what}: unknown data file type {source.local.suffix!r}; use {', '.join(_DATA_FILE_BUILDERS)}")
            loaded = datasets.load_dataset(builder, data_files=str(source.local))
    except DataError:
        raise
    except ConnectionError as exc:
        raise DataError(
            f"{what}: cannot load the dataset from the Hugging Face hub ({exc}); it is unknown, private, "
            "or the hub is unreachable (HF_HUB_OFFLINE=1 allows only cached datasets). "
            "For a local copy use hf:PATH (a save_to_disk folder, a data folder or a Parquet file)"
        ) from None
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"{what}: cannot load the dataset: {exc}") from None
    if isinstance(loaded, Mapping):  # DatasetDict
        if source.split == "all":
            return [(loaded[name], name) for name in loaded]
        return [_choose_split(loaded, wanted, what)]
    name = str(loaded.split) if loaded.split is not None else "train"
    if wanted and source.local is not None and name != wanted:
        raise DataError(f"{what}: the saved dataset is split {name!r}, not {wanted!r}")
    return [(loaded, wanted or name)]


def _choose_split(splits: Mapping[str, Any], wanted: str | None, what: str) -> tuple[Any, str]:
    names = list(splits)
    if wanted is not None:
        if wanted not in splits:
            raise DataError(f"{what}: no split {wanted!r}; splits: {', '.join(names)} (or all)")
        return splits[wanted], wanted
    if len(names) == 1:
        return splits[names[0]], names[0]
    if "test" in splits:
        return splits["test"], "test"
    raise DataError(f"{what}: several splits ({', '.join(names)}); choose one with {what}:SPLIT or --split (or all)")


# ---------------------------------------------------------------------------------------------
# Rows -> problems
# ---------------------------------------------------------------------------------------------


def row_problem(row: Mapping[str, Any], layout: Layout, *, where: str, split: str, benchmark: str) -> Problem:
    """One dataset row as a `Problem` (the statement normalised; see the module docstring)."""
    values = {f: row.get(c) for f, c in layout.columns.items()}
    name = values.get("name")
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: column {layout.columns['name']!r} (name) is empty or not text: {name!r}")
    statement = values.get("formal_statement")
    if not isinstance(statement, str) or not statement.strip():
        raise DataError(f"{where} ({name}): column {layout.columns['formal_statement']!r} (formal_statement) is empty or not text")
    try:
        decl = parse_declaration(statement.replace("\r\n", "\n"))
    except NotADeclaration as exc:
        raise DataError(f"{where} ({name}): formal_statement is not a theorem statement: {exc}") from None
    if decl.has_proof:
        raise DataError(
            f"{where} ({name}): formal_statement holds a proof after `:=`; map the column with the bare "
            "statement (ending in `:= by` or `:= sorry`) to formal_statement"
        )
    header = _text(values.get("header"), "header", where) + decl.header
    if not header.strip():
        header = layout.default_header
    elif not header.endswith("\n"):
        header += "\n"
    informal = _text(values.get("informal_statement"), "informal_statement", where)
    return Problem(
        name=name,
        split=_text(values.get("split"), "split", where) or split,
        header=header,
        formal_statement=decl.statement,
        informal_statement=strip_docstring(informal) if informal.strip() else decl.docstring,
        informal_proof=_text(values.get("informal_proof"), "informal_proof", where) or None,
        source=where,
        lean_version=_text(values.get("lean_version"), "lean_version", where) or None,
        benchmark=benchmark,
        category=_text(values.get("category"), "category", where) or None,
    )


def _text(value: Any, field: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: {field} must be text, got {type(value).__name__}")
    return value


def load_hf(spec: str, *, split: str | None = None, columns: str | None = None, benchmark: str = "") -> list[Problem]:
    """Problems of `hf:SPEC` (see the module docstring); names must be unique per split.

    Raises:
        DataError: unknown or unreachable dataset, missing split or columns, a row that is no
            theorem statement; ConfigError: the `datasets` library is missing.
    """
    source = parse_spec(spec, split)
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for table, split_name in open_splits(source):
        what = f"hf:{source.dataset}[{split_name}]"
        layout = applicable(layout_for(source.dataset, columns), list(table.column_names), what)
        for index, row in enumerate(table.select_columns(sorted(set(layout.columns.values())))):
            where = f"{what} row {index}"
            problem = row_problem(row, layout, where=where, split=split_name, benchmark=benchmark or f"hf:{spec}")
            key = (problem.split, problem.name)
            if key in seen:
                raise DataError(f"{where}: duplicate problem name {problem.name!r} (first at {seen[key]})")
            seen[key] = where
            problems.append(problem)
    if not problems:
        raise DataError(f"hf:{spec}: the dataset holds no rows")
    return problems
