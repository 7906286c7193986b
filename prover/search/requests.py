"""What I/O-free search cores ask for, and the one server that answers.

A search core (best-first today; RMaxTS or a planner's subgoal search tomorrow) is a generator
that *yields* a request and receives its response, like httpx's `auth_flow`. `RequestServer`
answers every request type from a `LeanSession`, a `Sampler` and an optional `ProofCache`, and
`drive()` runs a core to its result. The same server serves in-process runs and Ray agents (whose
session, sampler and cache are actor proxies); a test can drive a core by hand. Sampler calls are
cut at their timeout by one timer per server (`_Deadlines`), not one per call: instant answers
(a cache, a stand-in) then cost no event-loop machinery at all.

Requests and their responses:

    StartLean(origin)              -> StartOutcome
    SampleTactics(request, t)      -> GenResult, or None when the timeout passed
    ApplyTactics(state, tactics)   -> StepBatch   (siblings; stops when one proves the state)
    ReplayTactics(state, tactics)  -> StepBatch   (a chain; stops at the first non-OK step)
    LookupProof(key)               -> CacheEntry | None
    PublishProof / RetractProof / PublishDead -> None
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from prover.errors import SamplerRequestError
from prover.lean_env.session import GoalState, LeanSession, StartOutcome, StateOrigin, StepBatch
from prover.llm.base import Sampler
from prover.search.proof_cache import CacheEntry, CacheKey, ProofCache
from prover.types import GenRequest, GenResult

__all__ = [
    "ApplyTactics",
    "LookupProof",
    "PublishDead",
    "PublishProof",
    "ReplayTactics",
    "RequestServer",
    "RetractProof",
    "SampleTactics",
    "SearchRequest",
    "StartLean",
    "drive",
]

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StartLean:
    """Start a goal-state tree [StartOutcome]."""

    origin: StateOrigin


@dataclass(frozen=True, slots=True)
class SampleTactics:
    """One sampler request [GenResult, or None if `timeout` passed]."""

    request: GenRequest
    timeout: float | None


@dataclass(frozen=True, slots=True)
class ApplyTactics:
    """Apply sibling tactics to `state`, stop when one proves it [StepBatch]."""

    state: GoalState
    tactics: tuple[str, ...]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class ReplayTactics:
    """Apply a tactic chain from `state` (a cached proof) [StepBatch]."""

    state: GoalState
    tactics: tuple[str, ...]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class LookupProof:
    key: CacheKey  # [CacheEntry | None]


@dataclass(frozen=True, slots=True)
class PublishProof:
    key: CacheKey  # [None]
    tactics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetractProof:
    key: CacheKey  # [None]
    tactics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PublishDead:
    key: CacheKey  # [None]


SearchRequest = (
    StartLean | SampleTactics | ApplyTactics | ReplayTactics | LookupProof | PublishProof | RetractProof | PublishDead
)


class _Deadlines:
    """Cuts awaits at their deadlines with one timer for all of them.

    A search makes every sampler call against the same deadline (its time budget), so arming an
    `asyncio.timeout` per call would create, schedule and cancel a timer per step for nothing.
    Here each waiting task registers its deadline; one timer, at the earliest one, cancels the
    tasks whose deadline passed, and `expired` tells a task that it was cut (and uncancels it,
    like `asyncio.timeout`, unless someone else cancelled it too).
    """

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, task: asyncio.Task[Any], deadline: float) -> None:
        self._waiting[task] = (deadline, task.cancelling())
        if self._timer is None or deadline < self._timer.when():
            self._arm(deadline)

    def leave(self, task: asyncio.Task[Any]) -> None:
        self._waiting.pop(task, None)
        self._cut.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether a CancelledError in `task` (between `enter` and `leave`) was this timer's
        doing; then the task is uncancelled."""
        if task not in self._cut:
            return False
        self._cut.discard(task)
        return task.uncancel() <= self._waiting[task][1]

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time() + 1e-6  # the loop may run a timer a hair early
        for task, (deadline, _) in list(self._waiting.items()):
            if deadline <= now:
                self._cut.add(task)
                task.cancel()
        later = [deadline for task, (deadline, _) in self._waiting.items() if task not in self._cut]
        if later:
            self._arm(min(later))


class RequestServer:
    """Answers search requests with a session, a sampler and (optionally) a proof cache.

    Without a cache, lookups find nothing and publications are dropped.
    """

    def __init__(self, lean: LeanSession, sampler: Sampler, cache: ProofCache | None = None) -> None:
        self.lean = lean
        self.sampler = sampler
        self.cache = cache
        self._deadlines = _Deadlines()
        self._handlers: dict[type, Callable[[Any], Awaitable[Any]]] = {
            StartLean: self._start,
            SampleTactics: self._sample,
            ApplyTactics: self._apply,
            ReplayTactics: self._replay,
            LookupProof: self._lookup,
            PublishProof: self._publish_proof,
            RetractProof: self._retract,
            PublishDead: self._publish_dead,
        }

    async def serve(self, request: SearchRequest) -> Any:
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"unknown search request {request!r}")
        return await handler(request)

    async def _start(self, request: StartLean) -> StartOutcome:
        return await self.lean.start(request.origin)

    async def _apply(self, request: ApplyTactics) -> StepBatch:
        return await self.lean.apply(request.state, request.tactics, timeout=request.timeout)

    async def _replay(self, request: ReplayTactics) -> StepBatch:
        return await self.lean.apply(request.state, request.tactics, chain=True, timeout=request.timeout)

    async def _sample(self, request: SampleTactics) -> GenResult | None:
        try:
            if request.timeout is None:
                return await self.sampler.generate(request.request)
            return await self._sample_by(request.request, request.timeout)
        except SamplerRequestError as exc:  # e.g. the state is longer than the model's context
            log.warning("tactic request refused by the sampler: %s", exc)
            return GenResult(completions=())

    async def _sample_by(self, request: GenRequest, timeout: float) -> GenResult | None:
        """The sampler's answer, or None once `timeout` passed (no task, no timer of its own per
        call: an answer that is ready costs no trip through the event loop)."""
        task = asyncio.current_task()
        assert task is not None
        self._deadlines.enter(task, asyncio.get_running_loop().time() + max(timeout, 0.001))
        try:
            return await self.sampler.generate(request)
        except asyncio.CancelledError:
            if self._deadlines.expired(task):
                return None
            raise
        finally:
            self._deadlines.leave(task)

    async def _lookup(self, request: LookupProof) -> CacheEntry | None:
        return None if self.cache is None else await self.cache.lookup(request.key)

    async def _publish_proof(self, request: PublishProof) -> None:
        if self.cache is not None:
            await self.cache.publish_proof(request.key, request.tactics)

    async def _retract(self, request: RetractProof) -> None:
        if self.cache is not None:
            await self.cache.retract(request.key, request.tactics)

    async def _publish_dead(self, request: PublishDead) -> None:
        if self.cache is not None:
            await self.cache.publish_dead(request.key)


YIELD_EVERY = 64
"""Requests served before `drive` lets the event loop run once: answers that are ready at once
(a stand-in, a cache) would otherwise let one search hold the loop, starving the other searches
and every timer until it ends."""


async def drive(core: Generator[SearchRequest, Any, R], server: RequestServer) -> R:
    """Serve `core`'s requests until it returns; its return value is the result."""
    response: Any = None
    try:
        for served in itertools.count(1):
            request = core.send(response)
            response = await server.serve(request)
            if served % YIELD_EVERY == 0:
                await asyncio.sleep(0)
    except StopIteration as stop:
        return stop.value
    finally:
        core.close()
