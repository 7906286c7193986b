"""WholeProofStrategy: chunking + seeds, dedupe, extraction failure, early stop, self-correction
rounds (feedback content), resume with `done`, sampler failure."""

from __future__ import annotations

import asyncio

import pytest
from context_helpers import make_ctx
from whole_proof_helpers import FakeChecker, FakeSampler, body_of, lean_block

from prover.config import ProverConfig
from prover.errors import ConfigError, SamplerUnavailable
from prover.search.whole_proof import (
    WholeProofStrategy,
    expected_attempts_done,
    normalise_proof,
)
from prover.types import Attempt, CheckStatus, GenRequest, Problem

PROBLEM = Problem(name="p_add", formal_statement="theorem p_add (x : Nat) : x + 0 = x := by", benchmark="t")


def make_config(**whole_proof: object) -> ProverConfig:
    overrides = {("eval" if k == "passes" else "whole_proof") + f".{k}": v for k, v in whole_proof.items()}
    overrides["sampler.prompt_format"] = "goedel-v2"
    return ProverConfig.load(None, user_defaults=False).with_overrides(overrides)


async def run(config: ProverConfig, sampler: FakeSampler, checker: FakeChecker, done=None) -> list[Attempt]:
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    ctx = make_ctx(config, sampler, checker)
    await WholeProofStrategy().prove(PROBLEM, ctx, record, done)
    return recorded


def by_index(bodies: list[str]):
    """Responder: sample i of the budget gets bodies[i] (chunk offset from the seed order)."""
    calls: list[int] = []

    def respond(request: GenRequest) -> list[str]:
        start = len(calls) and sum(calls)
        calls.append(request.n)
        return [lean_block(PROBLEM, b) if b is not None else "I give up." for b in bodies[start : start + request.n]]

    return respond


async def test_chunks_requests_and_derives_reproducible_seeds() -> None:
    config = make_config(passes=10, chunk=4)
    sampler = FakeSampler(lambda r: [lean_block(PROBLEM, f"tac{i}") for i in range(r.n)])
    attempts = await run(config, sampler, FakeChecker(set()))
    assert sorted(r.n for r in sampler.requests) == [2, 4, 4]
    assert {r.tag for r in sampler.requests} == {"p_add"}
    seeds = [r.seed for r in sampler.requests]
    assert len(set(seeds)) == 3
    again = FakeSampler(lambda r: [lean_block(PROBLEM, f"tac{i}") for i in range(r.n)])
    await run(config, again, FakeChecker(set()))
    assert sorted(seeds) == sorted(r.seed for r in again.requests)
    other_seed = FakeSampler(lambda r: [lean_block(PROBLEM, "x")] * r.n)
    await run(config.with_overrides({"sampler.seed": 1}), other_seed, FakeChecker(set()))
    assert set(seeds).isdisjoint(r.seed for r in other_seed.requests)
    assert sorted(a.sample_index for a in attempts) == list(range(10))
    assert all(a.round == 0 and a.prompt_tokens in (0, 7) for a in attempts)
    assert sum(a.prompt_tokens for a in attempts) == 7 * 3  # prompt counted once per request


async def test_dedupes_identical_proofs_and_copies_verdicts() -> None:
    config = make_config(passes=6, chunk=6)
    bodies = ["simp", "omega", "simp", "simp  \n\n", "rfl", "omega"]
    checker = FakeChecker({"omega"})
    attempts = await run(config, FakeSampler(by_index(bodies)), checker)
    assert len(checker.checked) == 3  # simp, omega, rfl
    by_idx = {a.sample_index: a for a in attempts}
    assert [by_idx[i].duplicate_of for i in range(6)] == [None, None, 0, 0, None, 1]
    assert by_idx[5].verdict.proved and by_idx[5].check_seconds == 0.0
    assert by_idx[3].verdict == by_idx[0].verdict
    assert normalise_proof("a\n  b  \n\n") == normalise_proof("a\n  b")
    # indentation is syntax, and whitespace inside string literals is data: never merged
    assert normalise_proof("  a\n    b") != normalise_proof("a\n  b")
    assert normalise_proof('a\n  "x\n\ny"') != normalise_proof('a\n  "x\ny"')


