"""Settings load from YAML/TOML, merge over user defaults, and fail with errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prover.config import ProverConfig, user_config_path
from prover.errors import ConfigError
from prover.types import Problem


def test_yaml_and_toml_load_the_same_settings(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("lean:\n  workers: 3\nsampler:\n  backend: scripted\n")
    (tmp_path / "a.toml").write_text('[lean]\nworkers = 3\n[sampler]\nbackend = "scripted"\n')
    from_yaml = ProverConfig.load(tmp_path / "a.yaml", user_defaults=False)
    from_toml = ProverConfig.load(tmp_path / "a.toml", user_defaults=False)
    assert from_yaml == from_toml
    assert from_yaml.lean.workers == 3 and from_yaml.sampler.backend == "scripted"


def test_file_overrides_user_defaults_and_flags_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVER_CONFIG_HOME", str(tmp_path / "home"))
    user_file = user_config_path()
    user_file.parent.mkdir(parents=True)
    user_file.write_text('[lean]\nworkspace = "/opt/lean-ws"\nworkers = 2\n')
    (tmp_path / "run.yaml").write_text("lean:\n  workers: 6\n")
    config = ProverConfig.load(tmp_path / "run.yaml")
    assert config.lean.workspace == Path("/opt/lean-ws")  # kept from the user file
    assert config.lean.workers == 6  # the run file wins
    assert config.with_overrides({"lean.workers": 1, "lean.timeout": None}).lean.workers == 1


def test_unknown_and_invalid_fields_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("lean:\n  wokers: 3\n")
    with pytest.raises(ConfigError, match="wokers"):
        ProverConfig.load(tmp_path / "bad.yaml", user_defaults=False)
    with pytest.raises(ConfigError, match="workers"):
        ProverConfig().with_overrides({"lean.workers": 0})


def test_unreadable_config_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        ProverConfig.load(tmp_path / "missing.yaml", user_defaults=False)
    (tmp_path / "x.ini").write_text("[lean]\n")
    with pytest.raises(ConfigError, match=r"\.toml, \.yaml"):
        ProverConfig.load(tmp_path / "x.ini", user_defaults=False)
    (tmp_path / "broken.toml").write_text("[lean\n")
    with pytest.raises(ConfigError, match="not valid"):
        ProverConfig.load(tmp_path / "broken.toml", user_defaults=False)


def test_theorem_name_comes_from_the_statement_not_the_problem_name() -> None:
    problem = Problem(
        name="Rudin_exercise_1_13",
        formal_statement="theorem exercise_1_13 (x y : ℂ) : |(abs x) - (abs y)| ≤ abs (x - y) := by",
    )
    assert problem.theorem_name == "exercise_1_13"
    definition = Problem(name="d", formal_statement="noncomputable def foo_bar : CommGroup G := by")
    assert definition.theorem_name == "foo_bar"
    with pytest.raises(ValueError, match="'nameless'"):
        Problem(name="nameless", formal_statement=":= by").theorem_name


def test_invalid_user_config_is_named_in_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value in the file `prover setup lean` wrote must point at that file, not at 'defaults'."""
    monkeypatch.setenv("PROVER_CONFIG_HOME", str(tmp_path / "home"))
    user_file = user_config_path()
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[lean]\nworkers = 0\n")
    with pytest.raises(ConfigError, match=re.escape(str(user_file))):
        ProverConfig.load()
    (tmp_path / "run.yaml").write_text("lean:\n  timeout: 5\n")
    with pytest.raises(ConfigError, match=re.escape(f"{user_file} + {tmp_path / 'run.yaml'}")):
        ProverConfig.load(tmp_path / "run.yaml")


