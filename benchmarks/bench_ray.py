"""Ray vs in-process on the same Lean-bound whole-proof workload, at equal Lean worker counts.

    python benchmarks/bench_ray.py [--problems 16] [--passes 16] [--proof-ms 50] [--light-ms 2]

Workload (`ray_workloads.whole_proof_workload`): `--problems` x `--passes` distinct proofs from a
scripted (instant) sampler, every one checked by the full checker pipeline on the SIMULATED REPL:
elaborating a proof takes `--proof-ms`, the audit and statement reference `--light-ms` each.
Both runs use 2 REPL workers (local: `lean.workers`; Ray: one node of 2 CPUs, so its Lean pool
actor sizes itself to 2) and write a real run directory.

Printed apart, because they answer different questions:
* `ray_startup_s`: `ray.init` plus starting the run's actors (LLM, Lean pool, agents) until they
  answer: a fixed cost per run (each actor is a fresh process importing prover and Ray).
* `ray_steady_vs_local`: steady-state throughput (attempts between the 10th and 90th percentile
  of arrival times, see `ray_workloads.steady_rate`) on Ray / in-process. Target >= 0.95: once
  running, the per-check hops (agent -> pool actor, attempt -> driver) must not leave the REPLs
  idle.
* `ray_vs_local`: whole-run throughput, start-up included (for a short run it is start-up bound).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ray_workloads import steady_rate, timed_local_run, timed_ray_run, whole_proof_workload

WORKERS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--passes", type=int, default=16)
    parser.add_argument("--proof-ms", type=float, default=50.0, help="simulated time to elaborate a proof")
    parser.add_argument("--light-ms", type=float, default=2.0, help="simulated time of a cheap command")
    args = parser.parse_args()

    import ray

    from prover.cluster.local_ray import init_local_ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    work = whole_proof_workload(tmp, problems=args.problems, passes=args.passes, proof_s=args.proof_ms / 1000,
                                light_s=args.light_ms / 1000, lean_workers=WORKERS, in_flight=8)
    work.config = work.config.with_overrides({"ray.num_agents": 2})

    local_arrivals, local_seconds = timed_local_run(work, tmp / "local")

    started = time.monotonic()
    init_local_ray(num_cpus=WORKERS, object_store_memory=150 * 1024 * 1024, log_to_driver=False)
    init_seconds = time.monotonic() - started
    try:
        ray_arrivals, actors_seconds, ray_seconds = timed_ray_run(work, tmp / "ray")
    finally:
        ray.shutdown()

    local_steady, ray_steady = steady_rate(local_arrivals), steady_rate(ray_arrivals)
    attempts = len(ray_arrivals)
    print(f"workload: {args.problems} problems x {args.passes} proofs, proof {args.proof_ms:g} ms, cheap commands "
          f"{args.light_ms:g} ms, {WORKERS} REPL workers both ways (ideal {WORKERS / (args.proof_ms / 1000):.1f} checks/s)")
    print(f"local: {local_seconds:.2f} s, steady {local_steady:.1f} attempts/s; ray: {ray_seconds:.2f} s after "
          f"ray.init {init_seconds:.2f} s, actors ready after {actors_seconds:.2f} s, steady {ray_steady:.1f} attempts/s")
    print(f"ray_startup_s={init_seconds + actors_seconds:.2f} ray_steady_vs_local={ray_steady / local_steady:.3f} "
          f"ray_vs_local={(attempts / (init_seconds + ray_seconds)) / (attempts / local_seconds):.3f} "
          f"ray_steady_attempts_per_s={ray_steady:.1f} local_steady_attempts_per_s={local_steady:.1f}")


if __name__ == "__main__":
    main()
