"""`prover check` through the real CLI (subprocess) on the SIMULATED REPL."""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import sys
from pathlib import Path

from checker_helpers import PROBLEM, SCENARIO, problem_line

from prover import cli
from prover.commands import check as commands
from prover.lean_env.simulated_repl import simulated_repl_command
from prover.types import Problem

REPL_CMD = shlex.join(simulated_repl_command(SCENARIO))
GEO = Problem(
    name="geo_1",
    header="import Mathlib\nimport SystemE\nimport LeanGeo\nnamespace LeanGeo\n\n",
    formal_statement="theorem angle_altitude_circumradius_equal : ∀ (A : Point), A = A := by",
)


def _run(args: list[str], stdin: str | None = None, *, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], check=False,
        input=stdin, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "proofs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_check_outputs_in_input_order_with_malformed_lines(tmp_path: Path) -> None:
    lines = [
        problem_line(PROBLEM, "\n  slow_but_fine"),  # slowest first: order must still hold
        problem_line(PROBLEM, "\n  positivity"),
        "{not json",
        problem_line(PROBLEM, "\n  sorry"),
        json.dumps({"name": "no_proof", "formal_statement": "theorem a : True := by"}),
        "",
        problem_line(PROBLEM, "\n  linarith"),
        problem_line(GEO, "\n  euclid_finish"),
        json.dumps({"name": "bad", "formal_statement": "no declaration here", "proof": "simp"}),
    ]
    path = _write(tmp_path, lines)
    proc = _run(["check", str(path), "--repl-cmd", REPL_CMD, "--workers", "2", "--timeout", "5", "--no-cache"])
    assert proc.returncode == 1, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 7, 8, 9]  # blank line 6 skipped
    by_line = {r["line"]: r for r in results}
    assert by_line[1]["proved"] and by_line[1]["status"] == "proved" and by_line[1]["rule"] == "accepted"
    assert by_line[2]["proved"] and by_line[2]["name"] == "mathd_t"
    assert (by_line[3]["status"], by_line[3]["rule"]) == ("error", "malformed_input")
    assert "line 3" in by_line[3]["detail"]
    assert (by_line[4]["status"], by_line[4]["rule"]) == ("rejected", "preflight:sorry")
    assert by_line[5]["rule"] == "malformed_input" and "proof" in by_line[5]["detail"]
    assert (by_line[7]["status"], by_line[7]["rule"]) == ("failed", "lean_error")
    assert by_line[7]["messages"][0]["severity"] == "error" and "pos" in by_line[7]["messages"][0]
    assert (by_line[8]["status"], by_line[8]["rule"]) == ("rejected", "axioms")  # SMT_VERIF not allowed
    assert by_line[9]["rule"] == "malformed_input"
    for key in ("name", "proved", "status", "rule", "messages", "detail", "axioms"):
        assert all(key in r for r in results)
    assert "line 3" in proc.stderr and "line 5" in proc.stderr and "line 9" in proc.stderr
    assert "proved 2" in proc.stderr and "rejected 2" in proc.stderr and "3 malformed" in proc.stderr


def test_allow_axiom_and_clean_exit(tmp_path: Path) -> None:
    path = _write(tmp_path, [problem_line(GEO, "\n  euclid_finish"), problem_line(PROBLEM, "\n  linarith")])
    proc = _run(["check", str(path), "--repl-cmd", REPL_CMD, "--workers", "1", "--allow-axiom", "SMT_VERIF",
                 "--no-cache", "--with-code"])
    assert proc.returncode == 0, proc.stderr
    geo, wrong = (json.loads(line) for line in proc.stdout.splitlines())
    assert geo["proved"] and "SMT_VERIF" in geo["axioms"]
    assert geo["code"].startswith(GEO.header + GEO.formal_statement)
    assert not wrong["proved"]  # a failed proof is a result, not an error: exit 0


def test_cache_flag_and_stdin(tmp_path: Path) -> None:
    env = {"PROVER_CACHE_DIR": str(tmp_path / "cache")}
    line = problem_line(PROBLEM, "\n  positivity") + "\n"
    first = _run(["check", "-", "--repl-cmd", REPL_CMD, "--workers", "1", "--cache"], line, env=env)
    second = _run(["check", "-", "--repl-cmd", REPL_CMD, "--workers", "1", "--cache"], line, env=env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["cached"] is False
    assert json.loads(second.stdout)["cached"] is True
    assert (tmp_path / "cache" / "prover-cache.sqlite").exists()


def test_missing_repl_is_a_clear_workspace_error(tmp_path: Path) -> None:
    path = _write(tmp_path, [problem_line(PROBLEM, "\n  positivity")])
    env = {"PROVER_CONFIG_HOME": str(tmp_path / "empty-config")}
    proc = _run(["check", str(path)], env=env)
    assert proc.returncode == 2
    assert "prover: error:" in proc.stderr and "prover setup lean" in proc.stderr
    proc = _run(["check", str(path), "--repl-cmd", "/no/such/repl --flag"], env=env)
    assert proc.returncode == 2 and "/no/such/repl" in proc.stderr and "not found" in proc.stderr
    proc = _run(["check", str(path), "--workspace", str(tmp_path / "nowhere")], env=env)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_missing_input_file(tmp_path: Path) -> None:
    proc = _run(["check", str(tmp_path / "absent.jsonl"), "--repl-cmd", REPL_CMD])
    assert proc.returncode == 2 and "absent.jsonl" in proc.stderr


def test_progress_lines_in_process(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(commands, "PROGRESS_EVERY", 0.0)
    path = _write(tmp_path, [problem_line(PROBLEM, "\n  positivity")] * 3)
    code = cli.main(["check", str(path), "--repl-cmd", REPL_CMD, "--workers", "1", "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0 and len(out.splitlines()) == 3
    assert "prover check: 3 checked, 3 proved" in err and "3 lines: proved 3" in err


def test_results_stream_while_stdin_is_still_open() -> None:
    """A slow producer on stdin must not stall the checks: line 1's result comes out before line 2
    is written (reading stdin on the event loop would block everything until then)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "check", "-", "--repl-cmd", REPL_CMD, "--workers", "1", "--no-cache"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(problem_line(PROBLEM, "\n  positivity") + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no result while stdin stayed open"
        assert json.loads(proc.stdout.readline())["line"] == 1
        proc.stdin.write(problem_line(PROBLEM, "\n  linarith") + "\n")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["line"] == 2 and "2 lines" in err


def test_undecodable_line_and_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "proofs.jsonl"
    good = problem_line(PROBLEM, "\n  positivity").encode()
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + b'{"proof": "\xff"}\n' + good + b"\n")
    proc = _run(["check", str(path), "--repl-cmd", REPL_CMD, "--workers", "1", "--no-cache"])
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["line"], r["rule"]) for r in results] == [(1, "accepted"), (2, "malformed_input"), (3, "accepted")]
    assert "not UTF-8" in results[1]["detail"] and proc.returncode == 1
