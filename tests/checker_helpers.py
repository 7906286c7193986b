"""Shared helpers for the checker tests (owned by the checker tests).

`lean_config` points a pool at the SIMULATED REPL with a scenario from tests/data/checker/.
`ScriptedLease`/`ScriptedPool` answer `lease.command` from a function: a unit-test double used
only to exercise reply shapes the simulated REPL cannot produce (real Lean's `#check` output,
forged or malformed `#print axioms` replies).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prover.config import LeanConfig
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.protocol import CommandResponse, parse_reply
from prover.lean_env.results import (
    EnvHandle,
    EnvKey,
    OutcomeKind,
    ReplResult,
    WorkerRef,
)
from prover.lean_env.simulated_repl import simulated_repl_command
from prover.types import Problem

CHECKER_DATA = Path(__file__).resolve().parent / "data" / "checker"
SCENARIO = CHECKER_DATA / "scenario.yaml"

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
STATEMENT = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) :\n    x ^ 2 > 0 := by"
PROBLEM = Problem(name="mathd_t", header=HEADER, formal_statement=STATEMENT)


def lean_config(scenario: Path = SCENARIO, **overrides: Any) -> LeanConfig:
    settings: dict[str, Any] = {
        "repl_cmd": simulated_repl_command(scenario),
        "workers": 2,
        "timeout": 2.0,
        "header_timeout": 20.0,
        "memory_limit_mb": None,
        "rss_limit_mb": None,
        "infra_retries": 0,
    }
    settings.update(overrides)
    return LeanConfig(**settings)


def problem_line(problem: Problem, proof: str, **extra: Any) -> str:
    """One `prover check` input line."""
    return json.dumps({**problem.model_dump(mode="json"), "proof": proof, **extra}, ensure_ascii=False)


Answer = Callable[[str, int | None], dict[str, Any]]
"""(cmd, env id or None) -> raw REPL reply object."""


class ScriptedLease:
    """Answers `command` from `answer(cmd, env)`; records every command it was sent."""

    def __init__(self, answer: Answer, sent: list[str]) -> None:
        self.answer = answer
        self.sent = sent
        self.worker = WorkerRef(worker_id=1, generation=1)
        self.header_env = EnvHandle(worker=self.worker, env=0)

    async def command(self, cmd: str, *, env: Any = "header", **_: Any) -> ReplResult:
        self.sent.append(cmd)
        env_id = 0 if env == "header" else (env.env if isinstance(env, EnvHandle) else None)
        return self._result(self.answer(cmd, env_id))

    async def pickle_env(self, env: EnvHandle, path: str, **_: Any) -> ReplResult:
        self.sent.append(f"pickle {env.env}")
        return self._result({"env": env.env})

    async def unpickle_env(self, path: str, **_: Any) -> ReplResult:
        self.sent.append("unpickle")
        return self._result({"env": 9})

    def _result(self, obj: dict[str, Any]) -> ReplResult:
        reply = parse_reply(obj)
        kind = OutcomeKind.LEAN_ERROR if reply.has_errors() else OutcomeKind.OK
        handle = EnvHandle(worker=self.worker, env=reply.env) if isinstance(reply, CommandResponse) else None
        return ReplResult(kind=kind, response=reply, env=handle, seconds=0.01)


class ScriptedPool:
    """The two pool methods (and the config and launcher) the checker uses."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[str] = []
        self.config = LeanConfig(repl_cmd=["scripted-repl"], sandbox="off")
        self.launcher = ReplLauncher(argv=["scripted-repl"])

    def env_key(self, header: str) -> EnvKey:
        return EnvKey(workspace="/scripted", lean_version="v0", header=header)

    @asynccontextmanager
    async def lease(self, key: EnvKey, **_: Any) -> AsyncIterator[ScriptedLease]:
        yield ScriptedLease(self.answer, self.sent)


def info(line: int, data: str) -> dict[str, Any]:
    return {"severity": "info", "pos": {"line": line, "column": 0}, "endPos": None, "data": data}


def error(line: int, data: str) -> dict[str, Any]:
    return {"severity": "error", "pos": {"line": line, "column": 0}, "endPos": None, "data": data}
