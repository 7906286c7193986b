"""Best-first search bookkeeping speed and proof-cache savings, on in-process fakes.

1. `expansions_per_s`: one search over a synthetic, never-ending goal graph (width 8, ~1/4 of the
   tactics fail, ~1/8 reach an already-seen state) with a zero-latency fake sampler and fake Lean
   (`ScriptedLeanSession`): what the search itself costs per expansion (priority queue, tree,
   propagation, filtering, request/response plumbing). Target >= 10,000/s on one core. The
   expansions per CPU second are printed too: on a shared machine they show the search's own cost
   when other processes take turns on the core.
2. `cache_call_ratio`: Lean calls for a problem set whose problems share subgoals, searched with a
   shared SQLite proof cache, divided by the calls without a cache (lower is better).

Run: `python benchmarks/bench_bfs.py [--expansions N] [--problems N]`; the last line holds the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import zlib
from pathlib import Path

from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import StepKind
from prover.llm.base import Sampler
from prover.search.bfs import BestFirstSearch, BfsConfig, run_search
from prover.search.proof_cache import ProofCache, SqliteProofCache
from prover.types import Completion, GenRequest, GenResult, Problem

WIDTH = 8


class FixedSampler(Sampler):
    """Zero-latency sampler: suggestions are a pure function of the prompt. Results are built
    once per distinct suggestion list, so what is timed is the search, not this fake."""

    backend = "bench"

    def __init__(self, suggest) -> None:
        super().__init__()
        self._suggest = suggest
        self._results: dict[tuple[tuple[str, float], ...], GenResult] = {}

    async def generate(self, request: GenRequest) -> GenResult:
        goals = (request.prompt or "").removesuffix(":::")
        suggestions = tuple(self._suggest(goals)[: request.n])
        result = self._results.get(suggestions)
        if result is None:
            completions = tuple(Completion(text=t, tokens=1, cumulative_logprob=lp) for t, lp in suggestions)
            result = self._results[suggestions] = GenResult(completions=completions)
        return result


# -- 1. bookkeeping throughput ------------------------------------------------------------------

_TACTICS = [(f"tac_{j}", -0.05 * (j + 1)) for j in range(WIDTH)]


class SyntheticGraph:
    """The goal graph: what `tactic` does to `goals` is decided by crc32(f"{goals}|{tactic}")."""

    MISMATCH = Transition(StepKind.ERROR, error="type mismatch")
    SHARED = [Transition(StepKind.OK, goals=(f"⊢ shared {k}",)) for k in range(64)]

    def __init__(self) -> None:
        self._tactic_bytes = {t: f"|{t}".encode() for t, _ in _TACTICS}
        self._last: tuple[str | None, int] = (None, 0)
        """The goals last stepped and their crc32 (a state's sampled tactics come one after another)."""

    def __call__(self, goals: str, tactic: str) -> Transition:
        if goals is not self._last[0]:
            self._last = (goals, zlib.crc32(goals.encode()))
        h = zlib.crc32(self._tactic_bytes[tactic], self._last[1])  # = crc32(f"{goals}|{tactic}")
        if h % 4 == 0:
            return self.MISMATCH
        if h % 8 == 1:  # a transposition: a state seen before (small state space)
            return self.SHARED[h % 64]
        return Transition(StepKind.OK, goals=(f"x : Nat\n⊢ goal {h}",))


async def bench_throughput(expansions: int) -> tuple[float, float]:
    problem = Problem(name="synthetic", formal_statement="theorem synthetic : False := by")
    config = BfsConfig(width=WIDTH, max_expansions=expansions, time_budget=600, max_depth=10_000)
    search = BestFirstSearch(problem, config=config, use_cache=False)
    env = ScriptedLeanSession(("⊢ False",), SyntheticGraph())
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = await run_search(search, lean=env, sampler=FixedSampler(lambda g: _TACTICS), cache=None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert result.expansions == expansions, result.stop_reason
    return result.expansions / seconds, result.expansions / cpu


# -- 2. shared cache on problems with repeated goals -------------------------------------------

CHAIN = 4  # proof steps of each shared lemma state
SHARED = 4  # distinct shared states


def _world_suggest(goals: str) -> list[tuple[str, float]]:
    if goals.startswith("⊢ P"):
        return [("simp", -0.1), ("intro h", -0.3), ("omega", -0.5)]
    # distractors first (higher log-prob): one leads to an open dead zone, the rest fail
    return [("split", -0.05), ("bad_a", -0.2), ("bad_b", -0.3), ("step", -0.9)]


def _world_step(goals: str, tactic: str) -> Transition:
    if goals.startswith("⊢ P"):
        k = int(goals.split()[1][1:]) % SHARED
        if tactic == "intro h":
            return Transition(StepKind.OK, goals=(f"⊢ S{k} 0",))
        return Transition(StepKind.ERROR, error="failed")
    if goals.startswith("⊢ D"):
        return Transition(StepKind.ERROR, error="failed")
    _, name, index = goals.split()
    j = int(index)
    if tactic == "step":
        if j + 1 == CHAIN:
            return Transition(StepKind.PROVED)
        return Transition(StepKind.OK, goals=(f"⊢ {name} {j + 1}",))
    if tactic == "split":
        return Transition(StepKind.OK, goals=(f"⊢ D{name} {j}",))
    return Transition(StepKind.ERROR, error="failed")


async def _solve_all(problems: int, cache: ProofCache | None) -> int:
    calls = 0
    config = BfsConfig(width=WIDTH, max_expansions=200, time_budget=600)
    sampler = FixedSampler(_world_suggest)
    for i in range(problems):
        problem = Problem(name=f"p{i}", formal_statement=f"theorem p{i} : P{i} := by")
        search = BestFirstSearch(problem, config=config, use_cache=cache is not None)
        env = ScriptedLeanSession((f"⊢ P{i}",), _world_step)
        result = await run_search(search, lean=env, sampler=sampler, cache=cache)
        assert result.proved, (i, result.stop_reason)
        calls += result.lean_calls
    return calls


async def bench_cache(problems: int) -> float:
    without = await _solve_all(problems, None)
    with tempfile.TemporaryDirectory() as tmp:
        cache = SqliteProofCache(Path(tmp) / "proofs.sqlite")
        try:
            with_cache = await _solve_all(problems, cache)
        finally:
            await cache.close()
    print(f"lean calls: without cache {without}, with shared cache {with_cache} ({problems} problems)")
    return with_cache / without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expansions", type=int, default=20_000)
    parser.add_argument("--problems", type=int, default=32)
    args = parser.parse_args()
    rate, cpu_rate = asyncio.run(bench_throughput(args.expansions))
    print(f"bookkeeping: {args.expansions} expansions (width {WIDTH}) at {rate:,.0f}/s ({cpu_rate:,.0f} per CPU second)")
    ratio = asyncio.run(bench_cache(args.problems))
    print(f"expansions_per_s={rate:.0f} cache_call_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
