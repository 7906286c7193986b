"""Shared builders for the eval store / metrics / report tests."""

from __future__ import annotations

from pathlib import Path

from prover.config import ProverConfig
from prover.eval.store import ResultsStore, RunInfo
from prover.types import Attempt, CheckStatus, Problem, Verdict

PROVED = Verdict(status=CheckStatus.PROVED, rule="accepted", lean_seconds=0.5)
FAILED = Verdict(status=CheckStatus.FAILED, rule="lean_error", lean_seconds=0.25)


def problems(n: int = 3) -> list[Problem]:
    return [
        Problem(name=f"p{i}", formal_statement=f"theorem p{i} : True := by", category="even" if i % 2 == 0 else "odd")
        for i in range(n)
    ]


def config(passes: int = 4, rounds: int = 0, **overrides: object) -> ProverConfig:
    base = {"eval.passes": passes, "whole_proof.rounds": rounds, "sampler.model": "test/model"}
    return ProverConfig.load(user_defaults=False).with_overrides({**base, **overrides})


def info(passes: int = 4, rounds: int = 0, n: int = 3, **overrides: object) -> RunInfo:
    return RunInfo.from_config(config(passes, rounds, **overrides), problems(n), command=["prover", "eval", "minif2f"])


def attempt(problem: str, sample: int, proved: bool = False, round_: int = 0, **fields: object) -> Attempt:
    return Attempt(
        problem=problem,
        sample_index=sample,
        round=round_,
        proof=f"-- {problem} {sample} {round_}\n  simp",
        verdict=PROVED if proved else FAILED,
        prompt_tokens=10,
        completion_tokens=5,
        check_seconds=0.5,
        **fields,
    )


def make_run(run_dir: Path, attempts: list[Attempt], **info_kwargs: object) -> Path:
    with ResultsStore.open(run_dir, info(**info_kwargs)) as store:
        store.append_many(attempts)
    return run_dir
