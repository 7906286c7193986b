"""The planner on a real local Ray cluster (127.0.0.1): the world of tests/planner_world.py with
subgoal jobs fanned out to the prover agents, every agent killed mid-episode, and the episode
resumed by the driver from what was recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from planner_world import E2E_SCENARIO, NAME, SHARED, attempts, lemma_proof, prover_lines, repl_cmd, world, write_jsonl

from prover.cluster.local_ray import init_local_ray

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray")
    init_local_ray(num_cpus=2, object_store_memory=150 * 1024 * 1024, log_to_driver=False)
    yield ray
    ray.shutdown()


def _slow(tmp_path: Path) -> Path:
    data = yaml.safe_load(E2E_SCENARIO.read_text(encoding="utf-8"))
    data["latency"] = 0.05  # every REPL request: a hole's job takes several of them
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_planner_on_ray_fans_holes_out_to_agents_and_resumes_an_episode_killed_midway(
    ray_cluster: Any, tmp_path: Path, datasets_dir: Path, caplog: Any
) -> None:
    from prover.api import evaluate
    from prover.cluster.driver import RunHooks, run_eval_on_ray

    config, items = world(tmp_path, datasets_dir, **{
        "lean.repl_cmd": repl_cmd(_slow(tmp_path)), "lean.rss_limit_mb": 256, "ray.num_agents": 2,
        "ray.gpus_per_llm_actor": 0.0, "ray.max_restarts": 2, "ray.max_task_retries": 3,
    })
    # the two problems run at once on two agents: the shared claim may be sampled by either
    hb = lemma_proof(f"{SHARED}_hb", "b * h = 195", "  rw [h₂, h₃]\n  norm_num")
    write_jsonl(tmp_path / "prover.jsonl", [*prover_lines(), {"name": f"{SHARED}_hb", "completions": [hb]}])
    local = evaluate(items, config, out=tmp_path / "local", progress=False).summary
    handles: dict[str, Any] = {}

    def on_attempt(attempt: Any) -> None:
        replanned = attempt.problem == NAME and attempt.extra.get("step") == "p1.t0"
        if replanned and "killed" not in handles:  # its holes are being proved now
            handles["killed"] = True
            for agent in handles["h"].agents:
                ray_cluster.kill(agent, no_restart=False)

    hooks = RunHooks(on_cluster=lambda h: handles.__setitem__("h", h), on_attempt=on_attempt)
    remote = run_eval_on_ray(config, items, tmp_path / "ray", hooks=hooks)
    assert handles.get("killed") and f"re-queueing {NAME}" in caplog.text
    assert (remote.solved, remote.solved_names, remote.pass_at_k) == (local.solved, local.solved_names, local.pass_at_k)
    assert remote.solved == 2
    run = attempts(tmp_path / "ray")
    sketches = [(a["problem"], a["extra"]["step"]) for a in run if a["kind"] == "sketch"]
    assert len(sketches) == len(set(sketches)) == local.tallies["sketches tried"]  # no planner call redone
    outcomes = {(a["problem"], a["extra"]["step"]): a["extra"]["outcome"] for a in run if "outcome" in a["extra"]}
    assert len(outcomes) == len([a for a in run if "outcome" in a["extra"]])  # each job's outcome once
    replanned = [outcomes[(NAME, step)] for step in ("p1.g0", "p1.g1")]
    assert all(o["proved"] for o in replanned)
    assert len({o["ran_on"] for o in replanned}) == 2  # the two holes ran on two agents
    assert outcomes[(SHARED, "p0.g0")]["proved"]
    top = [a for a in run if a["parent"] is None]
    assert sorted(a["problem"] for a in top) == [NAME, SHARED] and all(a["verdict"]["rule"] == "accepted" for a in top)


def test_sketch_checks_and_jobs_go_through_the_cluster_proxies() -> None:
    """The Ray proxies forward `check_sketch` and jobs by name (no cluster needed)."""
    from cluster_helpers import FakeActor

    from prover.cluster.proxies import ActorSet, RayCheckerProxy, RayJobRunner, Reply

    calls: list[tuple[str, tuple, dict]] = []

    async def pool(method: str, *args: Any, **kwargs: Any) -> Reply:
        calls.append((method, args, kwargs))
        return Reply(value="checked")

    proxy = RayCheckerProxy(ActorSet([FakeActor(pool)]))
    assert asyncio.run(proxy.check_sketch("problem", "proof", pp_options=(("pp.proofs", "true"),))) == "checked"
    assert calls == [("check_sketch", ("problem", "proof"), {"pp_options": (("pp.proofs", "true"),)})]

    async def agent(method: str, job: Any, *args: Any) -> Reply:
        return Reply(value=(method, job.__name__, args))

    runner = RayJobRunner(["a", "b"])
    runner._agents = ActorSet([FakeActor(agent), FakeActor(agent)], ["a", "b"])  # what ray.get_actor would find

    async def some_job(strategy: Any, ctx: Any, value: int) -> int:
        return value

    assert asyncio.run(runner.run(some_job, 3)) == ("call_with_context", "some_job", (3,))
