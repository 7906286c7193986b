"""Test helpers for the Lean layer: scenario files and pools on the SIMULATED REPL."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import psutil

from prover.config import LeanConfig
from prover.lean_env import LeanPool, ReplLauncher, ReplWorker, Scenario, simulated_repl_command

HEADER = "import Mathlib\nopen Real"
FOO_GOAL = "x : Nat\n⊢ x + 0 = x"
FOO = "theorem foo (x : Nat) : x + 0 = x := by\n  "

BASE_SCENARIO: dict[str, Any] = {
    "theorems": [
        {
            "name": "foo",
            "goals": [FOO_GOAL],
            "proofs": [{"body": "simp"}, {"pattern": "omega.*", "axioms": ["propext"]}],
            "steps": [
                {"from": [FOO_GOAL], "tactic": "induction x", "to": ["case zero\n⊢ 0 + 0 = 0", "case succ\nn : Nat\n⊢ n + 1 + 0 = n + 1"]},
                {"from": [FOO_GOAL], "tactic": "simp", "to": []},
                {"from": [FOO_GOAL], "tactic": "exact?", "throw": "`exact?` could not close the goal."},
            ],
        }
    ]
}


def shared_dir() -> Path:
    env = os.environ.get("PROVER_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def transcripts_dir() -> Path:
    return shared_dir() / "lean-repl-transcripts"


def write_scenario(tmp_path: Path, name: str = "scenario.json", **overrides: Any) -> Path:
    data = {**BASE_SCENARIO, **overrides}
    return Scenario.model_validate(data).dump(tmp_path / name)


def lean_config(**overrides: Any) -> LeanConfig:
    base: dict[str, Any] = {"workers": 2, "timeout": 1.5, "header_timeout": 5.0, "memory_limit_mb": 1024}
    return LeanConfig(**{**base, **overrides})


def make_pool(scenario: Path, **config: Any) -> LeanPool:
    return LeanPool(lean_config(**config), launcher=ReplLauncher(argv=simulated_repl_command(scenario)))


def make_worker(scenario: Path, header: str = HEADER, **config: Any) -> ReplWorker:
    return ReplWorker(1, ReplLauncher(argv=simulated_repl_command(scenario)), lean_config(**config), header)


def one_answer_repl(tmp_path: Path) -> list[str]:
    """argv of a stand-in REPL that answers its first request (and the worker's fence after it,
    as Lean answers `#print "s"`), then exits without reading more.

    It lingers 0.3 s first, so the next request lands in its stdin pipe while it is still alive:
    like a REPL killed (or dying) right after a reply, which must not be blamed on that request."""
    script = tmp_path / "one_answer_repl.py"
    script.write_text(
        "import json, sys, time\n"
        "def request():\n"
        "    lines = []\n"
        "    while (line := sys.stdin.readline()).strip():\n"
        "        lines.append(line)\n"
        "    return json.loads(''.join(lines))\n"
        "request()\n"
        "sys.stdout.write('{\"env\": 0}\\n\\n')\n"
        "sys.stdout.flush()\n"
        "fence = request()['cmd'].split('\"')[1]\n"
        "info = {'severity': 'info', 'pos': {'line': 1, 'column': 0}, 'data': fence}\n"
        "sys.stdout.write(json.dumps({'messages': [info], 'env': 1}) + '\\n\\n')\n"
        "sys.stdout.flush()\n"
        "time.sleep(0.3)\n"
        "sys.exit(1)\n",
        encoding="utf-8",
    )
    return [sys.executable, str(script)]


def processes_running(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions `marker`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or ()):
            found.append(proc.pid)
    return found
