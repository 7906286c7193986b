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


# ---------------------------------------------------------------------------------------------
# Interaction (LeanDojo 4.20 `lean_dojo.interaction.dojo`): Dojo, TacticState, results, errors.
# `DOJO_WORLDS[full_name]` says what each theorem's `Dojo` answers:
#   {"init": pp, "steps": {(pp, tactic): pp | "QED" | "sorry" | "error: ..." | "timeout" | "crash" | "oom"}}
# and `DOJO_LOG` records opens, closes and tactics, so tests see what the session did.
# ---------------------------------------------------------------------------------------------

DOJO_WORLDS: dict[str, dict[str, Any]] = {}
DOJO_LOG: list[tuple[str, ...]] = []


@dataclass(frozen=True)
class TacticState:
    pp: str
    id: int = field(compare=False)
    message: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ProofFinished:
    tactic_state_id: int
    message: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ProofGivenUp:
    pass


@dataclass(frozen=True)
class LeanError:
    error: str


class DojoCrashError(Exception):
    @property
    def is_out_of_memory(self) -> bool:
        return str(self) == "OOM"


class DojoTacticTimeoutError(Exception):
    pass


class DojoInitError(Exception):
    pass


class Dojo:
    """Context manager: `with Dojo(theorem, timeout=...) as (dojo, init_state)`."""

    def __init__(self, entry: Theorem, timeout: int = 600, additional_imports: list[str] = (), build_deps: bool = True):
        self.entry, self.timeout = entry, timeout
        self._ids = iter(range(1, 1 << 30))
        self._alive = False

    def __enter__(self) -> tuple[Dojo, TacticState]:
        world = DOJO_WORLDS.get(self.entry.full_name)
        if world is None:
            raise DojoInitError(f"Failed to locate the theorem with `{self.entry.full_name}` as its fully qualified name.")
        DOJO_LOG.append(("open", self.entry.full_name))
        self._alive = True
        return self, TacticState(world["init"], 0)

    def __exit__(self, *exc: object) -> None:
        DOJO_LOG.append(("close", self.entry.full_name))
        self._alive = False

    def run_tac(self, state: TacticState, tactic: str) -> Any:
        if not self._alive:
            raise DojoCrashError("Unknown exit code: -9")
        DOJO_LOG.append(("tactic", tactic))
        outcome = DOJO_WORLDS[self.entry.full_name]["steps"].get((state.pp, tactic), f"error: unknown tactic {tactic}")
        if outcome == "QED":
            return ProofFinished(next(self._ids))
        if outcome == "sorry":
            return ProofGivenUp()
        if outcome == "timeout":
            raise DojoTacticTimeoutError()
        if outcome in ("crash", "oom"):
            self._alive = False
            raise DojoCrashError("OOM" if outcome == "oom" else "Unexpected EOF")
        if outcome.startswith("error: "):
            return LeanError(outcome.removeprefix("error: "))
        return TacticState(outcome, next(self._ids))
