"""`prover eval` end to end through the real CLI (subprocesses), with the scripted sampler and
the simulated REPL: hand-computed summary, SIGKILL + resume, instant re-run, bad inputs.

Data (tests/data/eval/): 6 core-Lean problems, a script of 4 completions per problem, and the
simulated REPL scenario deciding which proof bodies Lean accepts. Per problem, with pass 4:

    e_add_zero   simp, omega, simp (dup of 0), rfl          c = 3
    e_mul_comm   simp, Nat.mul_comm, ring, simp (dup of 0)  c = 1
    e_two        decide x4 (3 dups)                         c = 4
    e_hard       4 failing tactics                          c = 0
    e_noextract  3 completions without a proof, 1 sorry     c = 0
    e_axiom      added axiom, native_decide, exact h, rfl   c = 1

pass@k = mean over problems of 1 - C(4-c, k) / C(4, k):
    pass@1 = (3 + 1 + 4 + 0 + 0 + 1) / 4 / 6 = 0.375
    pass@2 = (1 + 1/2 + 1 + 0 + 0 + 1/2) / 6 = 0.5
    pass@4 = 4 / 6
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import yaml
from eval_cli_helpers import (
    PROBLEMS,
    SCENARIO,
    assert_expected_summary,
    attempts,
    cli,
    env,
    eval_args,
    repl_cmd,
    run,
)

assert env  # a pytest fixture, used by name below


def test_eval_scripted_matches_hand_computed_summary(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "run"
    result = run(eval_args(out), env)
    assert result.returncode == 0, result.stderr
    assert "solved 4/6" in result.stdout
    assert_expected_summary(out)
    for name in ("run.json", "report.md", "passk.png", "events.jsonl"):
        assert (out / name).is_file(), name
    by_key = {(a["problem"], a["sample_index"]): a for a in attempts(out)}
    assert by_key[("e_axiom", 0)]["verdict"]["rule"] == "preflight:axiom"
    assert by_key[("e_axiom", 1)]["verdict"]["rule"] == "preflight:native_decide"
    assert by_key[("e_noextract", 3)]["verdict"]["rule"] == "preflight:sorry"
    assert by_key[("e_noextract", 0)]["verdict"]["rule"] == "no_proof_extracted"
    assert by_key[("e_noextract", 0)]["proof"] is None
    assert by_key[("e_two", 3)]["duplicate_of"] == 0 and by_key[("e_two", 3)]["verdict"]["status"] == "proved"
    assert "exact h" in by_key[("e_axiom", 2)]["verdict"]["code"]
    info = json.loads((out / "run.json").read_text())
    assert info["model"] == "test/scripted-model" and info["passes"] == 4
    assert info["config"]["lean"]["repl_cmd"][-1] == str(SCENARIO)

    # Re-running the finished run is instant: nothing is sampled or checked. The sampler now
    # points at a closed port and the REPL command does not exist: either would fail if started.
    started = time.monotonic()
    rerun = run(
        [*eval_args(out, "--resume"), "--backend", "openai", "--base-url", f"http://127.0.0.1:{closed_port()}/v1",
         "--repl-cmd", "/nonexistent/repl"],
        env,
    )
    elapsed = time.monotonic() - started
    assert rerun.returncode == 0, rerun.stderr
    assert "solved 4/6" in rerun.stdout
    assert elapsed < 15  # python start-up + re-rendering the report
    assert_expected_summary(out)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    last = [e for e in events if e["event"] == "pipeline"][-1]
    assert last["new_attempts"] == 0 and last["samples"] == 0


def test_killed_run_resumes_to_the_same_summary(tmp_path: Path, env: dict[str, str]) -> None:
    slow = tmp_path / "slow.yaml"
    scenario = yaml.safe_load(SCENARIO.read_text())
    scenario["latency"] = 0.25
    slow.write_text(yaml.safe_dump(scenario, allow_unicode=True))
    out = tmp_path / "run"
    args = [*cli(), *eval_args(out, "--workers", "1", scenario=slow)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = out / "attempts.jsonl"
            if path.exists() and len(path.read_bytes().splitlines()) >= 6:
                break
            assert proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its REPL processes, no chance to clean up
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = (out / "attempts.jsonl").read_bytes()
    killed = [line for line in before.splitlines() if line.strip()]
    assert 6 <= len(killed) < 24, "the run must be killed mid-way"
    assert not (out / "summary.json").exists()

    resumed = run(eval_args(out, "--resume"), env)
    assert resumed.returncode == 0, resumed.stderr
    assert_expected_summary(out)
    after = (out / "attempts.jsonl").read_bytes()
    complete_lines = before[: before.rfind(b"\n") + 1]
    assert after.startswith(complete_lines), "recorded attempts are kept as they were"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unknown_benchmark(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["eval", "nosuchbench", "--pass", "2", "--out", str(tmp_path / "run")], env)
    assert result.returncode == 2
    assert "unknown benchmark 'nosuchbench'" in result.stderr and "minif2f" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_malformed_jsonl_line_names_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = PROBLEMS.read_text().splitlines()
    lines[2] = lines[2][:-5]  # truncated JSON on line 3
    bad.write_text("\n".join(lines) + "\n")
    args = eval_args(tmp_path / "run")
    args[1] = f"jsonl:{bad}"
    result = run(args, env)
    assert result.returncode == 2
    assert f"{bad}:3" in result.stderr and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_lean_workspace(env: dict[str, str], tmp_path: Path) -> None:
    args = [a for a in eval_args(tmp_path / "run") if a != "--repl-cmd" and a != repl_cmd(SCENARIO)]
    result = run(args, env)  # no workspace in the (empty) user config
    assert result.returncode == 2
    assert "prover setup lean" in result.stderr and "Traceback" not in result.stderr
    result = run([*args, "--workspace", str(tmp_path / "no-such-workspace")], env)
    assert result.returncode == 2
    assert "no-such-workspace does not exist" in result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was created or sampled


def test_unreachable_server_keeps_recorded_attempts(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run([*eval_args(out), "--limit", "3"], env)
    assert first.returncode == 0, first.stderr
    kept = (out / "attempts.jsonl").read_bytes()
    assert len(kept.splitlines()) == 12

    settings = tmp_path / "fast-fail.toml"
    settings.write_text("[sampler]\nmax_retries = 1\nretry_backoff = 0.05\nrequest_timeout = 5\n")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    args = [*eval_args(out, "--resume"), "--backend", "openai", "--base-url", url, "--config", str(settings)]
    failed = run(args, env)
    assert failed.returncode == 2, failed.stderr
    assert "prover: error:" in failed.stderr and "127.0.0.1" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert "12 attempts recorded" in failed.stderr and "--resume" in failed.stderr
    assert (out / "attempts.jsonl").read_bytes() == kept

    finished = run(eval_args(out, "--resume"), env)
    assert finished.returncode == 0, finished.stderr
    assert_expected_summary(out)
