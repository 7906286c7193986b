"""RL / expert-iteration data collection: run strategies, write trajectory shards (Parquet).

`collect(config, problems, out_dir)` runs the configured strategy over a problem set with
exploration settings and writes two kinds of rows:

- attempt rows (one per sampled proof, sketch or subgoal attempt that has a model completion):
  problem, kind, parent, prompt, completion, extracted proof, verdict status and rule, Lean error
  messages, token counts, log-probs, and the attempt's `extra` as JSON (a planner's step ids,
  which join a sketch to its subgoals and their outcomes); top-level attempts go to `proofs`
  shards, nested ones to a shard kind named after their attempt kind (`sketch`, `subgoal`, ...);
- step rows (one per tactic application of a best-first search tree, from
  `SearchTree.step_records()`): state, tactic, log-prob, outcome, next state, on-proof-path, depth.

Expert-iteration filters (BFS-Prover-V2): keep only proved paths, drop problems solved by every
sample (nothing left to learn), and keep only tactics whose perplexity lies in a band (both tails
dropped: too easy and noisy).

Output layout (resumable like an eval run):

    OUT/manifest.json            strategy, filters, shards, per-problem summary (atomic replace)
    OUT/shards/steps-00000.parquet, proofs-00000.parquet, sketch-00000.parquet, ...

Finished problems are buffered and written `problems_per_shard` at a time: first the shard (temp
file + rename), then the manifest that lists it. A crash loses at most the buffered problems;
`--resume` skips every problem the manifest lists and deletes shard files it does not list.

Settings live in a `collect:` section of the same YAML/TOML file as the `ProverConfig` sections;
`load_collect_config` splits it off, so `prover/config.py` does not depend on this package.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prover.config import ProverConfig, merge_config_layer, read_config_file, user_config_path
from prover.datasets.row_schemas import PROOF_ROWS, STEP_ROWS, arrow_schema
from prover.errors import ConfigError, RunError
from prover.eval.pipeline import PipelineStats, Progress, clock_text
from prover.eval.run import make_strategy, run_sync
from prover.llm.base import Sampler
from prover.registry import get_strategy_spec, section_fields
from prover.search.base import DoneAttempts, ServicesFactory, Strategy, StrategyContext
from prover.search.services import open_services
from prover.types import Attempt, Completion, GenRequest, GenResult, Problem

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SHARD_DIR = "shards"
MANIFEST_VERSION = 2
CACHED = "cached"
"""Step outcome of a tactic replayed from the proof cache (`prover.search.tree.EdgeOutcome`)."""


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


class FilterConfig(BaseModel):
    """Expert-iteration filters applied before rows are written."""

    model_config = ConfigDict(extra="forbid")

    proved_paths_only: bool = False
    """Step rows: keep only tactics on a proof path. Whole-proof rows: keep only proved samples."""
    drop_all_solved: bool = False
    """Drop every row of a problem that every attempt proved (too easy to teach anything)."""
    tactic_ppl_band: tuple[float, float] | None = None
    """Keep step rows whose tactic perplexity exp(-mean token logprob) lies in [low, high]
    (BFS-Prover-V2 drops both tails). Pick the band from `prover data stats` of an earlier round."""

    @model_validator(mode="after")
    def _band_ordered(self) -> FilterConfig:
        if self.tactic_ppl_band is not None:
            low, high = self.tactic_ppl_band
            if not (1.0 <= low <= high):
                raise ValueError(f"tactic_ppl_band must satisfy 1 <= low <= high, got {self.tactic_ppl_band}")
        return self


class CollectConfig(BaseModel):
    """The `collect:` section of a config file."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None
    """A registered strategy to run; None uses `eval.strategy`."""
    problems: Path | None = None
    """A JSONL file of problems (uniform schema); None selects `eval.benchmark`/`split`/`limit`."""
    out: Path | None = None
    resume: bool = False
    temperature: float | None = Field(default=None, ge=0.0)
    """Exploration temperature for both whole-proof sampling and tactic sampling."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    logprobs: bool = True
    """Ask the sampler for per-token log-probs (whole-proof rows store them)."""
    problems_per_shard: int = Field(default=64, ge=1)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    ray: bool = False
    """Run on the Ray cluster of the `ray:` section (same as `--ray`)."""

    @model_validator(mode="after")
    def _known_strategy(self) -> CollectConfig:
        if self.strategy is not None:
            get_strategy_spec(self.strategy)  # ConfigError naming the known strategies
        return self

    @model_validator(mode="after")
    def _band_needs_logprobs(self) -> CollectConfig:
        if self.filters.tactic_ppl_band is not None and not self.logprobs:
            raise ValueError("filters.tactic_ppl_band needs logprobs: true (perplexity comes from token log-probs)")
        return self

    def apply(self, config: ProverConfig) -> ProverConfig:
        """The run's `ProverConfig`: strategy and exploration settings applied.

        The temperature goes to the sampler and to every strategy section that samples with its
        own (`temperature` field, e.g. best-first tactic sampling).
        """
        overrides: dict[str, Any] = {
            "eval.strategy": self.strategy,
            "sampler.temperature": self.temperature,
            "sampler.top_p": self.top_p,
            "sampler.seed": self.seed,
        }
        overrides.update(dict.fromkeys(section_fields("temperature"), self.temperature))
        return config.with_overrides(overrides)


def load_collect_config(path: Path | str, *, user_defaults: bool = True) -> tuple[ProverConfig, CollectConfig]:
    """Read one YAML/TOML file: its `collect:` section and every other (ProverConfig) section.

    The other sections are layered over the user config exactly as `ProverConfig.load` does
    (a file naming another `lean.workspace` does not inherit the user's REPL binary / version).
    """
    data = read_config_file(Path(path))
    section = data.pop("collect", None)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: the `collect` section must be a mapping")
    base = read_config_file(user_config_path(), missing_ok=True) if user_defaults else {}
    config = ProverConfig.from_dict(merge_config_layer(base, data), source=str(path))
    try:
        return config, CollectConfig.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(f"invalid `collect` settings in {path}:\n{exc}") from exc


# ---------------------------------------------------------------------------------------------
# Rows of one problem
# ---------------------------------------------------------------------------------------------


class ProblemRows(BaseModel):
    """Everything one problem contributed: counts and unfiltered rows by row kind."""

    model_config = ConfigDict(extra="forbid")

    problem: str
    attempts: int = 0
    """Top-level attempts."""
    proved: int = 0
    replayed: int = 0
    """Proved best-first attempts whose whole proof came from the proof cache (another attempt's
    search found it), so they are not independent samples that solved the problem."""
    rows: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    """Row kind (`proofs`, `steps`, or a nested attempt kind) -> rows."""

    @property
    def proofs(self) -> list[dict[str, Any]]:
        return self.rows.get(PROOF_ROWS, [])

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.rows.get(STEP_ROWS, [])


class ProblemSummary(BaseModel):
    """A problem's line in the manifest (kept even when filters dropped all its rows)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int
    proved: int
    replayed: int = 0
    rows: dict[str, int] = Field(default_factory=dict)
    """Rows written per kind (after filters)."""
    raw_rows: dict[str, int] = Field(default_factory=dict)
    dropped: str = ""
    """Why every row was dropped (e.g. `all_solved`), if so."""


def tactic_perplexity(mean_logprob: float) -> float:
    """exp(-mean token log-prob): a step row's `logprob` is already the per-token mean."""
    return math.exp(-mean_logprob)


def has_own_logprob(step: dict[str, Any]) -> bool:
    """Whether a step row's tactic was sampled here: cached replays carry a placeholder 0.0."""
    return step["outcome"] != CACHED


def apply_filters(rows: ProblemRows, filters: FilterConfig) -> tuple[ProblemRows, str]:
    """The rows to write for one problem under `filters`, and the reason if all were dropped."""
    if filters.drop_all_solved and rows.attempts > 0 and rows.proved - rows.replayed == rows.attempts:
        return rows.model_copy(update={"rows": {}}), "all_solved"
    kept: dict[str, list[dict[str, Any]]] = {}
    for kind, items in rows.rows.items():
        if kind == STEP_ROWS:
            if filters.proved_paths_only:
                items = [r for r in items if r["on_proof_path"]]
            if filters.tactic_ppl_band is not None:
                low, high = filters.tactic_ppl_band
                items = [r for r in items if has_own_logprob(r) and low <= tactic_perplexity(r["logprob"]) <= high]
        elif filters.proved_paths_only:
            items = [r for r in items if r["status"] == "proved"]
        kept[kind] = items
    return rows.model_copy(update={"rows": kept}), ""


# ---------------------------------------------------------------------------------------------
# Capturing rows while a strategy runs
# ---------------------------------------------------------------------------------------------


def prompt_text(request: GenRequest) -> str:
    """The prompt as one string: the raw prompt, or the chat messages as JSON."""
    if request.prompt is not None:
        return request.prompt
    return json.dumps([m.model_dump() for m in request.messages or ()], ensure_ascii=False)


class RecordingSampler(Sampler):
    """Passes requests through and remembers each completion with its prompt.

    Completions are indexed by (request seed, position in the request): whole-proof attempts
    carry their request's seed in `Attempt.extra["seed"]`, and sample `i` of round 0 is position
    `i % chunk` of its chunk's request (later rounds ask for n=1), so every attempt finds the
    exact prompt and log-probs it came from. A (seed, text) index is the fallback.
    """

    def __init__(self, inner: Sampler, *, logprobs: bool = True) -> None:
        super().__init__()
        self.inner = inner
        self.backend = inner.backend
        self._logprobs = logprobs
        self.by_position: dict[tuple[int | None, int], tuple[str, Any]] = {}
        self.by_text: dict[tuple[int | None, str], tuple[str, Any]] = {}

    async def generate(self, request: GenRequest) -> GenResult:
        if self._logprobs and not request.logprobs:
            request = request.model_copy(update={"logprobs": True})
        result = await self.inner.generate(request)
        prompt = prompt_text(request)
        for position, completion in enumerate(result.completions):
            self.by_position.setdefault((request.seed, position), (prompt, completion))
            self.by_text.setdefault((request.seed, completion.text), (prompt, completion))
        self.stats.add(request, result)
        return result

    def find(self, attempt: Attempt, chunk: int) -> tuple[str, Any]:
        """(prompt, Completion) an attempt was sampled from; ("", None) if unknown."""
        seed = attempt.extra.get("seed")
        position = attempt.sample_index % chunk if attempt.round == 0 else 0
        found = self.by_position.get((seed, position))  # type: ignore[arg-type]
        if found is not None and found[1].text == attempt.completion:
            return found
        return self.by_text.get((seed, attempt.completion or ""), ("", None))  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        return self.inner.describe()


def attempt_row(attempt: Attempt, prompt: str, completion: Completion | None) -> dict[str, Any]:
    """An attempt with a model completion as a training row (prompt, completion, verdict)."""
    errors = [m.data for m in attempt.verdict.messages if m.severity == "error"]
    return {
        "problem": attempt.problem,
        "benchmark": attempt.benchmark,
        "kind": attempt.kind,
        "parent": attempt.parent,
        "attempt": attempt.sample_index,
        "round": attempt.round,
        "prompt": prompt,
        "completion": attempt.completion,
        "proof": attempt.proof,
        "status": attempt.verdict.status.value,
        "rule": attempt.verdict.rule,
        "errors": errors,
        "duplicate_of": attempt.duplicate_of,
        "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens,
        "cumulative_logprob": completion.cumulative_logprob if completion is not None else None,
        "token_logprobs": list(completion.token_logprobs) if completion is not None and completion.token_logprobs else None,
        "extra": json.dumps(attempt.extra, ensure_ascii=False, sort_keys=True, default=str),
    }


def step_rows(trees: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of `SearchTree.step_records()` for every tree, in attempt order."""
    rows: list[dict[str, Any]] = []
    for tree in sorted(trees, key=lambda t: t.attempt):
        rows.extend(record.model_dump() for record in tree.step_records())
    return rows


def _replayed_proof(tree: Any) -> bool:
    """Whether every step of the tree's proof was replayed from the proof cache."""
    path = tree.proof_edges()
    return bool(path) and all(tree.edge_outcome(src, dst) == CACHED for src, dst, _ in path)


def _read_trees(attempts: Sequence[Attempt]) -> list[Any]:
    """Load the tree files the attempts point to."""
    from prover.search.tree import SearchTree

    return [SearchTree.read_json(Path(str(a.extra["tree_file"]))) for a in attempts if a.extra.get("tree_file")]


async def collect_problem(strategy: Strategy, ctx: StrategyContext, problem: Problem, logprobs: bool = True) -> ProblemRows:
    """Run `strategy` on one problem and return its unfiltered rows (in-process, or in a Ray agent
    via `ProverAgentActor.call_with_context`).

    Every sampler of the context is wrapped in a `RecordingSampler`, so each attempt with a
    completion finds the prompt and log-probs it came from; search trees are written to a private
    artifacts directory (per problem: tree file names are truncated problem names, which two
    problems running at once may share) and read back as step rows.
    """
    recorders = {role: RecordingSampler(sampler, logprobs=logprobs) for role, sampler in ctx.samplers.items()}
    attempts: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        attempts.append(attempt)

    with tempfile.TemporaryDirectory(prefix="prover-trees-") as tree_dir:
        # jobs run here, not on peer agents: only this context's recorders see their prompts
        private = ctx.with_changes(samplers=recorders, artifacts=Path(tree_dir), jobs=None)
        await strategy.prove(problem, private, record, DoneAttempts())
        attempts.sort(key=lambda a: (a.parent is not None, a.kind, a.parent or 0, a.round, a.sample_index))
        trees = await asyncio.to_thread(_read_trees, attempts)
    chunk = strategy.checks_per_batch(ctx.config)
    rows: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts:
        if attempt.completion is None:
            continue  # no model text of its own (a search, a stitched proof): its steps are rows
        kind = PROOF_ROWS if attempt.parent is None else attempt.kind
        rows.setdefault(kind, []).append(attempt_row(attempt, *_find_completion(recorders.values(), attempt, chunk)))
    if trees:
        rows[STEP_ROWS] = step_rows(trees)
    top = [a for a in attempts if a.parent is None]
    return ProblemRows(
        problem=problem.name,
        attempts=len(top),
        proved=sum(a.verdict.proved for a in top),
        replayed=sum(_replayed_proof(tree) for tree in trees),
        rows=rows,
    )


def _find_completion(recorders: Iterable[RecordingSampler], attempt: Attempt, chunk: int) -> tuple[str, Completion | None]:
    """The (prompt, completion) an attempt was sampled from, from whichever role's sampler saw it."""
    for recorder in recorders:
        found = recorder.find(attempt, chunk)
        if found[1] is not None:
            return found
    return "", None


# ---------------------------------------------------------------------------------------------
# Shards + manifest
# ---------------------------------------------------------------------------------------------


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str
    kind: str
    rows: int
    problems: list[str]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = MANIFEST_VERSION
    strategy: str
    filters: FilterConfig
    shards: list[ShardInfo] = Field(default_factory=list)
    problems: dict[str, ProblemSummary] = Field(default_factory=dict)


def read_manifest(out_dir: Path) -> Manifest:
    """The manifest of a collect directory.

    Raises:
        RunError: there is none, or it is not a valid manifest.
    """
    path = out_dir / MANIFEST
    if not path.exists():
        raise RunError(f"{out_dir} is not a collect directory (no {MANIFEST})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] != MANIFEST_VERSION:
            raise RunError(
                f"{path} was written by another version of prover collect (manifest version "
                f"{data['version']}, this one reads {MANIFEST_VERSION}); collect into a new --out"
            )
        return Manifest.model_validate(data)
    except (ValidationError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is not a valid collect manifest: {exc}") from exc


_SHARD_NAME = re.compile(r"\.?[a-z][a-z0-9_]*-\d{5}\.parquet(\.tmp)?")


def _is_shard_file(name: str) -> bool:
    """Shards and their temp files, as `TrajectoryWriter.flush` names them."""
    return _SHARD_NAME.fullmatch(name) is not None


class TrajectoryWriter:
    """Buffers finished problems and writes them as Parquet shards listed in an atomic manifest."""

    def __init__(self, out_dir: Path, *, strategy: str, filters: FilterConfig, problems_per_shard: int, resume: bool) -> None:
        self.out_dir = Path(out_dir)
        self.shard_dir = self.out_dir / SHARD_DIR
        self.filters = filters
        self.problems_per_shard = problems_per_shard
        self._buffer: list[tuple[ProblemRows, ProblemSummary]] = []
        self.manifest = self._open(strategy, resume)

    @property
    def finished(self) -> set[str]:
        return set(self.manifest.problems)

    def _open(self, strategy: str, resume: bool) -> Manifest:
        path = self.out_dir / MANIFEST
        if path.exists():
            if not resume:
                raise RunError(f"{self.out_dir} already holds collected data; pass --resume to continue it or choose another --out")
            manifest = read_manifest(self.out_dir)
            if manifest.strategy != strategy or manifest.filters != self.filters:
                raise RunError(
                    f"cannot resume {self.out_dir}: it was collected with strategy={manifest.strategy} "
                    f"filters={manifest.filters.model_dump()}, now strategy={strategy} filters={self.filters.model_dump()}"
                )
        else:
            manifest = Manifest(strategy=strategy, filters=self.filters)
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        listed = {s.file for s in manifest.shards}
        for stray in self.shard_dir.iterdir():
            if _is_shard_file(stray.name) and stray.name not in listed:  # written before a crash, never listed
                stray.unlink()
        if not path.exists():
            self._write_manifest(manifest)
        return manifest

    def add(self, rows: ProblemRows) -> None:
        """Filter and buffer one finished problem; writes shards when the buffer is full."""
        kept, dropped = apply_filters(rows, self.filters)
        summary = ProblemSummary(
            attempts=rows.attempts,
            proved=rows.proved,
            replayed=rows.replayed,
            rows={k: len(v) for k, v in sorted(kept.rows.items())},
            raw_rows={k: len(v) for k, v in sorted(rows.rows.items())},
            dropped=dropped,
        )
        self._buffer.append((kept, summary))
        if len(self._buffer) >= self.problems_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        manifest = self.manifest.model_copy(deep=True)
        kinds = sorted({kind for p, _ in self._buffer for kind in p.rows})
        for kind in kinds:
            items = [(p.problem, r) for p, _ in self._buffer for r in p.rows.get(kind, ())]
            if not items:
                continue
            name = f"{kind}-{sum(s.kind == kind for s in manifest.shards):05d}.parquet"
            table = pa.Table.from_pylist([r for _, r in items], schema=arrow_schema(kind))
            tmp = self.shard_dir / f".{name}.tmp"
            pq.write_table(table, tmp)
            _fsync(tmp)
            os.replace(tmp, self.shard_dir / name)
            problems = list(dict.fromkeys(p for p, _ in items))
            manifest.shards.append(ShardInfo(file=name, kind=kind, rows=len(items), problems=problems))
        for rows, summary in self._buffer:
            manifest.problems[rows.problem] = summary
        self._write_manifest(manifest)
        self.manifest = manifest
        self._buffer.clear()

    def _write_manifest(self, manifest: Manifest) -> None:
        path = self.out_dir / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _fsync(tmp)
        os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


# ---------------------------------------------------------------------------------------------
# Running a collection
# ---------------------------------------------------------------------------------------------


class CollectSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out_dir: Path
    problems: int
    collected: int
    """Problems run by this invocation (the rest were already in the manifest)."""
    rows: dict[str, int]
    proved_problems: int


def collect(
    config: ProverConfig,
    problems: Sequence[Problem],
    out_dir: Path | str,
    settings: CollectConfig | None = None,
    *,
    resume: bool | None = None,
    use_ray: bool | None = None,
    services: Any = None,
    progress: bool = True,
) -> CollectSummary:
    """Collect trajectories for `problems` into `out_dir` (blocking; see `acollect`).

    Args:
        config: settings of every component (the sampler, Lean, strategy budgets, `ray`).
        problems: problems with unique names.
        out_dir: the collect directory (manifest + shards).
        settings: the `collect:` section (exploration, filters, sharding); defaults if None.
        resume: continue `out_dir` (default `settings.resume`).
        use_ray: run on Ray (default `settings.ray`).
        services: local runs only: an async factory of `prover.search.base.Services`
            instead of `prover.search.services.open_services` (tests, custom engines).
        progress: show a throttled progress line on stderr.
    """
    return run_sync(
        acollect(
            config, problems, out_dir, settings, resume=resume, use_ray=use_ray, services=services,
            progress=progress,
        )
    )


async def acollect(
    config: ProverConfig,
    problems: Sequence[Problem],
    out_dir: Path | str,
    settings: CollectConfig | None = None,
    *,
    resume: bool | None = None,
    use_ray: bool | None = None,
    services: Any = None,
    progress: bool = True,
) -> CollectSummary:
    settings = settings or CollectConfig()
    resume = settings.resume if resume is None else resume
    use_ray = settings.ray if use_ray is None else use_ray
    config = settings.apply(config)
    names = [p.name for p in problems]
    if len(set(names)) != len(names):
        dup = next(n for n, c in Counter(names).items() if c > 1)
        raise ConfigError(f"problem names must be unique; {dup!r} appears more than once")
    writer = TrajectoryWriter(
        Path(out_dir),
        strategy=config.eval.strategy,
        filters=settings.filters,
        problems_per_shard=settings.problems_per_shard,
        resume=resume,
    )
    todo = [p for p in problems if p.name not in writer.finished]
    stats = PipelineStats(problems_total=len(problems), problems_done=len(problems) - len(todo))
    shown = CollectProgress(stats, enabled=progress)

    def sink(rows: ProblemRows) -> None:
        writer.add(rows)
        stats.problems_done += 1
        stats.solved += rows.proved > 0
        stats.samples += rows.attempts
        shown.update()

    try:
        if use_ray:
            from prover.cluster.driver import collect_on_ray

            await collect_on_ray(config, todo, sink, logprobs=settings.logprobs)
        else:
            await _collect_local(config, todo, sink, logprobs=settings.logprobs, services=services)
    finally:
        writer.flush()
        shown.close()
    manifest = writer.manifest
    rows = Counter[str]()
    for shard in manifest.shards:
        rows[shard.kind] += shard.rows
    return CollectSummary(
        out_dir=Path(out_dir),
        problems=len(manifest.problems),
        collected=len(todo),
        rows=_row_counts(rows),
        proved_problems=sum(s.proved > 0 for s in manifest.problems.values()),
    )


class CollectProgress(Progress):
    """The eval's throttled progress line, counting collected problems and their attempts."""

    def line(self) -> str:
        s = self.stats
        return (
            f"[prover collect] problems {s.problems_done}/{s.problems_total}  proved {s.solved}  "
            f"attempts {s.samples}  {clock_text(s.elapsed)}"
        )


async def _collect_local(
    config: ProverConfig,
    problems: Sequence[Problem],
    sink: Callable[[ProblemRows], None],
    *,
    logprobs: bool,
    services: ServicesFactory | None = None,
) -> None:
    """In-process: the same services as a local eval, `eval.max_problems_in_flight` problems at a time."""
    strategy = make_strategy(config)
    strategy.validate(config)
    limit = asyncio.Semaphore(config.eval.max_problems_in_flight)
    opened = await (services or open_services)(config)
    try:
        ctx = StrategyContext.from_services(config, opened)

        async def one(problem: Problem) -> None:
            async with limit:
                sink(await collect_problem(strategy, ctx, problem, logprobs))

        try:
            async with asyncio.TaskGroup() as group:
                for problem in problems:
                    group.create_task(one(problem))
        except BaseExceptionGroup as group_error:
            from prover.cluster.driver import first_error

            raise first_error(group_error) from None
    finally:
        await opened.aclose()


# ---------------------------------------------------------------------------------------------
# `prover data stats`
# ---------------------------------------------------------------------------------------------


class DataStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problems: int
    proved_problems: int
    rows: dict[str, int]
    outcomes: dict[str, int]
    """Step rows per outcome, whole-proof rows per `status:rule`."""
    logprob_quantiles: dict[str, float]
    perplexity_quantiles: dict[str, float]
    on_proof_path: int
    dropped: dict[str, int]

    @property
    def proved_fraction(self) -> float:
        return self.proved_problems / self.problems if self.problems else 0.0


QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def data_stats(out_dir: Path | str) -> DataStats:
    """Summarise a collect directory from its manifest and shards."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    rows = Counter[str]()
    outcomes = Counter[str]()
    logprobs: list[float] = []
    on_path = 0
    for shard in manifest.shards:
        table = _read_shard(out_dir / SHARD_DIR / shard.file)
        rows[shard.kind] += table.num_rows
        if shard.kind == STEP_ROWS:
            for step in table.select(["outcome", "logprob"]).to_pylist():
                outcomes[step["outcome"]] += 1
                if has_own_logprob(step):
                    logprobs.append(step["logprob"])
            on_path += sum(table.column("on_proof_path").to_pylist())
        else:
            statuses = table.column("status").to_pylist()
            rules = table.column("rule").to_pylist()
            outcomes.update(f"{s}:{r}" for s, r in zip(statuses, rules, strict=True))
    return DataStats(
        problems=len(manifest.problems),
        proved_problems=sum(s.proved > 0 for s in manifest.problems.values()),
        rows=_row_counts(rows),
        outcomes=dict(sorted(outcomes.items())),
        logprob_quantiles=_quantiles(logprobs),
        perplexity_quantiles=_quantiles([tactic_perplexity(x) for x in logprobs]),
        on_proof_path=on_path,
        dropped=dict(Counter(s.dropped for s in manifest.problems.values() if s.dropped)),
    )


def _row_counts(rows: Counter[str]) -> dict[str, int]:
    """Rows per kind; `proofs` and `steps` always listed."""
    return {PROOF_ROWS: 0, STEP_ROWS: 0, **dict(sorted(rows.items()))}


def _read_shard(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RunError(f"cannot read shard {path} listed in the manifest: {exc}") from exc


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """Nearest-rank-with-interpolation quantiles (numpy's default 'linear')."""
    if not values:
        return {}
    ordered = sorted(values)
    out: dict[str, float] = {}
    for q in QUANTILES:
        pos = q * (len(ordered) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        out[f"p{round(q * 100)}"] = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return out


def format_stats(stats: DataStats, out_dir: Path | str) -> str:
    lines = [
        f"collect dir: {out_dir}",
        f"problems: {stats.problems}  proved: {stats.proved_problems} ({stats.proved_fraction:.1%})",
        "rows: " + "  ".join(f"{k}={v}" for k, v in stats.rows.items()) + f"  on_proof_path={stats.on_proof_path}",
    ]
    if stats.dropped:
        lines.append("problems dropped by filters: " + "  ".join(f"{k}={v}" for k, v in stats.dropped.items()))
    if stats.outcomes:
        lines.append("outcomes:")
        lines.extend(f"  {k}: {v}" for k, v in stats.outcomes.items())
    if stats.logprob_quantiles:
        lines.append("tactic logprob quantiles: " + "  ".join(f"{k}={v:.3f}" for k, v in stats.logprob_quantiles.items()))
        lines.append(
            "tactic perplexity quantiles: " + "  ".join(f"{k}={v:.3f}" for k, v in stats.perplexity_quantiles.items())
        )
    return "\n".join(lines)
