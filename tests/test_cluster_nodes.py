"""Placement on a real multi-node Ray cluster (several raylets on 127.0.0.1): a Lean pool on each
node that offers CPUs, an agent next to every pool, and a run that uses every node's REPLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prover.cluster.driver import RunHooks, run_eval_on_ray, start_cluster, stop_cluster
from prover.cluster.proxies import unwrap

pytestmark = pytest.mark.ray

NAMES = [f"p{i}" for i in range(8)]


@pytest.fixture(scope="module")
def two_nodes() -> Any:
    from prover.cluster.local_ray import LocalRayCluster

    with LocalRayCluster(head_cpus=0) as cluster:
        nodes = [cluster.node_id(cluster.add_node(num_cpus=2)) for _ in range(2)]
        yield nodes


def _config(tmp_path: Path) -> Any:
    from cluster_helpers import sim_config, whole_proof_world

    scenario, script = whole_proof_world(tmp_path, NAMES)
    return sim_config(tmp_path, scenario, script, **{"lean.rss_limit_mb": 256, "ray.num_agents": 1})


def test_every_node_with_cpus_gets_a_pool_and_an_agent_beside_it(two_nodes: list[str], tmp_path: Path) -> None:
    import ray

    async def node_of_agent(strategy: Any, ctx: Any) -> str:  # a local function: pickled by value
        import ray

        return ray.get_runtime_context().get_node_id()

    handles = start_cluster(_config(tmp_path))
    try:
        assert sorted(handles.services.pools_by_node) == sorted(two_nodes)  # none on the CPU-less head
        assert handles.pool_workers == [2, 2]
        placed = [unwrap(ray.get(agent.call_with_context.remote(node_of_agent))) for agent in handles.agents]
        assert sorted(placed) == sorted(two_nodes)  # one agent per pool node although num_agents is 1
    finally:
        stop_cluster(handles)


def test_a_run_checks_on_every_node(two_nodes: list[str], tmp_path: Path) -> None:
    import ray

    from cluster_helpers import make_problem

    seen: dict[str, Any] = {"attempts": 0}

    def on_attempt(attempt: Any) -> None:
        seen["attempts"] += 1
        if seen["attempts"] == 4 * len(NAMES):  # the last one: read the pools before they stop
            seen["requests"] = [unwrap(ray.get(pool.stats.remote())).requests for pool in seen["handles"].pools]

    hooks = RunHooks(on_cluster=lambda handles: seen.update(handles=handles), on_attempt=on_attempt)
    summary = run_eval_on_ray(_config(tmp_path), [make_problem(n) for n in NAMES], tmp_path / "run", hooks=hooks)
    assert summary.attempts == 4 * len(NAMES) and summary.solved == len(NAMES) // 2
    assert len(seen["requests"]) == 2 and all(requests > 0 for requests in seen["requests"])
