"""How close the planner gets to its critical path, and how much sampling the proof cache saves.

Workload: 16 problems x 4 holes through `prover.api.aevaluate` with `--strategy planner` (the same
pipeline, strategy, checker, results store and report as `prover eval`), simulated latencies
(nominal values, all multiplied by `--scale`):

* planner model: 2 s per call (a fake engine; it writes each problem's sketch of 4 `have`s);
* sub-prover model: 1 s per sample (one whole-proof sample per hole, which proves its lemma);
* Lean: the real `ProofChecker` and `PoolLeanSession` on an in-process pool over the SIMULATED
  REPL's state machine (`SimulatedLean`, no processes): 0.2 s per elaboration of a declaration
  (sketch check, lemma confirmation, lemma check, statement reference, stitched check); the
  checker's audit requests (env pickle and unpickle, trusted `#check`/`#print axioms`) free; no
  kernel replay stage. Every service takes any number of requests at once, so the ideal is set
  by dependencies alone.

Critical path of one problem (cold cache): planner call, sketch check + the statement's reference,
then the holes in parallel (confirm the lemma, sample, check, the lemma statement's reference),
then the stitched check:

    critical = t_plan + 2 t_lean + (3 t_lean + t_sample) + t_lean

`planner_overlap = wall / critical` (target <= 1.15): wall is from opening the services to the
last attempt on disk, for 16 problems started together. A second set of 16 problems shares two
claims (the same hypotheses and the same first two `have`s): `subgoal_cache_saved` = holes proved
without sampling / holes that could be (64 holes, 34 distinct goals: 30), measured in one run
where all 16 start together (a hole whose goal is being proved for another problem waits for it,
then replays the cached proof on its own state).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prover.api import aevaluate
from prover.config import LeanConfig, ProverConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.lease import make_result
from prover.lean_env.protocol import parse_reply
from prover.lean_env.results import EnvHandle, EnvKey, ProofStateHandle, ReplResult, WorkerRef
from prover.lean_env.session import PoolLeanSession
from prover.lean_env.simulated_lean import Scenario, SimulatedLean
from prover.lean_env.worker import Outcome, classify
from prover.llm.base import Sampler
from prover.search.base import Services
from prover.search.proof_cache import MemoryProofCache
from prover.types import Completion, GenRequest, GenResult, Problem

HOLES = 4
HYPS = "x y : ℕ\nh₀ : x = 2\nh₁ : y = 3"


# ---------------------------------------------------------------------------------------------
# The world: problems, the SIMULATED REPL scenario, the two fake models
# ---------------------------------------------------------------------------------------------


def claims(problem: int, shared: bool) -> list[str]:
    """The 4 claims of a problem's sketch; with `shared`, the first two are the same everywhere."""
    own = [f"x + {problem * 10 + k} = {2 + problem * 10 + k}" for k in range(HOLES)]
    return ([f"x + {k} = {2 + k}" for k in range(2)] + own[2:]) if shared else own


def world(
    count: int, shared: bool, prefix: str
) -> tuple[list[Problem], dict[str, Any], dict[str, str], dict[str, str]]:
    """Problems, scenario data, planner replies (by problem) and lemma proofs (by lemma)."""
    problems, theorems, sketches, proofs = [], [], {}, {}
    for i in range(count):
        name = f"{prefix}{i}"
        statement = f"theorem {name} (x y : ℕ) (h₀ : x = 2) (h₁ : y = 3) : x + y = 5 := by"
        problems.append(Problem(name=name, formal_statement=statement, benchmark="bench"))
        context, steps = HYPS, []
        body = []
        for k, claim in enumerate(claims(i, shared)):
            tactic = f"omega_{k}"
            steps.append({"from": [f"{context}\n⊢ {claim}"], "tactic": tactic, "to": []})
            lemma = f"{name}_c{k}"
            theorems.append({"name": lemma, "proofs": [{"body": tactic}]})
            proofs[lemma] = f"```lean4\ntheorem {lemma} : {claim} := by\n  {tactic}\n```"
            body.append(f"  have c{k} : {claim} := by sorry")
            context += f"\nc{k} : {claim}"
        steps.append({"from": [f"{context}\n⊢ x + y = 5"], "tactic": "omega", "to": []})
        body.append("  omega")
        theorems.append({"name": name, "goals": [f"{HYPS}\n⊢ x + y = 5"], "steps": steps})
        sketches[name] = f"Plan: four small claims.\n\n```lean4\n{statement}\n" + "\n".join(body) + "\n```"
    return problems, {"theorems": theorems}, sketches, proofs


class FakeEngine(Sampler):
    """A model that answers by request tag after `seconds`, any number of requests at once."""

    backend = "fake"

    def __init__(self, answers: dict[str, str], seconds: float) -> None:
        super().__init__()
        self.answers = answers
        self.seconds = seconds

    async def generate(self, request: GenRequest) -> GenResult:
        await asyncio.sleep(self.seconds)
        text = self.answers[request.tag.split("#", 1)[0]]
        result = GenResult(completions=tuple(Completion(text=text, tokens=len(text.split())) for _ in range(request.n)),
                           prompt_tokens=100, seconds=self.seconds)
        self.stats.add(request, result)
        return result


# ---------------------------------------------------------------------------------------------
# Lean: an in-process pool over the simulated REPL's state machine
# ---------------------------------------------------------------------------------------------


