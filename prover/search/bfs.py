"""Step-level best-first search (BFS-Prover / ReProver style) as a `Strategy`.

Three layers, one job each:

- `BestFirstSearch` -- the search itself, written without I/O like httpx's `auth_flow`: `run()` is
  a generator that *yields* the requests of `prover.search.requests` and receives their
  responses. The same core runs under a test driver, the asyncio driver, or inside a Ray actor.
- `run_search` -- drives one search with a `RequestServer` (a `LeanSession`, a `Sampler` and an
  optional `ProofCache`).
- `BestFirstStrategy` -- `eval.passes` independent attempts per problem (seeds derived from the
  configured seed, the problem and the attempt, as in whole-proof sampling), stop on the
  first checked proof, the found tactic path assembled into a whole proof and re-checked by the
  checker (command mode, full soundness pipeline) before it counts; one `Attempt` per search, its
  tree written as JSON.

Search rules (provers.md section 2): pop the open node with the best priority
`cumulative logprob / depth**alpha` (per-tactic score = mean token log-prob, as BFS-Prover-V2);
consult the proof cache (replay a cached proof through Lean and trust it only if every step makes
progress and the last completes the proof, or skip a known dead end); sample
`width` tactics in one request; drop unparsable, banned and duplicate tactics; apply the rest in
score order, stopping when one completes the proof; merge identical states; propagate statuses.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prover.config import ProverConfig
from prover.lean_env.session import (
    LEAN_VERDICTS,
    GoalState,
    LeanSession,
    StartOutcome,
    StateOrigin,
    StepBatch,
    StepKind,
    StepOutcome,
    normalise_goals,
)
from prover.llm.base import Sampler
from prover.registry import StrategySpec
from prover.search.base import PROVER_ROLE, DoneAttempts, RecordAttempt, Strategy, StrategyContext
from prover.search.proof_cache import CacheEntry, CacheKey, ProofCache
from prover.search.requests import (
    ApplyTactics,
    LookupProof,
    PublishDead,
    PublishProof,
    ReplayTactics,
    RequestServer,
    RetractProof,
    SampleTactics,
    SearchRequest,
    StartLean,
    drive,
)
from prover.search.whole_proof import derive_seed
from prover.search.tree import EdgeOutcome, NodeStatus, SearchTree
from prover.types import Attempt, CheckStatus, GenResult, Problem, Verdict

log = logging.getLogger(__name__)

_CHECKER_REFUSALS = frozenset({CheckStatus.FAILED, CheckStatus.REJECTED})
"""Checker verdicts that are Lean's or a soundness rule's word (not a timeout or a crash)."""

_SEED_RANGE = 2**31
"""Request seeds stay below this: some servers reject seeds of 32 bits or more."""

ALWAYS_BANNED: tuple[str, ...] = ("sorry", "admit", "native_decide", "apply?", "exact?")
"""Never applied in search: they fake progress or depend on the checker rejecting them later."""

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


class BfsConfig(BaseModel):
    """Step-level best-first search (the `bfs:` config section)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    width: int = Field(default=8, ge=1)
    """Tactics sampled per expansion (one request with n=width)."""
    temperature: float = Field(default=1.0, ge=0.0)
    max_tokens: int = Field(default=256, ge=1)
    depth_alpha: float = Field(default=0.5, ge=0.0)
    """Priority = cumulative logprob / depth**alpha (BFS-Prover's length normalisation)."""
    max_expansions: int = Field(default=600, ge=1)
    time_budget: float = Field(default=600.0, gt=0)
    lean_time_budget: float | None = None
    max_depth: int = Field(default=64, ge=1)
    stop_on_first: bool = True
    """Cancel a problem's remaining attempts once one proves it. Attempts of one problem share
    the proof cache, so they are not independent samples: report BFS results as "solved within
    K attempts" (as BFS-Prover does), not as an unbiased pass@k."""
    banned_tactics: tuple[str, ...] = ("apply?", "exact?", "rw?", "hint", "aesop?", "simp?")


_EDGE_OUTCOMES: dict[StepKind, EdgeOutcome] = {kind: EdgeOutcome(kind.value) for kind in StepKind}
"""The tree's edge outcome of each step kind (same values)."""

_LOGPROB = operator.itemgetter(1)

