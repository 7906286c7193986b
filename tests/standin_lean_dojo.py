"""STAND-IN for the `lean_dojo` package, NOT LeanDojo: only the names and shapes
`prover.datasets.dojo_trace` uses (LeanDojo 4.20: `LeanGitRepo`, `trace`, `TracedRepo`,
`TracedTheorem`, `TracedTactic`). Tests put it into `sys.modules["lean_dojo"]`.

`trace()` builds nothing: it serves the repository a test registered for (url, commit) in
`TRACES`, and fails like a failed clone for any other repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRACES: dict[tuple[str, str], TracedRepo] = {}
"""(url, commit) -> the traced repository `trace()` returns."""


@dataclass(frozen=True)
class LeanGitRepo:
    url: str
    commit: str

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Theorem:
    repo: LeanGitRepo
    file_path: Path
    full_name: str


@dataclass(frozen=True)
class TracedTactic:
    tactic: str
    state_before: str
    state_after: str
    annotated: tuple[str, list[dict[str, Any]]] = ("", [])

    def get_annotated_tactic(self) -> tuple[str, list[dict[str, Any]]]:
        return self.annotated


@dataclass(frozen=True)
class TracedTheorem:
    theorem: Theorem
    start: tuple[int, int]
    end: tuple[int, int]
    tactics: list[TracedTactic] = field(default_factory=list)

    @property
    def repo(self) -> LeanGitRepo:
        return self.theorem.repo

    def get_traced_tactics(self) -> list[TracedTactic]:
        return list(self.tactics)


@dataclass
class TracedRepo:
    repo: LeanGitRepo
    root_dir: Path
    theorems: list[TracedTheorem]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def get_traced_theorems(self) -> list[TracedTheorem]:
        return list(self.theorems)


def trace(repo: LeanGitRepo, dst_dir: str | Path | None = None, build_deps: bool = True) -> TracedRepo:
    traced = TRACES.get((repo.url, repo.commit))
    if traced is None:
        raise RuntimeError(f"stand-in lean_dojo: failed to clone {repo.url} at {repo.commit}")
    traced.calls.append({"dst_dir": dst_dir, "build_deps": build_deps})
    return traced
