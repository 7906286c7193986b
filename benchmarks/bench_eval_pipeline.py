"""How close the eval pipeline gets to perfect overlap of sampling and checking.

Workload: 64 problems x 32 samples through `prover.api.aevaluate` (the same pipeline, results
store and report as `prover eval`), with simulated latencies (nominal values, all multiplied by
`--scale` so the run takes well under a minute):

* sampler: a fake engine, 1 s per request (a batch of n = chunk = 8 samples, whatever n), at
  most `--engine-slots` (8) requests at once -- an engine whose running batch holds 8 requests.
  Samples are drawn per problem: with probability q (q ~ U(0, 0.9) per problem, "how easy it is")
  one of 4 common proofs with Zipf-like weights, else a unique proof. That gives duplicate
  rates like whole-proof sampling at temperature 1 (many duplicates on easy problems, almost none
  on hard ones).
* checking, 4 workers, 0.2 s per check:
  - `--checker repl` (default): the real LeanPool + ProofChecker talking to 4 simulated REPL
    processes; the command holding the sampled proof takes 0.2 s, the checker's auxiliary
    requests (axiom listing, statement reference) only their process round trip;
  - `--checker fake`: an in-process checker (semaphore of 4 + sleep), for machines where process
    overhead on 2 shared cores dominates the scaled-down latencies.

Ideal overlapped wall time (what a perfect pipeline with these capacities would take):

    S = requests x t_gen                 total engine time     (capacity: engine_slots)
    K = unique checks x t_check          total Lean time       (capacity: workers)
    ideal = max( t_gen + K / workers,                          Lean busy from the first batch on
                 S / engine_slots + ceil(chunk / workers) x t_check )   engine busy, then the last batch

`overlap_ratio = achieved / ideal` (target <= 1.05), where "achieved" is the pipeline's wall time
from opening the services to the last attempt on disk (the report rendering afterwards is not
part of the overlap and is printed separately). `dedupe_saved` = fraction of
extracted proofs that were not sent to Lean because an identical proof of the same problem was
already checked. The last line prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from prover.api import aevaluate
from prover.config import ProverConfig
from prover.search.base import Services
from prover.llm.base import Sampler
from prover.types import CheckStatus, Completion, GenRequest, GenResult, Problem, Verdict

COMMON = ("simp", "omega", "decide", "rfl")
COMMON_WEIGHTS = (0.5, 0.25, 0.15, 0.1)
GOOD = {"omega"}  # the simulated Lean accepts this body for every problem


def make_problems(n: int) -> list[Problem]:
    return [
        Problem(name=f"b{i}", formal_statement=f"theorem b{i} (x : Nat) : x + {i} = {i} + x := by", benchmark="bench")
        for i in range(n)
    ]


class LatencySampler(Sampler):
    """Fake engine: fixed latency per request, limited concurrent requests, realistic duplicates."""

    backend = "bench-fake"

    def __init__(self, problems: list[Problem], *, latency: float, slots: int, seed: int = 0) -> None:
        super().__init__()
        self.latency = latency
        self.slots = asyncio.Semaphore(slots)
        rng = random.Random(seed)
        self.easiness = {p.name: rng.uniform(0.0, 0.9) for p in problems}
        self.statements = {p.name: p.formal_statement for p in problems}

    async def generate(self, request: GenRequest) -> GenResult:
        async with self.slots:
            await asyncio.sleep(self.latency)
        name = request.tag.split("#")[0]
        rng = random.Random(request.seed)
        q = self.easiness[name]
        texts = []
        for _ in range(request.n):
            if rng.random() < q:
                body = rng.choices(COMMON, COMMON_WEIGHTS)[0]
            else:
                body = f"nlinarith [sq_nonneg (x - {rng.randrange(10**9)})]"
            texts.append(f"```lean4\n{self.statements[name]}\n  {body}\n```")
        result = GenResult(
            completions=tuple(Completion(text=t, tokens=len(t.split())) for t in texts),
            prompt_tokens=40,
            seconds=self.latency,
        )
        self.stats.add(request, result)
        return result


class LatencyChecker:
    """In-process stand-in for Lean: `workers` checks at a time, fixed latency each."""

    def __init__(self, *, latency: float, workers: int) -> None:
        self.latency = latency
        self.slots = asyncio.Semaphore(workers)

    async def check(self, problem: Problem, proof: str) -> Verdict:
        async with self.slots:
            await asyncio.sleep(self.latency)
        body = proof.split(":= by", 1)[-1].strip()
        if body in GOOD:
            return Verdict(status=CheckStatus.PROVED, rule="accepted")
        return Verdict(status=CheckStatus.FAILED, rule="lean_error")


def write_scenario(path: Path, problems: list[Problem], check_latency: float) -> Path:
    """Simulated Lean: `omega` proves every problem; elaborating a proof takes `check_latency`,
    the checker's auxiliary requests (axioms, statement reference) cost only process overhead."""
    import yaml

    scenario = {
        "latency": 0.0,
        "proof_latency": check_latency,
        "theorems": [
            {"name": p.name, "goals": [f"x : Nat\n⊢ x + {i} = {i} + x"], "proofs": [{"body": b} for b in sorted(GOOD)]}
            for i, p in enumerate(problems)
        ],
    }
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True), encoding="utf-8")
    return path


