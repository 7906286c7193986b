"""Sub-provers, dispatch, records and hole pairing with in-process stand-ins (no REPL process).

`ScriptedLeanSession` stands in for Lean (every hole's state has the goal the test gives), the
scripted sampler for the prover model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from context_helpers import make_ctx

from prover.config import ProverConfig
from prover.lean_env.checker import SketchCheck
from prover.lean_env.protocol import Sorry
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import StepKind
from prover.llm.scripted import ScriptedSampler
from prover.planner.dispatch import SubgoalDispatcher, run_together
from prover.planner.holes import HolesRefused, hole_goals, lemma_name
from prover.planner.records import OUTCOME, EpisodeLog
from prover.planner.sketch import extract_sketch
from prover.planner.strategy import PlannerStrategy
from prover.planner.subgoal import SubgoalJob, SubgoalOutcome
from prover.planner.subprovers import extract_tactics, prove_subgoal
from prover.search.proof_cache import MemoryProofCache
from prover.types import Attempt, CheckStatus, Pos, Problem, Verdict

ELIDED = "f : ℕ → ℕ\nh : ∀ (n : ℕ), f n = 0\n⊢ f ⋯ = 0"
"""A goal printed with an elided subterm: its text does not say what the goal is, so it cannot be a
lemma; it is proved from its proof state in tactic mode."""
PROBLEM = Problem(name="p", formal_statement="theorem p (f : ℕ → ℕ) (h : ∀ n, f n = 0) : f (f 0) = 0 := by")


def _session(good: str = "simp [h]") -> ScriptedLeanSession:
    def step(goals: str, tactic: str) -> Transition:
        if tactic == good:
            return Transition(StepKind.PROVED)
        return Transition(StepKind.ERROR, error=f"tactic '{tactic}' failed")

    return ScriptedLeanSession((ELIDED,), step)


def _job(**fields: object) -> SubgoalJob:
    base = {"problem": PROBLEM, "step": "p0.g0", "name": "hf", "lemma_name": "p_hf", "goal": ELIDED,
            "origin_code": "theorem p ... := by\n  have hf : f (f 0) = 0 := by sorry\n  exact hf", "sorry_index": 0,
            "strategy": "whole_proof", "passes": 3, "seed": 7}
    return SubgoalJob(**{**base, **fields})  # type: ignore[arg-type]


def _sampler(*texts: str) -> ScriptedSampler:
    return ScriptedSampler.from_records([{"name": "p_hf", "completions": list(texts)}])


def _config() -> ProverConfig:
    return ProverConfig.load(user_defaults=False).with_overrides({"whole_proof.chunk": 1})


async def test_a_goal_that_is_no_lemma_is_proved_in_tactic_mode_then_served_from_the_cache() -> None:
    sampler = _sampler("```lean4\nnlinarith\n```", "Done:\n```lean4\ntheorem p_hf : f (f 0) = 0 := by\n  simp [h]\n```")
    cache = MemoryProofCache()
    ctx = make_ctx(_config(), sampler, lean=_session(), proof_cache=cache)
    outcome = await prove_subgoal(PlannerStrategy(), ctx, _job())
    assert outcome.proved and (outcome.method, outcome.proof) == ("tactic", "simp [h]")
    assert outcome.lemma is None and "elided" in outcome.detail
    assert [a.verdict.rule for a in outcome.attempts] == ["lean_error", "subgoal:tactic_mode"]
    assert sampler.stats.requests == 2  # chunk 1: it stopped at the first proof

    again = await prove_subgoal(PlannerStrategy(), ctx, _job(step="p1.g0"))
    assert again.proved and again.cache_hit and again.proof == "simp [h]"
    assert sampler.stats.requests == 2  # no sampling for a goal the cache knows
    assert (await cache.stats()).proof_hits == 1


async def test_a_cached_proof_lean_rejects_in_the_hole_is_retracted_and_the_hole_is_sampled() -> None:
    cache = MemoryProofCache()
    job = _job()
    await cache.publish_proof(job.cache_key, ("omega",))
    ctx = make_ctx(_config(), _sampler("```lean4\nsimp [h]\n```"), lean=_session(), proof_cache=cache)
    outcome = await prove_subgoal(PlannerStrategy(), ctx, job)
    assert outcome.proved and not outcome.cache_hit and outcome.method == "tactic"
    assert (await cache.lookup(job.cache_key)).tactics == ("simp [h]",)  # the wrong entry is gone
    assert (await cache.stats()).retracted == 1


async def test_a_hole_nothing_proves_is_a_failed_outcome_with_every_sample_recorded() -> None:
    ctx = make_ctx(_config(), _sampler("no block here", "```lean4\nomega\n```"), lean=_session(),
                   proof_cache=MemoryProofCache())
    outcome = await prove_subgoal(PlannerStrategy(), ctx, _job())
    assert not outcome.proved and not outcome.infrastructure and "no tactic proof in 3 sample(s)" in outcome.detail
    assert [a.verdict.rule for a in outcome.attempts] == ["no_proof_extracted", "lean_error", "no_proof_extracted"]
    assert [a.sample_index for a in outcome.attempts] == [0, 1, 2]


async def test_identical_goals_in_flight_are_sampled_once() -> None:
    """Two problems' holes with one goal state: the second job waits and is served by the cache."""
    sampler = _sampler("```lean4\nsimp [h]\n```")
    ctx = make_ctx(_config(), sampler, lean=_session(), proof_cache=MemoryProofCache())
    dispatcher = SubgoalDispatcher()
    first, second = await run_together([dispatcher.run(PlannerStrategy(), ctx, _job()),
                                        dispatcher.run(PlannerStrategy(), ctx, _job(step="p0.g1"))])
    assert first.method == "tactic" and second.method == "cache"
    assert sampler.stats.requests == 1


