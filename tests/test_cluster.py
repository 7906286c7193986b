"""prover.cluster: proxies, scheduling, sizing (fakes) and eval on a real local Ray cluster."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import FakeActor, make_problem
from ray.exceptions import ActorDiedError, ActorUnavailableError

from prover.cluster.driver import (
    AgentLost,
    failure_to_exception,
    agent_nodes,
    lean_nodes,
    pool_workers_for_node,
    schedule,
)
from prover.cluster.local_ray import init_local_ray
from prover.cluster.proxies import (
    ActorSet,
    RayCheckerProxy,
    RaySamplerProxy,
    RemoteFailure,
    Reply,
    serve,
    unwrap,
)
from prover.config import ProverConfig
from prover.errors import PoolClosed, ReplCrashed, RunError, SamplerUnavailable
from prover.types import CheckStatus, Completion, GenRequest, GenResult, Verdict

# ---------------------------------------------------------------------------------------------
# Typed payloads
# ---------------------------------------------------------------------------------------------


async def test_serve_wraps_prover_errors_and_unwrap_reraises_same_type() -> None:
    async def boom() -> None:
        raise ReplCrashed("worker 3 exited")

    reply = await serve("lean-pool-0", boom())
    assert reply.failure is not None and reply.failure.error_type == "ReplCrashed"
    assert reply.failure.origin == "lean-pool-0"
    with pytest.raises(ReplCrashed, match="worker 3 exited"):
        unwrap(reply)


async def test_unknown_remote_error_becomes_runtime_error_with_origin_and_traceback() -> None:
    async def bug() -> None:
        raise KeyError("missing")

    reply = await serve("agent-1", bug())
    assert not reply.failure.is_prover_error
    with pytest.raises(RuntimeError, match=r"agent-1: KeyError: 'missing'") as info:
        unwrap(reply)
    assert "Traceback" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Sampler proxy routing
# ---------------------------------------------------------------------------------------------


def _result(text: str) -> GenResult:
    return GenResult(completions=(Completion(text=text, tokens=1),), seconds=0.01)


def _engine(name: str, delay: float = 0.02) -> FakeActor:
    async def behaviour(method: str, request: GenRequest) -> Reply:
        await asyncio.sleep(delay)
        return Reply(value=_result(name))

    return FakeActor(behaviour)


async def test_sampler_proxy_routes_to_least_loaded_engine() -> None:
    slow, fast = _engine("slow", delay=0.3), _engine("fast", delay=0.01)
    proxy = RaySamplerProxy([slow, fast])
    first = asyncio.ensure_future(proxy.generate(GenRequest(prompt="a")))
    await asyncio.sleep(0.01)  # the slow engine now has one request in flight
    results = [await proxy.generate(GenRequest(prompt=str(i))) for i in range(5)]
    assert {r.completions[0].text for r in results} == {"fast"}
    assert (await first).completions[0].text == "slow"
    assert proxy.stats.requests == 6


async def test_sampler_proxy_spreads_concurrent_requests_evenly() -> None:
    engines = [_engine(f"e{i}", delay=0.05) for i in range(3)]
    proxy = RaySamplerProxy(engines)
    await asyncio.gather(*(proxy.generate(GenRequest(prompt=str(i))) for i in range(9)))
    assert [len(e.calls) for e in engines] == [3, 3, 3]
    assert max(e.max_in_flight for e in engines) == 3


async def test_sampler_proxy_survives_dead_engine_when_another_exists() -> None:
    async def dead(method: str, request: GenRequest) -> Reply:
        raise ActorDiedError()

    corpse, alive = FakeActor(dead), _engine("alive")
    proxy = RaySamplerProxy([corpse, alive])
    for _ in range(3):
        assert (await proxy.generate(GenRequest(prompt="x"))).completions[0].text == "alive"
    assert len(corpse.calls) == 1  # marked dead after the first failure, never asked again


async def test_sampler_proxy_raises_sampler_unavailable_when_all_engines_dead() -> None:
    async def dead(method: str, request: GenRequest) -> Reply:
        raise ActorDiedError()

    proxy = RaySamplerProxy([FakeActor(dead), FakeActor(dead)])
    with pytest.raises(SamplerUnavailable, match="all 2 LLM engine actor"):
        await proxy.generate(GenRequest(prompt="x"))
    assert proxy.stats.errors == 1


async def test_sampler_proxy_retries_restarting_engine() -> None:
    state = {"calls": 0}

    async def restarting(method: str, request: GenRequest) -> Reply:
        state["calls"] += 1
        if state["calls"] < 3:
            raise ActorUnavailableError("restarting", None)
        return Reply(value=_result("back"))

    proxy = RaySamplerProxy([FakeActor(restarting)])
    assert (await proxy.generate(GenRequest(prompt="x"))).completions[0].text == "back"


async def test_sampler_proxy_reraises_remote_request_errors_typed() -> None:
    async def refuses(method: str, request: GenRequest) -> Reply:
        return Reply(failure=RemoteFailure(error_type="SamplerRequestError", message="prompt too long"))

    from prover.errors import SamplerRequestError

    with pytest.raises(SamplerRequestError, match="prompt too long"):
        await RaySamplerProxy([FakeActor(refuses)]).generate(GenRequest(prompt="x"))


async def test_checker_proxy_fails_over_and_names_the_end() -> None:
    verdict = Verdict(status=CheckStatus.PROVED, rule="accepted")

    async def dead(method: str, *args: Any, **kwargs: Any) -> Reply:
        raise ActorDiedError()

    async def ok(method: str, *args: Any, **kwargs: Any) -> Reply:
        return Reply(value=verdict)

    proxy = RayCheckerProxy(ActorSet([FakeActor(dead), FakeActor(ok)]))
    assert (await proxy.check(make_problem("p"), "simp")).proved
    lonely = RayCheckerProxy(ActorSet([FakeActor(dead)]))
    with pytest.raises(PoolClosed, match="every Lean pool actor"):
        await lonely.check(make_problem("p"), "simp")


def test_handles_from_an_earlier_pool_actor_life_are_stale() -> None:
    from prover.cluster.actors import HandleScope
    from prover.errors import StaleHandleError
    from prover.lean_env.results import (
        OutcomeKind,
        ProofStateHandle,
        ReplResult,
        WorkerRef,
    )

    before, after = HandleScope(7), HandleScope(8)  # the same actor before and after a restart
    raw = ProofStateHandle(worker=WorkerRef(worker_id=0, generation=2), proof_state=5)
    result = before.out(ReplResult(kind=OutcomeKind.OK, proof_state=raw, sorry_states=(raw, None)))
    sent = result.proof_state
    assert sent.worker != raw.worker and result.sorry_states[1] is None
    assert before.into(sent) == raw  # round trip within one life
    with pytest.raises(StaleHandleError, match="earlier life"):
        after.into(sent)


async def test_pool_proxy_lease_maps_actor_death_to_stale_handle_and_closes_leases() -> None:
    from prover.cluster.proxies import LeaseInfo, RayPoolProxy
    from prover.errors import StaleHandleError

    closed: list[str] = []
    opened = iter(range(1, 10))

    async def pool(method: str, *args: Any, **kwargs: Any) -> Reply:
        if method == "open_lease":
            return Reply(value=LeaseInfo(lease_id=f"1-{next(opened)}", worker="w0"))
        if method == "close_lease":
            closed.append(args[0])
            return Reply(value=None)
        raise ActorDiedError()

    proxy = RayPoolProxy(ActorSet([FakeActor(pool)]), key_template=None, owner="agent-0")
    with pytest.raises(StaleHandleError, match="lost lease 1-2"):
        async with proxy.lease("key") as lease:
            assert lease.worker == "w0"
            await lease.tactic("state", "simp")  # dies, re-leases once, dies again
    await asyncio.sleep(0)  # the best-effort close of the first lease
    assert sorted(closed) == ["1-1", "1-2"]


async def test_pool_proxy_lease_outlives_a_pool_actor_restart_like_an_in_process_lease() -> None:
    """A restarted pool actor no longer holds the lease: the next call takes a new lease, `worker`
    changes (so the search knows its handles are stale), and the new lease is the one closed."""
    from prover.cluster.proxies import LeaseInfo, RayPoolProxy

    closed: list[str] = []
    life = {"n": 1}
    seen: list[tuple[str, Any]] = []

    async def pool(method: str, *args: Any, **kwargs: Any) -> Reply:
        if method == "open_lease":
            return Reply(value=LeaseInfo(lease_id=f"{life['n']}-1", worker=f"w0@{life['n']}"))
        if method == "close_lease":
            closed.append(args[0])
            return Reply(value=None)
        lease_id = args[0]
        if not lease_id.startswith(f"{life['n']}-"):
            return Reply(failure=RemoteFailure(error_type="LeaseNotOpen", message=f"lease {lease_id} is not open here"))
        seen.append((method, args[1:]))
        return Reply(value="ok")

    proxy = RayPoolProxy(ActorSet([FakeActor(pool)]), key_template=None, owner="agent-0")
    async with proxy.lease("key") as lease:
        assert await lease.command("theorem t : True := by sorry") == "ok"
        life["n"] = 2  # the actor restarted: its leases are gone
        assert await lease.command("theorem t : True := by sorry") == "ok"
        assert lease.worker == "w0@2" and lease.lease_id == "2-1"
    await asyncio.sleep(0)
    assert sorted(closed) == ["1-1", "2-1"]
    assert [m for m, _ in seen] == ["lease_command", "lease_command"]


# ---------------------------------------------------------------------------------------------
# Sizing
# ---------------------------------------------------------------------------------------------


def test_pool_sizing_from_cpus_and_memory() -> None:
    gib = 1024**3
    config = ProverConfig().with_overrides({"lean.rss_limit_mb": 12 * 1024})
    assert pool_workers_for_node(64, 512 * gib, config) == 42  # memory-bound: 512 / 12
    assert pool_workers_for_node(16, 512 * gib, config) == 16  # cpu-bound
    assert pool_workers_for_node(2, 4 * gib, config) == 1  # never below one
    two = config.with_overrides({"ray.lean_pools_per_node": 2})
    assert pool_workers_for_node(16, 512 * gib, two) == 8
    no_limits = config.with_overrides({"lean.rss_limit_mb": None, "lean.memory_limit_mb": None})
    assert pool_workers_for_node(64, 120 * gib, no_limits) == 10  # planning figure: 12 GB per REPL


def test_lean_pools_go_to_nodes_with_cpus_and_every_pool_node_gets_an_agent() -> None:
    nodes = [
        {"NodeID": "head", "Alive": True, "Resources": {"CPU": 0.0, "memory": 1e9}},
        {"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0}},
        {"NodeID": "dead", "Alive": False, "Resources": {"CPU": 8.0}},
        {"NodeID": "b", "Alive": True, "Resources": {"CPU": 2.0}},
    ]
    assert [n["NodeID"] for n in lean_nodes(nodes)] == ["a", "b"]
    assert [n["NodeID"] for n in lean_nodes(nodes[:1])] == ["head"]  # no CPUs anywhere: use what there is
    assert agent_nodes(["a", "b"], 1) == ["a", "b"]  # a pool without a local agent would idle
    assert agent_nodes(["a", "b"], 5) == ["a", "b", "a", "b", "a"]


async def test_checks_stay_on_the_local_pool_while_it_is_alive() -> None:
    verdict = Verdict(status=CheckStatus.PROVED, rule="accepted")
    gate = asyncio.Event()

    async def slow(method: str, *args: Any, **kwargs: Any) -> Reply:
        await gate.wait()
        return Reply(value=verdict)

    local, remote = FakeActor(slow), FakeActor(slow)
    proxy = RayCheckerProxy(ActorSet([local, remote], local=1))
    checks = [asyncio.ensure_future(proxy.check(make_problem(f"p{i}"), "simp")) for i in range(6)]
    await asyncio.sleep(0.05)
    assert (local.in_flight, remote.in_flight) == (6, 0)  # queued where the REPLs are, not spread
    gate.set()
    assert all(v.proved for v in await asyncio.gather(*checks))
    proxy.pools.mark_dead(0, "node lost")
    assert (await proxy.check(make_problem("late"), "simp")).proved and remote.calls == ["check"]


# ---------------------------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------------------------


async def test_schedule_bounds_in_flight_per_agent_and_runs_everything_once() -> None:
    problems = [make_problem(f"p{i}") for i in range(10)]
    running: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    ran: list[str] = []

    async def run_one(agent: str, problem: Any) -> None:
        running[agent] += 1
        peak[agent] = max(peak[agent], running[agent])
        await asyncio.sleep(0.01)
        running[agent] -= 1
        ran.append(problem.name)

    await schedule(problems, ["a", "b"], run_one, per_agent=2, max_tries=2)
    assert sorted(ran) == sorted(p.name for p in problems)
    assert peak == {"a": 2, "b": 2}


async def test_schedule_requeues_lost_problems_and_retires_dead_agents() -> None:
    problems = [make_problem(f"p{i}") for i in range(6)]
    ran: list[tuple[str, str]] = []

    async def run_one(agent: str, problem: Any) -> None:
        await asyncio.sleep(0.01)
        if agent == "dying":
            raise AgentLost("killed")
        ran.append((agent, problem.name))

    async def ping(agent: str) -> None:
        if agent == "dying":
            raise ActorDiedError()

    await schedule(problems, ["dying", "healthy"], run_one, per_agent=1, max_tries=3, ping=ping)
    assert sorted(name for _, name in ran) == sorted(p.name for p in problems)
    assert {agent for agent, _ in ran} == {"healthy"}


async def test_schedule_gives_up_on_a_problem_after_max_tries() -> None:
    async def run_one(agent: str, problem: Any) -> None:
        raise AgentLost("pool died again")

    with pytest.raises(RunError, match=r"problem 'p0' was lost 2 times"):
        await schedule([make_problem("p0")], ["a"], run_one, per_agent=1, max_tries=2)


async def test_schedule_reports_unfinished_problems_when_every_agent_died() -> None:
    async def run_one(agent: str, problem: Any) -> None:
        raise AgentLost("gone")

    async def ping(agent: str) -> None:
        raise ActorDiedError()

    with pytest.raises(RunError, match="every prover agent died; 2 problem"):
        await schedule([make_problem("a"), make_problem("b")], ["x"], run_one, per_agent=1, max_tries=5, ping=ping)


def test_failure_mapping_stops_on_sampler_unavailable_and_requeues_lean_trouble() -> None:
    problem = make_problem("p")
    stop = failure_to_exception(RemoteFailure(error_type="SamplerUnavailable", message="dead", origin="agent-0"), problem)
    assert isinstance(stop, SamplerUnavailable) and "'p'" in str(stop)
    again = failure_to_exception(RemoteFailure(error_type="PoolClosed", message="gone", origin="agent-0"), problem)
    assert isinstance(again, AgentLost)


# ---------------------------------------------------------------------------------------------
# A real local Ray cluster (one per module)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray")
    init_local_ray(num_cpus=2, object_store_memory=150 * 1024 * 1024, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_local_cluster_listens_on_loopback_only(ray_cluster: Any) -> None:
    import ipaddress
    import os

    import psutil

    assert ray_cluster.util.get_node_ip_address() == "127.0.0.1"
    pids = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    listening = [
        c.laddr for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listening, "expected the GCS and raylet to listen somewhere"
    exposed = [a for a in listening if not ipaddress.ip_address(a.ip.removeprefix("::ffff:")).is_loopback]
    assert exposed == []


NAMES = [f"p{i}" for i in range(6)]


def _world(tmp_path: Path, latency: float = 0.0) -> ProverConfig:
    from cluster_helpers import sim_config, whole_proof_world

    scenario, script = whole_proof_world(tmp_path, NAMES, latency=latency)
    return sim_config(tmp_path, scenario, script, **{"lean.rss_limit_mb": 256})


def _keys(run_dir: Path) -> list[tuple[str, int, int]]:
    lines = (run_dir / "attempts.jsonl").read_text(encoding="utf-8").splitlines()
    return [(d["problem"], d["round"], d["sample_index"]) for d in map(json.loads, lines)]


EXPECTED_KEYS = sorted((n, 0, i) for n in NAMES for i in range(4))
SUMMARY_FIELDS = ("problems", "solved", "pass_at_k", "any_at_k", "attempts", "checks", "verdicts", "solved_names")


@pytest.mark.ray
def test_ray_eval_matches_in_process_run(ray_cluster: Any, tmp_path: Path) -> None:
    from cluster_helpers import make_problem

    from prover.api import evaluate
    from prover.cluster.driver import run_eval_on_ray

    config = _world(tmp_path)
    problems = [make_problem(n) for n in NAMES]
    local = evaluate(problems, config, out=tmp_path / "local", progress=False).summary
    remote = run_eval_on_ray(config, problems, tmp_path / "ray")
    assert local.solved == 3
    for name in SUMMARY_FIELDS:
        assert getattr(remote, name) == getattr(local, name), name
    assert sorted(_keys(tmp_path / "ray")) == EXPECTED_KEYS
    info = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert info["problems"] == NAMES and (tmp_path / "ray" / "report.md").is_file()
    # a finished run resumes to a no-op (same run dir semantics as a local run)
    again = run_eval_on_ray(config, problems, tmp_path / "ray", resume=True)
    assert again.attempts == remote.attempts and len(_keys(tmp_path / "ray")) == len(EXPECTED_KEYS)


@pytest.mark.ray
def test_killing_an_agent_and_a_lean_pool_mid_run_records_every_attempt_once(
    ray_cluster: Any, tmp_path: Path, caplog: Any
) -> None:
    """Kills land while work is provably in flight, not at a point of the driver's recording.

    The driver records (fsync, batched) behind the agents, so "the driver saw attempt n" does not
    mean an agent is still busy: an agent may already have streamed its whole problem and a kill
    then interrupts nothing. Here the pool's workers are held until a check waits for one, so the
    agents are stuck mid-problem when they die, and the pool dies with a check queued in it."""
    from cluster_helpers import (
        hold_every_worker,
        make_problem,
        release,
        wait_for_a_waiting_check,
    )

    from prover.cluster.driver import RunHooks, run_eval_on_ray

    config = _world(tmp_path, latency=0.03).with_overrides({"eval.max_problems_in_flight": 2})
    handles: dict[str, Any] = {}
    seen: list[str] = []
    killed: list[str] = []

    async def kill_agents_mid_problem() -> None:
        pool = handles["h"].pools[0]
        held = await hold_every_worker(pool, handles["h"].pool_workers[0])
        try:
            await wait_for_a_waiting_check(pool)
            for agent in handles["h"].agents:  # whichever agent waits is killed mid-problem
                ray_cluster.kill(agent, no_restart=False)
            killed.append("agents")
            while "re-queueing" not in caplog.text:  # the driver saw the loss: let work go on
                await asyncio.sleep(0.02)
        finally:
            await release(pool, held)

    def on_cluster(h: Any) -> None:
        handles["h"] = h
        handles["task"] = asyncio.get_running_loop().create_task(kill_agents_mid_problem())

    async def on_attempt(attempt: Any) -> None:
        seen.append(attempt.problem)
        if len(seen) == 9:
            pool = handles["h"].pools[0]
            await hold_every_worker(pool, handles["h"].pool_workers[0])  # die with the pool
            await wait_for_a_waiting_check(pool)
            ray_cluster.kill(pool, no_restart=False)
            killed.append("pool")

    hooks = RunHooks(on_cluster=on_cluster, on_attempt=on_attempt)
    summary = run_eval_on_ray(config, [make_problem(n) for n in NAMES], tmp_path / "run", hooks=hooks)
    assert handles["task"].done() and handles["task"].exception() is None
    assert killed == ["agents", "pool"]
    assert "re-queueing" in caplog.text  # the killed agents' problems went to another try
    keys = _keys(tmp_path / "run")
    assert len(keys) == len(set(keys)), "an attempt was recorded twice"
    assert sorted(keys) == EXPECTED_KEYS
    assert summary.solved == 3 and summary.attempts == len(EXPECTED_KEYS)


@pytest.mark.ray
def test_llm_death_without_spare_engine_stops_with_clear_message_and_resumes(
    ray_cluster: Any, tmp_path: Path
) -> None:
    from cluster_helpers import make_problem

    from prover.cluster.driver import RunHooks, run_eval_on_ray

    config = _world(tmp_path, latency=0.03).with_overrides({"eval.max_problems_in_flight": 2})
    problems = [make_problem(n) for n in NAMES]
    handles: dict[str, Any] = {}

    def on_attempt(attempt: Any) -> None:
        if "killed" not in handles:
            handles["killed"] = True
            ray_cluster.kill(handles["h"].llm[0], no_restart=True)

    hooks = RunHooks(on_cluster=lambda h: handles.__setitem__("h", h), on_attempt=on_attempt)
    with pytest.raises(SamplerUnavailable, match=r"all 1 LLM engine actor\(s\) are dead"):
        run_eval_on_ray(config, problems, tmp_path / "run", hooks=hooks)
    partial = _keys(tmp_path / "run")
    assert 0 < len(partial) < len(EXPECTED_KEYS)
    summary = run_eval_on_ray(config, problems, tmp_path / "run", resume=True)
    keys = _keys(tmp_path / "run")
    assert sorted(keys) == EXPECTED_KEYS and summary.attempts == len(EXPECTED_KEYS)


@pytest.mark.ray
def test_bfs_on_ray_through_pool_and_cache_proxies_survives_a_pool_kill(ray_cluster: Any, tmp_path: Path) -> None:
    """Best-first search drives leases through RayPoolProxy; a pool restart makes the leases stale
    (StaleHandleError), the search re-materialises its states, and every attempt is recorded once."""
    from cluster_helpers import bfs_problem, bfs_world, sim_config

    from prover.api import evaluate
    from prover.cluster.driver import RunHooks, run_eval_on_ray

    names = [f"q{i}" for i in range(4)]
    scenario, script = bfs_world(tmp_path, names, latency=0.03)
    config = sim_config(
        tmp_path, scenario, script,
        **{"lean.rss_limit_mb": 256, "eval.strategy": "bfs", "eval.passes": 2, "bfs.width": 3,
           "bfs.max_expansions": 6, "bfs.stop_on_first": False},
    )
    problems = [bfs_problem(n) for n in names]
    local = evaluate(problems, config, out=tmp_path / "local", progress=False).summary
    handles: dict[str, Any] = {}

    def on_attempt(attempt: Any) -> None:
        if "killed" not in handles:
            handles["killed"] = True
            ray_cluster.kill(handles["h"].pools[0], no_restart=False)

    hooks = RunHooks(on_cluster=lambda h: handles.__setitem__("h", h), on_attempt=on_attempt)
    remote = run_eval_on_ray(config, problems, tmp_path / "ray", hooks=hooks)
    keys = _keys(tmp_path / "ray")
    assert sorted(keys) == sorted((n, 0, i) for n in names for i in range(2))
    assert (remote.solved, remote.solved_names, remote.pass_at_k) == (local.solved, local.solved_names, local.pass_at_k)
    assert remote.solved == 2


def test_more_engine_gpus_than_the_cluster_has_is_refused_up_front() -> None:
    from prover.cluster.driver import check_gpus
    from prover.errors import ConfigError

    config = ProverConfig().with_overrides({"ray.num_llm_actors": 2, "ray.gpus_per_llm_actor": 4})
    check_gpus(config, 8.0)
    with pytest.raises(ConfigError, match="need 8 GPUs but the cluster has 4"):
        check_gpus(config, 4.0)
    check_gpus(config.with_overrides({"ray.gpus_per_llm_actor": 0}), 0.0)  # CPU engines
