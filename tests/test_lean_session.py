"""`LeanSession`: typed, once-classified answers from the real pool over the simulated REPL,
sticky trees, re-materialisation, and the scripted stand-in behaving the same way."""

from __future__ import annotations

import pytest
from bfs_helpers import P_ADD, P_CHAIN, R, sim_pool, table_env

from prover.errors import LeanError
from prover.lean_env.results import OutcomeKind, ReplResult
from prover.lean_env.protocol import ProofStepResponse
from prover.lean_env.session import GoalState, PoolLeanSession, StateOrigin, StepKind, classify_step

ORIGIN = StateOrigin.theorem(P_ADD)


async def test_command_sorries_come_back_as_holes_with_ready_states() -> None:
    async with sim_pool() as pool:
        session = PoolLeanSession(pool)
        outcome = await session.command("", ORIGIN.code)
        assert outcome.kind is OutcomeKind.INCOMPLETE and not outcome.errors and not outcome.infrastructure
        assert [h.goal for h in outcome.sorries] == [R]
        hole = outcome.sorries[0]
        assert hole.pos is not None and hole.state is not None and hole.state.origin == ORIGIN
        batch = await session.apply(hole.state, ["rw [Nat.add_zero]", "rfl"], chain=True)
        assert [o.kind for o in batch.outcomes] == [StepKind.OK, StepKind.PROVED]
        assert batch.outcomes[0].state is not None and batch.outcomes[0].state.path == ("rw [Nat.add_zero]",)
        assert batch.lean_calls == 2 and batch.rematerialisations == 0  # the hole's state was used as is


async def test_start_apply_and_classification_of_each_outcome() -> None:
    async with sim_pool() as pool:
        session = PoolLeanSession(pool)
        start = await session.start(ORIGIN)
        assert start.state is not None and start.state.goals == (R,) and start.lean_calls == 1
        siblings = await session.apply(start.state, ["exact foo", "rw [Nat.add_zero]", "simp only [Nat.add_zero]"])
        kinds = [o.kind for o in siblings.outcomes]
        assert kinds == [StepKind.ERROR, StepKind.OK, StepKind.OK]
        assert "unknown identifier 'foo'" in siblings.outcomes[0].error
        assert siblings.outcomes[1].goals == ("x : Nat\n⊢ x = x",)
        bad = await session.start(StateOrigin("", "theorem nope : 1 = 2 := by sorry", sorry_index=3))
        assert bad.state is None and not bad.infrastructure and "no proof state for sorry 3" in bad.error


async def test_a_state_is_rebuilt_on_another_session_from_its_origin_and_path() -> None:
    async with sim_pool() as pool:
        start = await PoolLeanSession(pool).start(StateOrigin.theorem(P_CHAIN))
        assert start.state is not None
        handed_over = start.state.at(("step_a", "step_b"))  # e.g. sent to another agent
        other = PoolLeanSession(pool)
        batch = await other.apply(handed_over, ["step_c", "close"], chain=True)
        assert [o.kind for o in batch.outcomes] == [StepKind.OK, StepKind.PROVED]
        assert batch.rematerialisations == 1 and batch.lean_calls == 1 + 2 + 2  # start, replay, steps


async def test_trees_of_one_problem_do_not_share_a_worker() -> None:
    async with sim_pool(workers=2) as pool:
        session = PoolLeanSession(pool)
        first, second = await session.start(ORIGIN), await session.start(ORIGIN)
        assert first.state is not None and second.state is not None and first.state.tree != second.state.tree
        await session.release(first.state.tree)
        again = await session.apply(first.state, ["rw [Nat.add_zero]"])  # released: rebuilt, not lost
        assert again.outcomes[0].kind is StepKind.OK and again.rematerialisations == 1


def test_only_completed_with_no_goals_is_proved() -> None:
    state = GoalState(ORIGIN, "t")

    def reply(goals: list[str], status: str | None) -> ReplResult:
        response = ProofStepResponse(proofState=1, goals=goals, proofStatus=status)
        return ReplResult(kind=OutcomeKind.OK, response=response)

    assert classify_step("t", reply([], "Completed"), state)[0].kind is StepKind.PROVED
    assert classify_step("t", reply([], None), state)[0].kind is StepKind.INCOMPLETE  # old REPL, no status
    assert classify_step("t", reply([], "Incomplete: open goals remain"), state)[0].kind is StepKind.INCOMPLETE
    lean_error = ReplResult(kind=OutcomeKind.LEAN_ERROR, detail="type mismatch")
    assert classify_step("t", lean_error, state)[0].kind is StepKind.ERROR
    crashed = ReplResult(kind=OutcomeKind.CRASH, detail="REPL exited")
    assert classify_step("t", crashed, state)[0].kind is StepKind.CRASH
    no_handle = reply(["⊢ P"], "Incomplete: open goals remain")
    assert classify_step("t", no_handle, state)[0].kind is StepKind.INFRASTRUCTURE  # no proof-state handle


async def test_the_scripted_session_tracks_trees_like_the_pool_session() -> None:
    session = table_env(["⊢ P"], {("⊢ P", "go"): ["⊢ Q"], ("⊢ Q", "done"): "QED"}, seconds_per_call=0.5)
    start = await session.start(StateOrigin("", "theorem t : P := by sorry"))
    assert start.state is not None
    batch = await session.apply(start.state, ["go", "done"], chain=True)
    assert [o.kind for o in batch.outcomes] == [StepKind.OK, StepKind.PROVED]
    assert (batch.lean_calls, batch.lean_seconds) == (2, 1.0)
    await session.release(start.state.tree)
    with pytest.raises(LeanError, match="unknown state"):
        await session.apply(start.state, ["go"])
