"""Pool throughput and header reuse on the SIMULATED REPL (no Lean): is the pool the bottleneck?

Each check is one command on the worker's header env; the simulated REPL sleeps a fixed latency
per request, so the ideal throughput is workers / latency. Prints on the last line:
    efficiency=<achieved/ideal> imports_per_1000=<header imports per 1000 checks> workers=W latency_ms=L
Targets: efficiency >= 0.9; imports_per_1000 == workers (each worker imports the header once).

    python benchmarks/bench_lean_pool.py [--checks 1000] [--workers 4] [--latency-ms 50]

`--sandbox-overhead` instead measures what the bubblewrap sandbox adds to the full checker
(preflight, REPL command + fence, pickle, audit worker unpickle + trusted commands) per proof, by
checking the same proofs with `lean.sandbox = off` and `required` in one run. Last line:
    sandbox_overhead=<time on / time off> checker_ms_off=<per proof> checker_ms_on=<per proof>
    first_check_ms_off=<worker start + one check> first_check_ms_on=<same, sandboxed>
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from prover.config import CheckerConfig, LeanConfig
from prover.lean_env import LeanPool, OutcomeKind, ProofChecker, ReplLauncher, Scenario, simulated_repl_command
from prover.types import Problem

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


async def checker_seconds(sandbox: str, scenario: Path, proofs: list[Problem], workers: int) -> tuple[float, float]:
    """(seconds of the first check, which starts a worker; seconds per further proof) in one mode."""
    config = LeanConfig(repl_cmd=simulated_repl_command(scenario), sandbox=sandbox, workers=workers, timeout=30)
    async with LeanPool(config) as pool:
        checker = ProofChecker(pool, CheckerConfig(replay="off"))
        start = time.perf_counter()
        await checker.check(proofs[0], "simp")  # starts a worker (the header is elaborated once)
        started = time.perf_counter() - start
        start = time.perf_counter()
        verdicts = await asyncio.gather(*(checker.check(p, "simp") for p in proofs[1:]))
        elapsed = time.perf_counter() - start
    if not all(v.proved for v in verdicts):
        bad = next(v for v in verdicts if not v.proved)
        raise SystemExit(f"benchmark broken ({sandbox}): {bad.rule}: {bad.detail}")
    return started, elapsed / (len(proofs) - 1)


async def sandbox_overhead(checks: int, workers: int, latency: float) -> dict[str, float]:
    """The sandbox's extra cost per proof and per worker start (the full checker, simulated REPL)."""
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"bench_{i}" for i in range(checks + 1)]
        scenario = Scenario.model_validate(
            {"latency": latency, "theorems": [{"name": n, "proofs": [{"body": "simp"}]} for n in names]}
        ).dump(Path(tmp) / "scenario.json")
        proofs = [Problem(name=n, header=HEADER, formal_statement=STATEMENT.format(i=i).split("\n")[0])
                  for i, n in enumerate(names)]
        start_off, per_proof_off = await checker_seconds("off", scenario, proofs, workers)
        start_on, per_proof_on = await checker_seconds("required", scenario, proofs, workers)
    return {"sandbox_overhead": per_proof_on / per_proof_off, "checker_ms_off": per_proof_off * 1000,
            "checker_ms_on": per_proof_on * 1000, "first_check_ms_off": start_off * 1000,
            "first_check_ms_on": start_on * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16, help="client tasks competing for workers")
    parser.add_argument("--sandbox-overhead", action="store_true",
                        help="measure the sandbox's extra cost per checked proof instead (default 200 checks)")
    args = parser.parse_args()
    if args.sandbox_overhead:
        checks = 200 if args.checks == parser.get_default("checks") else args.checks
        o = asyncio.run(sandbox_overhead(checks, args.workers, args.latency_ms / 1000))
        print(f"simulated REPL, full checker, {checks} proofs: {o['checker_ms_off']:.1f} ms/proof unsandboxed, "
              f"{o['checker_ms_on']:.1f} ms/proof sandboxed (wall time, {args.workers} workers)")
        print(f"sandbox_overhead={o['sandbox_overhead']:.3f} checker_ms_off={o['checker_ms_off']:.1f} "
              f"checker_ms_on={o['checker_ms_on']:.1f} first_check_ms_off={o['first_check_ms_off']:.0f} "
              f"first_check_ms_on={o['first_check_ms_on']:.0f}")
        return
    r = asyncio.run(run(args.checks, args.workers, args.latency_ms / 1000, args.concurrency))
    print(f"simulated REPL, {args.checks} checks: {r['checks_per_s']:.1f} checks/s in {r['seconds']:.2f} s "
          f"(ideal {args.workers / (args.latency_ms / 1000):.1f}/s)")
    print(f"efficiency={r['efficiency']:.3f} imports_per_1000={r['imports_per_1000']:.1f} "
          f"workers={args.workers} latency_ms={args.latency_ms:g}")


if __name__ == "__main__":
    main()
