"""What I/O-free search cores ask for, and the one server that answers.

A search core (best-first today; RMaxTS or a planner's subgoal search tomorrow) is a generator
that *yields* a request and receives its response, like httpx's `auth_flow`. `RequestServer`
answers every request type from a `LeanSession`, a `Sampler` and an optional `ProofCache`, and
`drive()` runs a core to its result. The same server serves in-process runs and Ray agents (whose
session, sampler and cache are actor proxies); a test can drive a core by hand.

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


class RequestServer:
    """Answers search requests with a session, a sampler and (optionally) a proof cache.

    Without a cache, lookups find nothing and publications are dropped.
    """

    def __init__(self, lean: LeanSession, sampler: Sampler, cache: ProofCache | None = None) -> None:
        self.lean = lean
        self.sampler = sampler
        self.cache = cache
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
            return await asyncio.wait_for(self.sampler.generate(request.request), timeout=max(request.timeout, 0.001))
        except TimeoutError:
            return None
        except SamplerRequestError as exc:  # e.g. the state is longer than the model's context
            log.warning("tactic request refused by the sampler: %s", exc)
            return GenResult(completions=())

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


async def drive(core: Generator[SearchRequest, Any, R], server: RequestServer) -> R:
    """Serve `core`'s requests until it returns; its return value is the result."""
    response: Any = None
    try:
        while True:
            request = core.send(response)
            response = await server.serve(request)
    except StopIteration as stop:
        return stop.value
    finally:
        core.close()