_PARSE_MEMO = 100_000
"""Completion texts whose parse a search remembers."""

MAX_LOST_EXPANSIONS_PER_NODE = 2
"""Times a node is expanded again after every tactic of an expansion ended as INFRASTRUCTURE."""

StopReason = Literal[
    "proved", "exhausted", "max_expansions", "time_budget", "lean_time_budget", "stopped", "start_failed"
]


@dataclass
class SearchResult:
    """What one search did; `tactics` is the proof script when `proved`."""

    tree: SearchTree
    stop_reason: StopReason
    tactics: list[str] | None = None
    start_error: str = ""
    start_infrastructure: bool = False
    expansions: int = 0
    lean_calls: int = 0
    lean_seconds: float = 0.0
    wall_seconds: float = 0.0
    gen_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    sampled: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"unparsed": 0, "banned": 0, "duplicate": 0})
    cache_proof_hits: int = 0
    cache_dead_hits: int = 0
    cache_stale: int = 0
    lost_expansions: int = 0
    """Expansions whose every tactic ended as INFRASTRUCTURE (the worker lost the state)."""
    rematerialisations: int = 0
    """States rebuilt by replaying their path after a worker restart."""
    root_state: GoalState | None = None

    @property
    def proved(self) -> bool:
        return self.stop_reason == "proved"


# ---------------------------------------------------------------------------------------------
# Tactic formats and filters
# ---------------------------------------------------------------------------------------------


def default_tactic_format() -> Any:
    """The llm layer's `bfs-prover` prompt format (`tactic_request`, `tactic_prompt`, `extract_tactic`)."""
    from prover.llm.formats import get_format

    return get_format("bfs-prover")


def checker_ban_check(config: Any) -> Callable[[str], bool]:
    """True for a tactic the checker's preflight would reject (its ban list for `config.checker`)."""
    from prover.lean_env.preflight import banned_items, preflight

    names = banned_items(config.checker)
    return lambda tactic: not preflight(tactic, banned=names).ok


class TacticFilter:
    """Rejects tactics that mention a banned token (word-boundary match, `?` included) or that the
    optional `extra` check (the checker's preflight) rejects. Verdicts are memoised per string."""

    def __init__(self, banned: Iterable[str], extra: Callable[[str], bool] | None = None) -> None:
        tokens = sorted({b for b in banned if b}, key=len, reverse=True)
        self.banned = tuple(tokens)
        alternatives = "|".join(re.escape(t) for t in tokens)
        self._regex = re.compile(rf"(?<![\w.'?])(?:{alternatives})(?![\w'?!])") if tokens else None
        self._extra = extra
        self._memo: dict[str, bool] = {}

    def is_banned(self, tactic: str) -> bool:
        verdict = self._memo.get(tactic)
        if verdict is None:
            verdict = (self._regex is not None and self._regex.search(tactic) is not None) or (
                self._extra is not None and self._extra(tactic)
            )
            if len(self._memo) < 100_000:
                self._memo[tactic] = verdict
        return verdict


def assemble_proof(tactics: Sequence[str]) -> str:
    """A tactic block body for `statement := by` + body: each tactic on its own line, indented."""
    lines = [f"  {line}" if line.strip() else "" for tactic in tactics for line in tactic.splitlines()]
    return "\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The I/O-free core
# ---------------------------------------------------------------------------------------------


