"""The SIMULATED REPL: scenario semantics (in-process) and the executable's wire behaviour."""

from __future__ import annotations

import json
import subprocess

import pytest

from prover.lean_env.protocol import parse_reply, split_replies
from prover.lean_env.simulated_lean import Scenario, SimulatedLean
from prover.lean_env.simulated_repl import elaboration_seconds, simulated_repl_command
from lean_pool_helpers import BASE_SCENARIO, FOO, FOO_GOAL, transcripts_dir, write_scenario


@pytest.fixture
def lean() -> SimulatedLean:
    sim = SimulatedLean(Scenario.model_validate(BASE_SCENARIO))
    assert sim.command("import Mathlib", None) == {"env": 0}
    return sim


def _data(reply: dict) -> list[str]:
    return [m["data"] for m in reply.get("messages", [])]


def test_scenario_proof_accepted_and_axioms_printed(lean: SimulatedLean):
    ok = lean.command(FOO + "simp", 0)
    assert ok == {"env": 1}
    printed = lean.command("#print axioms foo", ok["env"])
    assert _data(printed) == ["'foo' depends on axioms: [Classical.choice, Quot.sound, propext]"]
    pattern = lean.command(FOO + "omega -- done", 0)
    assert _data(lean.command("#print axioms foo", pattern["env"])) == ["'foo' depends on axioms: [propext]"]


def test_unknown_proof_is_an_error_like_lean(lean: SimulatedLean):
    reply = parse_reply(lean.command(FOO + "linarith", 0))
    assert reply.has_errors() and reply.errors()[0].data == "unsolved goals\n" + FOO_GOAL


def test_sorry_gives_proof_state_with_scenario_goal(lean: SimulatedLean):
    reply = parse_reply(lean.command(FOO + "sorry", 0))
    assert reply.has_sorry() and reply.sorries[0].goal == FOO_GOAL
    state = reply.sorries[0].proof_state
    assert lean.tactic("simp", state) == {"proofStatus": "Completed", "proofState": state + 1, "goals": []}
    split = lean.tactic("induction x", state)
    assert split["proofStatus"] == "Incomplete: open goals remain" and len(split["goals"]) == 2
    assert lean.tactic("exact?", state) == {"message": "Lean error:\n`exact?` could not close the goal."}
    logged = lean.tactic("ring", state)
    assert logged["proofStatus"] == "Incomplete: contains sorry" and logged["messages"][0]["severity"] == "error"
    assert lean.tactic("simp", 999) == {"message": "Unknown proof state."}


def test_tactic_sorry_taints_the_branch(lean: SimulatedLean):
    state = lean.command(FOO + "sorry", 0)["sorries"][0]["proofState"]
    reply = lean.tactic("sorry", state)
    assert reply["sorries"][0]["goal"] == FOO_GOAL and reply["proofStatus"] == "Incomplete: contains sorry"


def test_admit_warns_without_sorries_and_adds_sorry_axiom(lean: SimulatedLean):
    reply = lean.command(FOO + "admit\n#print axioms foo", 0)
    assert "sorries" not in reply
    assert _data(reply) == ["declaration uses `sorry`", "'foo' depends on axioms: [sorryAx]"]


def test_auxiliary_declarations_propagate_axioms(lean: SimulatedLean):
    code = "axiom cheat : ∀ n : Nat, n + 0 = n\n\ntheorem foo (x : Nat) : x + 0 = x := by\n  exact cheat x"
    env = lean.command(code, 0)["env"]
    assert _data(lean.command("#print axioms foo", env)) == ["'foo' depends on axioms: [cheat]"]
    code = "lemma helper : True := by native_decide\n\ntheorem foo (x : Nat) : x + 0 = x := by\n  simp [helper]"
    reply = lean.command(code + "\n#print axioms foo", 0)
    assert "Lean.ofReduceBool" in _data(reply)[-1]


def test_root_goals_unknown_env_and_fresh_env(lean: SimulatedLean):
    reply = lean.command(FOO + "simp", 0, root_goals=True)
    assert reply["sorries"][0]["goal"] == FOO_GOAL and "messages" not in reply
    assert lean.command("#print axioms foo", 99) == {"message": "Unknown environment."}
    assert "error" in json.dumps(lean.command("#print axioms foo", 0))  # not declared in env 0


def test_default_goal_from_statement_when_scenario_is_silent(lean: SimulatedLean):
    reply = lean.command("theorem bar (a b : Nat) (h : a = b) : b = a := by sorry", 0)
    assert reply["sorries"][0]["goal"] == "a b : Nat\nh : a = b\n⊢ b = a"


def test_pickling_round_trip(lean: SimulatedLean, tmp_path):
    env = lean.command(FOO + "simp", 0)["env"]
    path = str(tmp_path / "env.olean")
    assert lean.handle({"pickleTo": path, "env": env}) == {"env": env}
    new = lean.handle({"unpickleEnvFrom": path})["env"]
    assert _data(lean.command("#print axioms foo", new))[0].startswith("'foo' depends on axioms")


def _run(argv: list[str], stdin: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=timeout)


