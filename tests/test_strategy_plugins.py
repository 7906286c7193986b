"""A strategy from outside the `prover` package, through the registry's two doors.

`tests/data/plugins/` holds `toy_strategy.py` and a `toy_strategy-0.1.dist-info` whose entry point
(`prover.strategies`: `toy = toy_strategy:SPEC`) makes it a real installed plug-in for any Python
started with that folder on `PYTHONPATH`: the CLI runs it locally and on Ray, with resume. In this
process it is registered with `register_strategy` for the Python API. Nothing under `prover/`
names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cluster_helpers import bfs_problem, bfs_world

import prover
from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.registry import StrategySpec, get_strategy_spec, registered, strategy_names

PLUGINS = Path(__file__).resolve().parent / "data" / "plugins"
NAMES = ["q0", "q1", "q2"]


def _world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Problems, scripted tactic suggestions and the simulated REPL scenario (even problems provable)."""
    scenario, script = bfs_world(tmp_path, NAMES)
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(bfs_problem(n).model_dump()) + "\n" for n in NAMES))
    return problems, script, scenario


def _settings(tmp_path: Path, script: Path, scenario: Path) -> Path:
    settings = {
        "sampler": {"backend": "scripted", "script": str(script), "model": "test/toy-model"},
        "lean": {
            "repl_cmd": [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)],
            "workers": 1, "timeout": 30.0, "header_timeout": 30.0, "memory_limit_mb": None, "rss_limit_mb": None,
        },
        "ray": {"num_agents": 2, "gpus_per_llm_actor": 0.0},
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PROVER_CONFIG_HOME"] = str(tmp_path / "config")
    env["PROVER_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def _eval(tmp_path: Path, out: Path, limit: int, *extra: str) -> subprocess.CompletedProcess[str]:
    problems, script, scenario = _world(tmp_path)
    args = [
        sys.executable, "-m", "prover.cli", "eval", f"jsonl:{problems}", "--strategy", "toy", "--pass", "2",
        "--toy-steps", "3", "--config", str(_settings(tmp_path, script, scenario)), "--limit", str(limit),
        "--out", str(out), "--quiet", *extra,
    ]
    return subprocess.run(args, env=_env(tmp_path), capture_output=True, text=True, timeout=300)


def _attempts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]


def _check_run(out: Path, problems: int) -> None:
    attempts = _attempts(out)
    top = [a for a in attempts if a["parent"] is None]
    nested = [a for a in attempts if a["parent"] is not None]
    slots = [(a["problem"], a["kind"], a["parent"], a["sample_index"]) for a in attempts]
    assert len(slots) == len(set(slots))  # every attempt exactly once
    assert len(top) == 2 * problems and len(nested) == 2 * problems
    assert {a["kind"] for a in nested} == {"toy_walk"} and all(a["strategy"] == "toy" for a in attempts)
    proved = {a["problem"] for a in top if a["verdict"]["status"] == "proved"}
    assert proved == {n for i, n in enumerate(NAMES[:problems]) if i % 2 == 0}
    assert all(a["proof"] == "\n  intro x\n  simp" for a in top if a["problem"] in proved)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "toy" and summary["attempts"] == 2 * problems
    assert summary["nested"] == {"toy_walk": 2 * problems}
    assert summary["pass_at_k"]["2"] == pytest.approx(len(proved) / problems)
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["config"]["toy"] == {"steps": 3}


def test_the_cli_runs_an_entry_point_strategy_and_resumes_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _eval(tmp_path, out, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    _check_run(out, 2)
    again = _eval(tmp_path, out, 3, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    _check_run(out, 3)  # only q2 was new: q0 and q1 were complete and not redone

    help_text = subprocess.run(
        [sys.executable, "-m", "prover.cli", "eval", "--help"], env=_env(tmp_path), capture_output=True, text=True
    ).stdout
    words = " ".join(help_text.split())  # argparse wraps the strategy list anywhere
    assert "toy (a plug-in test strategy" in words and "--toy-steps" in words


@pytest.mark.ray
def test_an_entry_point_strategy_runs_on_ray_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ray-run"
    first = _eval(tmp_path, out, 2, "--ray")
    assert first.returncode == 0, first.stderr[-3000:]
    _check_run(out, 2)
    again = _eval(tmp_path, out, 3, "--ray", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    _check_run(out, 3)


def test_the_python_api_runs_a_registered_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import toy_strategy

    problems, script, scenario = _world(tmp_path)
    with registered(toy_strategy.SPEC):
        assert "toy" in strategy_names()
        config = ProverConfig.load(_settings(tmp_path, script, scenario), user_defaults=False).with_overrides(
            {"eval.strategy": "toy", "eval.passes": 2, "toy.steps": 3, "cache.path": str(tmp_path / "cache.sqlite")}
        )
        loaded = prover.load_benchmark(f"jsonl:{problems}")
        with prover.Prover(config) as p:
            result = p.prove(loaded[0])
        assert result.proved and result.proof == "\n  intro x\n  simp"
        assert [a.kind for a in result.attempts] == ["proof", "proof", "toy_walk", "toy_walk"]
        run = prover.evaluate(loaded[:2], config, out=tmp_path / "api-run", progress=False)
        assert run.summary.solved == 1 and run.summary.nested == {"toy_walk": 4}
        again = prover.evaluate(loaded, config, out=tmp_path / "api-run", resume=True, progress=False)
        assert again.new_attempts == 4 and again.summary.attempts == 6  # only q2's attempts are new
    assert "toy" not in strategy_names()
    with pytest.raises(ConfigError, match="unknown config section"):
        ProverConfig.from_dict({"toy": {"steps": 1}})  # unregistered: its section is unknown again


def test_the_registry_refuses_clashes_and_bad_names() -> None:
    whole = get_strategy_spec(strategy_names()[0])
    with pytest.raises(ConfigError, match="registered twice"):
        with registered(StrategySpec(name=whole.name, config_model=whole.config_model, factory=object)):
            pass
    for bad in ("Toy", "lean", "sampler", "has space"):
        with pytest.raises(ConfigError, match="must be lower-case"):
            StrategySpec(name=bad, config_model=whole.config_model, factory=object)
    with pytest.raises(ConfigError, match="not fields of its config"):
        StrategySpec(name="x", config_model=whole.config_model, factory=object, resume_settings=("nope",))
    with pytest.raises(ConfigError, match="unknown strategy 'nope'; known: "):
        get_strategy_spec("nope")


def test_a_broken_plug_in_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[prover.strategies]\nbroken = no_such_module:SPEC\n")
    code = "from prover.registry import strategy_names; print(','.join(strategy_names()))"
    env = {**_env(tmp_path), "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PLUGINS)])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().split(",")[-1] == "toy" and "broken" not in done.stdout
    assert "cannot load strategy plug-in broken = no_such_module:SPEC" in done.stderr
