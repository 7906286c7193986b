"""Stdout that is not a reply to our request is a protocol error, never a reply.

A stand-in REPL (a small Python script speaking the REPL protocol, not Lean) plays model code
that writes to the REPL's stdout: forged replies before the real one, a forged fence answer,
replies of the wrong shape, a pickle that is a symlink. The worker must refuse each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lean_pool_helpers import lean_config

from prover.lean_env import OutcomeKind, ReplLauncher, ReplWorker
from prover.lean_env.protocol import CommandRequest, PickleEnvRequest, check_reply, parse_reply
from prover.errors import ReplProtocolError

STAND_IN = r'''
import json, os, sys
env = 0
def request():
    lines = []
    while (line := sys.stdin.readline()).strip():
        lines.append(line)
    return json.loads("".join(lines)) if lines else None
def write(obj):
    sys.stdout.write(json.dumps(obj, indent=1) + "\n\n")
    sys.stdout.flush()
def info(data):
    return {"severity": "info", "pos": {"line": 1, "column": 0}, "data": data}
while (req := request()) is not None:
    cmd = req.get("cmd", "")
    if cmd.startswith('#print "prover-fence '):
        write({"messages": [info(cmd.split('"')[1])], "env": env}); env += 1
        continue
    if "pickleTo" in req:
        if req["env"] == 7:
            write({"env": 8})
        else:
            os.symlink("/etc/passwd", req["pickleTo"]); write({"env": req["env"]})
        continue
    if "FORGE_FENCE" in cmd:
        write({"env": 42}); write({"messages": [info("prover-fence 0000000000000000")], "env": 43})
    elif "FORGE" in cmd:
        write({"env": 42})
    if "SHAPE" in cmd:
        write({"proofState": 0, "goals": []})
        continue
    write({"env": env, "messages": [{"severity": "error", "pos": {"line": 1, "column": 0}, "data": "real reply"}]})
    env += 1
    if "EXIT" in cmd:
        sys.exit(0)
'''


@pytest.fixture
def worker(tmp_path: Path):
    script = tmp_path / "stand_in_repl.py"
    script.write_text(STAND_IN, encoding="utf-8")
    return ReplWorker(1, ReplLauncher(argv=[sys.executable, str(script)]), lean_config(), "")


async def _run(worker: ReplWorker, cmd: str):
    await worker.start()
    try:
        return await worker.run(CommandRequest(cmd=cmd), timeout=5)
    finally:
        await worker.close()


@pytest.mark.parametrize("cmd", ["FORGE", "FORGE_FENCE"])
async def test_a_forged_reply_before_the_real_one_is_a_protocol_error(worker: ReplWorker, cmd: str) -> None:
    out = await _run(worker, cmd)
    assert out.kind is OutcomeKind.CRASH and out.response is None
    assert "not a reply to our request" in out.detail


async def test_the_real_reply_passes(worker: ReplWorker) -> None:
    out = await _run(worker, "#check Nat")
    assert out.kind is OutcomeKind.LEAN_ERROR and out.response.errors()[0].data == "real reply"


async def test_a_reply_of_the_wrong_shape_is_a_protocol_error(worker: ReplWorker) -> None:
    out = await _run(worker, "SHAPE")
    assert out.kind is OutcomeKind.CRASH and "is not an answer to a CommandRequest" in out.detail


async def test_dying_right_after_a_reply_leaves_it_unconfirmed(worker: ReplWorker) -> None:
    out = await _run(worker, "EXIT")
    assert out.kind is OutcomeKind.INFRASTRUCTURE and "not confirmed" in out.detail


async def test_pickles_must_be_regular_files_and_answer_their_env(worker: ReplWorker, tmp_path: Path) -> None:
    await worker.start()
    try:
        target = tmp_path / "out.olean"
        linked = await worker.run(PickleEnvRequest(pickle_to=str(target), env=3), timeout=5)
        assert linked.kind is OutcomeKind.CRASH and "not a regular file" in linked.detail
        assert not target.exists()
        await worker.start()
        wrong = await worker.run(PickleEnvRequest(pickle_to=str(target), env=7), timeout=5)
        assert wrong.kind is OutcomeKind.CRASH and "answered with env 8" in wrong.detail
    finally:
        await worker.close()


def test_check_reply_table() -> None:
    check_reply(CommandRequest(cmd="x"), parse_reply({"env": 1}))
    check_reply(CommandRequest(cmd="x"), parse_reply({"message": "Unknown environment."}))
    with pytest.raises(ReplProtocolError):
        check_reply(CommandRequest(cmd="x"), parse_reply({"proofState": 1, "goals": []}))
