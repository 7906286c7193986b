"""Conformance of the REPL protocol models with every recorded real transcript."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.errors import ReplProtocolError
from prover.lean_env.protocol import (
    CommandRequest,
    CommandResponse,
    ProofStepResponse,
    ReplErrorResponse,
    TacticRequest,
    decode_reply,
    encode_request,
    parse_reply,
    parse_request,
    split_replies,
)
from prover.lean_env.simulated_repl import read_requests
from lean_pool_helpers import transcripts_dir

OUTPUTS = sorted(transcripts_dir().rglob("*.expected.out"))
INPUTS = sorted(transcripts_dir().rglob("*.in"))


def _replies(path: Path) -> list[dict]:
    return [json.loads(block) for block in split_replies(path.read_text(encoding="utf-8"))]


def test_corpus_found_in_every_folder():
    folders = {p.parent.relative_to(transcripts_dir()).as_posix() for p in OUTPUTS}
    assert {".", "Mathlib/test"} <= folders, f"transcripts missing under {transcripts_dir()}"
    assert sum(len(_replies(p)) for p in OUTPUTS) >= 200


@pytest.mark.parametrize("path", OUTPUTS, ids=lambda p: p.relative_to(transcripts_dir()).as_posix())
def test_every_reply_round_trips_without_loss(path: Path):
    for obj in _replies(path):
        reply = parse_reply(obj)
        assert reply.to_json() == obj, f"{path.name}: lossy round trip"


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.relative_to(transcripts_dir()).as_posix())
def test_every_recorded_request_validates_and_encodes(path: Path):
    with path.open("rb") as stream:
        for text in read_requests(stream):
            obj = json.loads(text)
            line = encode_request(parse_request(obj))
            assert line.endswith("\n\n") and "\n" not in line[:-2]
            assert json.loads(line) == obj


def test_reply_kinds_and_helpers():
    sorry = parse_reply(_replies(transcripts_dir() / "readme.expected.out")[0])
    assert isinstance(sorry, CommandResponse) and sorry.has_sorry() and not sorry.has_errors()
    assert sorry.sorries[0].proof_state == 0 and sorry.sorries[0].goal == "x : Unit\n⊢ Nat"
    logged = parse_reply(_replies(transcripts_dir() / "invalid_tactic.expected.out")[1])
    assert isinstance(logged, ProofStepResponse) and logged.has_errors() and not logged.completed
    assert logged.errors()[0].data.startswith("Unknown identifier")
    thrown = parse_reply({"message": "Unknown proof state."})
    assert isinstance(thrown, ReplErrorResponse) and thrown.has_errors()
    done = parse_reply({"proofStatus": "Completed", "proofState": 2, "goals": []})
    assert isinstance(done, ProofStepResponse) and done.completed


@pytest.mark.parametrize("spelling", ["declaration uses 'sorry'", "declaration uses `sorry`"])
def test_both_sorry_warning_spellings(spelling: str):
    msg = {"severity": "warning", "pos": {"line": 1, "column": 8}, "endPos": None, "data": spelling}
    assert parse_reply({"env": 1, "messages": [msg]}).has_sorry()


def test_encode_escapes_newlines_and_omits_unset():
    line = encode_request(CommandRequest(cmd="theorem t : 1 = 1 := by\n  rfl", env=0, root_goals=True))
    assert line == '{"cmd": "theorem t : 1 = 1 := by\\n  rfl", "env": 0, "rootGoals": true}\n\n'
    assert encode_request(TacticRequest(tactic="simp", proof_state=3)) == '{"tactic": "simp", "proofState": 3}\n\n'


@pytest.mark.parametrize(
    "obj",
    [{"cmd": "x", "env": -1}, {"cmd": "x", "infotree": "everything"}, {"tactic": "simp", "proofState": "a"}, {"foo": 1}, [1]],
)
def test_invalid_requests_rejected_client_side(obj):
    with pytest.raises(ValueError):
        parse_request(obj)


@pytest.mark.parametrize("text", ["not json {", "[1, 2]", '{"hello": 1}', '{"env": "zero"}'])
def test_garbage_replies_raise_protocol_error(text: str):
    with pytest.raises(ReplProtocolError):
        decode_reply(text)


def test_extra_fields_survive():
    obj = {"env": 4, "messages": [], "futureField": {"x": [1, 2]}}
    assert parse_reply(obj).to_json() == obj
