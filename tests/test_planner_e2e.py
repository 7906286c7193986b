"""`prover eval --strategy planner` end to end through the real CLI (subprocesses), with the
SIMULATED REPL and scripted planner and prover models (the world of tests/planner_world.py):
direct proving fails where decomposition succeeds; SIGKILL mid-episode and `--resume`; a
planner server that is down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from planner_world import (
    E2E_SCENARIO,
    NAME,
    SHARED,
    attempts,
    lemma_proof,
    planner_lines,
    problems,
    prover_lines,
    write_jsonl,
    write_problems,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = dict(os.environ)
    environ["PROVER_CONFIG_HOME"] = str(tmp_path / "config")
    environ["PROVER_CACHE_DIR"] = str(tmp_path / "cache")
    return environ


@pytest.fixture
def files(tmp_path: Path, datasets_dir: Path) -> dict[str, Path]:
    items = problems(datasets_dir)
    settings = tmp_path / "settings.yaml"  # one problem at a time: the second one meets a warm cache
    settings.write_text(yaml.safe_dump({"eval": {"max_problems_in_flight": 1},
                                        "samplers": {"planner": {"max_retries": 0}}}), encoding="utf-8")
    return {
        "problems": write_problems(tmp_path / "problems.jsonl", items),
        "planner": write_jsonl(tmp_path / "planner.jsonl", planner_lines(items)),
        "prover": write_jsonl(tmp_path / "prover.jsonl", prover_lines()),
        "settings": settings,
    }


def repl(scenario: Path) -> str:
    return f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {scenario}"


def eval_args(files: dict[str, Path], out: Path, *extra: str, scenario: Path = E2E_SCENARIO) -> list[str]:
    return [
        sys.executable, "-m", "prover.cli", "eval", f"jsonl:{files['problems']}", "--pass", "1",
        "--backend", "scripted", "--script", str(files["prover"]), "--model", "test/prover",
        "--prompt-format", "deepseek-v2", "--repl-cmd", repl(scenario), "--workers", "2",
        "--config", str(files["settings"]), "--out", str(out), "--quiet", *extra,
    ]


def planner_args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--strategy", "planner", "--planner-backend", "scripted", "--planner-script", str(files["planner"]),
        "--planner-model", "test/planner", "--subgoal-passes", "2", "--repair-turns", "1", "--max-sketches", "3",
        *extra,
    ]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)


def test_decomposition_solves_what_direct_proving_cannot(tmp_path: Path, env: dict[str, str],
                                                         files: dict[str, Path]) -> None:
    direct = run(eval_args(files, tmp_path / "direct", "--strategy", "whole_proof", "--names", NAME), env)
    assert direct.returncode == 0, direct.stderr[-3000:]
    assert "solved 0/1" in direct.stdout

    out = tmp_path / "planned"
    planned = run(eval_args(files, out, *planner_args(files)), env)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "solved 2/2" in planned.stdout
    run_attempts = attempts(out)
    top = {a["problem"]: a for a in run_attempts if a["parent"] is None}
    for name in (NAME, SHARED):  # the stitched proof went through the full checker
        assert top[name]["verdict"]["rule"] == "accepted" and top[name]["strategy"] == "planner"
        assert top[name]["verdict"]["code"].startswith("import Mathlib") and "sorry" not in top[name]["proof"]
    sketches = [a for a in run_attempts if a["problem"] == NAME and a["kind"] == "sketch"]
    assert sketches[0]["verdict"]["rule"] == "sketch:statement_changed"  # the changed statement: rejected
    false_claim = [a for a in run_attempts if a["problem"] == NAME and a["extra"].get("step") == "p0.g0"]
    assert false_claim and not any(a["verdict"]["status"] == "proved" for a in false_claim)
    assert [a["extra"]["plan"] for a in sketches if a["extra"]["scope"] == ""] == [0, 0, 1]  # then a re-plan
    shared = [a for a in run_attempts if a["problem"] == SHARED and a["kind"] == "subgoal"]
    assert [a["extra"]["method"] for a in shared] == ["cache"]  # no sampler call: the script has no entry for it

    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "planner" and summary["pass_at_k"] == {"1": 1.0}
    assert summary["tallies"]["subgoal cache hits"] == 1 and summary["tallies"]["re-plans"] == 1
    report = (out / "report.md").read_text()
    for row in ("| sketches tried | 6 |", "| sketches elaborated | 3 |", "| subgoals total | 4 |", "| subgoals proven | 3 |",
                "| re-plans | 1 |", "| depth reached (max) | 1 |"):
        assert row in report, row


def _slow_scenario(tmp_path: Path, latency: float) -> Path:
    data = yaml.safe_load(E2E_SCENARIO.read_text(encoding="utf-8"))
    data["latency"] = latency
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _wait_for(path: Path, predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the run ended early"
        if path.is_file():
            lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if predicate(lines):
                return
        time.sleep(0.05)
    raise AssertionError("the run never got there")


def test_sigkill_mid_episode_then_resume_redoes_no_recorded_step(tmp_path: Path, env: dict[str, str],
                                                                 files: dict[str, Path]) -> None:
    out = tmp_path / "run"
    args = eval_args(files, out, *planner_args(files), scenario=_slow_scenario(tmp_path, 0.1))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # the re-plan's sketch is recorded, its holes are being proved: the episode is half done
        _wait_for(out / "attempts.jsonl", lambda lines: any(a["extra"].get("step") == "p1.t0" for a in lines), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = attempts(out)
    assert not any(a["parent"] is None for a in before), "killed before the episode's verdict"

    resumed = run(eval_args(files, out, *planner_args(files), "--resume", scenario=_slow_scenario(tmp_path, 0.0)), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "solved 2/2" in resumed.stdout
    after = attempts(out)
    assert after[: len(before)] == before  # nothing recorded was rewritten
    sketch_steps = [(a["problem"], a["extra"]["step"]) for a in after if a["kind"] == "sketch"]
    assert len(sketch_steps) == len(set(sketch_steps)) == 6  # no planner call was made twice
    outcome_steps = [(a["problem"], a["extra"]["step"]) for a in after if "outcome" in a["extra"]]
    assert len(outcome_steps) == len(set(outcome_steps))
    assert sorted(a["problem"] for a in after if a["parent"] is None) == [NAME, SHARED]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_planner_server_that_is_down_stops_the_run_clearly_and_loses_nothing(
    tmp_path: Path, env: dict[str, str], files: dict[str, Path]
) -> None:
    out = tmp_path / "run"
    first = run(eval_args(files, out, *planner_args(files), "--names", NAME), env)
    assert first.returncode == 0, first.stderr[-3000:]
    recorded = attempts(out)

    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    down = run(eval_args(files, out, *planner_args(files, "--planner-backend", "openai", "--planner-base-url", url),
                         "--resume"), env)
    assert down.returncode != 0
    assert f"{url}/chat/completions failed" in down.stderr and "cannot reach the server" in down.stderr
    assert "Traceback" not in down.stderr, down.stderr[-4000:]
    assert f"continue with --resume --out {out}" in down.stderr
    assert attempts(out) == recorded  # the failed call recorded no made-up episode

    # a resumed local run starts with an empty in-memory proof cache: the shared claim is sampled
    hb = lemma_proof(f"{SHARED}_hb", "b * h = 195", "  rw [h₂, h₃]\n  norm_num")
    write_jsonl(files["prover"], [*prover_lines(), {"name": f"{SHARED}_hb", "completions": [hb]}])
    back = run(eval_args(files, out, *planner_args(files), "--resume"), env)
    assert back.returncode == 0, back.stderr[-3000:]
    assert "solved 2/2" in back.stdout
    assert attempts(out)[: len(recorded)] == recorded