class BestFirstSearch:
    """One best-first search attempt as a request/response generator (`run()`).

    Args:
        problem: the theorem.
        origin: where the root state comes from (default: the theorem stated with `sorry`; a
            planner passes a sketch's `sorry`).
        config: the `bfs` config section.
        fmt: prompt format with `tactic_request`, `tactic_prompt` and `extract_tactic`.
        attempt: attempt index (recorded in the tree).
        seed: base sampler seed; request k of this search uses `(seed + k) mod 2**31` (servers
            reject larger seeds).
        banned: tactics never applied, besides `ALWAYS_BANNED` and `config.banned_tactics`.
        ban_check: extra rejection test (the strategy passes the checker's preflight).
        use_cache: consult and publish to the proof cache.
        use_dead_ends: skip states the cache knows as dead ends.
        score: per-tactic score, "mean" token log-prob (BFS-Prover-V2) or the "sum".
        tactic_timeout: wall seconds one tactic may take (the strategy passes `lean.timeout`);
            the remaining wall and Lean-time budgets cap it further.
        clock: monotonic seconds (injectable for tests).
        should_stop: polled before each expansion (another attempt proved the problem).
    """

    def __init__(
        self,
        problem: Problem,
        *,
        origin: StateOrigin | None = None,
        config: BfsConfig | None = None,
        fmt: Any = None,
        attempt: int = 0,
        seed: int | None = None,
        banned: Iterable[str] = (),
        ban_check: Callable[[str], bool] | None = None,
        use_cache: bool = True,
        use_dead_ends: bool = True,
        score: Literal["mean", "sum"] = "mean",
        tactic_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.problem = problem
        self.origin = origin or StateOrigin.theorem(problem)
        self.config = config or BfsConfig()
        self.fmt = fmt or default_tactic_format()
        self.seed = seed
        self.filter = TacticFilter((*ALWAYS_BANNED, *self.config.banned_tactics, *banned), ban_check)
        self.use_cache = use_cache
        self.use_dead_ends = use_dead_ends
        self.score = score
        self.tactic_timeout = tactic_timeout
        self.clock = clock
        self.should_stop = should_stop
        self.tree = SearchTree(problem.name, attempt)
        self.result = SearchResult(self.tree, "exhausted")
        self._states: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        """(tactic path, goals) of every state node: what `_state` rebuilds its `GoalState` from.
        Plain tuples of strings, which Python's cycle collector stops tracking, where a search
        would otherwise hold one tracked object per state."""
        self._heap: list[tuple[float, int, str]] = []
        self._counter = 0
        self._t0 = 0.0
        self._alpha = self.config.depth_alpha
        self._parsed: dict[str, tuple[str, str]] = {}
        """Completion text -> `_parse` verdict (samplers repeat the same tactics across states)."""
        cfg = self.config
        self._request_template = self.fmt.tactic_request(
            "", n=cfg.width, temperature=cfg.temperature, max_tokens=cfg.max_tokens, tag=problem.name
        )
        """Every step request's fields, validated once; each step fills in its prompt and seed."""

    # -- helpers ----------------------------------------------------------------------------

    def _keep(self, node: str, state: GoalState) -> None:
        self._states[node] = (state.path, state.goals)

    def _state(self, node: str) -> GoalState:
        """The goal state of a tree node: every state of a search is one of its root's tree."""
        assert self.result.root_state is not None
        return self.result.root_state.at(*self._states[node])

    def _key(self, node: str) -> CacheKey:
        return CacheKey(header=self.problem.header, goals=self.tree.goals(node))

    def _push(self, node: str, score: tuple[float, int] | None = None) -> None:
        logprob, depth = score or self.tree.score(node)
        priority = logprob / max(depth, 1) ** self._alpha
        self.tree.set_priority(node, priority)
        self._counter += 1
        heappush(self._heap, (-priority, self._counter, node))

    def _pop(self) -> str | None:
        expandable = self.tree.expandable
        while self._heap:
            _, _, node = heappop(self._heap)
            if expandable(node):
                return node
        return None

    def _elapsed(self) -> float:
        return self.clock() - self._t0

    def _remaining(self) -> float:
        return max(self.config.time_budget - self._elapsed(), 0.0)

    def _lean_timeout(self) -> float:
        """Per-tactic timeout: the tactic timeout, capped by what is left of both budgets."""
        remaining = self._remaining()
        if self.tactic_timeout is not None:
            remaining = min(remaining, self.tactic_timeout)
        if self.config.lean_time_budget is not None:
            remaining = min(remaining, max(self.config.lean_time_budget - self.result.lean_seconds, 0.0))
        return max(remaining, 0.001)

    def _budget_stop(self) -> StopReason | None:
        cfg = self.config
        if self.should_stop():
            return "stopped"
        if self.result.expansions >= cfg.max_expansions:
            return "max_expansions"
        if self._elapsed() >= cfg.time_budget:
            return "time_budget"
        if cfg.lean_time_budget is not None and self.result.lean_seconds >= cfg.lean_time_budget:
            return "lean_time_budget"
        return None

    def _account(self, batch: StepBatch | StartOutcome) -> None:
        self.result.lean_calls += batch.lean_calls
        self.result.lean_seconds += batch.lean_seconds
        if isinstance(batch, StepBatch):
            self.result.rematerialisations += batch.rematerialisations

    def _publish(self, changed: Iterable[str]) -> Generator[SearchRequest, Any, None]:
        if not self.use_cache:
            return
        tree = self.tree
        for node in changed:
            if not tree.is_state(node):
                continue
            status = tree.status(node)
            if status is NodeStatus.PROVED:
                script = tree.proof_path(node)
                if script:
                    yield PublishProof(self._key(node), tuple(script))
            elif status is NodeStatus.FAILED and tree.definitive(node):
                yield PublishDead(self._key(node))

    # -- the search -------------------------------------------------------------------------

    def run(self) -> Generator[SearchRequest, Any, SearchResult]:
        """Yield requests until the search ends; returns the `SearchResult`.

        The wall-time budget starts once the root state exists: waiting for a warm worker (a
        Mathlib import on a cold one) is not search time. Lean time counts every call.
        """
        self._t0 = self.clock()
        result = self.result
        start: StartOutcome = yield StartLean(self.origin)
        self._account(start)
        self._t0 = self.clock()
        if start.state is None:
            result.stop_reason = "start_failed"
            result.start_error = start.error
            result.start_infrastructure = start.infrastructure
            return self._finish()
        result.root_state = start.state
        root = self.tree.add_root(start.state.goals)
        self._keep(root, start.state)
        self._push(root)
        while True:
            if self.tree.status(root) is NodeStatus.PROVED:
                result.stop_reason = "proved"
                break
            reason = self._budget_stop()
            if reason is not None:
                result.stop_reason = reason
                break
            node = self._pop()
            if node is None:
                result.stop_reason = "exhausted"
                break
            if self.use_cache and (yield from self._consult_cache(node)):
                continue
            if not (yield from self._expand(node)):
                result.stop_reason = "time_budget"
                break
        return self._finish()

    def _finish(self) -> SearchResult:
        result = self.result
        result.wall_seconds = self._elapsed()
        if result.stop_reason == "proved":
            result.tactics = self.tree.proof_path()
        return result

    def _consult_cache(self, node: str) -> Generator[SearchRequest, Any, bool]:
        """True when the cache settled the node (proved by a confirmed replay, or dead)."""
        entry: CacheEntry | None = yield LookupProof(self._key(node))
        if entry is None:
            return False
        if entry.kind == "dead":
            # Never skip the attempt's own root: pass@k attempts are independent samples, and a
            # dead end is only "every tactic sampled so far failed".
            if not self.use_dead_ends or node == self.tree.root:
                return False
            self.result.cache_dead_hits += 1
            changed = self.tree.mark_dead(node, "cache_dead", definitive=True)
            yield from self._publish(n for n in changed if n != node)
            return True
        batch: StepBatch = yield ReplayTactics(self._state(node), entry.tactics, self._lean_timeout())
        self._account(batch)
        outcomes = batch.outcomes
        if not self._confirms(node, entry, outcomes):
            self.result.cache_stale += 1
            if all(o.kind in LEAN_VERDICTS for o in outcomes):  # Lean's word, not an accident
                yield RetractProof(self._key(node), entry.tactics)
            return False
        self.result.cache_proof_hits += 1
        current = node
        for outcome in outcomes[:-1]:
            current, is_new = self.tree.add_success(current, outcome.tactic, 0.0, outcome.goals, outcome.seconds, cached=True)
            if is_new and outcome.state is not None:
                self._keep(current, outcome.state)
        last = outcomes[-1]
        self.tree.add_success(current, last.tactic, 0.0, None, last.seconds, cached=True)
        changed = self.tree.propagate(current)
        # `node`'s script is the cache entry itself; its new sub-states and closed ancestors are news.
        yield from self._publish(n for n in changed if n != node)
        return True

    def _confirms(self, node: str, entry: CacheEntry, outcomes: Sequence[StepOutcome]) -> bool:
        """The replay ran the whole script, every step but the last reached a new state, and the
        last one completed the proof (a step back to its own state would be a no-progress edge,
        which cannot sit on a proof path)."""
        if not outcomes or len(outcomes) != len(entry.tactics) or outcomes[-1].kind is not StepKind.PROVED:
            return False
        goals = self.tree.goals(node)
        for outcome in outcomes[:-1]:
            if outcome.kind is not StepKind.OK:
                return False
            after = normalise_goals(outcome.goals or ())
            if after == goals:
                return False
            goals = after
        return True

    def _candidates(self, gen: GenResult) -> list[tuple[str, float]]:
        """Usable, distinct tactics of a sample, best score first (and the sample's accounting)."""
        result = self.result
        dropped = result.dropped
        result.sampled += len(gen.completions)
        parsed = self._parsed
        mean = self.score == "mean"
        seen: set[str] = set()
        out: list[tuple[str, float]] = []
        tokens = 0
        for completion in gen.completions:
            tokens += completion.tokens
            tactic, drop = parsed.get(completion.text) or self._parse(completion.text)
            if drop:
                dropped[drop] += 1
            elif tactic in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(tactic)
                logprob = completion.cumulative_logprob or 0.0
                out.append((tactic, logprob / max(completion.tokens, 1) if mean else logprob))
        result.completion_tokens += tokens
        out.sort(key=_LOGPROB, reverse=True)  # stable: ties keep the sampler's order
        return out

    def _parse(self, text: str) -> tuple[str, str]:
        """(tactic, "") for a usable completion, ("", "unparsed" | "banned") otherwise; memoised."""
        tactic = self.fmt.extract_tactic(text)
        tactic = tactic.strip() if tactic else ""
        verdict = (tactic, "") if tactic else ("", "unparsed")
        if tactic and self.filter.is_banned(tactic):
            verdict = ("", "banned")
        if len(self._parsed) < _PARSE_MEMO:
            self._parsed[text] = verdict
        return verdict

    def _expand(self, node: str) -> Generator[SearchRequest, Any, bool]:
        """Sample, filter, apply; False when the sampler ran out of wall time."""
        result, tree = self.result, self.tree
        seed = None if self.seed is None else (self.seed + result.expansions) % _SEED_RANGE
        request = self._request_template.model_copy(update={**self.fmt.tactic_prompt(tree.goals(node)), "seed": seed})
        gen: GenResult | None = yield SampleTactics(request, self._remaining())
        if gen is None:
            return False
        result.expansions += 1
        result.gen_seconds += gen.seconds
        result.prompt_tokens += gen.prompt_tokens
        candidates = self._candidates(gen)
        outcomes: tuple = ()
        if candidates:
            tactics = tuple([t for t, _ in candidates])
            batch: StepBatch = yield ApplyTactics(self._state(node), tactics, self._lean_timeout())
            self._account(batch)
            outcomes = batch.outcomes
        if outcomes and outcomes[0].kind is StepKind.INFRASTRUCTURE and all(
            o.kind is StepKind.INFRASTRUCTURE for o in outcomes
        ):
            # Lean never judged these tactics (the worker lost the state): not the node's fault
            result.lost_expansions += 1
            lost = tree.attribute(node, "lost_expansions", 0) + 1
            tree.note(node, lost_expansions=lost)
            if lost <= MAX_LOST_EXPANSIONS_PER_NODE:
                self._push(node)  # expand it again later, with fresh samples
                return True
        for (tactic, logprob), outcome in zip(candidates, outcomes):
            self._record(node, tactic, logprob, outcome)
        complete = bool(candidates) and len(outcomes) == len(candidates) and gen.completions
        changed = tree.mark_expanded(node, complete=bool(complete))
        if self.use_cache:
            yield from self._publish(changed)
        return True

    def _record(self, node: str, tactic: str, logprob: float, outcome: StepOutcome) -> None:
        tree = self.tree
        kind = outcome.kind
        if kind is StepKind.PROVED:
            tree.add_success(node, tactic, logprob, None, outcome.seconds)
        elif kind is StepKind.OK and outcome.state is not None:
            child, is_new = tree.add_success(node, tactic, logprob, outcome.state.goals, outcome.seconds)
            if is_new:
                self._keep(child, outcome.state)
                score = tree.score(child)
                if score[1] >= self.config.max_depth:
                    tree.mark_dead(child, "max_depth", definitive=False)
                else:
                    self._push(child, score)
        else:
            tree.add_failure(node, tactic, logprob, _EDGE_OUTCOMES[kind], outcome.error, outcome.seconds)


# ---------------------------------------------------------------------------------------------
# The asyncio driver
# ---------------------------------------------------------------------------------------------


async def run_search(
    search: BestFirstSearch,
    *,
    lean: LeanSession,
    sampler: Sampler,
    cache: ProofCache | None = None,
) -> SearchResult:
    """Run one search to its result; its goal-state tree is released from `lean` afterwards."""
    result = await drive(search.run(), RequestServer(lean, sampler, cache))
    if result.root_state is not None:
        await lean.release(result.root_state.tree)
    return result


# ---------------------------------------------------------------------------------------------
# The strategy
# ---------------------------------------------------------------------------------------------

def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120] or "problem"


