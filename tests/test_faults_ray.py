"""Faults on a real multi-node Ray cluster (several raylets on 127.0.0.1, `LocalRayCluster`).

- a whole worker node dies mid-run (its Lean pool, its agent, every process on it): the run
  completes, every attempt is recorded exactly once, the verdicts are those of a healthy run;
- the driver of a Ray run (`prover eval --ray --address ...`) is killed with SIGKILL and the run
  is resumed by a new driver; meanwhile every listening socket of every node and of the driver is
  on loopback.

One cluster serves the module (starting raylets is the slow part). Nodes are declared dead after
3 s without answering (Ray's default is tens of seconds), so a dead node's actors restart
elsewhere quickly, while a busy 2-core machine is not mistaken for a dead one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from cluster_helpers import (
    hold_every_worker,
    make_problem,
    release,
    sim_config,
    wait_for_a_waiting_check,
    whole_proof_world,
)

from prover.cluster.driver import RunHooks, run_eval_on_ray
from prover.cluster.local_ray import LocalRayCluster
from prover.types import Attempt

pytestmark = pytest.mark.ray

NAMES = [f"n{i}" for i in range(8)]
EXPECTED_KEYS = sorted((n, 0, i) for n in NAMES for i in range(4))


def expected_status(problem: str, index: int) -> str:
    """whole_proof_world: sample 0 of even problems is the good proof; Lean rejects the others."""
    return "proved" if int(problem[1:]) % 2 == 0 and index == 0 else "failed"


@pytest.fixture(scope="module")
def cluster() -> Any:
    pytest.importorskip("ray")
    with LocalRayCluster(head_cpus=1, failure_detection_s=3.0) as local:
        local.add_node(num_cpus=1)
        local.add_node(num_cpus=1)
        yield local


def _lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text(encoding="utf-8").splitlines()]


def _assert_every_attempt_once_with_healthy_verdicts(run_dir: Path) -> None:
    lines = _lines(run_dir)
    keys = [(a["problem"], a["round"], a["sample_index"]) for a in lines]
    assert len(keys) == len(set(keys)), "an attempt was recorded twice"
    assert sorted(keys) == EXPECTED_KEYS, "an attempt was lost"
    statuses = {(a["problem"], a["sample_index"]): a["verdict"]["status"] for a in lines}
    assert statuses == {(n, i): expected_status(n, i) for n, _, i in EXPECTED_KEYS}


def test_a_worker_node_dies_mid_run_and_the_run_completes_unchanged(
    cluster: LocalRayCluster, tmp_path: Path, caplog: Any
) -> None:
    scenario, script = whole_proof_world(tmp_path, NAMES, latency=0.05)
    config = sim_config(tmp_path, scenario, script, **{"ray.num_agents": 3, "eval.max_problems_in_flight": 3})
    victim = cluster.nodes[0]
    victim_id = cluster.node_id(victim)
    handles: dict[str, Any] = {}

    async def kill_the_victim_mid_problem() -> None:
        # Hold the victim node's Lean workers: the agent beside them (agents check on their own
        # node's pool first) then has a check waiting, so it is provably mid-problem when the
        # node dies, and a live agent must take its problem over.
        pool = handles["h"].services.pools_by_node[victim_id][0]
        held = await hold_every_worker(pool, handles["h"].pool_workers[handles["h"].pools.index(pool)])
        try:
            await wait_for_a_waiting_check(pool)
        except BaseException:
            await release(pool, held)  # let the run end, so the gate's failure is reported, not a hang
            raise
        await asyncio.to_thread(cluster.kill_node, victim)

    async def on_attempt(attempt: Attempt) -> None:
        # The gate runs beside the recording, never inside it: blocking here would stall the
        # slot of the agent that sent this attempt, and if that is the victim's agent it could
        # never start the next problem whose check the gate waits for.
        if "gate" not in handles:
            handles["gate"] = asyncio.ensure_future(kill_the_victim_mid_problem())

    def on_cluster(h: Any) -> None:
        handles["h"] = h

    hooks = RunHooks(on_cluster=on_cluster, on_attempt=on_attempt)
    summary = run_eval_on_ray(config, [make_problem(n) for n in NAMES], tmp_path / "run", hooks=hooks)
    gate = handles["gate"]
    assert gate.done() and not gate.cancelled() and gate.exception() is None, gate  # killed mid-problem
    assert victim_id not in {n["NodeID"] for n in _alive_nodes()}
    assert "re-queueing" in caplog.text  # the dead node's agent was mid-problem; a live agent took it
    _assert_every_attempt_once_with_healthy_verdicts(tmp_path / "run")
    assert (summary.solved, summary.attempts, summary.errors) == (4, 32, 0)


def test_kill_9_of_the_driver_resumes_and_every_socket_stays_on_loopback(
    cluster: LocalRayCluster, tmp_path: Path
) -> None:
    while len(cluster.nodes) < 2:  # the previous test killed one
        cluster.add_node(num_cpus=1)
    scenario, script = whole_proof_world(tmp_path, NAMES, latency=0.1)
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(make_problem(n).model_dump_json() + "\n" for n in NAMES), encoding="utf-8")
    settings = tmp_path / "settings.yaml"
    config = sim_config(tmp_path, scenario, script, **{"ray.num_agents": 3, "eval.max_problems_in_flight": 3})
    settings.write_text(yaml.safe_dump(config.model_dump(mode="json", include={"lean", "cache", "ray", "whole_proof"})))
    out = tmp_path / "run"
    argv = [
        sys.executable, "-m", "prover.cli", "eval", f"jsonl:{problems}", "--pass", "4", "--model", "test/scripted",
        "--backend", "scripted", "--script", str(script), "--prompt-format", "deepseek-v2", "--config", str(settings),
        "--out", str(out), "--quiet", "--ray", "--address", cluster.address,
    ]
    env = {**os.environ, "PROVER_CONFIG_HOME": str(tmp_path / "config"), "PROVER_CACHE_DIR": str(tmp_path / "cache")}
    driver = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "attempts.jsonl").exists() and len(_lines(out)) >= 8):
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
            time.sleep(0.05)
        assert _listening_off_loopback(driver.pid) == []
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    partial = [(a["problem"], a["round"], a["sample_index"]) for a in _lines(out)]
    assert 8 <= len(partial) < len(EXPECTED_KEYS) and len(partial) == len(set(partial))

    resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "solved 4/8" in resumed.stdout
    _assert_every_attempt_once_with_healthy_verdicts(out)


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def _listening_off_loopback(driver: int) -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening socket outside loopback among the processes of
    this test: the raylets, GCS, agents and workers of every node (children of this process) and
    the driver."""
    ours = [psutil.Process(), *psutil.Process().children(recursive=True)]
    pids = {p.pid: p for p in ours}
    assert driver in pids and len(pids) > 10, "expected the nodes' processes and the driver"
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert len({c.pid for c in listening}) >= 6, "expected GCS, raylets and workers to listen"
    return [
        (_name(pids[c.pid]), c.laddr.ip, c.laddr.port)
        for c in listening
        if not ipaddress.ip_address(c.laddr.ip.removeprefix("::ffff:")).is_loopback
    ]


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return str(process.pid)
