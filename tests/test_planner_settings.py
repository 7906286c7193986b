"""The planner's settings, flags and strategy contract: validation with clear errors, `prover eval`
flags, one engine for both roles, completeness and early stop across episodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from planner_world import NAME, attempts, world

from prover.api import evaluate
from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.planner.settings import SPEC
from prover.planner.strategy import PlannerStrategy
from prover.registry import get_strategy_spec
from prover.search.base import Services
from prover.search.services import open_samplers
from prover.types import Attempt, CheckStatus, Verdict


def test_the_planner_is_a_registered_strategy_with_two_roles_and_a_proof_cache() -> None:
    assert get_strategy_spec("planner") is SPEC
    assert SPEC.roles == ("planner", "prover") and SPEC.uses_proof_cache


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"planner.subgoal_strategy": "guess"}, "subgoal_strategy must be one of whole_proof, bfs"),
        ({"planner.pp_options": ["pp.proofs", "pp.magic"]}, "unknown pretty-printer option"),
        ({"planner.prompts": {"sketch": "no statement placeholder"}}, "missing \\['statement'\\]"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(overrides: dict, message: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        ProverConfig.load(user_defaults=False).with_overrides(overrides)


def test_a_sub_prover_format_that_cannot_self_correct_is_refused_before_any_sampling() -> None:
    config = ProverConfig.load(user_defaults=False).with_overrides(
        {"eval.strategy": "planner", "whole_proof.rounds": 1, "sampler.prompt_format": "deepseek-v1.5"})
    with pytest.raises(ConfigError, match="cannot do self-correction rounds"):
        PlannerStrategy().validate(config)


def test_prover_eval_has_the_planner_flags() -> None:
    text = subprocess.run([sys.executable, "-m", "prover.cli", "eval", "--help"], capture_output=True, text=True).stdout
    words = " ".join(text.split())
    for flag in ("--subgoal-strategy S planner: sub-prover of each hole (whole_proof or bfs)", "--subgoal-passes", "--max-sketches", "--repair-turns",
                 "--max-depth", "--planner-model", "--planner-backend", "--planner-base-url"):
        assert flag in words, flag


def test_one_engine_serves_both_roles_unless_the_planner_names_another(tmp_path: Path) -> None:
    script = tmp_path / "s.jsonl"
    script.write_text('{"name": "x", "completions": ["y"]}\n', encoding="utf-8")
    same = ProverConfig.load(user_defaults=False).with_overrides(
        {"eval.strategy": "planner", "sampler.backend": "scripted", "sampler.script": script})
    services = Services(samplers={}, checker=None, lean=None)  # type: ignore[arg-type]
    open_samplers(same, SPEC.roles, services)
    assert services.samplers["planner"] is services.samplers["prover"]
    other = same.with_overrides({"samplers.planner.model": "hosted/reasoner"})
    services = Services(samplers={}, checker=None, lean=None)  # type: ignore[arg-type]
    open_samplers(other, SPEC.roles, services)
    assert services.samplers["planner"] is not services.samplers["prover"]


def test_completeness_counts_episodes_and_early_stop() -> None:
    config = ProverConfig.load(user_defaults=False).with_overrides({"eval.strategy": "planner", "eval.passes": 2})
    proved = Attempt(problem="p", sample_index=0, verdict=Verdict(status=CheckStatus.PROVED, rule="accepted"))
    nested = Attempt(problem="p", sample_index=1, kind="sketch", parent=0, verdict=proved.verdict)
    strategy = PlannerStrategy()
    from prover.search.base import DoneAttempts

    assert not strategy.is_complete(None, config, DoneAttempts([proved, nested]))  # type: ignore[arg-type]
    assert strategy.is_complete(None, config.with_overrides({"planner.early_stop": True}),  # type: ignore[arg-type]
                                DoneAttempts([proved]))


def test_early_stop_runs_no_episode_after_a_proof(tmp_path: Path, datasets_dir: Path) -> None:
    config, items = world(tmp_path, datasets_dir, **{"eval.passes": 3, "planner.early_stop": True})
    summary = evaluate(items[:1], config, out=tmp_path / "run", progress=False).summary
    assert summary.solved == 1 and summary.attempts == 1
    top = [a for a in attempts(tmp_path / "run") if a["parent"] is None]
    assert [(a["problem"], a["sample_index"]) for a in top] == [(NAME, 0)]
