"""LeanDojo Benchmark 4 splits as problems (`leandojo:PATH`), and their tactic traces as step rows.

A split file (e.g. `leandojo_benchmark_4/random/test.json`) is one JSON array of traced theorems:

    {"url", "commit", "file_path", "full_name", "start": [line, col], "end": [line, col],
     "traced_tactics": [{"tactic", "annotated_tactic", "state_before", "state_after"}, ...]}

It names where each theorem is, not what it says, so statements are read from the traced
repository's sources: `source_dir` (`--data-dir DIR`, a checkout of `url` at `commit`, with the
dependencies' files under `.lake/packages/` for theorems that live there), else LeanDojo's own
cache of the traced repository (`$CACHE_DIR` or `~/.cache/lean_dojo`, where `trace()` and the
prebuilt downloads put it). Positions are LeanDojo's: 1-based line, 1-based column, end exclusive.

A problem's header is the file's text before the theorem (imports, `namespace`s, `variable`s and
earlier declarations, as LeanDojo's `Dojo` elaborates it), its statement runs to the proof's `:=`.
Check such problems in a workspace built from the traced repository (`--workspace DIR`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from prover.datasets.declarations import Declaration, NoColonProof, NotADeclaration, parse_declaration
from prover.datasets.lean_files import unique_names
from prover.errors import DataError
from prover.config import workspace_lean_version
from prover.lean_syntax import blank_comments_and_strings
from prover.types import Problem, RepoRef

log = logging.getLogger(__name__)

NO_GOALS = "no goals"
"""LeanDojo's `state_after` of a tactic that closed the last goal."""
CACHE_ENV = "CACHE_DIR"
"""LeanDojo's cache directory variable (default `~/.cache/lean_dojo`)."""
PACKAGES_DIR = ".lake/packages"


class TracedTactic(BaseModel):
    """One entry of `traced_tactics`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tactic: str
    annotated_tactic: tuple[str, list[dict[str, Any]]]
    """The tactic with premises marked `<a>name</a>`, and each premise's definition site."""
    state_before: str
    state_after: str


