"""Client-side stand-ins for services that live in Ray actors.

A strategy running in a prover-agent actor gets a `StrategyContext` whose sampler, checker, pool
and proof cache are the proxies below; they implement the same interfaces as the in-process
objects (`Sampler`, `CheckerLike`, the `LeanPool` subset best-first search uses, `ProofCache`),
so nothing in `prover.search` knows it runs on Ray (vLLM's `InprocClient` / `AsyncMPClient` split).

Wire format: actor methods never raise across the process boundary on purpose. They return a
`Reply` carrying either the value or a `RemoteFailure` (error class name + message), and
`unwrap` re-raises it here as the same `prover.errors` type. Ray's own failures (actor died,
actor restarting) are mapped at one place per proxy: LLM engines -> re-route to another engine or
`SamplerUnavailable`; Lean pool actors -> fail over to another pool or `PoolClosed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

import prover.errors as errors_module
from prover.errors import (
    PoolClosed,
    ProverError,
    RunError,
    SamplerUnavailable,
    StaleHandleError,
)
from prover.llm.base import Sampler
from prover.search.proof_cache import CacheKey, ProofCache
from prover.types import Attempt, GenRequest, GenResult, Problem, Verdict

log = logging.getLogger(__name__)

ActorHandle = Any
"""A `ray.actor.ActorHandle` (or a test double whose methods have `.remote(...)`)."""


# ---------------------------------------------------------------------------------------------
# Typed payloads
# ---------------------------------------------------------------------------------------------


class RemoteFailure(BaseModel):
    """An exception raised inside an actor, carried back as data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_type: str
    """Class name; a `prover.errors` name is re-raised as that class."""
    message: str
    origin: str = ""
    """Which actor raised it (e.g. `llm-0`, `lean-pool-1`)."""
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, origin: str) -> RemoteFailure:
        while isinstance(exc, BaseExceptionGroup):  # a TaskGroup's failure: report its cause
            exc = next((e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)), exc.exceptions[0])
        tb = "" if isinstance(exc, ProverError) else "".join(traceback.format_exception(exc))
        return cls(error_type=type(exc).__name__, message=str(exc), origin=origin, traceback=tb)

    @property
    def is_prover_error(self) -> bool:
        return _prover_error_class(self.error_type) is not None

    def to_exception(self) -> Exception:
        """The same `prover.errors` (or `CLUSTER_ERRORS`) class; otherwise a RuntimeError naming the type."""
        cls = _prover_error_class(self.error_type)
        if cls is not None:
            return cls(self.message)
        detail = f"\n{self.traceback}" if self.traceback else ""
        return RuntimeError(f"{self.origin}: {self.error_type}: {self.message}{detail}")


def _prover_error_class(name: str) -> type[ProverError] | None:
    cls = CLUSTER_ERRORS.get(name) or getattr(errors_module, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, ProverError) else None


class Reply(BaseModel):
    """Result of one actor call: a value or a failure, never both."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    value: Any = None
    failure: RemoteFailure | None = None


async def serve(origin: str, call: Awaitable[Any]) -> Reply:
    """Actor side: await `call` and wrap its outcome (exceptions included) in a `Reply`."""
    try:
        return Reply(value=await call)
    except Exception as exc:  # every failure travels back as data
        if not isinstance(exc, ProverError):
            log.exception("%s: unexpected error", origin)
        return Reply(failure=RemoteFailure.from_exception(exc, origin))


def unwrap(reply: Reply) -> Any:
    """Client side: the value, or the remote exception re-raised with its own type."""
    if reply.failure is not None:
        raise reply.failure.to_exception()
    return reply.value


class AgentEvent(BaseModel):
    """What a prover agent streams back while proving one problem."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Literal["attempt", "finished", "failed"]
    attempt: Attempt | None = None
    failure: RemoteFailure | None = None
    payload: Any = None
    """Extra data for `finished` (e.g. trajectory rows of a collect job)."""


# ---------------------------------------------------------------------------------------------
# Routing over a set of actors
# ---------------------------------------------------------------------------------------------


