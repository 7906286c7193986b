"""The SIMULATED REPL on sketches (bodies with `have` steps): exactly the real REPL's replies on the
recorded sessions, goals with their local context, proof states that continue with the scenario's
steps, error recovery, and the old scenario behaviour where a body has no `have`."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from planner_helpers import HYPS, SCENARIO, simulated_lean

from prover.lean_env.protocol import parse_reply, split_replies
from prover.lean_env.simulated_lean import Scenario, SimulatedLean
from prover.lean_env.simulated_repl import read_requests, simulated_repl_command

THEOREM = ("theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v) (h₁ : v = 1 / 3 * (b * h))\n"
           "    (h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by\n")


@pytest.mark.parametrize("name", ["have_by_sorry", "sorry_hypotheses"])
def test_replies_equal_the_real_repls_on_recorded_sessions(transcripts_dir: Path, name: str):
    """No scenario at all: the goal comes from the statement, the rest from the sketch rules."""
    lean = SimulatedLean(Scenario())
    requests = [json.loads(t) for t in read_requests(io.BytesIO((transcripts_dir / f"{name}.in").read_bytes()))]
    replies = [json.loads(b) for b in split_replies((transcripts_dir / f"{name}.expected.out").read_text())]
    assert len(requests) == len(replies) >= 2
    for request, expected in zip(requests, replies):
        assert lean.handle(request) == expected


def test_have_goals_carry_the_context_so_far_and_the_closing_step_sees_them():
    lean = simulated_lean()
    body = "  have hb : b * h = 195 := by sorry\n  have hv : v = 1 / 3 * 195 := sorry\n  sorry"
    reply = parse_reply(lean.command(THEOREM + body, None))
    assert [s.goal for s in reply.sorries] == [
        HYPS + "\n⊢ b * h = 195",
        HYPS + "\nhb : b * h = 195\n⊢ v = 1 / 3 * 195",
        HYPS + "\nhb : b * h = 195\nhv : v = 1 / 3 * 195\n⊢ v = 65",
    ]
    assert [s.pos.line for s in reply.sorries if s.pos] == [3, 4, 5]
    assert [m.data for m in reply.messages] == ["declaration uses `sorry`"]
    # the proof states continue with the scenario's steps
    first = reply.sorries[0].proof_state
    assert first is not None
    after = lean.tactic("rw [h₂, h₃]", first)
    assert after["goals"] == [HYPS + "\n⊢ 30 * (13 / 2) = 195"]
    assert lean.tactic("norm_num", after["proofState"])["proofStatus"] == "Completed"


def test_a_fully_proved_sketch_is_accepted_and_a_wrong_closing_step_is_an_error():
    lean = simulated_lean()
    proved = ("  have hb : b * h = 195 := by\n    rw [h₂, h₃]\n    norm_num\n"
              "  have hv : v = 1 / 3 * 195 := by rw [h₁, hb]\n  norm_num [hv]")
    assert lean.command(THEOREM + proved, None) == {"env": 0}
    wrong = proved.replace("norm_num [hv]", "linarith")
    reply = parse_reply(lean.command(THEOREM + wrong, None))
    (error,) = reply.errors()
    assert error.data == "tactic 'linarith' failed (simulated REPL: no scenario step)"
    assert (error.pos.line, error.pos.column) == (7, 2) and not reply.sorries


def test_a_failed_have_proof_is_logged_and_the_have_still_holds():
    lean = simulated_lean()
    body = "  have hb : b * h = 195 := by simp\n  have hv : v = 1 / 3 * 195 := by sorry\n  norm_num [hv]"
    reply = parse_reply(lean.command(THEOREM + body, None))
    assert [m.data for m in reply.messages] == ["tactic 'simp' failed (simulated REPL: no scenario step)"]
    assert reply.sorries[0].goal == HYPS + "\nhb : b * h = 195\n⊢ v = 1 / 3 * 195"  # hb is in context
    # errors suppress Lean's sorry warning, but the sorry is still reported
    assert not any(m.severity == "warning" for m in reply.messages)


def test_a_failing_top_level_step_ends_the_block():
    lean = simulated_lean()
    body = "  have hb : b * h = 195 := by sorry\n  nlinarith\n  have hv : v = 1 / 3 * 195 := by sorry\n  sorry"
    reply = parse_reply(lean.command(THEOREM + body, None))
    assert len(reply.sorries) == 1 and len(reply.errors()) == 1  # nothing after the failed step runs


def test_unsolved_goals_span_from_by_to_the_end_of_the_block():
    lean = simulated_lean()
    reply = parse_reply(lean.command(THEOREM + "  have hb : b * h = 195 := by sorry", None))
    (error,) = reply.errors()
    assert error.data == "unsolved goals\n" + HYPS + "\nhb : b * h = 195\n⊢ v = 65"
    assert (error.pos.line, error.pos.column) == (2, THEOREM.split("\n")[1].index("by"))
    assert error.end_pos is not None and (error.end_pos.line, error.end_pos.column) == (3, 35)


def test_nested_haves_cdots_and_shadowed_names():
    shadowed = "p q : Prop\nhp✝ : p\nhq : q\nhp : p\n⊢ "
    lean = SimulatedLean(Scenario.model_validate({"theorems": [{"name": "t", "steps": [
        {"from": [shadowed + "p ∧ q"], "tactic": "constructor",
         "to": ["case left\n" + shadowed + "p", "case right\n" + shadowed + "q"]},
        {"from": ["case left\n" + shadowed + "p"], "tactic": "exact hp", "to": []},
    ]}]}))
    text = ("theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n"
            "  have hp : p := by\n    have inner : q := by sorry\n    sorry\n"
            "  constructor\n  · exact hp\n  · sorry")
    reply = parse_reply(lean.command(text, None))
    assert not reply.has_errors()
    assert [s.goal for s in reply.sorries] == [
        "p q : Prop\nhp : p\nhq : q\n⊢ q",                 # the nested have: the outer have's context
        "p q : Prop\nhp : p\nhq : q\ninner : q\n⊢ p",
        "case right\n" + shadowed + "q",                     # the earlier `hp` is shadowed
    ]
    unclosed = parse_reply(lean.command(text.replace("  · exact hp", "  · skip"), None))
    assert "no scenario step" in unclosed.errors()[0].data and len(unclosed.sorries) == 2  # `·` failed: block ends


def test_tactic_mode_have_runs_the_same_rules():
    lean = simulated_lean()
    state = lean.command(THEOREM + "  sorry", None)["sorries"][0]["proofState"]
    reply = lean.tactic("have hb : b * h = 195 := by\n  rw [h₂, h₃]\n  norm_num", state)
    assert reply == {"proofStatus": "Incomplete: open goals remain", "proofState": state + 1,
                     "goals": [HYPS + "\nhb : b * h = 195\n⊢ v = 65"]}
    failing = lean.tactic("have hb : b * h = 195 := by simp", state)
    assert failing["messages"][0]["pos"] == {"line": 0, "column": 0}
    assert failing["goals"] == [HYPS + "\nhb : b * h = 195\n⊢ v = 65"]


def test_a_typeless_have_and_a_line_left_of_the_block_are_refused_by_name():
    lean = simulated_lean()
    typeless = parse_reply(lean.command(THEOREM + "  have hb := by sorry\n  sorry", None))
    assert "needs a stated type" in typeless.errors()[0].data
    layout = parse_reply(lean.command(THEOREM + "    have hb : b * h = 195 := by sorry\n  sorry", None))
    assert "layout rule" in layout.errors()[0].data


def test_bodies_without_have_keep_the_old_scenario_behaviour():
    lean = simulated_lean()
    legacy = parse_reply(lean.command(THEOREM + "  nlinarith [sorry, sorry]", None))
    assert [s.goal for s in legacy.sorries] == [HYPS + "\n⊢ v = 65"] * 2  # every sorry: the whole goal
    scenario = Scenario.model_validate({"theorems": [{"name": "mathd_algebra_478", "proofs": [
        {"body": "have hx : v = 65 := by magic\n  exact hx"}]}]})
    accepted = SimulatedLean(scenario).command(THEOREM + "  have hx : v = 65 := by magic\n  exact hx", None)
    assert accepted == {"env": 0}  # a `proofs` entry still decides first


def test_the_simulated_repl_process_answers_sketches():
    command = {"cmd": THEOREM + "  have hb : b * h = 195 := by sorry\n  sorry"}
    done = subprocess.run(simulated_repl_command(SCENARIO), input=json.dumps(command) + "\n\n",
                          capture_output=True, text=True, timeout=60, check=True)
    reply = parse_reply(json.loads(done.stdout))
    assert [s.goal for s in reply.sorries] == [HYPS + "\n⊢ b * h = 195", HYPS + "\nhb : b * h = 195\n⊢ v = 65"]


def test_every_scenario_file_in_the_repository_still_loads():
    files = sorted((Path(__file__).parent / "data").rglob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert isinstance(Scenario.load(path), Scenario), path
