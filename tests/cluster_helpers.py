"""Test doubles and fixtures shared by tests/test_cluster.py and tests/test_collect.py."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from prover.config import ProverConfig
from prover.types import Problem

SHARED = Path(os.environ.get("PROVER_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


class FakeMethod:
    """`handle.method.remote(*args)` -> awaitable, like a Ray actor method."""

    def __init__(self, owner: FakeActor, name: str) -> None:
        self.owner = owner
        self.name = name

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return asyncio.ensure_future(self.owner.dispatch(self.name, *args, **kwargs))


class FakeActor:
    """An actor double: `behaviour(name, *args)` is awaited for every call; calls are counted."""

    def __init__(self, behaviour: Callable[..., Any]) -> None:
        self.behaviour = behaviour
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def __getattr__(self, name: str) -> FakeMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return FakeMethod(self, name)

    async def dispatch(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.behaviour(name, *args, **kwargs)
        finally:
            self.in_flight -= 1


# ---------------------------------------------------------------------------------------------
# A simulated Lean world (scenario for the simulated REPL) and a scripted sampler
# ---------------------------------------------------------------------------------------------

HEADER = ""


def make_problem(name: str) -> Problem:
    return Problem(name=name, formal_statement=f"theorem {name} (x : Nat) : x + 0 = x := by", benchmark="")


def whole_proof_world(
    tmp: Path, names: list[str], *, latency: float = 0.0, all_good: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Scenario + sampler script: `simp` proves every problem, `rfl_<i>` fails.

    Even problems get 1 good sample of 4, odd ones none, names in `all_good` 4 of 4. Completions
    carry log-probs (the first one per problem also token log-probs)."""
    theorems = [
        {"name": n, "goals": ["x : Nat\n⊢ x + 0 = x"], "proofs": [{"body": "simp"}]} for n in names
    ]
    scenario = tmp / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"latency": latency, "theorems": theorems}), encoding="utf-8")
    script = tmp / "script.jsonl"
    with script.open("w", encoding="utf-8") as handle:
        for i, n in enumerate(names):
            # Problem i: sample 0..3 are fixed per problem, so the summary does not depend on order.
            good = f"```lean4\ntheorem {n} (x : Nat) : x + 0 = x := by\n  simp\n```"
            bad = f"```lean4\ntheorem {n} (x : Nat) : x + 0 = x := by\n  rfl_{i}\n```"
            texts = [good, bad, bad, bad] if i % 2 == 0 else [bad, bad, bad, bad]
            if n in all_good:
                texts = [good] * 4
            completions = [
                {"text": t, "cumulative_logprob": -1.0 - j, "token_logprobs": [-0.5, -0.5] if j == 0 else None}
                for j, t in enumerate(texts)
            ]
            handle.write(json.dumps({"name": n, "completions": completions}) + "\n")
    return scenario, script


def bfs_world(tmp: Path, names: list[str], *, latency: float = 0.0) -> tuple[Path, Path]:
    """Tactic-mode scenario: root --intro x--> s1 --simp--> done; `bad` errors; `loop` no progress.

    Odd problems have no proof (only failing tactics are suggested) and a goal of their own, so the
    shared proof cache cannot prove them from an even problem's entry."""
    theorems = []
    for i, n in enumerate(names):
        root = "⊢ ∀ (x : Nat), x + 0 = x" if i % 2 == 0 else f"⊢ ∀ (x : Nat), x + {i} = x"
        s1 = "x : Nat\n⊢ x + 0 = x" if i % 2 == 0 else f"x : Nat\n⊢ x + {i} = x"
        theorems.append(
            {
                "name": n,
                "goals": [root],
                "proofs": [{"body": "intro x\nsimp"}, {"body": "intro x\n  simp"}],
                "steps": [
                    {"from": [root], "tactic": "intro x", "to": [s1]},
                    {"from": [s1], "tactic": "simp", "to": []},
                    {"from": [root], "tactic": "bad", "throw": "unknown tactic"},
                    {"from": [s1], "tactic": "bad", "throw": "unknown tactic"},
                ],
            }
        )
    scenario = tmp / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"latency": latency, "theorems": theorems}), encoding="utf-8")
    script = tmp / "script.jsonl"
    with script.open("w", encoding="utf-8") as handle:
        for i, n in enumerate(names):
            if i % 2 == 0:
                completions = [
                    {"text": "intro x", "cumulative_logprob": -0.2},
                    {"text": "bad", "cumulative_logprob": -3.0},
                    {"text": "simp", "cumulative_logprob": -0.1},
                ]
            else:
                completions = [{"text": "bad", "cumulative_logprob": -1.0}]
            handle.write(json.dumps({"name": n, "completions": completions}) + "\n")
    return scenario, script


def bfs_problem(name: str) -> Problem:
    return Problem(name=name, formal_statement=f"theorem {name} : ∀ (x : Nat), x + 0 = x := by", benchmark="")


def sim_config(tmp: Path, scenario: Path, script: Path, **overrides: Any) -> ProverConfig:
    """Simulated REPL + scripted sampler; caches off so runs are independent."""
    base = ProverConfig()
    data = {
        "lean.repl_cmd": [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)],
        "lean.workers": 2,
        "lean.timeout": 30.0,
        "lean.header_timeout": 30.0,
        "lean.memory_limit_mb": None,
        "lean.rss_limit_mb": None,
        "cache.enabled": False,
        "sampler.backend": "scripted",
        "sampler.script": script,
        "sampler.prompt_format": "deepseek-v2",
        "eval.passes": 4,
        "whole_proof.chunk": 4,
        "eval.benchmark": "jsonl:test",
        "eval.max_problems_in_flight": 4,
        "ray.num_agents": 2,
        "ray.gpus_per_llm_actor": 0.0,
        "ray.max_restarts": 2,
        "ray.max_task_retries": 3,
    }
    data.update(overrides)
    return base.with_overrides(data)


# ---------------------------------------------------------------------------------------------
# Holding a Lean pool actor's workers, so agents are provably mid-problem when a test kills them
# ---------------------------------------------------------------------------------------------


async def hold_every_worker(pool: Any, workers: int) -> list[str]:
    """Lease all `workers` of a pool actor (waits for running checks); returns the lease ids.

    While they are held, every check queues inside the pool: an agent with a check waiting cannot
    finish its problem, whatever the driver has recorded so far."""
    from prover.cluster.proxies import unwrap

    key = unwrap(await pool.env_key.remote(HEADER))
    return [unwrap(await pool.open_lease.remote("test-gate", key)).lease_id for _ in range(workers)]


async def wait_for_a_waiting_check(pool: Any, *, timeout: float = 60.0) -> None:
    """Until some caller waits in `pool` for a worker (AssertionError after `timeout` seconds)."""
    from prover.cluster.proxies import unwrap

    deadline = asyncio.get_running_loop().time() + timeout
    while unwrap(await pool.stats.remote()).waiting == 0:
        assert asyncio.get_running_loop().time() < deadline, "no check ever waited for the held workers"
        await asyncio.sleep(0.02)


async def release(pool: Any, lease_ids: list[str]) -> None:
    for lease_id in lease_ids:
        await pool.close_lease.remote(lease_id)