def test_executable_frames_like_the_repl(tmp_path):
    argv = simulated_repl_command(write_scenario(tmp_path))
    # a request split over physical lines is stripped and concatenated (repl#72 behaviour)
    stdin = '{"cmd": "import Mathlib"}\n\n{"cmd": "theorem foo (x : Nat) : x + 0 = x := by\\n\n  simp",\n "env": 0}\n\n'
    proc = _run(argv, stdin)
    blocks = split_replies(proc.stdout.decode())
    assert proc.returncode == 0 and [json.loads(b) for b in blocks] == [{"env": 0}, {"env": 1}]
    assert "\n" in blocks[0]  # pretty-printed over several lines, like the real REPL


def test_executable_dies_on_malformed_json_like_the_real_repl(tmp_path):
    proc = _run(simulated_repl_command(write_scenario(tmp_path)), '{"cmd": broken\n\n')
    assert proc.returncode != 0 and b"Could not parse JSON" in proc.stderr


def test_help_says_simulation(tmp_path):
    proc = _run(simulated_repl_command(write_scenario(tmp_path))[:3] + ["--help"], "")
    assert b"SIMULATED" in proc.stdout


def test_transcript_replay_reproduces_real_output():
    stem = transcripts_dir() / "readme"
    proc = _run(simulated_repl_command(stem.with_suffix(".in"), transcript=True), stem.with_suffix(".in").read_text())
    assert proc.stdout.decode() == (transcripts_dir() / "readme.expected.out").read_text()
    wrong = _run(simulated_repl_command(stem.with_suffix(".in"), transcript=True), '{"cmd": "other"}\n\n')
    assert "does not match the transcript" in wrong.stdout.decode()


def test_scenario_validation_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="exactly one of"):
        Scenario.model_validate({"theorems": [{"name": "t", "proofs": [{"axioms": []}]}]})
    with pytest.raises(ValueError, match="typo_field"):
        Scenario.model_validate({"typo_field": 1})


def test_check_prints_the_declared_statement_per_env(lean: SimulatedLean):
    mine = lean.command("theorem foo (x : Nat) : x = x + 0 := by\n  simp", 0)["env"]
    reference = lean.command(FOO + "sorry", 0)["env"]
    trusted = "set_option pp.all true in\n#check @foo\n\n#print axioms foo\n"
    assert _data(lean.command(trusted, mine))[0] == "foo : (x : Nat) : x = x + 0"
    assert _data(lean.command(trusted, reference))[0] == "foo : (x : Nat) : x + 0 = x"
    assert lean.command("#check @nope", 0)["messages"][0]["severity"] == "error"


def test_namespaces_name_declarations_and_survive_a_pickle(lean: SimulatedLean, tmp_path):
    """As in Lean: `namespace X` ... `theorem foo` declares `X.foo`; names resolve through the
    open namespace; the REPL's pickle keeps the scopes (not the extensions)."""
    env = lean.command("namespace Geo\n" + FOO + "simp", 0)["env"]
    assert _data(lean.command("#print axioms foo", env)) == [
        "'Geo.foo' depends on axioms: [Classical.choice, Quot.sound, propext]"]
    assert lean.command("#print axioms foo", 0)["messages"][0]["severity"] == "error"  # not at the root
    lean.handle({"pickleTo": str(tmp_path / "p.olean"), "env": env})
    again = lean.handle({"unpickleEnvFrom": str(tmp_path / "p.olean")})["env"]
    assert _data(lean.command("#print axioms Geo.foo", again))[0].startswith("'Geo.foo' depends on")
    assert _data(lean.command("#print axioms foo", again))[0].startswith("'Geo.foo' depends on")
    closed = lean.command("end Geo", again)["env"]
    assert lean.command("#print axioms foo", closed)["messages"][0]["severity"] == "error"


def test_only_proof_elaboration_is_expensive(lean: SimulatedLean):
    """What `proof_latency` is charged for: elaborating a proof (a non-`sorry` proof, a tactic),
    never an audit, a statement proved by `sorry`, or a header."""
    scenario = Scenario.model_validate({**BASE_SCENARIO, "latency": 0.005, "proof_latency": 0.2})

    def cost(request: dict) -> float:
        before = lean.proofs_elaborated
        lean.handle(request)
        return elaboration_seconds(scenario, proved=lean.proofs_elaborated > before)

    proved = lean.command(FOO + "simp", 0)["env"]
    assert cost({"cmd": FOO + "simp", "env": 0}) == 0.2
    assert cost({"cmd": FOO + "linarith", "env": 0}) == 0.2  # a failing proof costs its elaboration too
    assert cost({"cmd": "#print axioms foo", "env": proved}) == 0.005
    assert cost({"cmd": FOO + "sorry", "env": 0}) == 0.005
    assert cost({"cmd": "import Mathlib"}) == 0.005
    state = lean.command(FOO + "sorry", 0)["sorries"][0]["proofState"]
    assert cost({"tactic": "simp", "proofState": state}) == 0.2
    # without `proof_latency` every request costs `latency`, as before
    assert elaboration_seconds(Scenario.model_validate({"latency": 0.01}), proved=True) == 0.01
