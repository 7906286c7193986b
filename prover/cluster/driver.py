"""Drive an eval (or a collect job) on a Ray cluster; the run directory is a local run's.

    driver (this process)                              cluster
    ---------------------                              -------
    ResultsStore <- attempts <- stream --------------- ProverAgentActor x num_agents
       |                                                 | StrategyContext of proxies
    scheduler: problems -> agents (<= k in flight each)  +--> LLMActor x num_llm_actors (GPU groups)
    re-queue on agent / pool death, dedupe by key        +--> LeanPoolActor per node (+ checker)
                                                         +--> ProofCacheActor (driver's node)

The run driver (`prover.eval.run.aevaluate`) owns the run directory, resume and report for local
and Ray runs alike; with `ray.enabled` it hands the pending problems to `RayExecutor` here, which
only decides where the strategies run.

Fault tolerance, on purpose:
- every actor gets `max_restarts` from `RayConfig`; idempotent calls (generate, check, cache
  operations, lease operations) get `max_task_retries`, so Ray re-sends them to the restarted actor;
- the `prove` stream of an agent is never retried by Ray (it would redo recorded attempts):
  when an agent or the Lean pool it uses dies, the driver re-queues the problem with the attempts
  already recorded as `done`, up to `max_task_retries + 1` tries per problem;
- a whole node can die: agents are placed round the nodes with soft affinity, so Ray restarts
  the dead node's agents on live nodes (the driver waits for them, or retires them and the live
  agents take their problems); its Lean pool cannot come back (node-affine) and every proxy
  treats it as dead and fails over to the pools of other nodes;
- an LLM engine death is absorbed by the sampler proxy while another engine is alive; when none
  is, the strategy fails with `SamplerUnavailable` and the driver stops the run with that message
  (everything recorded stays; `--resume` continues).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.cluster.local_ray import init_local_ray
from prover.cluster.proxies import first_line, ray_failure_types
from prover.config import ProverConfig
from prover.errors import ConfigError, DataError, RunError, SamplerUnavailable
from prover.eval.metrics import Summary
from prover.eval.run import Executor, RunState, aevaluate, run_sync
from prover.registry import get_strategy_spec
from prover.search.base import DoneAttempts
from prover.types import Attempt, Problem

log = logging.getLogger(__name__)

DEFAULT_REPL_MEMORY_MB = 12_288
"""Planning figure for one Mathlib REPL when no memory limit is configured (10-16 GB observed)."""
LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024
"""Object store of a private local cluster: only small pydantic messages travel through it."""
AGENT_MEMORY_BYTES = 64 * 1024 * 1024
"""Memory an agent reserves: Ray places an actor whose resource request is empty on a random
node whatever its scheduling strategy (only a hard node affinity is kept, ray#25360), so agents
ask for a little memory to get their soft affinity to a Lean-pool node honoured."""
RESTART_WAIT = 120.0
"""Seconds to wait for a restarted agent to answer before giving up on it."""


# ---------------------------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def ray_session(config: ProverConfig, *, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to `config.ray.address`, or start a local cluster listening on 127.0.0.1 only.

    An already initialised Ray (a test fixture, a notebook) is used as is and left running.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    if config.ray.address:
        ray.init(address=config.ray.address, log_to_driver=False)
    else:
        init_local_ray(
            num_cpus=num_cpus or os.cpu_count() or 1,
            object_store_memory=config.ray.object_store_memory or LOCAL_OBJECT_STORE_BYTES,
            log_to_driver=False,
        )
    try:
        yield
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------------
# Sizing and starting the actors
# ---------------------------------------------------------------------------------------------


def repl_memory_mb(config: ProverConfig) -> int:
    """Memory one REPL may use before it is recycled or killed (the pool's own limits)."""
    return config.lean.rss_limit_mb or config.lean.memory_limit_mb or DEFAULT_REPL_MEMORY_MB


def pool_workers_for_node(cpus: float, memory_bytes: float, config: ProverConfig) -> int:
    """REPL workers of one Lean pool actor on a node: ~1 per core, bounded by memory.

    The node's CPUs and memory are split over `ray.lean_pools_per_node` pools. Always at least 1.
    `lean.workers` is not used on Ray: its default describes the driver's machine, not the node.
    """
    pools = config.ray.lean_pools_per_node
    by_cpu = math.floor(cpus / pools)
    by_memory = math.floor(memory_bytes / (repl_memory_mb(config) * 1024 * 1024) / pools)
    return max(1, min(by_cpu, by_memory))


@dataclass
class ClusterHandles:
    """Every actor of a run (for shutdown, tests and benchmarks)."""

    services: Any  # actors.ClusterServices
    agents: list[Any]
    pools: list[Any]
    pool_workers: list[int] = field(default_factory=list)

    @property
    def llm(self) -> list[Any]:
        return self.services.llm

    def all(self) -> list[Any]:
        cache = [self.services.proof_cache] if self.services.proof_cache is not None else []
        return [*self.agents, *self.llm, *self.pools, *cache]


def _fault_options(config: ProverConfig) -> dict[str, Any]:
    return {"max_restarts": config.ray.max_restarts, "max_task_retries": config.ray.max_task_retries}


def proof_cache_path(config: ProverConfig) -> Path | None:
    """Where the cluster's proof cache lives: SQLite at an explicit `cache.path` (persists across
    runs), else None = memory for this run only (what a local best-first run uses)."""
    if config.cache.enabled and config.cache.path is not None:
        return config.cache.path
    return None


def start_cluster(config: ProverConfig, *, num_agents: int | None = None) -> ClusterHandles:
    """Create LLM, Lean pool, proof-cache and agent actors and wait until they answer.

    Actors reserve no Ray CPUs: Lean pools are sized from each node's CPUs themselves (their REPL
    processes are outside Ray's accounting), and agents and engines are I/O-bound coordinators.
    LLM actors reserve `gpus_per_llm_actor` GPUs, so Ray places one per GPU group.
    """
    import ray

    from prover.cluster.proxies import unwrap

    check_gpus(config, ray.cluster_resources().get("GPU", 0.0))
    fault = _fault_options(config)
    created: list[Any] = []
    try:
        handles = _create_actors(config, num_agents, fault, created)
        for reply in ray.get([h.ready.remote() for h in handles.all()]):
            unwrap(reply)
    except BaseException:
        for handle in created:  # a partly started cluster must not outlive the failed run
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
        raise
    return handles


@dataclass(frozen=True)
class EnginePlan:
    """The LLM actors serving some model roles: `count` actors of `gpus` GPUs each."""

    roles: tuple[str, ...]
    count: int
    gpus: float


def plan_engines(config: ProverConfig) -> list[EnginePlan]:
    """One engine group per distinct engine among the strategy's roles (`engine_key`).

    An in-process vLLM engine gets `ray.num_llm_actors` actors of `ray.gpus_per_llm_actor` GPUs
    each; a role served elsewhere (an OpenAI-compatible server, a script) one actor without GPUs.
    """
    from prover.search.services import engine_key

    groups: dict[str, list[str]] = {}
    for role in get_strategy_spec(config.eval.strategy).roles:
        groups.setdefault(engine_key(config.sampler_for(role)), []).append(role)
    plans = []
    for roles in groups.values():
        local = config.sampler_for(roles[0]).backend == "vllm"
        count = config.ray.num_llm_actors if local else 1
        plans.append(EnginePlan(tuple(roles), count, config.ray.gpus_per_llm_actor if local else 0.0))
    return plans


def check_gpus(config: ProverConfig, available: float) -> None:
    """Refuse up front what Ray would otherwise leave pending forever: more engine GPUs than exist."""
    needed = sum(plan.count * plan.gpus for plan in plan_engines(config))
    if needed > available:
        raise ConfigError(
            f"{config.ray.num_llm_actors} LLM actor(s) x {config.ray.gpus_per_llm_actor} GPU(s) per vLLM engine need "
            f"{needed:g} GPUs but the cluster has {available:g}; lower ray.num_llm_actors or ray.gpus_per_llm_actor "
            "(0 on machines without GPUs)"
        )


def _create_actors(
    config: ProverConfig, num_agents: int | None, fault: dict[str, Any], created: list[Any]
) -> ClusterHandles:
    """Create every actor of a run; each handle is appended to `created` as soon as it exists."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from prover.cluster.actors import (
        ClusterServices,
        LeanPoolActor,
        ProofCacheActor,
        ProverAgentActor,
        remote_class,
    )
    from prover.cluster.proxies import unwrap

    spec = get_strategy_spec(config.eval.strategy)
    llm_by_role = _create_llm_actors(config, fault, created)
    pools_by_node: dict[str, list[Any]] = {}
    pools: list[Any] = []
    workers: list[int] = []
    for node in lean_nodes(ray.nodes()):
        resources = node.get("Resources", {})
        size = pool_workers_for_node(resources.get("CPU", 1), resources.get("memory", 2**34), config)
        for j in range(config.ray.lean_pools_per_node):
            handle = (
                remote_class(LeanPoolActor)
                .options(
                    num_cpus=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                    **fault,
                )
                .remote(config, size, f"lean-pool-{len(pools)}")
            )
            pools_by_node.setdefault(node["NodeID"], []).append(handle)
            pools.append(handle)
            created.append(handle)
            workers.append(size)
    cache = None
    if spec.uses_proof_cache:
        here = ray.get_runtime_context().get_node_id()
        cache = (
            remote_class(ProofCacheActor)
            .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False), **fault)
            .remote(proof_cache_path(config))
        )
        created.append(cache)
    template = unwrap(ray.get(pools[0].env_key.remote("")))
    # Agents go round the nodes with Lean pools (each uses its own node's pool first); the affinity
    # is soft, so an agent whose node dies is restarted on a live one.
    placements = agent_nodes(list(pools_by_node), num_agents or config.ray.num_agents)
    run_tag = secrets.token_hex(4)  # agents of two runs on one cluster never share a name
    names = tuple(f"prover-agent-{run_tag}-{i}" for i in range(len(placements)))
    services = ClusterServices(
        llm_by_role=llm_by_role, pools_by_node=pools_by_node, proof_cache=cache, env_key_template=template,
        agent_names=names,
    )
    agents = [
        remote_class(ProverAgentActor)
        .options(
            num_cpus=0,
            memory=AGENT_MEMORY_BYTES,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True),
            name=name,
            **fault,
        )
        .remote(config, services, f"agent-{i}")
        for i, (name, node) in enumerate(zip(names, placements, strict=True))
    ]
    created.extend(agents)
    return ClusterHandles(services=services, agents=agents, pools=pools, pool_workers=workers)


def lean_nodes(nodes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alive nodes that get Lean pools: those offering CPUs (a head started with
    `num_cpus=0` is kept free for the driver), or every alive node if none does."""
    alive = [n for n in nodes if n.get("Alive")]
    return [n for n in alive if n.get("Resources", {}).get("CPU", 0) > 0] or alive


def agent_nodes(pool_nodes: Sequence[str], num_agents: int) -> list[str]:
    """Where the agents go: round-robin over the nodes with Lean pools, at least one per node.

    An agent sends its checks and leases to its own node's pool (`ActorSet.local`), so a pool
    node without an agent would stay idle; agents are light coordinators (no CPUs reserved)."""
    count = max(num_agents, len(pool_nodes))
    return [pool_nodes[i % len(pool_nodes)] for i in range(count)]


def _create_llm_actors(config: ProverConfig, fault: dict[str, Any], created: list[Any]) -> dict[str, list[Any]]:
    """The LLM engine actors of `plan_engines`, by the model role they serve."""
    from prover.cluster.actors import LLMActor, remote_class

    by_role: dict[str, list[Any]] = {}
    for plan in plan_engines(config):
        role = plan.roles[0]
        actors = [
            remote_class(LLMActor).options(num_cpus=0, num_gpus=plan.gpus, **fault).remote(config, f"llm-{role}-{i}", role)
            for i in range(plan.count)
        ]
        created.extend(actors)
        by_role.update({r: actors for r in plan.roles})
    return by_role


def stop_cluster(handles: ClusterHandles) -> None:
    """Close pools and engines politely, then kill every actor of the run."""
    import ray

    closing = [h.close.remote() for h in [*handles.pools, *handles.llm]]
    with contextlib.suppress(Exception):
        ray.wait(closing, num_returns=len(closing), timeout=30)
    for handle in handles.all():
        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)


# ---------------------------------------------------------------------------------------------
# Scheduling with back-pressure and re-queueing
# ---------------------------------------------------------------------------------------------


class AgentLost(Exception):
    """The agent (or a service it needed) died while working on a problem: re-queue it."""


RunOne = Callable[[Any, Problem], Awaitable[None]]


async def schedule(
    problems: Sequence[Problem],
    agents: Sequence[Any],
    run_one: RunOne,
    *,
    per_agent: int,
    max_tries: int,
    ping: Callable[[Any], Awaitable[Any]] | None = None,
) -> None:
    """Run every problem on some agent, at most `per_agent` at a time on each.

    `run_one` raises `AgentLost` to re-queue a problem (counted against `max_tries`); any other
    exception stops the run. An agent that does not answer `ping` after a loss is retired.
    """
    queue: deque[Problem] = deque(problems)
    tries: dict[str, int] = {}
    retired: set[int] = set()

    async def slot(index: int, agent: Any) -> None:
        while queue and index not in retired:
            problem = queue.popleft()
            try:
                await run_one(agent, problem)
            except AgentLost as exc:
                tries[problem.name] = tries.get(problem.name, 0) + 1
                if tries[problem.name] >= max_tries:
                    raise RunError(
                        f"problem {problem.name!r} was lost {tries[problem.name]} times "
                        f"(last: {exc}); giving up (raise ray.max_task_retries to allow more)"
                    ) from exc
                log.warning("re-queueing %s after: %s", problem.name, exc)
                queue.append(problem)
                if ping is not None and not await _alive(ping, agent):
                    retired.add(index)

    try:
        async with asyncio.TaskGroup() as group:
            for index, agent in enumerate(agents):
                for _ in range(per_agent):
                    group.create_task(slot(index, agent))
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    if queue:
        raise RunError(
            f"every prover agent died; {len(queue)} problem(s) not finished "
            f"({', '.join(p.name for p in list(queue)[:5])}); the run can be resumed"
        )


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first real error of a TaskGroup failure (the others are cancellations it caused)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


async def _alive(ping: Callable[[Any], Awaitable[Any]], agent: Any) -> bool:
    """Whether `agent` answers within RESTART_WAIT. One that is only unavailable (its node died
    and Ray has not restarted it elsewhere yet) is asked again until then."""
    _, unavailable = ray_failure_types()
    deadline = time.monotonic() + RESTART_WAIT
    while True:
        try:
            await asyncio.wait_for(ping(agent), timeout=max(0.1, deadline - time.monotonic()))
            return True
        except unavailable as exc:
            if time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                continue
            log.warning("retiring an agent that stayed unavailable: %s", first_line(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any other failure means the agent is gone
            log.warning("retiring an agent that does not answer: %s", first_line(exc))
            return False


def per_agent_in_flight(config: ProverConfig, agents: int) -> int:
    """Problems each agent works on at once: `eval.max_problems_in_flight` split over agents."""
    return max(1, math.ceil(config.eval.max_problems_in_flight / max(agents, 1)))


def failure_to_exception(failure: Any, problem: Problem) -> Exception:
    """Map an agent's failure event: engine gone -> stop; Lean trouble -> re-queue; bug -> re-queue."""
    exc = failure.to_exception()
    if isinstance(exc, SamplerUnavailable):
        return SamplerUnavailable(f"while proving {problem.name!r} on {failure.origin}: {exc}")
    if isinstance(exc, (ConfigError, DataError)):
        return exc  # the same on every agent: stop
    return AgentLost(f"{failure.origin}: {failure.error_type}: {failure.message}")


# ---------------------------------------------------------------------------------------------
# Eval
# ---------------------------------------------------------------------------------------------


@dataclass
class RunHooks:
    """Optional callbacks (tests use them to kill actors mid-run)."""

    on_cluster: Callable[[ClusterHandles], None] | None = None
    on_attempt: Callable[[Attempt], Awaitable[None] | None] | None = None


def run_eval_on_ray(
    config: ProverConfig,
    problems: Sequence[Problem],
    out_dir: Path | str,
    *,
    resume: bool | None = None,
    hooks: RunHooks | None = None,
) -> Summary:
    """Evaluate `problems` on Ray into `out_dir`; returns the report's `Summary`.

    The same as `prover.api.evaluate` with `ray.enabled` set (same run directory, resume, report).

    Raises:
        SamplerUnavailable: no LLM engine is left (the run is resumable).
        RunError: the run directory cannot be used, or every agent died.
    """
    config = config.with_overrides({"ray.enabled": True})
    run = aevaluate(problems, config, out=out_dir, resume=resume, progress=False, executor=RayExecutor(hooks))
    return run_sync(run).summary


class RayExecutor(Executor):
    """Runs a run's pending problems on the agents of a Ray cluster (started for the run, or at
    `ray.address`); attempts stream back into the run's store as they finish."""

    needs_local_lean = False  # each node's Lean pool actor checks its own setup

    def __init__(self, hooks: RunHooks | None = None) -> None:
        self.hooks = hooks or RunHooks()

    async def run(self, state: RunState) -> None:
        todo = state.pending()
        state.stats.start(state.problems, todo, state.done)
        if not todo:
            return
        state.progress.update(force=True)
        try:
            await run_on_ray(state.config, todo, state.store.done, _record_with_progress(state, todo), self.hooks)
        finally:
            state.progress.close()


def _record_with_progress(state: RunState, todo: Sequence[Problem]) -> Callable[[Attempt], Awaitable[None]]:
    """`state.record` that also feeds the progress line from the attempts streaming in from Ray
    (the in-process pipeline counts inside its own sampler, checker and problem loop)."""
    stats = state.stats
    by_name = {p.name: p for p in todo}
    solved = {p.name for p in todo if state.store.done(p).proved}
    stats.solved += len(solved)
    finished: set[str] = set()

    async def record_and_count(attempt: Attempt) -> None:
        await state.record(attempt)
        name = attempt.problem
        stats.samples += attempt.parent is None
        stats.checks += int(attempt.proof is not None and attempt.duplicate_of is None)
        if attempt.parent is None and attempt.verdict.proved and name not in solved:
            solved.add(name)
            stats.solved += 1
        problem = by_name.get(name)
        if problem and name not in finished and state.strategy.is_complete(problem, state.config, state.store.done(problem)):
            finished.add(name)
            stats.problems_done += 1
        state.progress.update()

    return record_and_count


async def run_on_ray(
    config: ProverConfig,
    problems: Sequence[Problem],
    done: Callable[[Problem], DoneAttempts],
    record: Callable[[Attempt], Awaitable[None]],
    hooks: RunHooks | None = None,
) -> None:
    """Prove `problems` on the cluster's agents; `record` gets every attempt as it streams in.

    `done(problem)` is read each time a problem is (re)queued, so a problem whose agent died
    resumes from the attempts recorded so far.
    """
    hooks = hooks or RunHooks()

    async def record_and_notify(attempt: Attempt) -> None:
        await record(attempt)
        if hooks.on_attempt is not None:
            outcome = hooks.on_attempt(attempt)
            if asyncio.iscoroutine(outcome):
                await outcome

    async def run_one(agent: Any, problem: Problem) -> None:
        await stream_problem(agent, problem, done(problem), record_and_notify)

    async with running_cluster(config) as handles:
        if hooks.on_cluster is not None:
            hooks.on_cluster(handles)
        await schedule_on_agents(config, handles, problems, run_one)


@contextlib.asynccontextmanager
async def running_cluster(config: ProverConfig) -> AsyncIterator[ClusterHandles]:
    """A Ray session with the run's actors started, stopped again on exit."""
    with ray_session(config):
        handles = await asyncio.to_thread(start_cluster, config)
        try:
            yield handles
        finally:
            await asyncio.to_thread(stop_cluster, handles)


async def schedule_on_agents(
    config: ProverConfig,
    handles: ClusterHandles,
    problems: Sequence[Problem],
    run_one: Callable[[Any, Problem], Awaitable[None]],
) -> None:
    await schedule(
        problems,
        handles.agents,
        run_one,
        per_agent=per_agent_in_flight(config, len(handles.agents)),
        max_tries=config.ray.max_task_retries + 1,
        ping=_ping,
    )


async def _ping(agent: Any) -> Any:
    return await agent.ready.remote()


async def stream_problem(
    agent: Any,
    problem: Problem,
    done: DoneAttempts,
    record: Callable[[Attempt], Awaitable[None]],
) -> None:
    """Run one problem on `agent`, recording attempts as they stream in."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        stream = agent.prove.remote(problem, [*done.values(), *done.nested()])
        async for ref in stream:
            event = await ref
            if event.kind == "attempt":
                await record(event.attempt)
            elif event.kind == "failed":
                raise failure_to_exception(event.failure, problem)
            else:
                return
    except RayActorError as exc:
        raise AgentLost(f"agent died while proving {problem.name!r}: {first_line(exc)}") from exc
    except RayTaskError as exc:
        raise AgentLost(f"agent task failed on {problem.name!r}: {first_line(exc)}") from exc
    raise AgentLost(f"agent stream of {problem.name!r} ended without a final event")


# ---------------------------------------------------------------------------------------------
# Collect
# ---------------------------------------------------------------------------------------------


async def collect_on_ray(
    config: ProverConfig,
    problems: Sequence[Problem],
    sink: Callable[[Any], None],
    *,
    logprobs: bool = True,
) -> None:
    """Run `collect_problem` for every problem inside the agents; `sink` gets each `ProblemRows`."""
    if not problems:
        return
    from ray.exceptions import RayActorError, RayTaskError

    from prover.cluster.collect import collect_problem

    async def run_one(agent: Any, problem: Problem) -> None:
        try:
            reply = await agent.call_with_context.remote(collect_problem, problem, logprobs)
        except (RayActorError, RayTaskError) as exc:
            raise AgentLost(f"agent died while collecting {problem.name!r}: {first_line(exc)}") from exc
        if reply.failure is not None:
            raise failure_to_exception(reply.failure, problem)
        sink(reply.value)

    async with running_cluster(config) as handles:
        await schedule_on_agents(config, handles, problems, run_one)


__all__ = [
    "AgentLost",
    "agent_nodes",
    "lean_nodes",
    "ClusterHandles",
    "RayExecutor",
    "RunHooks",
    "collect_on_ray",
    "pool_workers_for_node",
    "ray_session",
    "run_eval_on_ray",
    "run_on_ray",
    "schedule",
    "start_cluster",
    "stop_cluster",
]
