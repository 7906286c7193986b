"""Ray actors that wrap the domain objects; no proving logic lives here.

Each class is a plain Python class (usable and testable in-process); `remote_class(cls)` turns it
into a Ray actor class and the driver applies resources and fault-tolerance options. Every public
method returns a `Reply` (value or typed `RemoteFailure`, see `proxies.py`), so exceptions cross
the process boundary as data and come back as the same `prover.errors` type.

- `LLMActor`: one per GPU group; owns `make_sampler(config.sampler)` (e.g. the in-process vLLM
  engine), which batches every agent's requests.
- `LeanPoolActor`: one (or a few) per node; owns a `LeanPool` sized from the node and a
  `ProofChecker`; serves `check` and holds worker leases open for step-level search.
- `ProofCacheActor`: fronts one `ProofCache` (SQLite on the driver's node, or memory).
- `ProverAgentActor`: runs the unchanged strategies from `prover.search` with a
  `StrategyContext` made of proxies to the actors above, streaming attempts back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from prover.cluster.proxies import (
    PROOF_CACHE_METHODS,
    ActorHandle,
    ActorSet,
    AgentEvent,
    LeaseInfo,
    LeaseNotOpen,
    RayCheckerProxy,
    RayJobRunner,
    RayPoolProxy,
    RayProofCacheProxy,
    RaySamplerProxy,
    RemoteFailure,
    Reply,
    serve,
)
from prover.config import ProverConfig
from prover.errors import StaleHandleError
from prover.eval.recheck import prove_problem
from prover.search.base import DoneAttempts, Services, Strategy, StrategyContext
from prover.types import Attempt, GenRequest, Problem

log = logging.getLogger(__name__)


@functools.cache
def remote_class(cls: type) -> Any:
    """The Ray actor class for one of the classes below (created once per process)."""
    return ray.remote(cls)


# ---------------------------------------------------------------------------------------------
# LLM engine
# ---------------------------------------------------------------------------------------------


class LLMActor:
    """One sampling engine shared by every agent (async actor: requests overlap and batch).

    It serves the sampler settings of model role `role` (`config.sampler_for(role)`); roles whose
    settings name the same engine share its actors.
    """

    def __init__(self, config: ProverConfig, name: str = "llm", role: str = "prover") -> None:
        from prover.llm.base import make_sampler

        self.name = name
        self._sampler = make_sampler(config.sampler_for(role))

    async def generate(self, request: GenRequest) -> Reply:
        return await serve(self.name, self._sampler.generate(request))

    async def stats(self) -> Reply:
        return Reply(value=self._sampler.stats.model_copy())

    async def describe(self) -> Reply:
        return Reply(value=self._sampler.describe())

    async def ready(self) -> Reply:
        return Reply(value=self.name)

    async def close(self) -> Reply:
        return await serve(self.name, self._sampler.close())


# ---------------------------------------------------------------------------------------------
# Lean pool + checker
# ---------------------------------------------------------------------------------------------


@dataclass
class _OpenLease:
    owner: str
    manager: Any
    lease: Any
    ops: set[asyncio.Task[Any]] = field(default_factory=set)
    """Requests running on the lease; cancelled before the worker goes back to the pool."""


GENERATION_STRIDE = 1_000_000
"""Handles leave a pool actor with `generation = incarnation * STRIDE + generation`."""


class HandleScope:
    """Makes worker handles of one pool-actor incarnation distinct from every other one.

    A restarted actor builds a fresh `LeanPool` whose first worker is again `WorkerRef(0, 0)`, so a
    search holding handles from before the restart could not tell that they are dead. Handles
    therefore leave the actor with the incarnation folded into `generation`; a handle from another
    incarnation coming back raises `StaleHandleError`, exactly like a handle of a restarted worker,
    and the search re-materialises its state.
    """

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation

    def out(self, value: Any) -> Any:
        from prover.lean_env.results import (
            EnvHandle,
            ProofStateHandle,
            ReplResult,
            WorkerRef,
        )

        if isinstance(value, WorkerRef):
            return value.model_copy(update={"generation": self.incarnation * GENERATION_STRIDE + value.generation})
        if isinstance(value, (EnvHandle, ProofStateHandle)):
            return value.model_copy(update={"worker": self.out(value.worker)})
        if isinstance(value, ReplResult):
            return value.model_copy(
                update={
                    "env": self.out(value.env),
                    "proof_state": self.out(value.proof_state),
                    "sorry_states": tuple(self.out(h) for h in value.sorry_states),
                }
            )
        return value

    def into(self, value: Any) -> Any:
        """The pool's own handle for a handle this incarnation issued (StaleHandleError otherwise)."""
        from prover.lean_env.results import EnvHandle, ProofStateHandle, WorkerRef

        if isinstance(value, WorkerRef):
            incarnation, generation = divmod(value.generation, GENERATION_STRIDE)
            if incarnation != self.incarnation:
                raise StaleHandleError(f"{value} belongs to an earlier life of this Lean pool actor (it restarted)")
            return value.model_copy(update={"generation": generation})
        if isinstance(value, (EnvHandle, ProofStateHandle)):
            return value.model_copy(update={"worker": self.into(value.worker)})
        return value


