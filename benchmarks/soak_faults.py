"""Soak: do transient faults change any result? Thousands of attempts, with and without faults.

The same evaluation runs twice through `prover.api.aevaluate` (pipeline, results store, report)
with the real `LeanPool` and `ProofChecker` over SIMULATED REPL processes (no Lean is run):

* the workload: `--problems` x `--passes` whole-proof attempts; a deterministic in-process
  sampler writes unique proofs per sample (seeded like every strategy): 30% that the simulated
  Lean accepts, 68% that it rejects, 2% that hang it (tied to those proofs, so they are timeouts
  in both runs and the REPL is killed and restarted for each);
* the faulty run adds: 5% of proof checks crash the REPL at random (`crash_rate` on the proof
  command, each try drawn anew), and every request grows the REPL's memory
  (`grow_mb_per_request`) until the pool recycles it above `rss_limit_mb` (set from the measured
  RSS of an idle simulated REPL);
* nothing else differs (same seeds, proofs, timeouts), and the verdict cache is off.

Compared per slot (problem, round, sample): the verdict's status, rule, detail, messages, axioms
and checked code. `verdicts_identical` = share of the clean run's slots whose faulty-run verdict is
the same; `lost` = slots of the budget missing from the faulty run; `duplicated` = lines of its
attempts.jsonl that repeat a slot; `restarts` = REPL processes restarted in the faulty run
(crashes, hang kills, recycling). Targets: 1.0, 0, 0.

With independent crashes of probability p per try, a check ends as `crash` only if all
`retries + 1` tries crash: N * p**(retries + 1) attempts are expected to change (1.25 for N=10,000,
p=0.05 and the default `lean.retries` 2), so the soak runs with `--retries 4` (3e-3 expected).

The full soak is `--problems 100 --passes 100` (10,000 attempts, about 5 minutes on 2 cores);
the default is 50 x 20 = 1,000 attempts so that it finishes in under a minute: every restart
spawns a Python process, which is most of the cost on 2 shared cores. The timeout (1.5 s x
`--scale`) is far above a simulated check's few milliseconds, so that a loaded machine does not
turn a slow reply into a timeout in one run only.

    python benchmarks/soak_faults.py [--problems 50] [--passes 20] [--workers 4] [--retries 4] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from prover.api import aevaluate
from prover.config import ProverConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.pool import LeanPool
from prover.lean_env.retry import RetryPolicy
from prover.lean_env.session import PoolLeanSession
from prover.lean_env.simulated_lean import Scenario
from prover.lean_env.simulated_repl import simulated_repl_command
from prover.lean_env.worker import ReplWorker
from prover.llm.base import Sampler
from prover.search.base import Services
from prover.types import Completion, GenRequest, GenResult, Problem

HEADER = "import Mathlib"
GOOD, BAD, HANG = "exact proof_{n}", "exact wrong_{n}", "exact hang_{n}"
PROOF_COMMAND = r"exact (proof|wrong|hang)_\d+"
"""The command holding the sampled proof (the checker's other requests do not match)."""
RATES = {"hang": 0.02, "good": 0.30}


def make_problems(n: int) -> list[Problem]:
    return [
        Problem(name=f"s{i}", header=HEADER, formal_statement=f"theorem s{i} (x : Nat) : x + {i} = {i} + x := by",
                benchmark="soak")
        for i in range(n)
    ]


class ProofSampler(Sampler):
    """Deterministic per request seed: unique good, bad and hanging proofs at fixed rates."""

    backend = "soak"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__()
        self.statements = {p.name: p.formal_statement for p in problems}

    async def generate(self, request: GenRequest) -> GenResult:
        rng = random.Random(request.seed)
        statement = self.statements[request.tag.split("#")[0]]
        texts = []
        for _ in range(request.n):
            roll, n = rng.random(), rng.randrange(10**12)
            body = HANG if roll < RATES["hang"] else GOOD if roll < RATES["hang"] + RATES["good"] else BAD
            texts.append(f"```lean4\n{statement}\n  {body.format(n=n)}\n```")
        result = GenResult(completions=tuple(Completion(text=t, tokens=len(t.split())) for t in texts), prompt_tokens=20)
        self.stats.add(request, result)
        return result


def scenario(problems: list[Problem], *, latency: float, faults: dict[str, Any]) -> Scenario:
    return Scenario.model_validate({
        "latency": latency,
        "faults": {"hang_on": [r"exact hang_\d+"], **faults},
        "theorems": [{"name": p.name, "proofs": [{"pattern": r"exact proof_\d+"}]} for p in problems],
    })


async def idle_rss_mb(tmp: Path, problems: list[Problem]) -> float:
    """Resident memory of one simulated REPL with the header elaborated (the recycling baseline)."""
    path = scenario(problems[:1], latency=0.0, faults={}).dump(tmp / "probe.json")
    config = ProverConfig().lean.model_copy(update={"repl_cmd": simulated_repl_command(path)})
    worker = ReplWorker(0, ReplLauncher.from_config(config), config, HEADER)
    try:
        await worker.start()
        return worker.rss_mb()
    finally:
        await worker.close()


async def run_once(tmp: Path, name: str, problems: list[Problem], args: argparse.Namespace,
                   faults: dict[str, Any], rss_limit_mb: int | None) -> tuple[Path, dict[str, int]]:
    repl = scenario(problems, latency=0.001 * args.scale, faults=faults).dump(tmp / f"{name}.json")
    config = ProverConfig.load(None, user_defaults=False).with_overrides({
        "sampler.model": "soak/fake", "sampler.prompt_format": "chat", "eval.benchmark": "soak",
        "eval.passes": args.passes, "eval.max_problems_in_flight": 16, "whole_proof.chunk": 8,
        "lean.repl_cmd": simulated_repl_command(repl), "lean.workers": args.workers,
        "lean.timeout": 1.5 * args.scale, "lean.header_timeout": 30.0, "lean.retries": args.retries,
        "lean.rss_limit_mb": rss_limit_mb, "cache.enabled": False,
    })
    sampler = ProofSampler(problems)
    pools: list[LeanPool] = []

    async def services(cfg: ProverConfig) -> Services:
        pool = LeanPool(cfg.lean)
        pools.append(pool)
        return Services(samplers={"prover": sampler}, checker=ProofChecker(pool, cfg.checker),
                        lean=PoolLeanSession(pool, retry=RetryPolicy.from_config(cfg.lean)), closers=[pool.close])

    out = tmp / name
    await aevaluate(problems, config, out=out, progress=False, services=services)
    return out, pools[0].stats().model_dump()


def slots(run_dir: Path) -> tuple[dict[tuple[str, int, int], tuple[Any, ...]], int]:
    """Verdict per slot, and how many lines repeat a slot already seen."""
    verdicts: dict[tuple[str, int, int], tuple[Any, ...]] = {}
    repeats = 0
    for line in (run_dir / "attempts.jsonl").read_text(encoding="utf-8").splitlines():
        a = json.loads(line)
        key = (a["problem"], a["round"], a["sample_index"])
        repeats += key in verdicts
        v = a["verdict"]
        verdicts[key] = tuple(json.dumps(v[f], sort_keys=True) for f in ("status", "rule", "detail", "messages", "axioms", "code"))
    return verdicts, repeats


async def main(args: argparse.Namespace) -> str:
    problems = make_problems(args.problems)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        baseline = await idle_rss_mb(tmp, problems)
        rss_limit = round(baseline + args.headroom_mb)
        started = time.monotonic()
        clean_dir, clean_stats = await run_once(tmp, "clean", problems, args, {}, None)
        clean_seconds = time.monotonic() - started
        faults = {"crash_rate": args.crash_rate, "crash_rate_on": [PROOF_COMMAND], "grow_mb_per_request": args.grow_mb}
        faulty_dir, stats = await run_once(tmp, "faulty", problems, args, faults, rss_limit)
        faulty_seconds = time.monotonic() - started - clean_seconds
        clean, _ = slots(clean_dir)
        faulty, duplicated = slots(faulty_dir)
    expected = {(p.name, 0, i) for p in problems for i in range(args.passes)}
    same = sum(1 for key, verdict in clean.items() if faulty.get(key) == verdict)
    statuses = Counter(v[0] for v in faulty.values())
    for key in [k for k, v in clean.items() if faulty.get(k) != v][:5]:
        print(f"changed {key}: {clean[key][:3]} -> {faulty.get(key, ('lost',))[:3]}", file=sys.stderr)
    print(
        f"simulated REPL, {len(expected)} attempts x 2 runs, {args.workers} workers, retries={args.retries}: "
        f"clean {clean_seconds:.1f}s (timeouts {clean_stats['timeouts']}, restarts {clean_stats['restarts']}), "
        f"faulty {faulty_seconds:.1f}s (crashes {stats['crashes']}, timeouts {stats['timeouts']}, "
        f"recycles {stats['recycles']} above {rss_limit:.0f} MB, restarts {stats['restarts']}); "
        f"faulty verdicts {dict(statuses)}; clean run complete: {set(clean) == expected}",
        file=sys.stderr,
    )
    return (
        f"verdicts_identical={same / len(clean):.4f} lost={len(expected - set(faulty))} "
        f"duplicated={duplicated} restarts={stats['restarts']}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--passes", type=int, default=20, help="attempts per problem (--problems 100 --passes 100: the full 10,000)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--retries", type=int, default=4, help="lean.retries (see the docstring)")
    parser.add_argument("--crash-rate", type=float, default=0.05, help="share of proof checks that crash the REPL")
    parser.add_argument("--grow-mb", type=float, default=0.5, help="REPL memory growth per request (MB)")
    parser.add_argument("--headroom-mb", type=float, default=25.0, help="rss_limit_mb above an idle REPL's RSS")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the REPL latency and the timeout")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse_args())))
