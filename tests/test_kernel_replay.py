"""Class 4: kernel replay of accepted proofs, orchestrated against a STAND-IN replay tool.

No Lean here: the compile step and the replay tool are two small Python scripts written by this
test (`stand_in_compile.py`, `stand_in_replay.py`), called the way `lake env lean -o` and
`lake exe lean4checker <Module>` are called. They look for markers in the checked file: the
real tools decide by compiling and replaying. What is tested is the orchestration: the stage
runs only after the audit accepted, each outcome is a verdict with its rule, and nothing the
replay stage refused is `proved`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from checker_helpers import PROBLEM, lean_config

from prover.config import CheckerConfig, LeanConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.pool import LeanPool
from prover.lean_env.replay import KernelReplay, find_tool
from prover.lean_env.verdict_cache import VerdictCache
from prover.types import CheckStatus

STAND_IN_COMPILE = r'''
import shutil, sys
olean, source = sys.argv[2], sys.argv[3]
text = open(source, encoding="utf-8").read()
if "does_not_compile" in text:
    print(f"{source}:12:2: error: stand-in compile error")
    sys.exit(1)
shutil.copyfile(source, olean)
'''
STAND_IN_REPLAY = r'''
import os, sys, time
module = sys.argv[1]
paths = [p for p in os.environ.get("LEAN_PATH", "").split(os.pathsep) if p]
found = [os.path.join(p, module + ".olean") for p in paths if os.path.isfile(os.path.join(p, module + ".olean"))]
if not found:
    print(f"stand-in replay: could not find any oleans for: {module}")
    sys.exit(1)
text = open(found[0], encoding="utf-8").read()
if "replay_hangs" in text:
    time.sleep(60)
if "kernel_rejects_this" in text:
    print(f"stand-in replay found a problem in {module}: (kernel) declaration type mismatch")
    sys.exit(1)
print(f"stand-in replay: {module} ok")
'''


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    folder = tmp_path_factory.mktemp("stand_in_replay")
    (folder / "stand_in_compile.py").write_text(STAND_IN_COMPILE, encoding="utf-8")
    (folder / "stand_in_replay.py").write_text(STAND_IN_REPLAY, encoding="utf-8")
    return [sys.executable, str(folder / "stand_in_compile.py")], [sys.executable, str(folder / "stand_in_replay.py")]


def _config(stand_ins: tuple[list[str], list[str]], **overrides: object) -> CheckerConfig:
    compile_cmd, replay_cmd = stand_ins
    settings = {"replay": "kernel", "replay_cmd": replay_cmd, "replay_compile_cmd": compile_cmd, "replay_timeout": 5.0}
    return CheckerConfig(**{**settings, **overrides})


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [
        ("positivity", CheckStatus.PROVED, "accepted"),
        ("exact kernel_rejects_this", CheckStatus.REJECTED, "replay:rejected"),
        ("exact does_not_compile", CheckStatus.REJECTED, "replay:compile_error"),
    ],
)
async def test_replay_decides_after_the_audit(stand_ins, body: str, status: CheckStatus, rule: str) -> None:
    async with LeanPool(lean_config()) as pool:
        checker = ProofChecker(pool, _config(stand_ins))
        verdict = await checker.check(PROBLEM, "\n  " + body)
        audit_only = await ProofChecker(pool, CheckerConfig(replay="off")).check(PROBLEM, "\n  " + body)
    assert (verdict.status, verdict.rule, verdict.stage) == (status, rule, "replay"), verdict.detail
    assert verdict.proved is (status is CheckStatus.PROVED)
    assert audit_only.proved and audit_only.stage == "audit"  # the audit alone would have accepted
    if not verdict.proved:
        assert verdict.detail and verdict.axioms  # the audit's findings stay on the verdict


async def test_replay_timeout_is_a_timeout_verdict(stand_ins) -> None:
    async with LeanPool(lean_config()) as pool:
        verdict = await ProofChecker(pool, _config(stand_ins, replay_timeout=1.0)).check(PROBLEM, "\n  exact replay_hangs")
    assert (verdict.status, verdict.rule, verdict.stage) == (CheckStatus.TIMEOUT, "replay:timeout", "replay")
    assert not verdict.proved


async def test_missing_tool_is_an_error_when_replay_is_required(tmp_path: Path) -> None:
    cache = VerdictCache(":memory:")
    async with LeanPool(lean_config()) as pool:
        checker = ProofChecker(pool, CheckerConfig(replay="kernel"), cache=cache)
        verdict = await checker.check(PROBLEM, "\n  positivity")
        again = await checker.check(PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule, verdict.stage) == (CheckStatus.ERROR, "replay:missing_tool", "replay")
    assert "prover setup lean" in verdict.detail and not verdict.proved
    assert not again.cached and len(cache) == 0  # errors are never cached


async def test_failing_stages_never_reach_the_replay(stand_ins) -> None:
    async with LeanPool(lean_config()) as pool:
        checker = ProofChecker(pool, _config(stand_ins, replay_cmd=["/nonexistent/replay-tool"]))
        wrong = await checker.check(PROBLEM, "\n  linarith")
        cheat = await checker.check(PROBLEM, "\n  exact synthetic_sorry_trick")
    assert (wrong.rule, wrong.stage) == ("lean_error", "lean")
    assert (cheat.rule, cheat.stage) == ("axioms", "audit")


async def test_an_unstartable_tool_is_an_error_not_a_rejection(stand_ins) -> None:
    async with LeanPool(lean_config()) as pool:
        verdict = await ProofChecker(pool, _config(stand_ins, replay_cmd=["/nonexistent/replay-tool"])).check(
            PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule) == (CheckStatus.ERROR, "replay:error"), verdict.detail


def test_auto_replay_needs_a_tool_and_the_tool_is_in_the_cache_key(tmp_path: Path, stand_ins) -> None:
    launcher = ReplLauncher(argv=["repl"])
    assert KernelReplay.from_config(LeanConfig(), CheckerConfig(), launcher) is None  # auto, no workspace
    assert KernelReplay.from_config(LeanConfig(), CheckerConfig(replay="off"), launcher) is None
    required = KernelReplay.from_config(LeanConfig(), CheckerConfig(replay="kernel"), launcher)
    assert required is not None and required.tool is None
    workspace = tmp_path / "ws"
    (workspace / ".lake/packages/lean4checker/.lake/build/bin").mkdir(parents=True)
    (workspace / ".lake/packages/lean4checker/.lake/build/bin/lean4checker").write_text("")
    tool = find_tool(LeanConfig(workspace=workspace), CheckerConfig())
    assert tool is not None and tool.name == "lean4checker" and tool.check[-2:] == ["exe", "lean4checker"]
    assert tool.compile[-2:] == ["env", "lean"] and tool.cwd == workspace
    other = find_tool(LeanConfig(), _config(stand_ins))
    assert other is not None and other.fingerprint != tool.fingerprint