def first_line(exc: BaseException | None) -> str:
    """A one-line description of an error (Ray's actor errors span many lines)."""
    if exc is None:
        return "none"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def ray_failure_types() -> tuple[tuple[type[BaseException], ...], type[BaseException]]:
    """(actor gone for good, actor temporarily unavailable) classes; imported lazily so tests can
    use fakes. Gone includes an actor that cannot be placed again: one pinned to a node that died
    (`ActorUnschedulableError` is not a `RayActorError`)."""
    from ray.exceptions import ActorUnavailableError, ActorUnschedulableError, RayActorError

    return (RayActorError, ActorUnschedulableError), ActorUnavailableError


class ActorSet:
    """A fixed list of equivalent actors: least-loaded choice, in-flight counts, dead marking.

    In-flight counts are this client's own view (each agent routes its own requests); with many
    agents every engine still sees a balanced share because each agent balances its own load.
    The first `local` actors are on the caller's node (Lean pools whose REPLs are local): they get
    every call while one of them is alive, queueing there, and the others are for fail-over. An
    agent sees only its own calls, so spilling over to "idle-looking" remote pools would send
    every agent's work everywhere; the driver instead places agents next to every pool.
    """

    def __init__(self, handles: Sequence[ActorHandle], names: Sequence[str] | None = None, *, local: int = 0) -> None:
        if not handles:
            raise ValueError("ActorSet needs at least one actor")
        self.handles = list(handles)
        self.local = local
        self.names = list(names) if names is not None else [f"actor-{i}" for i in range(len(handles))]
        self.in_flight = [0] * len(self.handles)
        self.dead: set[int] = set()
        self._tiebreak = itertools.count()
        self._last_used = [0] * len(self.handles)

    @property
    def alive(self) -> list[int]:
        return [i for i in range(len(self.handles)) if i not in self.dead]

    def pick(self) -> int | None:
        """Index of the alive actor with the fewest in-flight calls (ties: least recently used),
        among the local ones while any is alive."""
        alive = self.alive
        if not alive:
            return None
        near = [i for i in alive if i < self.local]
        best = min(near or alive, key=lambda i: (self.in_flight[i], self._last_used[i]))
        self._last_used[best] = next(self._tiebreak) + 1
        return best

    def mark_dead(self, index: int, reason: BaseException | str) -> None:
        if index not in self.dead:
            log.warning("%s is dead: %s", self.names[index], reason)
        self.dead.add(index)

    async def call(self, index: int, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call `method` on actor `index`, counting it in flight; returns the unwrapped value."""
        self.in_flight[index] += 1
        ref = getattr(self.handles[index], method).remote(*args, **kwargs)
        try:
            reply = await ref
        except asyncio.CancelledError:
            _cancel_remote(ref)  # the caller gave up: stop the work there too (early stop, ...)
            raise
        finally:
            self.in_flight[index] -= 1
        return unwrap(reply) if isinstance(reply, Reply) else reply


def _cancel_remote(ref: Any) -> None:
    """Best-effort cancellation of a remote call (an asyncio-cancelled await does not do it)."""
    if isinstance(ref, asyncio.Future):
        ref.cancel()
        return
    try:
        import ray

        ray.cancel(ref)
    except Exception:  # noqa: BLE001 - already finished, actor gone: nothing to stop
        pass


async def call_any(
    actors: ActorSet,
    method: str,
    *args: Any,
    on_exhausted: Callable[[BaseException | None], Exception],
    unavailable_wait: float = 30.0,
    **kwargs: Any,
) -> Any:
    """Call `method` on the least-loaded alive actor, re-routing when one dies (see `route`)."""

    async def call_on(index: int) -> Any:
        return await actors.call(index, method, *args, **kwargs)

    return await route(actors, call_on, on_exhausted=on_exhausted, unavailable_wait=unavailable_wait)


async def route(
    actors: ActorSet,
    call_on: Callable[[int], Awaitable[Any]],
    *,
    on_exhausted: Callable[[BaseException | None], Exception],
    unavailable_wait: float = 30.0,
) -> Any:
    """`await call_on(index)` for the least-loaded alive actor until one answers.

    A dead actor (restarts exhausted, or killed without restart) is marked and the call goes to the
    next one; an actor that is restarting is retried (on any actor) for up to `unavailable_wait`
    seconds before it is given up. When no actor is left, raises `on_exhausted(last_error)`.
    """
    died, unavailable = ray_failure_types()
    deadline = time.monotonic() + unavailable_wait
    last: BaseException | None = None
    while True:
        index = actors.pick()
        if index is None:
            raise on_exhausted(last)
        try:
            return await call_on(index)
        except unavailable as exc:
            last = exc
            if time.monotonic() > deadline:
                actors.mark_dead(index, exc)
            else:
                await asyncio.sleep(0.2)
        except died as exc:
            last = exc
            actors.mark_dead(index, exc)


# ---------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------


class RaySamplerProxy(Sampler):
    """A `Sampler` whose requests go to the least-loaded of several LLM engine actors."""

    backend = "ray"

    def __init__(self, engines: Sequence[ActorHandle], *, unavailable_wait: float = 30.0) -> None:
        super().__init__()
        self.engines = ActorSet(engines, [f"llm-{i}" for i in range(len(engines))])
        self._unavailable_wait = unavailable_wait

    def _exhausted(self, last: BaseException | None) -> Exception:
        n = len(self.engines.handles)
        return SamplerUnavailable(
            f"all {n} LLM engine actor(s) are dead (last error: {first_line(last)}); "
            "the run stopped and can be resumed once an engine is available"
        )

    async def generate(self, request: GenRequest) -> GenResult:
        try:
            result: GenResult = await call_any(
                self.engines,
                "generate",
                request,
                on_exhausted=self._exhausted,
                unavailable_wait=self._unavailable_wait,
            )
        except Exception:
            self.stats.errors += 1
            raise
        self.stats.add(request, result)
        return result

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "engines": len(self.engines.handles)}


# ---------------------------------------------------------------------------------------------
# Lean: checker and pool
# ---------------------------------------------------------------------------------------------


def _pool_exhausted(last: BaseException | None) -> Exception:
    return PoolClosed(f"every Lean pool actor this agent can use is dead (last error: {first_line(last)})")


class RayCheckerProxy:
    """`CheckerLike` over Lean pool actors (preferred ones first, e.g. those on this node)."""

    def __init__(self, pools: ActorSet, *, unavailable_wait: float = 60.0) -> None:
        self.pools = pools
        self._unavailable_wait = unavailable_wait

    async def check(self, problem: Problem, proof: str, **kwargs: Any) -> Verdict:
        return await call_any(
            self.pools,
            "check",
            problem,
            proof,
            on_exhausted=_pool_exhausted,
            unavailable_wait=self._unavailable_wait,
            **kwargs,
        )

    async def check_sketch(self, problem: Problem, proof: str, **kwargs: Any) -> Any:
        """`ProofChecker.check_sketch` on a pool actor (a `SketchCheck`)."""
        return await call_any(
            self.pools,
            "check_sketch",
            problem,
            proof,
            on_exhausted=_pool_exhausted,
            unavailable_wait=self._unavailable_wait,
            **kwargs,
        )


class LeaseInfo(BaseModel):
    """What opening a lease on a pool actor returns."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    lease_id: str
    """Unique across restarts of the pool actor."""
    worker: Any
    """`prover.lean_env.results.WorkerRef`."""
    header_env: Any = None
    """`prover.lean_env.results.EnvHandle | None`."""


class LeaseNotOpen(StaleHandleError):
    """A pool actor does not hold the lease any more (it restarted, or the lease was closed)."""


CLUSTER_ERRORS: dict[str, type[ProverError]] = {"LeaseNotOpen": LeaseNotOpen}
"""Errors of this package that cross the actor boundary by name, besides `prover.errors`."""


class RemoteLease:
    """The `WorkerLease` API (command / tactic) of a lease held open inside a pool actor.

    Like an in-process lease, it outlives its worker: when the pool actor holding it dies or
    restarts, the next call takes a fresh lease (any alive pool) and `worker` changes, so handles
    from before raise `StaleHandleError` and the search re-materialises its states on the new one.
    """

    def __init__(self, proxy: RayPoolProxy, key: Any, index: int, info: LeaseInfo) -> None:
        self._proxy = proxy
        self._key = key
        self._adopt(index, info)

    def _adopt(self, index: int, info: LeaseInfo) -> None:
        self.index = index
        self.lease_id = info.lease_id
        self.worker = info.worker
        self.header_env = info.header_env

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._send(method, *args, **kwargs)
        except LeaseNotOpen as lost:
            log.warning("%s; taking a new lease", lost)
        # best effort: an actor that was only unreachable still holds the old lease
        self._proxy.pools.handles[self.index].close_lease.remote(self.lease_id)
        self._adopt(*await self._proxy._open(self._key, None))
        return await self._send(method, *args, **kwargs)

    async def _send(self, method: str, *args: Any, **kwargs: Any) -> Any:
        died, _ = ray_failure_types()
        pools = self._proxy.pools
        try:
            return await pools.call(self.index, method, self.lease_id, *args, **kwargs)
        except died as exc:  # dead or restarting (the next `_open` tells which): the lease is gone
            raise LeaseNotOpen(
                f"Lean pool actor {pools.names[self.index]} lost lease {self.lease_id}: {first_line(exc)}"
            ) from exc

    async def command(self, cmd: str, **kwargs: Any) -> Any:
        return await self._call("lease_command", cmd, **kwargs)

    async def tactic(self, state: Any, tactic: str, **kwargs: Any) -> Any:
        return await self._call("lease_tactic", state, tactic, **kwargs)


class RayPoolProxy:
    """The subset of `LeanPool` that step-level search uses, backed by pool actors.

    A lease stays on the actor that opened it (its proof states live in that actor's REPLs);
    `affinity` is only meaningful on the actor that issued the `WorkerRef`, so this proxy pins
    leases to the actor that last served a given worker.
    """

    def __init__(self, pools: ActorSet, key_template: Any, owner: str) -> None:
        self.pools = pools
        self._key_template = key_template
        self.owner = owner
        self._worker_home: dict[Any, int] = {}

    def env_key(self, header: str) -> Any:
        """Same key the pool actor computes (workspace and Lean version come from its config)."""
        return self._key_template.model_copy(update={"header": header})

    async def _open_on(self, index: int, key: Any, affinity: Any) -> LeaseInfo:
        """Open a lease on pool `index`; if the caller is cancelled meanwhile, close it when it lands.

        Cancelling the awaiting coroutine does not cancel the remote call, so without this a
        cancelled search (e.g. a sibling attempt proved the problem) would leak a worker forever.
        """
        task = asyncio.ensure_future(self.pools.call(index, "open_lease", self.owner, key, affinity))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._close_orphan(index, done))
            raise

    def _close_orphan(self, index: int, task: asyncio.Future[LeaseInfo]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.pools.handles[index].close_lease.remote(task.result().lease_id)

    async def _open(self, key: Any, affinity: Any) -> tuple[int, LeaseInfo]:
        """A lease on the pool that issued `affinity` if it answers, else on the least-loaded one."""
        died, _ = ray_failure_types()
        home = self._worker_home.get(affinity) if affinity is not None else None
        opened: tuple[int, LeaseInfo] | None = None
        if home is not None and home not in self.pools.dead:
            with contextlib.suppress(*died):  # dead or restarting: `route` below sorts out which
                opened = home, await self._open_on(home, key, affinity)
        if opened is None:

            async def open_on(index: int) -> tuple[int, LeaseInfo]:
                # affinity names a worker of another pool (or of an earlier life): drop it
                return index, await self._open_on(index, key, None)

            opened = await route(self.pools, open_on, on_exhausted=_pool_exhausted)
        self._worker_home[opened[1].worker] = opened[0]
        return opened

    @contextlib.asynccontextmanager
    async def lease(self, key: Any, *, affinity: Any | None = None) -> AsyncIterator[RemoteLease]:
        lease = RemoteLease(self, key, *await self._open(key, affinity))
        try:
            yield lease
        finally:
            # Shielded: a cancelled search still gives its worker back.
            closing = asyncio.ensure_future(self.pools.call(lease.index, "close_lease", lease.lease_id))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(closing)

    async def stats(self) -> list[Any]:
        """Pool statistics of every alive pool actor (async here, unlike `LeanPool.stats`)."""
        return [await self.pools.call(i, "stats") for i in self.pools.alive]


# ---------------------------------------------------------------------------------------------
# Jobs on other prover agents
# ---------------------------------------------------------------------------------------------


def _agents_exhausted(last: BaseException | None) -> Exception:
    return RunError(f"every prover agent a job could run on is dead (last error: {first_line(last)})")


class RayJobRunner:
    """`JobRunner` over the run's prover agents: a job goes to the least-busy one.

    Agents are looked up by their Ray name on first use (so an agent that restarted, and lost
    what it was told at start, finds its peers again). A job whose agent dies is sent to the
    next one (`route`); jobs are idempotent by contract, and the caller records their results.
    """

    def __init__(self, agent_names: Sequence[str], *, unavailable_wait: float = 60.0) -> None:
        self.agent_names = tuple(agent_names)
        self._unavailable_wait = unavailable_wait
        self._agents: ActorSet | None = None

    def _actor_set(self) -> ActorSet:
        if self._agents is None:
            import ray

            found = []
            for name in self.agent_names:
                with contextlib.suppress(ValueError):  # never created, or dead for good
                    found.append((ray.get_actor(name), name))
            if not found:
                raise _agents_exhausted(None)
            self._agents = ActorSet([h for h, _ in found], [n for _, n in found])
        return self._agents

    async def run(self, job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await call_any(
            self._actor_set(), "call_with_context", job, *args,
            on_exhausted=_agents_exhausted, unavailable_wait=self._unavailable_wait,
        )


# ---------------------------------------------------------------------------------------------
# Proof cache
# ---------------------------------------------------------------------------------------------


def _cache_exhausted(last: BaseException | None) -> Exception:
    return PoolClosed(f"the proof-cache actor is dead (last error: {first_line(last)})")


PROOF_CACHE_METHODS: tuple[str, ...] = (
    *sorted(
        name
        for name, member in vars(ProofCache).items()
        if not name.startswith("_") and name != "close" and inspect.iscoroutinefunction(member)
    ),
    *sorted(ProofCache.__abstractmethods__),
)
"""What the proof-cache actor serves: the public async API (lookup, publish_proof, publish_dead,
retract, stats, ...) and the storage hooks, read from `ProofCache` so new methods follow."""


class RayProofCacheProxy(ProofCache):
    """The `ProofCache` interface served by the proof-cache actor.

    Every public method and storage hook is forwarded whole (generated from `ProofCache`, so the
    proxy keeps up with the interface), hence `stats()` are the cluster-wide figures of the actor's
    cache, not this agent's share.
    """

    def __init__(self, cache: ActorHandle) -> None:
        super().__init__()
        self._actors = ActorSet([cache], ["proof-cache"])

    async def _call(self, method: str, *args: Any) -> Any:
        return await call_any(self._actors, "call", method, *args, on_exhausted=_cache_exhausted)

    async def publish_proof(self, key: CacheKey, tactics: Sequence[str]) -> None:
        if not tactics:
            raise ValueError("publish_proof: an empty tactic script proves nothing")
        await self._call("publish_proof", key, tuple(tactics))


def _forwarder(name: str) -> Callable[..., Awaitable[Any]]:
    async def method(self: RayProofCacheProxy, *args: Any) -> Any:
        return await self._call(name, *(tuple(a) if isinstance(a, list) else a for a in args))

    method.__name__ = name
    method.__doc__ = f"Forwarded to the proof-cache actor's `{name}`."
    return method


for _name in PROOF_CACHE_METHODS:
    if _name not in vars(RayProofCacheProxy):
        setattr(RayProofCacheProxy, _name, _forwarder(_name))
RayProofCacheProxy.__abstractmethods__ = frozenset()
