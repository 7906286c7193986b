"""Python API (Prover, evaluate) and the pipeline behind it, with in-process fake services.

The end-to-end CLI tests (scripted sampler + simulated REPL) are in test_eval_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import prover
from context_helpers import make_services
from whole_proof_helpers import FakeChecker, FakeSampler, body_of, lean_block
from prover import Problem, Prover, ProverConfig
from prover.errors import SamplerUnavailable, WorkspaceError
from prover.eval.pipeline import effective_max_checks
from prover.search.base import Services
from prover.search.whole_proof import WholeProofStrategy
from prover.types import GenRequest


def problems(n: int) -> list[Problem]:
    return [
        Problem(name=f"p{i}", formal_statement=f"theorem p{i} (x : Nat) : x + {i} = {i} + x := by", benchmark="toy")
        for i in range(n)
    ]


def config(**overrides: object) -> ProverConfig:
    base = {
        "sampler.prompt_format": "chat",
        "sampler.model": "toy/model",
        "eval.benchmark": "toy",
        "eval.passes": 4,
        "whole_proof.chunk": 2,
    }
    base.update(overrides)
    return ProverConfig.load(None, user_defaults=False).with_overrides(base)


def answers_by_problem(table: dict[str, list[str]]):
    """Sample j of problem p gets table[p][j]; the chunk is found from the request's seed order."""
    served: dict[str, int] = {}

    def respond(request: GenRequest) -> list[str]:
        name = request.tag.split("#")[0]
        index = int(name[1:])
        start = served.get(name, 0)
        served[name] = start + request.n
        problem = problems(index + 1)[index]
        return [lean_block(problem, body) for body in table[name][start : start + request.n]]

    return respond


class Factory:
    """Services factory that counts how often services were opened and closed."""

    def __init__(self, sampler: FakeSampler, checker: FakeChecker) -> None:
        self.sampler, self.checker = sampler, checker
        self.opened = self.closed = 0

    async def __call__(self, cfg: ProverConfig) -> Services:
        self.opened += 1

        async def close() -> None:
            self.closed += 1

        services = make_services(self.sampler, self.checker)
        services.closers.append(close)
        return services


