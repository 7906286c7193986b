"""Pool and checker throughput on the SIMULATED REPL (no Lean): are the pool or the checker the
bottleneck?

1. Pool: each check is one command on the worker's header env; the simulated REPL answers every
   request after a fixed latency, so the ideal throughput is workers / latency. `efficiency` =
   achieved / ideal; `overhead_us` = what a request costs a worker beyond the latency (hand-off,
   lease, JSON both ways, process wake-ups): elapsed x workers / checks - latency.
2. Checker, the kimina-lean-server anchor set-up: the full `ProofChecker` pipeline on `--workers`
   REPLs, `--proofs-per-problem` proofs of each problem checked concurrently, where elaborating
   a proof takes `--proof-ms` and every cheap command (the axiom audit, the benchmark statement
   with a `sorry` proof, a header) `--light-ms`, as in Lean. Ideal = workers / proof time: what a
   checker without an audit would reach with zero overhead (kimina-lean-server, which runs no
   audit, measured 18.6 checks/s = 0.93 of it on this set-up). `checks_vs_ideal` = achieved / ideal.
   A sound audit is Lean work of its own (per accepted proof a pickle, an unpickle and the trusted
   commands, plus the statement reference once per problem), so `checker_utilization` = the Lean
   time of every request the checker sent (counted by the pool: the proof commands at `--proof-ms`,
   all others at `--light-ms`) / (workers x elapsed): what is left is orchestration idling the
   workers. `lean_ms_per_check` = that Lean time per check (200 for a checker without an audit).

`--sandbox-overhead` instead measures what the bubblewrap sandbox adds to the full checker
(preflight, REPL command + fence, pickle, audit worker unpickle + trusted commands) per proof, by
checking the same proofs with `lean.sandbox = off` and `required` in one run. Last line:
    sandbox_overhead=<time on / time off> checker_ms_off=<per proof> checker_ms_on=<per proof>
    first_check_ms_off=<worker start + one check> first_check_ms_on=<same, sandboxed>

Last line (default):
    efficiency=... overhead_us=... imports_per_1000=... checks_vs_ideal=... checker_utilization=...
    lean_ms_per_check=... checks_per_s=...
Targets: efficiency >= 0.97 (4 workers, 50 ms); imports_per_1000 == workers (each worker imports
the header once); checks_vs_ideal >= 0.97, which the audit's own Lean work caps at
proof-ms / lean_ms_per_check; checker_utilization >= 0.97.

    python benchmarks/bench_lean_pool.py [--checks 1000] [--workers 4] [--latency-ms 50]
        [--proofs-per-problem 8 --proof-ms 200 --light-ms 5 --problems 50]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from prover.config import CheckerConfig, LeanConfig
from prover.lean_env import LeanPool, OutcomeKind, ReplLauncher, Scenario, simulated_repl_command
from prover.lean_env.checker import ProofChecker
from prover.types import CheckStatus, Problem

HEADER = "import Mathlib\nopen Real"
STATEMENT = "theorem bench_{i} (x : Nat) : x + 0 = x := by\n  simp"
ANCHOR_TACTICS = ("omega", "simp", "decide", "norm_num", "linarith", "nlinarith", "ring_nf", "positivity")
"""One accepted proof per tactic: every check runs the whole pipeline (no early Lean error)."""


# -- 1. the pool ---------------------------------------------------------------------------------


async def run_pool(checks: int, workers: int, latency: float, concurrency: int) -> dict[str, float]:
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

            await warm_up(pool, HEADER, workers)
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
        "overhead_us": (elapsed * workers / checks - latency) * 1e6,
        "imports_per_1000": stats.imports * 1000 / checks,
        "checks_per_s": checks / elapsed,
        "seconds": elapsed,
    }


async def warm_up(pool: LeanPool, header: str, workers: int) -> None:
    """Start every worker (header imported) before the clock starts."""

    async def hold() -> None:
        async with pool.lease(pool.env_key(header)):
            await asyncio.sleep(0.2)  # hold so the next warm-up starts another worker

    await asyncio.gather(*(hold() for _ in range(workers)))


# -- 2. the checker (kimina-lean-server anchor) --------------------------------------------------


def anchor_problem(i: int) -> Problem:
    return Problem(name=f"anchor_{i}", header=HEADER, formal_statement=f"theorem anchor_{i} (x : Nat) : x + {i} = {i} + x := by")


async def run_checker(
    problems: int, proofs_per_problem: int, workers: int, proof_s: float, light_s: float, concurrency: int
) -> dict[str, float]:
    tactics = [ANCHOR_TACTICS[k % len(ANCHOR_TACTICS)] for k in range(proofs_per_problem)]
    items = [(anchor_problem(i), f"  {tactic}") for i in range(problems) for tactic in tactics]
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Scenario.model_validate(
            {
                "latency": light_s,
                "proof_latency": proof_s,
                "theorems": [
                    {"name": f"anchor_{i}", "proofs": [{"pattern": "|".join(ANCHOR_TACTICS)}]} for i in range(problems)
                ],
            }
        ).dump(Path(tmp) / "scenario.json")
        config = LeanConfig(workers=workers, timeout=60)
        async with LeanPool(config, launcher=ReplLauncher(argv=simulated_repl_command(scenario))) as pool:
            checker = ProofChecker(pool, CheckerConfig())
            todo = iter(items)
            statuses: list[CheckStatus] = []

            async def one_client() -> None:
                for problem, proof in todo:
                    statuses.append((await checker.check(problem, proof)).status)

            await warm_up(pool, HEADER, workers)
            sent_before = pool.stats().requests
            start = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            requests = pool.stats().requests - sent_before
    bad = sum(s is not CheckStatus.PROVED for s in statuses)
    if len(statuses) != len(items) or bad:
        raise SystemExit(f"benchmark broken: {len(statuses)} verdicts for {len(items)} checks, {bad} not PROVED")
    rate = len(items) / elapsed
    lean_s = len(items) * proof_s + (requests - len(items)) * light_s  # one proof command per check
    return {"checks_per_s": rate, "checks_vs_ideal": rate / (workers / proof_s), "seconds": elapsed,
            "checker_utilization": lean_s / (workers * elapsed), "lean_ms_per_check": lean_s / len(items) * 1000}


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
    parser.add_argument("--problems", type=int, default=50, help="problems of the checker set-up")
    parser.add_argument("--proofs-per-problem", type=int, default=8)
    parser.add_argument("--proof-ms", type=float, default=200.0, help="simulated time to elaborate a proof")
    parser.add_argument("--light-ms", type=float, default=5.0, help="simulated time of a cheap command")
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
    pool = asyncio.run(run_pool(args.checks, args.workers, args.latency_ms / 1000, args.concurrency))
    print(f"pool: {args.checks} checks: {pool['checks_per_s']:.1f} checks/s in {pool['seconds']:.2f} s "
          f"(ideal {args.workers / (args.latency_ms / 1000):.1f}/s), {pool['overhead_us']:.0f} us per request "
          "beyond the latency")
    checker = asyncio.run(run_checker(args.problems, args.proofs_per_problem, args.workers, args.proof_ms / 1000,
                                      args.light_ms / 1000, args.concurrency))
    print(f"checker: {args.problems} problems x {args.proofs_per_problem} proofs, proof {args.proof_ms:g} ms, "
          f"cheap commands {args.light_ms:g} ms: {checker['checks_per_s']:.2f} checks/s in {checker['seconds']:.1f} s "
          f"(ideal {args.workers / (args.proof_ms / 1000):.1f}/s; {checker['lean_ms_per_check']:.1f} ms of Lean work "
          "per check with the audit)")
    print(f"efficiency={pool['efficiency']:.3f} overhead_us={pool['overhead_us']:.0f} "
          f"imports_per_1000={pool['imports_per_1000']:.1f} checks_vs_ideal={checker['checks_vs_ideal']:.3f} "
          f"checker_utilization={checker['checker_utilization']:.3f} lean_ms_per_check={checker['lean_ms_per_check']:.1f} "
          f"checks_per_s={checker['checks_per_s']:.2f} workers={args.workers} latency_ms={args.latency_ms:g}")


if __name__ == "__main__":
    main()