class LeanPoolActor:
    """A node's `LeanPool` and `ProofChecker`; leases are held here on behalf of remote searches."""

    def __init__(self, config: ProverConfig, workers: int, name: str = "lean-pool") -> None:
        from prover.lean_env.checker import ProofChecker
        from prover.lean_env.pool import LeanPool

        self.name = name
        lean = config.lean.model_copy(update={"workers": workers})
        self._pool = LeanPool(lean)
        self._checker = ProofChecker(self._pool, config.checker, cache=_verdict_cache(config))
        self._leases: dict[str, _OpenLease] = {}
        self._scope = HandleScope(secrets.randbelow(2**31 - 1) + 1)
        self._ids = itertools.count(1)
        self._started: asyncio.Task[Any] | None = None

    async def _ensure_started(self) -> None:
        """Enter the pool's async context once (actor __init__ cannot await)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._pool.__aenter__())
        await asyncio.shield(self._started)

    async def ready(self) -> Reply:
        return await serve(self.name, self._ready())

    async def _ready(self) -> str:
        await self._ensure_started()
        return self.name

    async def check(self, problem: Problem, proof: str, **kwargs: Any) -> Reply:
        return await serve(self.name, self._check(problem, proof, **kwargs))

    async def _check(self, problem: Problem, proof: str, **kwargs: Any) -> Any:
        await self._ensure_started()
        return await self._checker.check(problem, proof, **kwargs)

    async def check_sketch(self, problem: Problem, proof: str, **kwargs: Any) -> Reply:
        return await serve(self.name, self._check_sketch(problem, proof, **kwargs))

    async def _check_sketch(self, problem: Problem, proof: str, **kwargs: Any) -> Any:
        await self._ensure_started()
        return await self._checker.check_sketch(problem, proof, **kwargs)

    async def env_key(self, header: str = "") -> Reply:
        return Reply(value=self._pool.env_key(header))

    async def stats(self) -> Reply:
        return Reply(value=self._pool.stats())

    # -- leases ------------------------------------------------------------------------------

    async def open_lease(self, owner: str, key: Any, affinity: Any | None = None) -> Reply:
        return await serve(self.name, self._open_lease(owner, key, affinity))

    async def _open_lease(self, owner: str, key: Any, affinity: Any | None) -> LeaseInfo:
        await self._ensure_started()
        try:
            affinity = self._scope.into(affinity)
        except StaleHandleError:
            affinity = None  # that worker died with the previous incarnation: any worker will do
        manager = self._pool.lease(key, affinity=affinity)
        lease = await manager.__aenter__()
        # Unique across restarts: a retried call from before a restart must not hit a new lease.
        lease_id = f"{self._scope.incarnation}-{next(self._ids)}"
        self._leases[lease_id] = _OpenLease(owner, manager, lease)
        return LeaseInfo(
            lease_id=lease_id, worker=self._scope.out(lease.worker), header_env=self._scope.out(lease.header_env)
        )

    def _held(self, lease_id: str) -> _OpenLease:
        held = self._leases.get(lease_id)
        if held is None:
            raise LeaseNotOpen(
                f"{self.name}: lease {lease_id} is not open here (the pool actor restarted, or it was closed)"
            )
        return held

    async def lease_command(self, lease_id: str, cmd: str, **kwargs: Any) -> Reply:
        return await serve(self.name, self._lease_call(lease_id, "command", cmd, **kwargs))

    async def lease_tactic(self, lease_id: str, state: Any, tactic: str, **kwargs: Any) -> Reply:
        return await serve(self.name, self._lease_call(lease_id, "tactic", state, tactic, **kwargs))

    async def _lease_call(self, lease_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
        held = self._held(lease_id)
        args = tuple(self._scope.into(a) for a in args)
        kwargs = {k: self._scope.into(v) for k, v in kwargs.items()}
        op = asyncio.ensure_future(getattr(held.lease, method)(*args, **kwargs))
        held.ops.add(op)
        try:
            return self._scope.out(await op)
        finally:
            held.ops.discard(op)

    async def close_lease(self, lease_id: str) -> Reply:
        return await serve(self.name, self._close_lease(lease_id))

    async def _close_lease(self, lease_id: str) -> None:
        held = self._leases.pop(lease_id, None)
        if held is None:
            return
        # A remote client that gave up (cancelled) may still have a request running here: stop it
        # first, as cancelling in-process would, so the worker is never used by two leases at once.
        for op in list(held.ops):
            op.cancel()
        await asyncio.gather(*held.ops, return_exceptions=True)
        await held.manager.__aexit__(None, None, None)

    async def release_owner(self, owner: str) -> Reply:
        """Close every lease of `owner` (an agent that restarted and forgot them)."""
        return await serve(self.name, self._release_owner(owner))

    async def _release_owner(self, owner: str) -> int:
        ids = [i for i, held in self._leases.items() if held.owner == owner]
        for lease_id in ids:
            await self._close_lease(lease_id)
        return len(ids)

    async def close(self) -> Reply:
        return await serve(self.name, self._close())

    async def _close(self) -> None:
        for lease_id in list(self._leases):
            with contextlib.suppress(Exception):
                await self._close_lease(lease_id)
        if self._started is not None:
            await self._pool.__aexit__(None, None, None)


def _verdict_cache(config: ProverConfig) -> Any | None:
    """This node's verdict cache (SQLite at `cache.path` on the node's disk), None when disabled."""
    from prover.lean_env.verdict_cache import VerdictCache

    return VerdictCache.from_config(config.cache)


# ---------------------------------------------------------------------------------------------
# Proof cache
# ---------------------------------------------------------------------------------------------

class ProofCacheActor:
    """The cluster-wide `ProofCache`: SQLite on the driver's node when `path` is given, else memory."""

    def __init__(self, path: Path | str | None = None, name: str = "proof-cache") -> None:
        from prover.search.proof_cache import MemoryProofCache, SqliteProofCache

        self.name = name
        self._cache = SqliteProofCache(path) if path is not None else MemoryProofCache()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Reply:
        if method not in PROOF_CACHE_METHODS:
            return Reply(failure=RemoteFailure(error_type="ValueError", message=f"no cache method {method!r}"))
        return await serve(self.name, getattr(self._cache, method)(*args, **kwargs))

    async def ready(self) -> Reply:
        return Reply(value=self.name)

    async def close(self) -> Reply:
        return await serve(self.name, self._cache.close())


