"""Shared by the Ray benchmarks (not a benchmark itself): workloads whose time is Lean latency on
the SIMULATED REPL, and the steady-state rate of a run measured from its attempts' arrival times.

A workload writes its scenario and sampler script into a directory and returns the config and
problems of a run; `timed_local_run` / `timed_ray_run` run it and return the arrival time of
every recorded attempt (top-level and nested), from which `steady_rate` takes the middle of the
run: attempts between the 10th and 90th percentile of arrival times over that window, so neither
the start (actors, REPL processes, first generations) nor the last stragglers count.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from prover.config import ProverConfig
from prover.eval.metrics import Summary
from prover.eval.run import Executor, LocalExecutor, RunState, aevaluate, run_sync
from prover.types import Attempt, Problem

GOOD_TACTIC = "simp"


@dataclass
class Workload:
    """A run's settings and problems."""

    config: ProverConfig
    problems: list[Problem]


def whole_proof_workload(
    tmp: Path, *, problems: int, passes: int, proof_s: float, light_s: float, lean_workers: int, in_flight: int
) -> Workload:
    """`problems` x `passes` distinct whole proofs (one accepted per problem), all checked: a proof
    elaboration takes `proof_s`, the checker's audit and statement reference `light_s` each."""
    names = [f"bench_{i}" for i in range(problems)]
    theorems = [{"name": n, "goals": ["x : Nat\n⊢ x + 0 = x"], "proofs": [{"body": GOOD_TACTIC}]} for n in names]
    scenario = tmp / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"latency": light_s, "proof_latency": proof_s, "theorems": theorems}),
                        encoding="utf-8")
    script = tmp / "script.jsonl"
    with script.open("w", encoding="utf-8") as handle:
        for i, name in enumerate(names):
            bodies = [GOOD_TACTIC if j == i % passes else f"bad_{j}" for j in range(passes)]
            completions = [f"```lean4\ntheorem {name} (x : Nat) : x + 0 = x := by\n  {body}\n```" for body in bodies]
            handle.write(json.dumps({"name": name, "completions": completions}) + "\n")
    config = ProverConfig().with_overrides(
        {
            **_simulated_lean(scenario, lean_workers),
            "sampler.backend": "scripted",
            "sampler.script": script,
            "sampler.prompt_format": "deepseek-v2",
            "eval.passes": passes,
            "whole_proof.chunk": passes,
            "eval.benchmark": "jsonl:bench",
            "eval.max_problems_in_flight": in_flight,
            "ray.num_agents": 1,
            "ray.gpus_per_llm_actor": 0.0,
        }
    )
    statement = "theorem {} (x : Nat) : x + 0 = x := by"
    return Workload(config, [Problem(name=n, formal_statement=statement.format(n)) for n in names])


def planner_workload(
    tmp: Path, *, problems: int, proof_s: float, light_s: float, lean_workers: int, in_flight: int
) -> Workload:
    """`problems` planner episodes over the world of `bench_planner.py` (a sketch of 4 `have`s per
    problem, each hole proved by its one whole-proof sample, then the stitched check): on Ray the
    holes are subgoal jobs fanned out to every node's agent. Elaborating a declaration takes
    `proof_s`, every other request `light_s`."""
    from bench_planner import world

    items, scenario_data, sketches, proofs = world(problems, False, "plan_")
    scenario = tmp / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**scenario_data, "latency": light_s, "proof_latency": proof_s},
                                       allow_unicode=True), encoding="utf-8")
    planner_script, prover_script = tmp / "planner.jsonl", tmp / "prover.jsonl"
    for path, answers in ((planner_script, sketches), (prover_script, proofs)):
        path.write_text("".join(json.dumps({"name": name, "completions": [text]}, ensure_ascii=False) + "\n"
                                for name, text in answers.items()), encoding="utf-8")
    config = ProverConfig().with_overrides(
        {
            **_simulated_lean(scenario, lean_workers),
            "sampler.backend": "scripted",
            "sampler.script": prover_script,
            "sampler.prompt_format": "deepseek-v2",
            "samplers.planner.script": planner_script,
            "eval.strategy": "planner",
            "eval.passes": 1,
            "eval.benchmark": "jsonl:bench",
            "eval.max_problems_in_flight": in_flight,
            "planner.subgoal_passes": 1,
            "planner.repair_turns": 0,
            "planner.max_sketches": 1,
            "planner.max_depth": 0,
            "ray.num_agents": 1,
            "ray.gpus_per_llm_actor": 0.0,
        }
    )
    return Workload(config, items)


def _simulated_lean(scenario: Path, workers: int) -> dict[str, object]:
    """Config overrides for a pool of SIMULATED REPL processes over `scenario`, caches off."""
    return {
        "lean.repl_cmd": [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)],
        "lean.workers": workers,
        "lean.rss_limit_mb": 256,
        "lean.memory_limit_mb": None,
        "cache.enabled": False,
    }


def steady_rate(arrivals: list[float]) -> float:
    """Attempts per second between the 10th and 90th percentile of arrival times."""
    times = sorted(arrivals)
    if len(times) < 10:
        raise SystemExit(f"benchmark broken: only {len(times)} attempts recorded")
    lo, hi = len(times) // 10, len(times) - 1 - len(times) // 10
    return (hi - lo) / (times[hi] - times[lo])


class _Timed(Executor):
    """An executor that notes when each attempt was recorded."""

    def __init__(self, inner: Executor, arrivals: list[float]) -> None:
        self.inner = inner
        self.arrivals = arrivals
        self.needs_local_lean = inner.needs_local_lean

    async def run(self, state: RunState) -> None:
        record = state.record

        async def timed(attempt: Attempt) -> None:
            await record(attempt)
            self.arrivals.append(time.monotonic())

        await self.inner.run(dataclasses.replace(state, record=timed))


def timed_local_run(work: Workload, out: Path) -> tuple[list[float], float]:
    """(arrival times, wall seconds) of the in-process run."""
    arrivals: list[float] = []
    started = time.monotonic()
    run = run_sync(aevaluate(work.problems, work.config, out=out, progress=False,
                             executor=_Timed(LocalExecutor(), arrivals)))
    _all_recorded(run.summary, arrivals)
    return arrivals, time.monotonic() - started


def timed_ray_run(work: Workload, out: Path) -> tuple[list[float], float, float]:
    """(arrival times, seconds until the run's actors answered, wall seconds) of a Ray run on the
    cluster `ray` is connected to."""
    from prover.cluster.driver import RunHooks, run_eval_on_ray

    arrivals: list[float] = []
    ready: list[float] = []
    hooks = RunHooks(on_cluster=lambda _handles: ready.append(time.monotonic()),
                     on_attempt=lambda _attempt: arrivals.append(time.monotonic()))
    started = time.monotonic()
    summary = run_eval_on_ray(work.config, work.problems, out, hooks=hooks)
    seconds = time.monotonic() - started
    _all_recorded(summary, arrivals)
    return arrivals, ready[0] - started, seconds


def _all_recorded(summary: Summary, arrivals: list[float]) -> None:
    recorded = summary.attempts + sum(summary.nested.values())
    if recorded != len(arrivals) or summary.verdicts.get("infrastructure"):
        raise SystemExit(f"benchmark broken: {len(arrivals)} attempts seen, {recorded} recorded, {summary.verdicts}")