def build_config(args: argparse.Namespace, repl_cmd: list[str] | None) -> ProverConfig:
    overrides = {
        "sampler.model": "bench/fake",
        "sampler.prompt_format": "chat",
        "eval.benchmark": "bench",
        "eval.passes": args.samples,
        "whole_proof.chunk": args.chunk,
        "lean.workers": args.workers,
        "lean.repl_cmd": repl_cmd,
        "cache.enabled": False,
    }
    return ProverConfig.load(None, user_defaults=False).with_overrides(overrides)


async def main(args: argparse.Namespace) -> str:
    problems = make_problems(args.problems)
    t_gen, t_check = 1.0 * args.scale, 0.2 * args.scale
    sampler = LatencySampler(problems, latency=t_gen, slots=args.engine_slots)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        tmp_dir = Path(tmp)
        if args.checker == "repl":
            repl_cmd = _sim_cmd(write_scenario(tmp_dir / "scenario.yaml", problems, t_check))
            config = build_config(args, repl_cmd)
            checker_note = f"checker=simulated-repl({args.workers} processes, real LeanPool + ProofChecker)"

            async def services(cfg: ProverConfig) -> Services:
                from prover.lean_env.checker import ProofChecker
                from prover.lean_env.pool import LeanPool
                from prover.lean_env.session import PoolLeanSession

                pool = LeanPool(cfg.lean)
                await pool.__aenter__()
                return Services(samplers={"prover": sampler}, checker=ProofChecker(pool, cfg.checker),
                                lean=PoolLeanSession(pool), closers=[pool.close], warm_up=pool.warm)
        else:
            config = build_config(args, None)
            checker_note = f"checker=in-process-fake({args.workers} slots)"

            async def services(cfg: ProverConfig) -> Services:
                from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
                from prover.lean_env.session import StepKind

                no_tactics = ScriptedLeanSession((), lambda goals, tactic: Transition(StepKind.ERROR))
                return Services(samplers={"prover": sampler}, lean=no_tactics,
                                checker=LatencyChecker(latency=t_check, workers=args.workers))

        started = time.monotonic()
        result = await aevaluate(problems, config, out=tmp_dir / "run", services=services, progress=False)
        total = time.monotonic() - started
        achieved = pipeline_seconds(tmp_dir / "run")
    s = result.summary
    requests = sampler.stats.requests
    checks = s.checks
    extracted = s.attempts - s.extraction_failures
    ideal = max(
        t_gen + checks * t_check / args.workers,
        requests * t_gen / args.engine_slots + math.ceil(args.chunk / args.workers) * t_check,
    )
    ratio = achieved / ideal
    saved = s.dedupe_saved / extracted if extracted else 0.0
    print(
        f"{checker_note} scale={args.scale} problems={len(problems)} samples={s.attempts} requests={requests} "
        f"checks={checks} solved={s.solved} achieved={achieved:.2f}s ideal={ideal:.2f}s "
        f"(with run-dir setup and report rendering: {total:.2f}s) "
        f"mean Lean time per check={s.lean_seconds / max(1, checks) / args.scale:.3f}s nominal (0.2 s ideal)",
        file=sys.stderr,
    )
    return f"overlap_ratio={ratio:.3f} dedupe_saved={saved:.3f}"


def pipeline_seconds(run_dir: Path) -> float:
    """Wall time of the pipeline itself (services up, sampling, checking, recording), from the
    run's events; excludes opening the run directory and rendering the report (matplotlib)."""
    from prover.eval.store import read_events

    return [e for e in read_events(run_dir) if e.get("event") == "pipeline"][-1]["seconds"]


def _sim_cmd(scenario: Path) -> list[str]:
    return [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checker", choices=("repl", "fake"), default="repl")
    parser.add_argument("--scale", type=float, default=0.25, help="multiplies every latency (0.25: ~20 s)")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--engine-slots", type=int, default=8)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse_args())))