# ---------------------------------------------------------------------------------------------
# Prover agent
# ---------------------------------------------------------------------------------------------


@dataclass
class ClusterServices:
    """Handles of the shared actors, as passed to every agent."""

    llm_by_role: dict[str, list[ActorHandle]]
    """LLM engine actors serving each model role of the run's strategy."""
    pools_by_node: dict[str, list[ActorHandle]]
    """Lean pool actors per Ray node id."""
    proof_cache: ActorHandle | None = None
    env_key_template: Any = None
    """`EnvKey` with an empty header, as the pool actors compute it (for `RayPoolProxy.env_key`)."""
    agent_names: tuple[str, ...] = ()
    """Ray names of the run's prover agents (named, so a restarted agent finds its peers again):
    strategies send jobs to them through `ctx.jobs`."""

    @property
    def llm(self) -> list[ActorHandle]:
        """Every LLM engine actor (each once)."""
        seen: dict[int, ActorHandle] = {}
        for handles in self.llm_by_role.values():
            for handle in handles:
                seen.setdefault(id(handle), handle)
        return list(seen.values())

    def pool_order(self, node_id: str | None) -> list[ActorHandle]:
        """Pools on `node_id` first (their REPLs are local; used while one is alive), then the
        others for fail-over."""
        local = self.pools_by_node.get(node_id or "", [])
        others = [h for node, hs in self.pools_by_node.items() if node != node_id for h in hs]
        return [*local, *others]