class BestFirstStrategy(Strategy):
    """`eval.passes` best-first searches per problem; a proof counts only after the checker accepts it.

    Args:
        passes: attempts per problem (default `config.eval.passes`, i.e. `--pass K`).
        parallel_attempts: attempts of one problem searched concurrently (default
            min(passes, config.lean.workers)).
        use_cache: use `ctx.proof_cache` when the context has one.
        use_dead_ends: trust dead-end entries of the cache.
        fmt: tactic prompt format (default `get_format("bfs-prover")`).
        score: per-tactic score: "mean" token log-prob or "sum".

    With `ctx.artifacts` set, each attempt's tree is written to
    `<artifacts>/<problem>/attempt_<i>.json`.
    """

    name = "bfs"

    def __init__(
        self,
        *,
        passes: int | None = None,
        parallel_attempts: int | None = None,
        use_cache: bool = True,
        use_dead_ends: bool = True,
        fmt: Any = None,
        score: Literal["mean", "sum"] = "mean",
    ) -> None:
        self.passes = passes
        self.parallel_attempts = parallel_attempts
        self.use_cache = use_cache
        self.use_dead_ends = use_dead_ends
        self.fmt = fmt
        self.score = score

    def _passes(self, config: ProverConfig) -> int:
        return self.passes or config.eval.passes

    def is_complete(self, problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
        """Whether `prove` would record nothing new: every attempt is recorded, or (with
        `bfs.stop_on_first`) one of them proved the problem. Lets a finished run skip the problem
        without starting the sampler or the Lean pool."""
        if config.section(SPEC).stop_on_first and DoneAttempts.of(done).proved:
            return True
        return all((0, index) in done for index in range(self._passes(config)))

    async def prove(
        self,
        problem: Problem,
        ctx: StrategyContext,
        record: RecordAttempt,
        done: Mapping[tuple[int, int], Attempt] | None = None,
    ) -> None:
        done = DoneAttempts.of(done)
        if self.is_complete(problem, ctx.config, done):
            return
        passes = self._passes(ctx.config)
        stop_on_first = ctx.config.section(SPEC).stop_on_first
        todo = [i for i in range(passes) if (0, i) not in done]
        stop = asyncio.Event()
        limit = asyncio.Semaphore(self.parallel_attempts or max(1, min(passes, ctx.config.lean.workers)))
        fmt = self.fmt or default_tactic_format()

        async def one(index: int) -> None:
            async with limit:
                if stop.is_set():
                    return
                attempt = await self.run_attempt(problem, ctx, index, fmt=fmt, should_stop=stop.is_set)
                if attempt.verdict.proved and stop_on_first:
                    stop.set()
                await record(attempt)

        async with asyncio.TaskGroup() as group:
            for index in todo:
                group.create_task(one(index))

    async def run_attempt(
        self,
        problem: Problem,
        ctx: StrategyContext,
        index: int,
        *,
        fmt: Any = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Attempt:
        """One search + final check, as an `Attempt`."""
        cache = ctx.proof_cache if self.use_cache else None
        search = BestFirstSearch(
            problem,
            config=ctx.config.section(SPEC),
            fmt=fmt or self.fmt or default_tactic_format(),
            attempt=index,
            seed=derive_seed(ctx.config.sampler_for(PROVER_ROLE).seed, problem.name, 0, index),
            ban_check=checker_ban_check(ctx.config),
            use_cache=cache is not None,
            use_dead_ends=self.use_dead_ends,
            score=self.score,
            tactic_timeout=ctx.config.lean.timeout,
            should_stop=should_stop,
        )
        result = await run_search(search, lean=ctx.lean, sampler=ctx.sampler(PROVER_ROLE), cache=cache)
        proof: str | None = None
        check_seconds = 0.0
        if result.proved and result.tactics:
            proof = assemble_proof(result.tactics)
            t0 = time.monotonic()
            verdict = await ctx.checker.check(problem, proof)
            check_seconds = time.monotonic() - t0
            if cache is not None and verdict.status in _CHECKER_REFUSALS:
                await _retract_path(cache, problem, result.tree)
        else:
            verdict = _unproved_verdict(result)
        tree_file = await self._write_tree(ctx.artifacts, problem, index, result.tree)
        return Attempt(
            problem=problem.name,
            benchmark=problem.benchmark,
            strategy=SPEC.name,
            sample_index=index,
            proof=proof,
            verdict=verdict,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            gen_seconds=result.gen_seconds,
            check_seconds=check_seconds,
            extra=_extra(result, search, tree_file),
        )

    @staticmethod
    async def _write_tree(artifacts: Path | None, problem: Problem, index: int, tree: SearchTree) -> str | None:
        if artifacts is None:
            return None
        path = artifacts / _safe_name(problem.name) / f"attempt_{index:03d}.json"
        await asyncio.to_thread(tree.write_json, path)
        return str(path)


async def _retract_path(cache: ProofCache, problem: Problem, tree: SearchTree) -> None:
    """Withdraw the scripts this search published along a proof the checker refused.

    Tactic mode can accept what command mode refuses (old REPLs, axioms, statement tricks); left
    in the cache, the root's script would be replayed by every later attempt of the problem
    instead of a search of its own.
    """
    edges = tree.proof_edges() or []
    tactics = [tactic for _, _, tactic in edges]
    for i, (state, _, _) in enumerate(edges):
        await cache.retract(CacheKey(header=problem.header, goals=tree.goals(state)), tactics[i:])


def _unproved_verdict(result: SearchResult) -> Verdict:
    if result.stop_reason == "start_failed":
        status = CheckStatus.ERROR if result.start_infrastructure else CheckStatus.FAILED
        return Verdict(status=status, rule="search:start_failed", detail=result.start_error)
    detail = f"no proof found: {result.stop_reason} after {result.expansions} expansions"
    if result.stop_reason == "exhausted" and result.lost_expansions:
        # the tree ran out only because Lean kept losing states: an infrastructure failure
        return Verdict(status=CheckStatus.ERROR, rule="search:infrastructure", lean_seconds=result.lean_seconds,
                       detail=f"{detail}; {result.lost_expansions} expansions lost their Lean state")
    return Verdict(status=CheckStatus.FAILED, rule=f"search:{result.stop_reason}", detail=detail,
                   lean_seconds=result.lean_seconds)


def _extra(result: SearchResult, search: BestFirstSearch, tree_file: str | None) -> dict[str, object]:
    counts = result.tree.counts()
    return {
        "search_proved": result.proved,
        "stop_reason": result.stop_reason,
        "expansions": result.expansions,
        "lean_calls": result.lean_calls,
        "lean_seconds": round(result.lean_seconds, 4),
        "wall_seconds": round(result.wall_seconds, 4),
        "states": counts["states"],
        "edges": counts["edges"],
        "failed_edges": counts["failed_edges"],
        "sampled": result.sampled,
        "dropped": dict(result.dropped),
        "cache_proof_hits": result.cache_proof_hits,
        "cache_dead_hits": result.cache_dead_hits,
        "cache_stale": result.cache_stale,
        "lost_expansions": result.lost_expansions,
        "rematerialisations": result.rematerialisations,
        "proof_tactics": result.tactics,
        "seed": search.seed,
        "tree_file": tree_file,
    }


SPEC: StrategySpec[BfsConfig] = StrategySpec(
    name=BestFirstStrategy.name,
    config_model=BfsConfig,
    factory=BestFirstStrategy,
    roles=(PROVER_ROLE,),
    description="step-level best-first tactic search (BFS-Prover style) with a shared proof cache",
    uses_proof_cache=True,
)
