"""`lean.backend = "dojo"`: LeanDojo's `Dojo` behind `LeanSession`, at its boundary.

`standin_lean_dojo` is a STAND-IN for the `lean_dojo` package (its interaction names and result
types, answering from `DOJO_WORLDS`), not LeanDojo: real interaction needs a traced repository and
Lean, which users have. The end-to-end test runs best-first search through the real CLI on a
`leandojo:` split; the proof LeanDojo accepts still has to pass the command-mode checker (here the
simulated REPL).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import standin_lean_dojo as standin
import yaml
from dojo_helpers import COMMIT, URL, write_sources, write_split

from prover.cli import main
from prover.lean_env.dojo_session import DojoLeanSession, split_goals
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import StateOrigin, StepKind
from prover.types import RepoRef

ROOT = "n : ℕ\n⊢ n + 0 = n"
MID = "n : ℕ\n⊢ n = n"
REF = RepoRef(url=URL, commit=COMMIT, file_path="MyProj/Basic.lean", full_name="MyProj.add_zero'")
ORIGIN = StateOrigin("import Mathlib.Tactic\n", "theorem add_zero' (n : ℕ) : n + 0 = n := by sorry", repo=REF)
WORLD = {
    "init": ROOT,
    "steps": {
        (ROOT, "rw [Nat.add_zero]"): MID,
        (ROOT, "simp"): "QED",
        (ROOT, "bad"): "error: unknown identifier 'bad'",
        (ROOT, "sorry"): "sorry",
        (ROOT, "slow"): "timeout",
        (MID, "crash"): "crash",
        (MID, "oom"): "oom",
        (MID, "rfl"): "QED",
    },
}


@pytest.fixture
def dojo_world(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    monkeypatch.setitem(standin.DOJO_WORLDS, "MyProj.add_zero'", WORLD)
    monkeypatch.setattr(standin, "DOJO_LOG", [])
    return standin.DOJO_LOG


def _session() -> tuple[DojoLeanSession, ScriptedLeanSession]:
    repl = ScriptedLeanSession(("⊢ R",), lambda goals, tactic: Transition(StepKind.PROVED))
    return DojoLeanSession(repl, timeout=5, lean_dojo=standin), repl


async def test_dojo_answers_are_classified_like_the_repl_s(dojo_world: list) -> None:
    session, _ = _session()
    start = await session.start(ORIGIN)
    assert start.state is not None and start.state.goals == (ROOT,) and dojo_world == [("open", "MyProj.add_zero'")]
    batch = await session.apply(start.state, ["bad", "sorry", "slow", "rw [Nat.add_zero]", "simp"])
    kinds = [o.kind for o in batch.outcomes]
    assert kinds == [StepKind.ERROR, StepKind.INCOMPLETE, StepKind.TIMEOUT, StepKind.OK, StepKind.PROVED]
    assert "unknown identifier 'bad'" in batch.outcomes[0].error
    assert batch.outcomes[3].state is not None and batch.outcomes[3].state.goals == (MID,)
    assert ("close", "MyProj.add_zero'") in dojo_world  # the timed-out Dojo was replaced


async def test_a_crashed_dojo_is_reopened_and_the_path_replayed(dojo_world: list) -> None:
    session, _ = _session()
    root = (await session.start(ORIGIN)).state
    assert root is not None
    mid = (await session.apply(root, ["rw [Nat.add_zero]"])).outcomes[0].state
    assert mid is not None
    crashed = await session.apply(mid, ["crash"])
    assert [o.kind for o in crashed.outcomes] == [StepKind.CRASH]
    oom = await session.apply(mid, ["oom"])
    assert [o.kind for o in oom.outcomes] == [StepKind.OUT_OF_MEMORY] and oom.rematerialisations == 1
    again = await session.apply(mid, ["rfl"])
    assert [o.kind for o in again.outcomes] == [StepKind.PROVED] and again.rematerialisations == 1
    assert dojo_world.count(("open", "MyProj.add_zero'")) == 3
    await session.release(root.tree)
    assert dojo_world[-1] == ("close", "MyProj.add_zero'")


async def test_commands_sketch_holes_and_theorems_without_a_repository_go_to_the_repl(dojo_world: list) -> None:
    session, repl = _session()
    plain = await session.start(StateOrigin("", "theorem t : R := by sorry"))
    assert plain.state is not None and plain.state.tree.startswith("scripted-")
    assert [o.kind for o in (await session.apply(plain.state, ["done"])).outcomes] == [StepKind.PROVED]
    hole = await session.start(StateOrigin(ORIGIN.header, ORIGIN.code, sorry_index=1, repo=REF))
    assert hole.state is not None and hole.state.tree.startswith("scripted-")
    await session.command("", "#check Nat")
    assert repl.stats.lean_calls == 4 and dojo_world == []


async def test_a_theorem_dojo_cannot_find_is_a_failed_start_not_a_crash(dojo_world: list) -> None:
    session, _ = _session()
    missing = StateOrigin("", "theorem x : True := by sorry", repo=REF.model_copy(update={"full_name": "MyProj.nope"}))
    start = await session.start(missing)
    assert start.state is None and not start.infrastructure and "MyProj.nope" in start.error


def test_goal_lists_split_on_blank_lines() -> None:
    assert split_goals("case h\nx : ℕ\n⊢ x = x\n\ncase g\n⊢ True") == ("case h\nx : ℕ\n⊢ x = x", "case g\n⊢ True")


def test_the_backend_needs_lean_dojo_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from prover.errors import ConfigError

    monkeypatch.setitem(sys.modules, "lean_dojo", None)
    with pytest.raises(ConfigError, match=r"pip install 'prover\[dojo\]'"):
        DojoLeanSession(_session()[1])


@pytest.mark.parametrize(
    ("suggestions", "proof", "status"),
    [
        ([("rw [Nat.add_zero]", -0.1), ("rfl", -0.2)], "\n  rw [Nat.add_zero]\n  rfl", "proved"),
        ([("simp", -0.1)], "\n  simp", "failed"),  # Dojo says proved; the command-mode checker does not
    ],
)
def test_best_first_search_on_dojo_through_the_cli_still_needs_the_checker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dojo_world: list, capsys: pytest.CaptureFixture[str],
    suggestions: list, proof: str, status: str,
) -> None:
    monkeypatch.setitem(sys.modules, "lean_dojo", standin)
    repo = write_sources(tmp_path / "MyProj")
    split = write_split(tmp_path / "leandojo_benchmark_4" / "random" / "test.json")
    scenario = tmp_path / "scenario.yaml"  # the REPL accepts `rw [Nat.add_zero]; rfl` as a whole proof only
    scenario.write_text(json.dumps({"theorems": [
        {"name": "add_zero'", "goals": [ROOT], "proofs": [{"body": "rw [Nat.add_zero]\nrfl"}]},
    ]}), encoding="utf-8")
    script = tmp_path / "tactics.jsonl"  # every expansion is offered the same suggestions, in order
    completions = [{"text": t, "cumulative_logprob": lp} for t, lp in suggestions]
    script.write_text(json.dumps({"name": "MyProj.add_zero'", "completions": completions}) + "\n", encoding="utf-8")
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({
        "lean": {"backend": "dojo", "workers": 1, "memory_limit_mb": None, "rss_limit_mb": None,
                 "repl_cmd": [sys.executable, "-m", "prover.lean_env.simulated_repl", "--scenario", str(scenario)]},
        "bfs": {"width": 2, "max_expansions": 4},
        "cache": {"path": str(tmp_path / "cache.sqlite")},
    }))
    out = tmp_path / "run"
    args = ["eval", f"leandojo:{split}", "--data-dir", str(repo), "--names", "MyProj.add_zero'", "--strategy", "bfs",
            "--pass", "1", "--backend", "scripted", "--script", str(script), "--config", str(settings),
            "--out", str(out), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    attempt = json.loads((out / "attempts.jsonl").read_text().splitlines()[0])
    assert attempt["extra"]["search_proved"] and attempt["proof"] == proof
    assert attempt["verdict"]["status"] == status
    assert ("tactic", suggestions[0][0]) in dojo_world and dojo_world[-1] == ("close", "MyProj.add_zero'")