def agent_services(config: ProverConfig, services: ClusterServices, owner: str, node_id: str | None) -> Services:
    """The `Services` of a prover agent: proxies to the cluster's actors (pools on its own node
    first). Every model role is served by the LLM actors; the Lean session runs here, over the
    pool actors, so goal states stay sticky to the pool actor that holds them."""
    from prover.lean_env.retry import RetryPolicy
    from prover.lean_env.session import PoolLeanSession
    from prover.search.services import lean_session

    pools = services.pool_order(node_id)
    local = len(services.pools_by_node.get(node_id or "", []))
    pool_set = ActorSet(pools, [f"lean-pool-{i}" for i in range(len(pools))], local=local)
    cache = RayProofCacheProxy(services.proof_cache) if services.proof_cache is not None else None
    proxies: dict[int, RaySamplerProxy] = {}
    for handles in services.llm_by_role.values():
        proxies.setdefault(id(handles), RaySamplerProxy(handles))
    return Services(
        samplers={role: proxies[id(handles)] for role, handles in services.llm_by_role.items()},
        checker=RayCheckerProxy(pool_set),
        lean=lean_session(
            config,
            PoolLeanSession(RayPoolProxy(pool_set, services.env_key_template, owner), retry=RetryPolicy.from_config(config.lean)),
        ),
        proof_cache=cache,
        jobs=RayJobRunner(services.agent_names) if services.agent_names else None,
    )


class ProverAgentActor:
    """Runs one strategy on problems the driver sends; attempts stream back as they finish."""

    def __init__(self, config: ProverConfig, services: ClusterServices, name: str = "agent") -> None:
        from prover.eval.run import make_strategy

        self.name = name
        self._config = config
        self._services = services
        node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        self._ctx = StrategyContext.from_services(config, agent_services(config, services, name, node_id))
        self._strategy = make_strategy(config)
        self._released: asyncio.Future[None] | None = None

    async def _release_stale_leases(self) -> None:
        """After a restart, leases this agent held in its previous life are garbage: free them
        (once per life, before any new lease is opened)."""
        if self._released is None:
            self._released = asyncio.ensure_future(self._release_all())
        await asyncio.shield(self._released)

    async def _release_all(self) -> None:
        for handle in (h for hs in self._services.pools_by_node.values() for h in hs):
            with contextlib.suppress(Exception):
                await handle.release_owner.remote(self.name)

    async def ready(self) -> Reply:
        return Reply(value=self.name)

    @ray.method(max_task_retries=0)  # a retry would redo recorded attempts: the driver re-queues
    async def prove(self, problem: Problem, done: Sequence[Attempt] = ()) -> AsyncIterator[AgentEvent]:
        """Stream `attempt` events, then one `finished` or `failed` event."""
        await self._release_stale_leases()
        async for event in run_streaming(self._strategy, problem, self._ctx, done, self.name):
            yield event

    @ray.method(max_task_retries=0)
    async def call_with_context(self, fn: Any, *args: Any) -> Reply:
        """Run `await fn(strategy, ctx, *args)` here (collect jobs reuse the agent's services)."""
        await self._release_stale_leases()
        return await serve(self.name, fn(self._strategy, self._ctx, *args))


async def run_streaming(
    strategy: Strategy, problem: Problem, ctx: StrategyContext, done: Sequence[Attempt], origin: str
) -> AsyncIterator[AgentEvent]:
    """Run `strategy.prove` and yield its attempts as events while it runs."""
    queue: asyncio.Queue[AgentEvent] = asyncio.Queue()

    async def record(attempt: Attempt) -> None:
        await queue.put(AgentEvent(kind="attempt", attempt=attempt))

    async def run() -> None:
        try:
            await prove_problem(strategy, problem, ctx, record, DoneAttempts(done))
        except Exception as exc:  # noqa: BLE001 - sent to the driver as a typed failure
            await queue.put(AgentEvent(kind="failed", failure=RemoteFailure.from_exception(exc, origin)))
        else:
            await queue.put(AgentEvent(kind="finished"))

    task = asyncio.ensure_future(run())
    try:
        while True:
            event = await queue.get()
            yield event
            if event.kind != "attempt":
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