def test_another_workspace_does_not_inherit_the_recorded_repl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prover setup lean` records workspace + REPL command + Lean version together; naming a
    different workspace (flag or config file) must not run the first workspace's REPL binary."""
    monkeypatch.setenv("PROVER_CONFIG_HOME", str(tmp_path / "home"))
    user_file = user_config_path()
    user_file.parent.mkdir(parents=True)
    user_file.write_text(
        '[lean]\nworkspace = "/ws/a"\nrepl_cmd = ["lake", "env", "/ws/a/repl"]\nlean_version = "v4.15.0"\nworkers = 2\n'
    )
    recorded = ProverConfig.load()
    assert recorded.lean.repl_cmd == ["lake", "env", "/ws/a/repl"]
    assert recorded.with_overrides({"lean.workspace": "/ws/a"}).lean == recorded.lean  # same workspace: kept
    moved = recorded.with_overrides({"lean.workspace": "/ws/b"}).lean
    assert (moved.workspace, moved.repl_cmd, moved.lean_version, moved.workers) == (Path("/ws/b"), None, "", 2)
    both = recorded.with_overrides({"lean.workspace": "/ws/b", "lean.repl_cmd": ["my-repl"]}).lean
    assert both.repl_cmd == ["my-repl"]
    (tmp_path / "run.yaml").write_text("lean:\n  workspace: /ws/c\n")
    from_file = ProverConfig.load(tmp_path / "run.yaml").lean
    assert (from_file.workspace, from_file.repl_cmd, from_file.lean_version) == (Path("/ws/c"), None, "")


# -- strategy sections and model roles ------------------------------------------------------------


def test_every_registered_strategy_has_its_section_and_sections_are_validated(tmp_path: Path) -> None:
    from prover.registry import strategy_specs

    config = ProverConfig.load(user_defaults=False)
    for spec in strategy_specs().values():
        assert isinstance(config.section(spec), spec.config_model)
    bfs = strategy_specs()["bfs"]
    (tmp_path / "s.yaml").write_text("bfs:\n  width: 3\neval:\n  passes: 5\n")
    loaded = ProverConfig.load(tmp_path / "s.yaml", user_defaults=False)
    assert loaded.section(bfs).width == 3 and loaded.eval.passes == 5
    assert loaded.model_dump()["bfs"]["width"] == 3  # sections serialise at the top level (run.json)
    with pytest.raises(ConfigError, match="section 'bfs'.*width"):
        ProverConfig.from_dict({"bfs": {"width": 0}})
    with pytest.raises(ConfigError, match="unknown config section.*bsf"):
        ProverConfig.from_dict({"bsf": {"width": 3}})
    with pytest.raises(ConfigError, match="eval.strategy 'beam' is not a registered strategy"):
        ProverConfig.from_dict({"eval": {"strategy": "beam"}})


def test_a_pre_registry_passes_setting_says_where_it_went() -> None:
    with pytest.raises(ConfigError, match=r"`passes` is now `eval.passes`"):
        ProverConfig.from_dict({"whole_proof": {"passes": 8}})


def test_samplers_override_the_default_model_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    from prover.registry import StrategySpec, registered
    from prover.search.bfs import BfsConfig

    spec = StrategySpec(name="two_models", config_model=BfsConfig, factory=object, roles=("planner", "prover"))
    with registered(spec):
        config = ProverConfig.load(user_defaults=False).with_overrides({
            "sampler.model": "local/prover", "sampler.temperature": 0.7,
            "samplers.planner.backend": "openai", "samplers.planner.model": "hosted/reasoner",
            "samplers.planner.base_url": "http://127.0.0.1:9/v1",
        })
        planner, prover_ = config.sampler_for("planner"), config.sampler_for("prover")
        assert (planner.backend, planner.model, planner.temperature) == ("openai", "hosted/reasoner", 0.7)
        assert (prover_.backend, prover_.model) == ("vllm", "local/prover")
        with pytest.raises(ConfigError, match="samplers.planner.*temperature"):
            config.with_overrides({"samplers.planner.temperature": -1})
        with pytest.raises(ConfigError, match="samplers.planner.*wat"):
            config.with_overrides({"samplers.planner.wat": 1})
    with pytest.raises(ConfigError, match="no strategy uses a model role 'critic'"):
        ProverConfig.from_dict({"samplers": {"critic": {"model": "x"}}})


async def test_roles_with_the_same_engine_share_one_sampler(tmp_path: Path) -> None:
    from prover.search.base import Services
    from prover.search.services import open_samplers

    script = tmp_path / "s.jsonl"
    script.write_text('{"name": "p", "completions": ["x"]}\n')
    other = tmp_path / "t.jsonl"
    other.write_text('{"name": "p", "completions": ["y"]}\n')
    base = ProverConfig.load(user_defaults=False).with_overrides(
        {"sampler.backend": "scripted", "sampler.script": str(script)}
    )
    from prover.registry import StrategySpec, registered
    from prover.search.bfs import BfsConfig

    with registered(StrategySpec(name="two_models", config_model=BfsConfig, factory=object, roles=("planner", "prover"))):
        same = Services(samplers={}, checker=None, lean=None)  # type: ignore[arg-type]
        open_samplers(base.with_overrides({"samplers.planner.temperature": 0.2}), ("planner", "prover"), same)
        assert same.samplers["planner"] is same.samplers["prover"] and len(same.closers) == 1
        apart = Services(samplers={}, checker=None, lean=None)  # type: ignore[arg-type]
        open_samplers(base.with_overrides({"samplers.planner.script": str(other)}), ("planner", "prover"), apart)
        assert apart.samplers["planner"] is not apart.samplers["prover"] and len(apart.closers) == 2


def test_unknown_sandbox_mode_and_negative_retries_are_named(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("lean:\n  sandbox: bogus\n")
    with pytest.raises(ConfigError, match=r"lean.sandbox[\s\S]*'auto', 'required' or 'off'"):
        ProverConfig.load(tmp_path / "s.yaml", user_defaults=False)
    with pytest.raises(ConfigError, match=r"lean.retries[\s\S]*greater than or equal to 0"):
        ProverConfig.from_dict({"lean": {"retries": -1}})