def test_import_prover_is_light() -> None:
    code = (
        "import sys, prover; "
        "heavy = [m for m in ('prover.api', 'vllm', 'torch', 'ray', 'prover.datasets') if m in sys.modules]; "
        "assert not heavy, heavy; print(prover.Prover.__module__, prover.load_benchmark.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["prover.api", "prover.datasets.registry"]


def test_prove_returns_the_accepted_proof_and_reuses_services() -> None:
    sampler = FakeSampler(lambda r: [lean_block(problems(1)[0], b) for b in ["bad", "omega"]][: r.n])
    checker = FakeChecker({"omega"})
    factory = Factory(sampler, checker)
    cfg = config(**{"eval.passes": 2})
    with Prover(cfg) as p:
        p._ensure_services = _patched_services(p, factory)  # type: ignore[method-assign]
        result = p.prove(problems(1)[0])
        again = p.prove(problems(1)[0])
    assert result.proved and body_of(result.proof or "") == "omega"
    assert result.verdict is not None and result.verdict.rule == "accepted"
    assert [a.sample_index for a in result.attempts] == [0, 1]
    assert again.proved and factory.opened == 1


def _patched_services(p: Prover, factory: Factory):
    async def ensure() -> Services:
        if p._services is None:
            p._services = await factory(p.config)
        return p._services

    return ensure


async def test_aprove_with_given_services_in_a_running_loop() -> None:
    sampler = FakeSampler(lambda r: [lean_block(problems(1)[0], "bad")] * r.n)
    services = make_services(sampler, FakeChecker(set()))
    async with Prover(config(), services=services) as p:
        result = await p.aprove(problems(1)[0])
    assert not result.proved and result.proof is None and len(result.attempts) == 4
    assert all(a.duplicate_of == 0 for a in result.attempts[1:])


def test_evaluate_writes_the_run_dir_and_reruns_instantly(tmp_path: Path) -> None:
    table = {
        "p0": ["omega", "omega", "bad", "bad"],  # c=2 of n=4
        "p1": ["bad", "bad", "bad", "omega"],  # c=1
        "p2": ["bad", "bad2", "bad", "bad2"],  # c=0, 2 checks saved by dedupe
    }
    factory = Factory(FakeSampler(answers_by_problem(table)), FakeChecker({"omega"}))
    out = tmp_path / "run"
    run = prover.evaluate(problems(3), config(), out=out, services=factory, progress=False)
    assert run.run_dir == out and run.new_attempts == 12 and factory.opened == factory.closed == 1
    s = run.summary
    assert (s.problems, s.solved) == (3, 2)
    # unbiased pass@k averaged over problems: p0 = 1 - C(2,k)/C(4,k), p1 = 1 - C(3,k)/C(4,k)
    assert s.pass_at_k["1"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert s.pass_at_k["2"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 3)
    assert s.pass_at_k["4"] == pytest.approx(2 / 3)
    assert s.dedupe_saved == 2 + 2 + 2 and s.checks == 6  # each problem: 2 unique proofs checked
    for name in ("run.json", "attempts.jsonl", "summary.json", "report.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["solved"] == 2

    again = prover.evaluate(problems(3), config(), out=out, resume=True, services=factory, progress=False)
    assert again.new_attempts == 0 and factory.opened == 1  # nothing to do: no services started
    assert again.summary.pass_at_k == s.pass_at_k


def test_sampler_outage_keeps_recorded_attempts_and_resume_finishes(tmp_path: Path) -> None:
    table = {f"p{i}": ["bad", "omega", "bad", "bad"] for i in range(6)}
    respond = answers_by_problem(table)
    calls = {"n": 0}

    def flaky(request: GenRequest) -> list[str]:
        calls["n"] += 1
        if calls["n"] > 5:
            raise SamplerUnavailable("http://127.0.0.1:9/v1 is unreachable")
        return respond(request)

    cfg = config(**{"eval.max_problems_in_flight": 1})
    factory = Factory(FakeSampler(flaky), FakeChecker({"omega"}))
    out = tmp_path / "run"
    with pytest.raises(SamplerUnavailable):
        prover.evaluate(problems(6), cfg, out=out, services=factory, progress=False)
    assert factory.closed == 1
    kept = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    # p0 and p1 (4 requests) are complete; p2's first chunk may have been in flight (lost).
    assert len(kept) in (8, 10) and sum(1 for a in kept if a["problem"] in ("p0", "p1")) == 8

    fresh = Factory(FakeSampler(answers_by_problem(table)), FakeChecker({"omega"}))
    run = prover.evaluate(problems(6), cfg, out=out, resume=True, services=fresh, progress=False)
    assert run.new_attempts == 24 - len(kept) and run.attempts == 24
    assert run.summary.solved == 6
    keys = [(a["problem"], a["round"], a["sample_index"]) for a in map(json.loads, (out / "attempts.jsonl").read_text().splitlines())]
    assert len(keys) == len(set(keys)) == 24


def test_missing_workspace_fails_before_creating_the_run(tmp_path: Path) -> None:
    cfg = config(**{"lean.workspace": str(tmp_path / "nowhere")})
    with pytest.raises(WorkspaceError, match="does not exist"):
        prover.evaluate(problems(1), cfg, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(WorkspaceError, match="prover setup lean"):
        prover.evaluate(problems(1), config(), out=tmp_path / "run2", progress=False)
    # an explicit REPL command does not make a missing workspace (its working directory) usable
    cfg = config(**{"lean.workspace": str(tmp_path / "nowhere"), "lean.repl_cmd": [sys.executable, "-V"]})
    with pytest.raises(WorkspaceError, match="nowhere does not exist"):
        prover.evaluate(problems(1), cfg, out=tmp_path / "run3", progress=False)
    assert not (tmp_path / "run3").exists()


def test_checks_in_flight_are_bounded_and_sampling_pauses(tmp_path: Path, monkeypatch) -> None:
    from prover.eval import pipeline

    limit = 3
    cfg = config(**{"eval.max_checks_in_flight": limit, "eval.max_problems_in_flight": 4, "eval.passes": 8})
    assert effective_max_checks(cfg, WholeProofStrategy()) == limit
    seen = {"running": 0, "max_running": 0, "pending_at_sample": [], "waited": 0}

    class RecordingGate(pipeline.CheckGate):
        async def wait_for_room(self) -> None:
            if self.pending >= self.limit:
                seen["waited"] += 1
            await super().wait_for_room()
            seen["pending_at_sample"].append(self.pending)

    monkeypatch.setattr(pipeline, "CheckGate", RecordingGate)

    class Counting(FakeChecker):
        async def check(self, problem, proof):
            seen["running"] += 1
            seen["max_running"] = max(seen["max_running"], seen["running"])
            try:
                return await super().check(problem, proof)
            finally:
                seen["running"] -= 1

    def respond(request: GenRequest) -> list[str]:
        i = int(request.tag[1:])
        return [lean_block(problems(i + 1)[i], f"t{request.seed}_{j}") for j in range(request.n)]

    factory = Factory(FakeSampler(respond, latency=0.002), Counting(set(), latency=0.01))
    run = prover.evaluate(problems(10), cfg, out=tmp_path / "run", services=factory, progress=False)
    assert run.new_attempts == 80 and run.summary.checks == 80
    assert seen["max_running"] == limit  # Lean saturated, never more than the limit
    assert max(seen["pending_at_sample"]) < limit and seen["waited"] > 0  # sampling paused


def test_lean_workers_are_started_while_the_first_samples_generate(tmp_path: Path) -> None:
    warmed: list[tuple[list[str], int, int]] = []
    checker = FakeChecker(set())

    class Warming(Factory):
        async def __call__(self, cfg: ProverConfig) -> Services:
            services = await super().__call__(cfg)

            async def warm_up(headers: list[str], workers: int) -> None:
                warmed.append((list(headers), workers, len(checker.checked)))

            services.warm_up = warm_up
            return services

    respond = answers_by_problem({f"p{i}": ["bad"] * 4 for i in range(5)})
    cfg = config(**{"lean.workers": 3, "eval.max_problems_in_flight": 2})
    prover.evaluate(problems(5), cfg, out=tmp_path / "run", services=Warming(FakeSampler(respond, latency=0.05), checker),
                    progress=False)
    # the first two problems' headers; min(3 workers, 2 problems x a chunk of 2 checks); before any check
    assert warmed == [([p.header for p in problems(2)], 3, 0)]


def test_problems_in_flight_are_bounded(tmp_path: Path) -> None:
    cfg = config(**{"eval.max_problems_in_flight": 3, "eval.passes": 2, "whole_proof.chunk": 1})
    state = {"open": 0, "peak": 0}

    class Tracking(WholeProofStrategy):
        async def prove(self, problem, ctx, record, done=None):
            state["open"] += 1
            state["peak"] = max(state["peak"], state["open"])
            try:
                await super().prove(problem, ctx, record, done)
            finally:
                state["open"] -= 1

    def respond(request: GenRequest) -> list[str]:
        i = int(request.tag[1:])
        return [lean_block(problems(i + 1)[i], f"x{request.seed}")]

    factory = Factory(FakeSampler(respond, latency=0.01), FakeChecker(set(), latency=0.01))
    run = prover.evaluate(problems(9), cfg, out=tmp_path / "r", services=factory, strategy=Tracking(), progress=False)
    assert run.new_attempts == 18
    assert state["peak"] == 3


def test_prover_with_real_pool_checker_and_scripted_sampler(tmp_path: Path) -> None:
    """The documented path: Prover(config).prove(problem) with real services (simulated REPL)."""
    data = Path(__file__).resolve().parent / "data" / "eval"
    from prover.datasets import load_benchmark

    problem = load_benchmark(f"jsonl:{data / 'problems.jsonl'}", names=["e_mul_comm"])[0]
    cfg = ProverConfig.load(None, user_defaults=False).with_overrides({
        "sampler.backend": "scripted",
        "sampler.script": str(data / "script.jsonl"),
        "sampler.prompt_format": "kimina",
        "eval.passes": 4,
        "lean.repl_cmd": [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(data / "scenario.yaml")],
        "lean.workers": 1,
        "cache.path": str(tmp_path / "cache.sqlite"),
    })
    with Prover(cfg) as p:
        result = p.prove(problem)
    assert result.proved and result.verdict is not None
    assert "exact Nat.mul_comm a b" in result.verdict.code
    assert [a.verdict.rule for a in result.attempts] == ["lean_error", "accepted", "lean_error", "lean_error"]
    assert result.attempts[3].duplicate_of == 0


def test_ray_runs_show_progress_and_record_counts(tmp_path: Path, monkeypatch, capsys) -> None:
    """Attempts streaming in from Ray agents feed the same progress line and run counters."""
    from prover.cluster import driver
    from prover.types import Attempt, CheckStatus, Verdict

    async def fake_run_on_ray(cfg, todo, done, record, hooks) -> None:
        for problem in todo:
            for index in range(4):
                proved = problem.name != "p2" and index == 1
                verdict = Verdict(status=CheckStatus.PROVED if proved else CheckStatus.FAILED,
                                  rule="accepted" if proved else "lean_error")
                await record(Attempt(problem=problem.name, sample_index=index, proof=f"t{index}", verdict=verdict))
                assert (0, index) in done(problem)

    monkeypatch.setattr(driver, "run_on_ray", fake_run_on_ray)
    cfg = config(**{"ray.enabled": True})
    run = prover.evaluate(problems(3), cfg, out=tmp_path / "run", progress=True)
    assert run.new_attempts == 12 and run.summary.solved == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "problems 3/3  solved 2  samples 12" in last_line and "checks 12" in last_line
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    pipeline = [e for e in events if e["event"] == "pipeline"][-1]
    assert (pipeline["samples"], pipeline["problems_done"], pipeline["solved"]) == (12, 3, 2)
