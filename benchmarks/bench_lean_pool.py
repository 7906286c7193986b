"""Pool throughput and header reuse on the SIMULATED REPL (no Lean): is the pool the bottleneck?

Each check is one command on the worker's header env; the simulated REPL sleeps a fixed latency
per request, so the ideal throughput is workers / latency. Prints on the last line:
    efficiency=<achieved/ideal> imports_per_1000=<header imports per 1000 checks> workers=W latency_ms=L
Targets: efficiency >= 0.9; imports_per_1000 == workers (each worker imports the header once).

    python benchmarks/bench_lean_pool.py [--checks 1000] [--workers 4] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from prover.config import LeanConfig
from prover.lean_env import LeanPool, OutcomeKind, ReplLauncher, Scenario, simulated_repl_command

HEADER = "import Mathlib\nopen Real"
STATEMENT = "theorem bench_{i} (x : Nat) : x + 0 = x := by\n  simp"


async def run(checks: int, workers: int, latency: float, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Scenario.model_validate(
            {"latency": latency, "theorems": [{"name": f"bench_{i}", "proofs": [{"body": "simp"}]} for i in range(checks)]}
        ).dump(Path(tmp) / "scenario.json")
        config = LeanConfig(workers=workers, timeout=30)  # default memory caps, RSS checks, recycling
        async with LeanPool(config, launcher=ReplLauncher(argv=simulated_repl_command(scenario))) as pool:
            key = pool.env_key(HEADER)
            todo = iter(range(checks))
            kinds: list[OutcomeKind] = []

            async def one_client() -> None:
                for i in todo:
                    async with pool.lease(key) as lease:
                        kinds.append((await lease.command(STATEMENT.format(i=i))).kind)

            async def warm(_: int) -> None:
                async with pool.lease(key):
                    await asyncio.sleep(0.2)  # hold so the next warm-up starts another worker

            await asyncio.gather(*(warm(i) for i in range(workers)))
            start = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            stats = pool.stats()
    bad = sum(k is not OutcomeKind.OK for k in kinds)
    if len(kinds) != checks or bad:
        raise SystemExit(f"benchmark broken: {len(kinds)} answers for {checks} checks, {bad} not OK")
    ideal = workers / latency
    return {
        "efficiency": (checks / elapsed) / ideal,
        "imports_per_1000": stats.imports * 1000 / checks,
        "checks_per_s": checks / elapsed,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16, help="client tasks competing for workers")
    args = parser.parse_args()
    r = asyncio.run(run(args.checks, args.workers, args.latency_ms / 1000, args.concurrency))
    print(f"simulated REPL, {args.checks} checks: {r['checks_per_s']:.1f} checks/s in {r['seconds']:.2f} s "
          f"(ideal {args.workers / (args.latency_ms / 1000):.1f}/s)")
    print(f"efficiency={r['efficiency']:.3f} imports_per_1000={r['imports_per_1000']:.1f} "
          f"workers={args.workers} latency_ms={args.latency_ms:g}")


if __name__ == "__main__":
    main()