class InProcessLease:
    """`WorkerLease`'s command/tactic over one `SimulatedLean`, with the benchmark's latency."""

    worker = WorkerRef(worker_id=0, generation=0)

    def __init__(self, pool: InProcessPool, header: str) -> None:
        self.pool = pool
        self.header_env = EnvHandle(worker=self.worker, env=pool.header_env(header))

    async def command(self, cmd: str, *, env: Any = "header", timeout: float | None = None, **_: Any) -> ReplResult:
        env_id = self.header_env.env if env == "header" else (env.env if isinstance(env, EnvHandle) else None)
        declares = any(line.startswith(("theorem", "lemma")) for line in cmd.splitlines())
        return await self._answer(lambda: self.pool.lean.command(cmd, env_id), self.pool.t_lean if declares else 0.0)

    async def tactic(self, state: ProofStateHandle, tactic: str, *, timeout: float | None = None) -> ReplResult:
        return await self._answer(lambda: self.pool.lean.tactic(tactic, state.proof_state), self.pool.t_lean)

    async def pickle_env(self, env: EnvHandle, path: str, *, timeout: float | None = None) -> ReplResult:
        return await self._answer(lambda: self.pool.lean.handle({"pickleTo": path, "env": env.env}), 0.0)

    async def unpickle_env(self, path: str, *, timeout: float | None = None) -> ReplResult:
        return await self._answer(lambda: self.pool.lean.handle({"unpickleEnvFrom": path}), 0.0)

    async def _answer(self, ask: Any, seconds: float) -> ReplResult:
        if seconds:
            await asyncio.sleep(seconds)
        reply = parse_reply(ask())
        kind, detail = classify(reply)
        return make_result(Outcome(kind, reply, seconds, detail, 0), 0)


class InProcessPool:
    """What `ProofChecker` and `PoolLeanSession` use of a `LeanPool`: unlimited leases."""

    def __init__(self, scenario: dict[str, Any], t_lean: float) -> None:
        self.lean = SimulatedLean(Scenario.model_validate(scenario))
        self.t_lean = t_lean
        self.config = LeanConfig(repl_cmd=["in-process-simulated-repl"])
        self._headers: dict[str, int] = {}

    def header_env(self, header: str) -> int:
        if header not in self._headers:
            self._headers[header] = self.lean.command(header, None)["env"]
        return self._headers[header]

    def env_key(self, header: str) -> EnvKey:
        return EnvKey(workspace="", lean_version="", header=header)

    @contextlib.asynccontextmanager
    async def lease(self, key: EnvKey, *, affinity: Any = None, fresh: bool = False) -> AsyncIterator[InProcessLease]:
        yield InProcessLease(self, key.header)


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


async def run_set(count: int, shared: bool, t_plan: float, t_sample: float, t_lean: float) -> dict[str, Any]:
    prefix = "s" if shared else "p"
    problems, scenario, sketches, proofs = world(count, shared, prefix)
    pool = InProcessPool(scenario, t_lean)
    prover = FakeEngine(proofs, t_sample)
    clock: dict[str, float] = {}

    async def services(config: ProverConfig) -> Services:
        clock["open"] = time.monotonic()
        opened = Services(samplers={"planner": FakeEngine(sketches, t_plan), "prover": prover},
                          checker=ProofChecker(pool, config.checker, replay=None), lean=PoolLeanSession(pool),
                          proof_cache=MemoryProofCache())

        async def stopped() -> None:
            clock["done"] = time.monotonic()

        opened.closers.append(stopped)
        return opened

    config = ProverConfig.load(user_defaults=False).with_overrides({
        "eval.strategy": "planner", "eval.passes": 1, "eval.max_problems_in_flight": count, "cache.enabled": False,
        "planner.subgoal_passes": 1, "planner.parallel_subgoals": HOLES, "planner.repair_turns": 0,
        "planner.max_sketches": 1, "planner.max_depth": 0, "sampler.prompt_format": "deepseek-v2",
    })
    with tempfile.TemporaryDirectory(prefix="bench-planner-") as out:
        result = await aevaluate(problems, config, out=Path(out) / "run", progress=False, services=services)
    summary = result.summary
    if summary.solved != count:
        raise SystemExit(f"benchmark world broken: {summary.solved}/{count} solved ({summary.verdicts})")
    return {"wall": clock["done"] - clock["open"], "samples": prover.stats.samples, "tallies": summary.tallies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every nominal latency")
    args = parser.parse_args()
    t_plan, t_sample, t_lean = 2.0 * args.scale, 1.0 * args.scale, 0.2 * args.scale
    critical = t_plan + 2 * t_lean + (3 * t_lean + t_sample) + t_lean

    plain = asyncio.run(run_set(args.problems, False, t_plan, t_sample, t_lean))
    overlap = plain["wall"] / critical
    print(f"distinct subgoals: {args.problems} problems x {HOLES} holes in {plain['wall']:.2f} s "
          f"(critical path {critical:.2f} s), {plain['samples']} prover samples", file=sys.stderr)

    shared = asyncio.run(run_set(args.problems, True, t_plan, t_sample, t_lean))
    holes = args.problems * HOLES
    distinct = 2 + (HOLES - 2) * args.problems
    hits = shared["tallies"]["subgoal cache hits"]
    saved = hits / (holes - distinct)
    print(f"shared subgoals: {holes} holes, {distinct} distinct goals, {hits} from the cache, "
          f"{shared['samples']} prover samples, {shared['wall']:.2f} s", file=sys.stderr)
    print(f"planner_overlap={overlap:.3f} subgoal_cache_saved={saved:.3f} wall_s={plain['wall']:.2f} "
          f"critical_s={critical:.2f} shared_samples={shared['samples']} shared_holes={holes}")


if __name__ == "__main__":
    main()
