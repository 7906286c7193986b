"""`prover data from-repo`: trace a Lean repository with lean-dojo and turn its theorems into a
benchmark (uniform JSONL), optionally only the theorems whose proof is `sorry`.

This is the only module that calls lean-dojo (`pip install prover[dojo]`), through its public API:
`LeanGitRepo(url, commit)`, `trace(repo, build_deps=...)` -> `TracedRepo` (`repo`, `root_dir`,
`get_traced_theorems()`), and per `TracedTheorem` its `repo`, `theorem.file_path`,
`theorem.full_name`, `start`/`end` and `get_traced_tactics()`. Tracing builds the repository with
Lean (or downloads LeanDojo's prebuilt trace); the theorems are then read exactly like a
LeanDojo Benchmark 4 split (`prover.datasets.leandojo`), from the traced sources.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from prover.datasets.declarations import NoColonProof, words
from prover.datasets.leandojo import (
    NO_GOALS,
    SourceFiles,
    TracedTactic,
    TracedTheorem,
    theorems_to_problems,
    trace_step_rows,
    write_step_rows,
)
from prover.datasets.loaders import problem_row, write_jsonl
from prover.errors import ConfigError, DataError
from prover.lean_syntax import blank_comments_and_strings
from prover.types import Problem

LEAN_DOJO_MODULE = "lean_dojo"


class TracedRepository(BaseModel):
    """What a trace yields: the sources' root and the repository's own theorems."""

    model_config = ConfigDict(frozen=True)

    url: str
    commit: str
    root_dir: Path
    theorems: list[TracedTheorem]


def import_lean_dojo() -> Any:
    try:
        return importlib.import_module(LEAN_DOJO_MODULE)
    except ImportError as exc:
        raise ConfigError(
            f"tracing a repository needs lean-dojo: pip install 'prover[dojo]' ({exc})"
        ) from exc


def trace_repository(url: str, commit: str, *, build_deps: bool = True) -> TracedRepository:
    """Trace `url` at `commit` with lean-dojo; theorems of its dependencies are left out.

    Raises:
        ConfigError: lean-dojo is not installed.
        DataError: lean-dojo failed (clone, build, trace), naming the repository.
    """
    dojo = import_lean_dojo()
    try:
        repo = dojo.LeanGitRepo(url, commit)
        traced = dojo.trace(repo, build_deps=build_deps)
        own = [thm for thm in traced.get_traced_theorems() if thm.repo == traced.repo]
        theorems = [_traced_theorem(repo, thm) for thm in own]
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001 - lean-dojo raises many kinds; the user needs the reason
        raise DataError(f"lean-dojo could not trace {url} at {commit}: {type(exc).__name__}: {exc}") from exc
    return TracedRepository(url=repo.url, commit=repo.commit, root_dir=Path(traced.root_dir), theorems=theorems)


def _traced_theorem(repo: Any, thm: Any) -> TracedTheorem:
    """A lean-dojo `TracedTheorem` in LeanDojo Benchmark 4's JSON form (same tactic filter:
    no tactics on `no goals`, no bare `·` focusing dots)."""
    tactics = [
        TracedTactic(
            tactic=t.tactic,
            annotated_tactic=tuple(t.get_annotated_tactic()),  # type: ignore[arg-type]
            state_before=t.state_before,
            state_after=t.state_after,
        )
        for t in thm.get_traced_tactics()
        if t.state_before != NO_GOALS and "·" not in t.tactic
    ]
    return TracedTheorem(
        url=repo.url,
        commit=repo.commit,
        file_path=str(thm.theorem.file_path),
        full_name=thm.theorem.full_name,
        start=tuple(thm.start),  # type: ignore[arg-type]
        end=tuple(thm.end),  # type: ignore[arg-type]
        traced_tactics=tactics,
    )


def sorry_theorems(traced: TracedRepository) -> list[TracedTheorem]:
    """The theorems whose proof (the text after the statement's `:=`) is `sorry` / `by sorry`."""
    files = SourceFiles(traced.root_dir)
    chosen = []
    for theorem in traced.theorems:
        try:
            if files.declaration(theorem).proof_is_sorry:
                chosen.append(theorem)
        except NoColonProof:
            continue
    return chosen


def _uses_sorry(theorem: TracedTheorem) -> bool:
    """Whether a traced proof has a `sorry`/`admit` tactic somewhere (no SFT data in it)."""
    return any(
        w.text in ("sorry", "admit") for t in theorem.traced_tactics for w in words(blank_comments_and_strings(t.tactic))
    )


class RepoBenchmark(BaseModel):
    """What `repo_benchmark` wrote."""

    out: Path
    problems: int
    traced: int
    """Theorems of the repository itself that lean-dojo traced."""
    root_dir: Path
    steps: Path | None = None
    step_rows: int = 0


def repo_benchmark(
    url: str,
    commit: str,
    out: Path,
    *,
    sorry_only: bool = False,
    steps: Path | None = None,
    build_deps: bool = True,
) -> RepoBenchmark:
    """Trace a repository and write its theorems as a uniform-schema benchmark JSONL.

    Args:
        sorry_only: keep only theorems whose proof is `sorry` (the open goals of a project).
        steps: also write the traced tactics of the proved theorems as step rows (Parquet).
    """
    traced = trace_repository(url, commit, build_deps=build_deps)
    what = f"{url}@{traced.commit}"
    if not traced.theorems:
        raise DataError(f"{what}: lean-dojo traced no theorems of the repository itself")
    chosen = sorry_theorems(traced) if sorry_only else traced.theorems
    if not chosen:
        raise DataError(f"{what}: none of its {len(traced.theorems)} theorems has a proof that is just `sorry`")
    benchmark = f"jsonl:{out}"
    problems: list[Problem] = theorems_to_problems(chosen, traced.root_dir, benchmark=benchmark, split="test", what=what)
    write_jsonl((problem_row(p) for p in problems), Path(out))
    result = RepoBenchmark(out=Path(out), problems=len(problems), traced=len(traced.theorems), root_dir=traced.root_dir)
    if steps is not None:
        rows = trace_step_rows(t for t in traced.theorems if t.traced_tactics and not _uses_sorry(t))
        write_step_rows(rows, steps)
        result = result.model_copy(update={"steps": Path(steps), "step_rows": len(rows)})
    return result
