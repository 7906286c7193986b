"""Read problem files in the uniform JSONL schema and turn them into `Problem`s.

Every error names the file and the 1-based line, and which key is missing or wrong, because a
benchmark file edited by hand is the most common way a run fails before it starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prover.errors import DataError
from prover.types import Problem

REQUIRED_KEYS: tuple[str, ...] = ("name", "formal_statement")
STRING_KEYS: tuple[str, ...] = ("name", "split", "header", "formal_statement", "source")
OPTIONAL_STRING_KEYS: tuple[str, ...] = ("informal_statement", "informal_proof", "lean_version", "category")
STATEMENT_END = ":= by"

Categorizer = Callable[[str, str], "str | None"]
"""(problem name, source) -> category."""


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one decoded JSONL object against the schema; `where` is `file:line` for errors."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in REQUIRED_KEYS:
        if key not in row:
            raise DataError(f"{where}: missing key {key!r}")
    for key in STRING_KEYS:
        if key in row and not isinstance(row[key], str):
            raise DataError(f"{where}: key {key!r} must be a string, got {type(row[key]).__name__}")
    for key in OPTIONAL_STRING_KEYS:
        if row.get(key) is not None and not isinstance(row[key], str):
            raise DataError(f"{where}: key {key!r} must be a string or null, got {type(row[key]).__name__}")
    if not row["name"].strip():
        raise DataError(f"{where}: key 'name' is empty")
    statement = row["formal_statement"].rstrip()
    if not statement.endswith(STATEMENT_END):
        raise DataError(f"{where}: 'formal_statement' of {row['name']!r} must end with {STATEMENT_END!r}")
    return row


def read_jsonl(
    path: Path,
    *,
    benchmark: str = "",
    categorize: Categorizer | None = None,
    default_split: str = "test",
) -> list[Problem]:
    """Load every problem of one uniform-schema JSONL file (blank lines are skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"problem file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read problem file {path}: {exc}") from exc
    problems: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        row = validate_row(row, where)
        problem = _to_problem(row, benchmark=benchmark, categorize=categorize, default_split=default_split)
        key = (problem.split, problem.name)
        if key in seen:
            raise DataError(
                f"{where}: duplicate problem name {problem.name!r} in split {problem.split!r} "
                f"(first at line {seen[key]})"
            )
        seen[key] = lineno
        problems.append(problem)
    if not problems:
        raise DataError(f"problem file {path} holds no problems")
    return problems


def _to_problem(row: dict[str, Any], *, benchmark: str, categorize: Categorizer | None, default_split: str) -> Problem:
    source = row.get("source") or ""
    category = row.get("category")
    if category is None and categorize is not None:
        category = categorize(row["name"], source)
    return Problem(
        name=row["name"],
        split=row.get("split") or default_split,
        header=row.get("header") or "",
        formal_statement=row["formal_statement"].rstrip(),
        informal_statement=row.get("informal_statement"),
        informal_proof=row.get("informal_proof"),
        source=source,
        lean_version=row.get("lean_version"),
        benchmark=benchmark,
        category=category,
    )


def problem_row(problem: Problem) -> dict[str, Any]:
    """The uniform-schema dict of a problem (keys in the README's order)."""
    return {
        "name": problem.name,
        "split": problem.split,
        "header": problem.header,
        "formal_statement": problem.formal_statement,
        "informal_statement": problem.informal_statement,
        "informal_proof": problem.informal_proof,
        "source": problem.source,
        "lean_version": problem.lean_version,
    }


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Write rows atomically (temp file + rename) so a cache never holds half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def select(
    problems: Sequence[Problem],
    *,
    names: Sequence[str] = (),
    limit: int | None = None,
    what: str = "benchmark",
) -> list[Problem]:
    """Apply the `--names` and `--limit` filters (in that order); unknown names are an error."""
    chosen = list(problems)
    if names:
        wanted = list(dict.fromkeys(names))
        by_name = {p.name: p for p in chosen}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise DataError(f"{what}: no problem named {shown}")
        keep = set(wanted)
        chosen = [p for p in chosen if p.name in keep]
    if limit is not None:
        if limit < 0:
            raise DataError(f"limit must be >= 0, got {limit}")
        chosen = chosen[:limit]
    return chosen