async def test_extraction_failure_is_recorded_without_checking() -> None:
    config = make_config(passes=3, chunk=3)
    checker = FakeChecker({"rfl"})
    attempts = await run(config, FakeSampler(by_index([None, "rfl", None])), checker)
    failed = [a for a in attempts if a.proof is None]
    assert len(failed) == 2 and len(checker.checked) == 1
    assert all(a.verdict.status is CheckStatus.FAILED and a.verdict.rule == "no_proof_extracted" for a in failed)
    assert all(a.completion == "I give up." for a in failed)


async def test_early_stop_cancels_the_rest_of_the_budget() -> None:
    config = make_config(passes=8, chunk=2, early_stop=True)
    # chunk 0 answers at once with a proof; later chunks are slow and must be abandoned.
    sampler = FakeSampler(
        lambda r: [lean_block(PROBLEM, "decide")] * r.n,
        latency=lambda r: 0.0 if r.seed == min_seed(config) else 5.0,
    )
    attempts = await asyncio.wait_for(run(config, sampler, FakeChecker({"decide"})), timeout=3)
    assert attempts and any(a.verdict.proved for a in attempts)
    assert len(attempts) <= 2
    assert sampler.cancelled == 3
    # without early stop the whole budget is spent
    full = await run(make_config(passes=8, chunk=2), FakeSampler(lambda r: [lean_block(PROBLEM, "decide")] * r.n),
                     FakeChecker({"decide"}))
    assert len(full) == 8


def min_seed(config: ProverConfig) -> int:
    from prover.search.whole_proof import derive_seed

    return derive_seed(config.sampler.seed, PROBLEM.name, 0, 0)