class TracedTheorem(BaseModel):
    """One theorem of a LeanDojo Benchmark 4 split file."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str
    commit: str
    file_path: str
    full_name: str
    start: tuple[int, int]
    end: tuple[int, int]
    traced_tactics: list[TracedTactic]


# ---------------------------------------------------------------------------------------------
# Reading a split file
# ---------------------------------------------------------------------------------------------


def read_traced_theorems(path: Path) -> list[TracedTheorem]:
    """The theorems of one split file; any other format is a DataError saying what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"LeanDojo split file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read LeanDojo split file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a LeanDojo Benchmark 4 split file: {_json_problem(text, exc)}") from None
    if not isinstance(data, list):
        raise DataError(
            f"{path}: not a LeanDojo Benchmark 4 split file: expected a JSON array of traced theorems, "
            f"got a JSON {type(data).__name__}"
        )
    if not data:
        raise DataError(f"{path}: the LeanDojo split file holds no theorems")
    theorems = []
    for index, entry in enumerate(data):
        try:
            theorems.append(TracedTheorem.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("full_name") if isinstance(entry, dict) else None
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "entry"
            raise DataError(
                f"{path}: theorem #{index}" + (f" ({name})" if isinstance(name, str) else "")
                + f" is not in LeanDojo's format: {where}: {first['msg']}"
            ) from None
    return theorems


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    try:
        one_line = isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        one_line = False
    if one_line:
        return (
            "it is JSON Lines (one object per line), while LeanDojo splits are one JSON array; "
            "for problems in the uniform JSONL schema use jsonl:PATH"
        )
    return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


# ---------------------------------------------------------------------------------------------
# Where the sources are
# ---------------------------------------------------------------------------------------------


def lean_dojo_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lean_dojo").expanduser()


def cached_repo_dir(url: str, commit: str) -> Path:
    """Where LeanDojo caches a traced repository: `<cache>/<owner>-<repo>-<commit>/<repo>`."""
    parts = PurePosixPath(url.rstrip("/").removesuffix(".git")).parts
    owner, repo = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", parts[-1])
    return lean_dojo_cache_dir() / f"{owner}-{repo}-{commit}" / repo


def resolve_sources(theorems: Sequence[TracedTheorem], source_dir: Path | None, what: str) -> Path:
    """The root of the traced repository's sources (see the module docstring).

    Raises:
        DataError: the theorems come from several repositories or commits, the given folder is
            a git checkout of another commit, or no sources are found.
    """
    origins = sorted({(t.url, t.commit) for t in theorems})
    if len(origins) > 1:
        shown = ", ".join(f"{u}@{c[:12]}" for u, c in origins[:4])
        raise DataError(f"{what}: theorems come from several repositories/commits ({shown}); split the file per repository")
    url, commit = origins[0]
    if source_dir is not None:
        root = Path(source_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"{what}: source folder {root} (from --data-dir) does not exist")
        _check_checkout_commit(root, commit, what)
        return root
    cached = cached_repo_dir(url, commit)
    if cached.is_dir():
        return cached
    raise DataError(
        f"{what}: the statements are read from the sources of {url} at commit {commit}, which were "
        f"not found in LeanDojo's cache ({cached}); pass --data-dir DIR with a checkout of that "
        f"commit (dependencies' files under {PACKAGES_DIR}/), or trace the repository with lean-dojo"
    )


def _check_checkout_commit(root: Path, commit: str, what: str) -> None:
    """A git checkout at another commit would give other statements: refuse it."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return
    try:
        head = subprocess.run(
            [git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return
    if head and not (head.startswith(commit) or commit.startswith(head)):
        raise DataError(f"{what}: {root} is checked out at {head[:12]}, but the theorems were traced at {commit[:12]}")


# ---------------------------------------------------------------------------------------------
# Theorems -> problems
# ---------------------------------------------------------------------------------------------


class SourceFiles:
    """Reads each source file once, with its blanked twin and line offsets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, tuple[str, str, list[int]]] = {}

    def get(self, file_path: str, what: str) -> tuple[str, str, list[int]]:
        if file_path not in self._files:
            path = self.root / file_path
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise DataError(f"{what}: source file {path} not found (is {self.root} the traced repository?)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"{what}: cannot read source file {path}: {exc}") from exc
            starts = [0]
            starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
            self._files[file_path] = (text, blank_comments_and_strings(text), starts)
        return self._files[file_path]

    def declaration(self, theorem: TracedTheorem) -> Declaration:
        """The declaration of `theorem`, cut from the sources at its recorded position.

        Raises:
            NoColonProof: the declaration's proof is not a `:=` proof (equation compiler, `where`).
            DataError: the position does not hold the declaration of `full_name` (other sources).
        """
        text, clean, starts = self.get(theorem.file_path, theorem.full_name)
        where = f"{self.root / theorem.file_path}:{theorem.start[0]}"
        start = offset(starts, text, theorem.start, where)
        end = offset(starts, text, theorem.end, where)
        try:
            decl = parse_declaration(text, keyword_at=start, end=end, clean=clean)
        except NoColonProof:
            raise
        except NotADeclaration as exc:
            raise DataError(
                f"{where}: expected the declaration of {theorem.full_name}, found {text[start:start + 60]!r} "
                f"({exc}); are the sources at commit {theorem.commit[:12]}?"
            ) from None
        if not _names_match(theorem.full_name, decl.name):
            raise DataError(
                f"{where}: the declaration there is {decl.name!r}, not {theorem.full_name!r}; "
                f"are the sources at commit {theorem.commit[:12]}?"
            )
        return decl


def offset(starts: list[int], text: str, pos: tuple[int, int], where: str) -> int:
    """Character offset of a LeanDojo position (1-based line and column)."""
    line, column = pos
    if not 1 <= line <= len(starts):
        raise DataError(f"{where}: line {line} is outside the file ({len(starts)} lines)")
    at = starts[line - 1] + column - 1
    line_end = starts[line] - 1 if line < len(starts) else len(text)
    if column < 1 or at > line_end:
        raise DataError(f"{where}: column {column} is outside line {line}")
    return at


def theorem_problem(
    theorem: TracedTheorem, files: SourceFiles, *, benchmark: str, split: str, lean_version: str | None
) -> Problem:
    """The problem of one traced theorem, its statement read from the sources (raises as
    `SourceFiles.declaration`)."""
    decl = files.declaration(theorem)
    return Problem(
        name=theorem.full_name,
        split=split,
        header=decl.header,
        formal_statement=decl.statement,
        informal_statement=decl.docstring,
        source=f"{theorem.url}@{theorem.commit} {theorem.file_path}:{theorem.start[0]}",
        lean_version=lean_version,
        benchmark=benchmark,
        category=file_category(theorem.file_path),
        repo=RepoRef(url=theorem.url, commit=theorem.commit, file_path=str(theorem.file_path), full_name=theorem.full_name),
    )


def _names_match(full_name: str, declared: str) -> bool:
    """`full_name` is the declared name inside the enclosing namespaces (or `_root_.name`)."""
    declared = declared.removeprefix("_root_.")
    return full_name == declared or full_name.endswith("." + declared)


def file_category(file_path: str) -> str:
    """The folder of a file, at most two levels deep: `Mathlib/RingTheory/Trace.lean` ->
    `Mathlib/RingTheory` (dependencies: `.lake/packages/<name>`)."""
    parts = PurePosixPath(file_path).parts
    if file_path.startswith(PACKAGES_DIR + "/") and len(parts) > 3:
        return "/".join(parts[:3])
    return "/".join(parts[: min(2, len(parts) - 1)]) or "."


def theorems_to_problems(
    theorems: Iterable[TracedTheorem], root: Path, *, benchmark: str, split: str, what: str
) -> list[Problem]:
    """Problems of every theorem whose statement can be cut; the others are logged and skipped."""
    files = SourceFiles(root)
    version = workspace_lean_version(root)
    problems: list[Problem] = []
    skipped: list[str] = []
    for theorem in theorems:
        try:
            problems.append(theorem_problem(theorem, files, benchmark=benchmark, split=split, lean_version=version))
        except NoColonProof:
            skipped.append(theorem.full_name)
    if skipped:
        log.warning(
            "%s: skipped %d theorem(s) without a `:=` proof to cut at (equation compiler / `where`): %s",
            what, len(skipped), ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    if not problems:
        raise DataError(f"{what}: no theorem with a statement ending in `:=` could be read")
    return unique_names(problems, lambda p: f"{p.name}@{p.source.split(' ', 1)[-1].rsplit(':', 1)[0]}")


def load_leandojo(path: Path, *, source_dir: Path | None = None, benchmark: str = "") -> list[Problem]:
    """Problems of a LeanDojo Benchmark 4 split file (split = the file's stem: train/val/test)."""
    path = Path(path)
    theorems = read_traced_theorems(path)
    root = resolve_sources(theorems, source_dir, str(path))
    return theorems_to_problems(theorems, root, benchmark=benchmark, split=path.stem, what=str(path))


# ---------------------------------------------------------------------------------------------
# Tactic traces -> step rows (`prover collect`'s `steps` schema)
# ---------------------------------------------------------------------------------------------


def _state(text: str) -> str:
    """A goal state as step rows write it (trailing spaces dropped, goals split by a blank line)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def trace_step_rows(theorems: Iterable[TracedTheorem]) -> list[dict[str, Any]]:
    """One step row per traced tactic of a human-written proof.

    `logprob` is null (no model wrote these tactics), every step is `on_proof_path` (the proof
    is finished), `outcome` is `proved` for the tactic that closed the last goal and `ok`
    otherwise; `depth` counts tactics from the theorem's first state along the traced states
    (a state first met inside a nested block counts one more than the tactic before it)."""
    rows: list[dict[str, Any]] = []
    for theorem in theorems:
        depth_of: dict[str, int] = {}
        previous = -1
        for tactic in theorem.traced_tactics:
            before = _state(tactic.state_before)
            depth = depth_of.get(before, previous + 1)
            depth_of.setdefault(before, depth)
            done = tactic.state_after.strip() == NO_GOALS
            after = "" if done else _state(tactic.state_after)
            if not done:
                depth_of.setdefault(after, depth + 1)
            rows.append(
                {
                    "problem": theorem.full_name,
                    "attempt": 0,
                    "state": before,
                    "tactic": tactic.tactic,
                    "logprob": None,
                    "outcome": "proved" if done else "ok",
                    "next_state": after,
                    "on_proof_path": True,
                    "depth": depth,
                }
            )
            previous = depth
    return rows


def write_step_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write step rows as one Parquet file with `prover collect`'s `steps` schema (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prover.datasets.row_schemas import STEP_ROWS, arrow_schema

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(STEP_ROWS)), tmp)
    os.replace(tmp, path)
    return path
