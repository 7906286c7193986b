"""Does adding a node add its share? Throughput on a real multi-node Ray cluster on this machine.

    python benchmarks/bench_ray_scaling.py [--nodes 4] [--workload whole_proof|planner] [--proof-ms MS]

`prover.cluster.local_ray.LocalRayCluster` starts a head (no CPUs: the driver and the LLM actor
only) and worker raylets on 127.0.0.1, each offering 2 CPUs, so the driver puts one Lean pool
actor of 2 SIMULATED REPL workers and one agent on every node; the simulated Lean latency
dominates, so the machine's 2 cores are not the limit. The same workload, sized per node, runs
on 1 node and then on `--nodes` nodes (the extra nodes join the same cluster):

    scaling_efficiency = steady throughput on N nodes / (N x steady throughput on 1 node)

with steady throughput as in `ray_workloads.steady_rate` (attempts, top-level and nested, between
the 10th and 90th percentile of their arrival times). Target >= 0.9.

Workloads (`WORKLOADS`, `--workload`): `whole_proof` checks `--problems-per-node` x `--passes`
distinct proofs per node (proof elaboration `--proof-ms`, audit and statement reference
`--light-ms`). `planner` runs `--problems-per-node` planner episodes per node (the world of
`bench_planner.py`: a sketch of 4 holes, one sample per hole, the stitched check), whose holes the
driver fans out as subgoal jobs to every node's agent; its attempts (sketch, subgoal and top-level
ones) are the throughput units. Each workload has its own default size and proof time
(`WORKLOADS`): a planner attempt costs the driver and actors more CPU than a check does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ray_workloads import Workload, planner_workload, steady_rate, timed_ray_run, whole_proof_workload

CPUS_PER_NODE = 2
"""Ray CPUs per worker node: the Lean pool actor there sizes itself to this many REPLs."""


def whole_proof(tmp: Path, nodes: int, args: argparse.Namespace) -> Workload:
    per_node = args.problems_per_node
    return whole_proof_workload(
        tmp,
        problems=per_node * nodes,
        passes=args.passes,
        proof_s=args.proof_ms / 1000,
        light_s=args.light_ms / 1000,
        lean_workers=CPUS_PER_NODE,
        in_flight=args.in_flight_per_node * nodes,
    )


def planner_fan_out(tmp: Path, nodes: int, args: argparse.Namespace) -> Workload:
    return planner_workload(
        tmp,
        problems=args.problems_per_node * nodes,
        proof_s=args.proof_ms / 1000,
        light_s=args.light_ms / 1000,
        lean_workers=CPUS_PER_NODE,
        in_flight=args.in_flight_per_node * nodes,
    )


class WorkloadSpec(NamedTuple):
    """A workload and its default size: enough simulated Lean time per attempt that the
    orchestration, not the 2 shared cores, is what the figure measures."""

    build: Callable[[Path, int, argparse.Namespace], Workload]
    problems_per_node: int
    proof_ms: float


WORKLOADS: dict[str, WorkloadSpec] = {
    "whole_proof": WorkloadSpec(whole_proof, problems_per_node=24, proof_ms=200.0),
    # a planner attempt costs more driver and actor CPU than a whole-proof check: at 200 ms the
    # 4-node run saturates both cores (0.71-0.81), at 400 ms (still a real Lean step) it does not
    "planner": WorkloadSpec(planner_fan_out, problems_per_node=12, proof_ms=400.0),
}


def measure(cluster_nodes: int, name: str, args: argparse.Namespace, tmp: Path) -> tuple[float, float, float]:
    """(steady attempts/s, actors start-up s, run s) of the workload sized for `cluster_nodes`."""
    run_dir = tmp / f"{name}-{cluster_nodes}"
    run_dir.mkdir()
    work = WORKLOADS[name].build(run_dir, cluster_nodes, args)
    arrivals, startup, seconds = timed_ray_run(work, run_dir / "run")
    return steady_rate(arrivals), startup, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="whole_proof")
    parser.add_argument("--problems-per-node", type=int, default=None, help="default: per workload")
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--in-flight-per-node", type=int, default=4, help="problems in flight per node")
    parser.add_argument("--proof-ms", type=float, default=None,
                        help="simulated time to elaborate a proof (default: per workload, 200 or 400)")
    parser.add_argument("--light-ms", type=float, default=5.0, help="simulated time of a cheap command")
    args = parser.parse_args()
    spec = WORKLOADS[args.workload]
    if args.problems_per_node is None:
        args.problems_per_node = spec.problems_per_node
    if args.proof_ms is None:
        args.proof_ms = spec.proof_ms

    from prover.cluster.local_ray import LocalRayCluster

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-scaling-"))
    started = time.monotonic()
    with LocalRayCluster(head_cpus=0) as cluster:
        cluster.add_node(num_cpus=CPUS_PER_NODE)
        cluster_seconds = time.monotonic() - started
        one, one_startup, one_seconds = measure(1, args.workload, args, tmp)
        started = time.monotonic()
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=CPUS_PER_NODE)
        cluster_seconds += time.monotonic() - started
        many, many_startup, many_seconds = measure(args.nodes, args.workload, args, tmp)

    ideal_node = CPUS_PER_NODE / (args.proof_ms / 1000)
    print(f"workload {args.workload}: {args.problems_per_node} problems x {args.passes} proofs per node, proof "
          f"{args.proof_ms:g} ms, cheap commands {args.light_ms:g} ms, {CPUS_PER_NODE} REPLs per node "
          f"(ideal {ideal_node:.1f} checks/s per node); raylets started in {cluster_seconds:.1f} s")
    print(f"1 node: {one:.2f} attempts/s steady (run {one_seconds:.1f} s, actors ready after {one_startup:.1f} s); "
          f"{args.nodes} nodes: {many:.2f} attempts/s steady (run {many_seconds:.1f} s, actors ready after "
          f"{many_startup:.1f} s)")
    print(f"scaling_efficiency={many / (args.nodes * one):.3f} nodes={args.nodes} one_node_per_s={one:.2f} "
          f"all_nodes_per_s={many:.2f} workload={args.workload}")


if __name__ == "__main__":
    main()