async def test_self_correction_rounds_send_errors_back() -> None:
    config = make_config(passes=2, chunk=2, rounds=2)

    def respond(request: GenRequest) -> list[str]:
        if request.tag == "p_add":
            return [lean_block(PROBLEM, "simp_bad"), lean_block(PROBLEM, "linarith_bad")][: request.n]
        assert request.n == 1
        turns = len(request.messages or ())
        last = request.messages[-1].content
        if "simp_bad" in request.messages[-2].content:
            return [lean_block(PROBLEM, "omega")]  # chain 0 is repaired in round 1
        return [lean_block(PROBLEM, f"still_bad_{turns}")] if "still_bad" not in last else ["no code"]

    sampler = FakeSampler(respond)
    attempts = await run(config, sampler, FakeChecker({"omega"}))
    keys = sorted((a.sample_index, a.round) for a in attempts)
    assert keys == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]  # chain 0 stops once proved
    proved = [a for a in attempts if a.verdict.proved]
    assert [(a.sample_index, a.round) for a in proved] == [(0, 1)]
    corrections = [r for r in sampler.requests if r.tag != "p_add"]
    assert sorted(r.tag for r in corrections) == ["p_add#round=1", "p_add#round=1", "p_add#round=2"]
    round2 = next(r for r in corrections if r.tag.endswith("=2"))
    roles = [m.role for m in round2.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # full chain history
    feedback = round2.messages[2].content
    assert "unsolved goals" in feedback
    # Goedel-style error marking in the code context: line 2, columns 2 to the end of the tactic
    assert "\n  <error>linarith_bad</error>\n" in feedback
    assert "still_bad_3" in round2.messages[3].content
    assert len({r.seed for r in corrections}) == 3


async def test_rounds_with_completion_format_fail_before_sampling() -> None:
    config = make_config(rounds=1).with_overrides({"sampler.prompt_format": "deepseek-v1.5"})
    with pytest.raises(ConfigError, match="self-correction"):
        WholeProofStrategy().validate(config)


async def test_resume_skips_recorded_attempts_and_reuses_verdicts() -> None:
    config = make_config(passes=4, chunk=2, rounds=1)
    bodies = ["bad1", "bad2", "omega", "bad1"]

    def respond(request: GenRequest) -> list[str]:
        if request.tag == "p_add":
            start = 0 if request.seed == min_seed(config) else 2
            return [lean_block(PROBLEM, b) for b in bodies[start : start + request.n]]
        return [lean_block(PROBLEM, "fixed")]

    first = await run(config, FakeSampler(respond), FakeChecker({"omega", "fixed"}))
    assert len(first) == 7  # 4 first tries + corrections of the 3 failures
    full_done = {(a.round, a.sample_index): a for a in first}
    assert expected_attempts_done(PROBLEM, config, full_done)
    untouched = FakeSampler(respond)
    assert await run(config, untouched, FakeChecker(set()), done=full_done) == []
    assert untouched.requests == []

    # Lose chain 3 entirely and chain 1's correction: only those are redone.
    partial = {k: v for k, v in full_done.items() if k not in {(0, 3), (1, 3), (1, 1)}}
    assert not expected_attempts_done(PROBLEM, config, partial)
    checker = FakeChecker({"omega", "fixed"})
    sampler = FakeSampler(respond)
    redone = await run(config, sampler, checker, done=partial)
    assert sorted(a.key for a in redone) == [("p_add", 0, 3), ("p_add", 1, 1), ("p_add", 1, 3)]
    again = {a.key: a for a in redone}
    assert again[("p_add", 0, 3)].duplicate_of == 0  # deduped against a recorded verdict
    assert all(body_of(proof) != "bad1" for proof in checker.checked)
    # chunk 1 is requested again with the same seed so sample 3 is the same sample as before
    assert sorted(r.seed for r in sampler.requests if r.tag == "p_add") == [
        r for r in sorted({s.extra["seed"] for s in first if s.round == 0}) if r != min_seed(config)
    ]


async def test_early_stop_with_a_recorded_proof_does_nothing() -> None:
    config = make_config(passes=4, chunk=2, early_stop=True)
    first = await run(config, FakeSampler(lambda r: [lean_block(PROBLEM, "rfl")] * r.n), FakeChecker({"rfl"}))
    done = {(a.round, a.sample_index): a for a in first}
    sampler = FakeSampler(lambda r: [lean_block(PROBLEM, "rfl")] * r.n)
    assert await run(config, sampler, FakeChecker({"rfl"}), done=done) == []
    assert sampler.requests == []


async def test_sampler_unavailable_propagates_and_stops_the_problem() -> None:
    config = make_config(passes=4, chunk=1)
    calls = 0

    def respond(request: GenRequest) -> list[str]:
        nonlocal calls
        calls += 1
        raise SamplerUnavailable("server at http://127.0.0.1:9 is unreachable")

    with pytest.raises(SamplerUnavailable, match="unreachable"):
        await run(config, FakeSampler(respond), FakeChecker(set()))


async def test_generation_budget_defaults_to_the_prompt_formats_own() -> None:
    sampler = FakeSampler(lambda request: [lean_block(PROBLEM, "simp")] * request.n)
    await run(make_config(passes=1), sampler, FakeChecker({"simp"}))  # goedel-v2: long CoT
    assert sampler.requests[-1].max_tokens == 32768
    config = make_config(passes=1).with_overrides({"sampler.prompt_format": "deepseek-v1.5"})
    sampler = FakeSampler(lambda request: ["  simp\n```"] * request.n)
    await run(config, sampler, FakeChecker({"simp"}))
    assert sampler.requests[-1].max_tokens == 2048
    sampler = FakeSampler(lambda request: [lean_block(PROBLEM, "simp")] * request.n)
    await run(make_config(passes=1).with_overrides({"sampler.max_tokens": 1000}), sampler, FakeChecker({"simp"}))
    assert sampler.requests[-1].max_tokens == 1000  # an explicit setting wins


async def test_feedback_shows_the_model_familys_own_number_of_errors() -> None:
    from prover.types import LeanMessage, Pos, Verdict

    class ManyErrors(FakeChecker):
        async def check(self, problem, proof):  # ten errors, like a badly broken proof
            messages = tuple(
                LeanMessage(severity="error", pos=Pos(line=2, column=2), data=f"error number {i}") for i in range(10)
            )
            return Verdict(status=CheckStatus.FAILED, rule="lean_error", messages=messages, code=proof)

    for overrides, shown in (({}, 8), ({"whole_proof.max_errors_in_feedback": 2}, 2)):
        sampler = FakeSampler(lambda request: [lean_block(PROBLEM, "bad")] * request.n)
        config = make_config(passes=1, rounds=1).with_overrides(overrides)
        await run(config, sampler, ManyErrors(set()))
        turn = sampler.requests[-1].messages[-1].content
        assert sum(f"error number {i}" in turn for i in range(10)) == shown  # goedel-v2's own cap is 8