def test_tactic_blocks_are_read_from_the_last_lean_block() -> None:
    assert extract_tactics("```lean4\nintro x\n  simp\n```") == "intro x\n  simp"
    assert extract_tactics("```lean4\ntheorem t : True := by\n  trivial\n```") == "trivial"
    assert extract_tactics("<think>unfinished") is None
    assert extract_tactics("just words") is None


async def test_a_jobs_attempts_get_their_own_block_of_numbers_even_when_jobs_finish_together() -> None:
    written: list[Attempt] = []

    async def slow_record(attempt: Attempt) -> None:
        await asyncio.sleep(0.01)
        written.append(attempt)

    recorded = [Attempt(problem="p", kind="subgoal", parent=0, sample_index=4, verdict=_failed(), extra={"step": "x"})]
    log = EpisodeLog(PROBLEM, 0, "planner", recorded, slow_record)

    def outcome(step: str, n: int) -> SubgoalOutcome:
        attempts = tuple(Attempt(problem="p", sample_index=i, verdict=_failed()) for i in range(n))
        return SubgoalOutcome(step=step, goal="⊢ True", proved=False, attempts=attempts)

    await asyncio.gather(log.add_job(outcome("a", 3)), log.add_job(outcome("b", 2)))
    indices = sorted(a.sample_index for a in written)
    assert indices == [5, 6, 7, 8, 9]  # after the recorded 4, no two attempts share a slot
    closing = [a for a in written if OUTCOME in a.extra]
    assert sorted(a.extra["step"] for a in closing) == ["a", "b"] and all(a.parent == 0 for a in written)
    assert log.outcome("a") is not None and log.outcome("x") is None


def _failed() -> Verdict:
    return Verdict(status=CheckStatus.FAILED, rule="lean_error")


def test_holes_lean_reports_no_goal_for_send_the_sketch_back(datasets_dir: Path) -> None:
    from planner_helpers import minif2f_problem

    problem = minif2f_problem(datasets_dir)
    body = "  have hb : b * h = 195 := by sorry\n  nlinarith [sorry, hb]"
    sketch = extract_sketch(problem, f"```lean4\n{problem.formal_statement}\n{body}\n```")
    first = sketch.holes[0]
    reported = Sorry(goal="b h v : ℝ\n⊢ b * h = 195", pos=first.pos, end_pos=first.end_pos)
    check = SketchCheck(accepted=True, verdict=_failed(), command=sketch.command, sent=sketch.command,
                        sorries=(reported,))
    refused = hole_goals(sketch, check)
    assert isinstance(refused, HolesRefused) and "no goal for the `sorry` at line 4" in refused.detail
    twice = extract_sketch(problem, f"```lean4\n{problem.formal_statement}\n  have hb : b * h = 195 := by sorry\n"
                           "  have hb' : b * h = 195 := by sorry\n  norm_num\n```")
    same = [Sorry(goal="b h v : ℝ\n⊢ b * h = 195", pos=h.pos, end_pos=h.end_pos) for h in twice.holes]
    goals = hole_goals(twice, check.model_copy(update={"sorries": tuple(same), "command": twice.command}))
    assert not isinstance(goals, HolesRefused)
    assert len(goals) == 1 and goals[0].positions == tuple(h.pos for h in twice.holes) and goals[0].name == "hb"
    assert goals[0].positions[1] == Pos(line=4, column=31)
    assert lemma_name("Nat.«my thm»", "hb") == "subgoal_hb" and lemma_name("mathd_1", "hb") == "mathd_1_hb"
