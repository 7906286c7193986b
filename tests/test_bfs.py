"""Best-first search on the simulated REPL (real LeanPool) with scripted tactic suggestions."""

from __future__ import annotations

import asyncio

import pytest
from bfs_helpers import (
    C0,
    C1,
    P_ADD,
    P_CHAIN,
    P_LONG,
    P_TACTIC_ONLY,
    P_TRAP,
    SUGGESTIONS,
    R,
    T,
    TableSampler,
    VerdictChecker,
    sim_pool,
    table_env,
)

from context_helpers import make_ctx

from prover.config import ProverConfig
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import PoolLeanSession, StateOrigin, StepKind
from prover.search.base import StrategyContext
from prover.search.bfs import (
    BestFirstSearch,
    BestFirstStrategy,
    BfsConfig,
    _unproved_verdict,
    assemble_proof,
    run_search,
)
from prover.search.proof_cache import CacheKey, MemoryProofCache, SqliteProofCache
from prover.search.tree import EdgeOutcome, NodeStatus
from prover.llm.base import Sampler
from prover.types import Attempt, CheckStatus, GenRequest, GenResult


def _search(problem, **bfs) -> BestFirstSearch:
    return BestFirstSearch(problem, config=BfsConfig(**{"width": 8, "time_budget": 30, **bfs}))


async def test_finds_the_intended_proof_merges_states_and_filters_tactics() -> None:
    sampler = TableSampler(SUGGESTIONS)
    async with sim_pool() as pool:
        result = await run_search(_search(P_ADD), lean=PoolLeanSession(pool), sampler=sampler)
    assert result.stop_reason == "proved"
    assert result.tactics == ["rw [Nat.add_zero]", "rfl"]
    assert result.dropped == {"unparsed": 0, "banned": 2, "duplicate": 1}
    tree = result.tree
    assert tree.counts()["states"] == 2  # rw and simp reach the same state: one node
    root = tree.root
    edges = {d["tactic"]: d for _, _, d in tree.graph.out_edges(root, data=True)}
    assert edges["rw [Nat.add_zero]"]["alt_tactics"] == [["simp only [Nat.add_zero]", -0.3]]
    assert edges["exact foo"]["outcome"] is EdgeOutcome.ERROR
    assert "unknown identifier 'foo'" in edges["exact foo"]["error"]
    assert result.expansions == 2 and len(sampler.prompts) == 2
    assert result.lean_calls == 1 + 3 + 1  # start, three root tactics, rfl


async def test_error_reply_with_no_goals_is_a_failed_edge() -> None:
    async with sim_pool() as pool:
        result = await run_search(_search(P_TRAP), lean=PoolLeanSession(pool), sampler=TableSampler(SUGGESTIONS))
        assert result.proved and result.tactics == ["subst h", "rfl"]
        trap = [r for r in result.tree.step_records() if r.tactic == "omega_trap"]
        assert [(r.outcome, r.next_state, r.on_proof_path) for r in trap] == [("error", None, False)]

        only_trap = TableSampler({T: [("omega_trap", -0.01)]})
        result = await run_search(_search(P_TRAP), lean=PoolLeanSession(pool), sampler=only_trap)
    assert result.stop_reason == "exhausted" and result.tactics is None
    assert result.tree.status(result.tree.root) is NodeStatus.FAILED


async def test_budget_max_expansions() -> None:
    sampler = TableSampler(SUGGESTIONS)
    async with sim_pool() as pool:
        result = await run_search(_search(P_LONG, max_expansions=3), lean=PoolLeanSession(pool), sampler=sampler)
    assert result.stop_reason == "max_expansions"
    assert result.expansions == 3 and len(sampler.prompts) == 3


async def test_budget_max_depth() -> None:
    async with sim_pool() as pool:
        result = await run_search(_search(P_LONG, max_depth=3), lean=PoolLeanSession(pool),
                                  sampler=TableSampler(SUGGESTIONS))
    assert result.stop_reason == "exhausted"
    nodes = result.tree.graph.nodes
    assert max(d for n, d in nodes(data="depth") if d is not None and nodes[n]["expanded"]) == 2
    assert result.tree.status(result.tree.root) is NodeStatus.FAILED
    assert not nodes[result.tree.root]["definitive"]  # a depth cut is not a dead end


async def test_budget_wall_time() -> None:
    async with sim_pool("slow.yaml") as pool:
        result = await run_search(_search(P_LONG, time_budget=0.4), lean=PoolLeanSession(pool),
                                  sampler=TableSampler(SUGGESTIONS))
    assert result.stop_reason == "time_budget"
    assert result.expansions >= 1
    assert 0.4 <= result.wall_seconds < 0.4 + 0.3  # the last Lean call is cut by the remaining time


async def test_budget_lean_time() -> None:
    # Lean time is charged, not slept (0.05 s per call), so the bound does not depend on machine load
    transitions = {(f"⊢ L{k}", "next"): [f"⊢ L{k + 1}"] for k in range(8)}
    transitions |= {(f"⊢ L{k}", "side"): [f"⊢ S{k}"] for k in range(8)}
    env = table_env(["⊢ L0"], transitions, seconds_per_call=0.05)
    result = await run_search(_search(P_LONG, lean_time_budget=0.3), lean=env, sampler=TableSampler(SUGGESTIONS))
    assert result.stop_reason == "lean_time_budget"
    assert 0.3 <= result.lean_seconds <= 0.3 + 0.1 + 1e-9  # at most one more expansion (2 tactics) past it


async def test_a_sampler_that_never_answers_ends_the_search_at_its_time_budget() -> None:
    class Silent(Sampler):
        async def generate(self, request: GenRequest) -> GenResult:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    result = await run_search(_search(P_LONG, time_budget=0.3), lean=table_env(["⊢ L0"], {}), sampler=Silent())
    assert result.stop_reason == "time_budget" and result.expansions == 0 and result.lean_calls == 1


async def test_survives_a_worker_crash_mid_search() -> None:
    table = {**SUGGESTIONS, C1: [("crash_me", -0.01), ("detour", -0.05), ("step_b", -0.2)]}
    async with sim_pool() as pool:
        result = await run_search(_search(P_CHAIN), lean=PoolLeanSession(pool), sampler=TableSampler(table))
        crashes = pool.stats().crashes
    assert result.proved and result.tactics == ["step_a", "step_b", "step_c", "close"]
    assert crashes >= 1 and result.rematerialisations >= 1
    outcomes = {d["tactic"]: d["outcome"] for _, _, d in result.tree.graph.edges(data=True)}
    assert outcomes["crash_me"] is EdgeOutcome.CRASH and outcomes["detour"] is EdgeOutcome.OK


async def test_survives_repeated_restarts() -> None:
    async with sim_pool("crashy.yaml") as pool:
        result = await run_search(_search(P_CHAIN), lean=PoolLeanSession(pool), sampler=TableSampler(SUGGESTIONS))
        restarts = pool.stats().restarts
    assert result.proved and result.tactics == ["step_a", "step_b", "step_c", "close"]
    assert restarts >= 1 and result.rematerialisations >= 1


async def test_cache_makes_a_second_attempt_cheaper(tmp_path) -> None:
    cache = SqliteProofCache(tmp_path / "proofs.sqlite")
    async with sim_pool() as pool:
        first = await run_search(_search(P_CHAIN), lean=PoolLeanSession(pool), sampler=TableSampler(SUGGESTIONS),
                                 cache=cache)
        second = await run_search(_search(P_CHAIN), lean=PoolLeanSession(pool), sampler=TableSampler(SUGGESTIONS),
                                  cache=cache)
    assert first.proved and second.proved and first.tactics == second.tactics
    assert second.lean_calls < first.lean_calls
    assert (second.expansions, second.cache_proof_hits) == (0, 1)
    stats = await cache.stats()
    assert stats.proofs_published >= 4 and stats.proof_hits == 1
    await cache.close()


async def test_a_wrong_cache_entry_is_not_trusted() -> None:
    cache = MemoryProofCache()
    await cache.publish_proof(CacheKey.of("", [C0]), ["step_a", "close"])  # does not close C0
    async with sim_pool() as pool:
        result = await run_search(_search(P_CHAIN), lean=PoolLeanSession(pool), sampler=TableSampler(SUGGESTIONS),
                                  cache=cache)
    assert result.proved and result.cache_stale == 1 and result.cache_proof_hits == 0
    assert (await cache.stats()).retracted == 1  # Lean rejected the replay: the entry goes
    assert (await cache.lookup(CacheKey.of("", [C0]))).tactics == ("step_a", "step_b", "step_c", "close")


async def test_dead_ends_are_published_and_skipped() -> None:
    # Two problems share the state "⊢ Z" where every suggested tactic fails in Lean.
    table = {"⊢ P": [("go", -0.1), ("alt", -0.2)], "⊢ Q": [("go", -0.1)],
             "⊢ Z": [("bad1", -0.1), ("bad2", -0.1)], "⊢ W": [("done", -0.1)]}
    transitions = {("⊢ P", "go"): ["⊢ Z"], ("⊢ P", "alt"): ["⊢ W"], ("⊢ W", "done"): "QED",
                   ("⊢ Q", "go"): ["⊢ Z"]}
    cache = MemoryProofCache()
    first = await run_search(_search(P_ADD), lean=table_env(["⊢ P"], transitions), sampler=TableSampler(table),
                             cache=cache)
    assert first.proved
    assert (await cache.lookup(CacheKey.of("", ["⊢ Z"]))).kind == "dead"
    sampler = TableSampler(table)
    second = await run_search(_search(P_TRAP), lean=table_env(["⊢ Q"], transitions), sampler=sampler, cache=cache)
    assert second.stop_reason == "exhausted" and second.cache_dead_hits == 1
    assert sampler.prompts == ["⊢ Q"]  # Z was not expanded again
    assert (await cache.lookup(CacheKey.of("", ["⊢ Q"]))).kind == "dead"  # definitive by inheritance
    sampler = TableSampler(table)  # another pass at Q: its own root is still tried, Z is not
    again = await run_search(_search(P_TRAP), lean=table_env(["⊢ Q"], transitions), sampler=sampler, cache=cache)
    assert sampler.prompts == ["⊢ Q"] and again.cache_dead_hits == 1
    trusting_no_one = BestFirstSearch(P_TRAP, config=BfsConfig(), use_dead_ends=False)
    sampler = TableSampler(table)
    await run_search(trusting_no_one, lean=table_env(["⊢ Q"], transitions), sampler=sampler, cache=cache)
    assert sampler.prompts == ["⊢ Q", "⊢ Z"]


async def test_timeouts_and_crashes_never_make_dead_ends() -> None:
    transitions = {("⊢ P", "slow"): StepKind.TIMEOUT, ("⊢ P", "bad"): "error"}
    cache = MemoryProofCache()
    result = await run_search(_search(P_ADD), lean=table_env(["⊢ P"], transitions),
                              sampler=TableSampler({"⊢ P": [("slow", -0.1), ("bad", -0.2)]}), cache=cache)
    assert result.stop_reason == "exhausted"
    assert await cache.lookup(CacheKey.of("", ["⊢ P"])) is None


async def test_expansions_that_lost_their_state_are_retried_not_counted_as_failures() -> None:
    lost = {"n": 0}

    def step(goals: str, tactic: str) -> Transition:
        if lost["n"] < 2:  # the worker loses the state twice, then behaves
            lost["n"] += 1
            return Transition(StepKind.INFRASTRUCTURE, error="lost the state")
        return Transition(StepKind.PROVED)

    env = ScriptedLeanSession(("⊢ P",), step)
    result = await run_search(_search(P_ADD), lean=env, sampler=TableSampler({"⊢ P": [("done", -0.1)]}))
    assert result.stop_reason == "proved" and result.lost_expansions == 2

    always_lost = ScriptedLeanSession(("⊢ P",), lambda g, t: Transition(StepKind.INFRASTRUCTURE, error="lost"))
    result = await run_search(_search(P_ADD), lean=always_lost, sampler=TableSampler({"⊢ P": [("done", -0.1)]}))
    assert result.stop_reason == "exhausted" and result.lost_expansions == 3
    verdict = _unproved_verdict(result)
    assert (verdict.status, verdict.rule) == (CheckStatus.ERROR, "search:infrastructure")


def test_assemble_proof_indents_multiline_tactics() -> None:
    body = assemble_proof(["intro x", "have h : x = x := by\n  rfl", "exact h"])
    assert body == "\n  intro x\n  have h : x = x := by\n    rfl\n  exact h"
    # focusing dots and case tags keep their relative indentation, so the blocks still nest
    body = assemble_proof(["constructor", "· simp", "case right =>\n  intro h\n  exact h"])
    assert body == "\n  constructor\n  · simp\n  case right =>\n    intro h\n    exact h"


# -- the strategy --------------------------------------------------------------------------------


def _ctx(pool_or_session, sampler, checker, *, passes=3, cache=None, artifacts=None, **bfs) -> StrategyContext:
    """A context over a real pool (wrapped in a `PoolLeanSession`) or a given session."""
    config = ProverConfig().with_overrides({"eval.passes": passes, "lean.workers": 1, "bfs.time_budget": 30,
                                            **{f"bfs.{k}": v for k, v in bfs.items()}})
    lean = pool_or_session
    if lean is not None and not isinstance(lean, ScriptedLeanSession):
        lean = PoolLeanSession(lean)
    return make_ctx(config, sampler, checker, lean=lean, proof_cache=cache, artifacts=artifacts)


async def _prove(problem, ctx, strategy=None) -> list[Attempt]:
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    await (strategy or BestFirstStrategy()).prove(problem, ctx, record)
    return recorded


async def test_strategy_proof_passes_the_real_checker_and_stops_on_first(tmp_path) -> None:
    from prover.lean_env.checker import ProofChecker

    async with sim_pool() as pool:
        ctx = _ctx(pool, TableSampler(SUGGESTIONS), None, passes=3, artifacts=tmp_path)
        ctx = ctx.with_changes(checker=ProofChecker(pool, ctx.config.checker))
        recorded = await _prove(P_CHAIN, ctx, BestFirstStrategy(parallel_attempts=1))
    assert len(recorded) == 1  # stop_on_first: attempts 1 and 2 never start
    attempt = recorded[0]
    assert attempt.verdict.proved and attempt.verdict.rule == "accepted"
    assert attempt.proof == assemble_proof(["step_a", "step_b", "step_c", "close"])
    assert attempt.strategy == "bfs" and attempt.sample_index == 0
    assert attempt.extra["stop_reason"] == "proved" and attempt.extra["lean_calls"] >= 5
    assert (tmp_path / "t_chain" / "attempt_000.json").exists() and attempt.extra["tree_file"]


async def test_tactic_mode_success_rejected_by_the_real_checker_is_not_proved() -> None:
    from prover.lean_env.checker import ProofChecker

    async with sim_pool() as pool:
        ctx = _ctx(pool, TableSampler(SUGGESTIONS), None, passes=2)
        ctx = ctx.with_changes(checker=ProofChecker(pool, ctx.config.checker))
        recorded = await _prove(P_TACTIC_ONLY, ctx)
    assert len(recorded) == 2
    assert all(a.extra["search_proved"] and not a.verdict.proved for a in recorded)
    assert {a.verdict.rule for a in recorded} == {"lean_error"}


async def test_checker_rejection_means_not_proved(tmp_path) -> None:
    checker = VerdictChecker(CheckStatus.REJECTED, "axioms")
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    async with sim_pool() as pool:
        strategy = BestFirstStrategy()
        await strategy.prove(P_ADD, _ctx(pool, TableSampler(SUGGESTIONS), checker, passes=2, artifacts=tmp_path / "trees"), record)
    assert len(recorded) == 2  # nothing proved, so no early stop
    assert all(not a.verdict.proved and a.verdict.rule == "axioms" for a in recorded)
    assert all(a.extra["search_proved"] for a in recorded)
    assert checker.checked == [assemble_proof(["rw [Nat.add_zero]", "rfl"])] * 2
    assert sorted(a.sample_index for a in recorded) == [0, 1]
    assert all((tmp_path / "trees" / "t_add_zero" / f"attempt_00{i}.json").exists() for i in range(2))


async def test_strategy_records_unproved_attempts_with_budget_reasons() -> None:
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    sampler = TableSampler(SUGGESTIONS)
    async with sim_pool() as pool:
        ctx = _ctx(pool, sampler, VerdictChecker(CheckStatus.PROVED, "accepted"), passes=2, max_expansions=2)
        await BestFirstStrategy().prove(P_LONG, ctx, record)
    assert [a.verdict.rule for a in recorded] == ["search:max_expansions"] * 2
    assert all(a.strategy == "bfs" and a.proof is None and a.extra["expansions"] == 2 for a in recorded)
    assert recorded[0].extra["seed"] != recorded[1].extra["seed"]


async def test_strategy_skips_done_attempts() -> None:
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    async with sim_pool() as pool:
        ctx = _ctx(pool, TableSampler(SUGGESTIONS), VerdictChecker(CheckStatus.FAILED, "lean_error"), passes=3)
        done_attempt = Attempt(problem="t_long", sample_index=1, strategy="bfs",
                               verdict=VerdictChecker(CheckStatus.FAILED, "search:exhausted").verdict)
        await BestFirstStrategy().prove(P_LONG, ctx, record, done={(0, 1): done_attempt})
    assert sorted(a.sample_index for a in recorded) == [0, 2]


async def test_strategy_without_a_prover_model_names_the_role() -> None:
    from prover.errors import ConfigError

    ctx = make_ctx(ProverConfig(), None, VerdictChecker(CheckStatus.PROVED, "accepted"),
                   lean=table_env(["⊢ P"], {}), samplers={"planner": TableSampler({})})
    with pytest.raises(ConfigError, match="model role 'prover'"):
        await BestFirstStrategy().run_attempt(P_ADD, ctx, 0)


class _LeaseDiesOnce:
    """Wraps a pool so that the leases handed out while `dead` is set raise StaleHandleError on
    every operation, like a Lean pool actor restarted on Ray mid-search."""

    def __init__(self, pool) -> None:
        self.pool, self.dead = pool, False

    def env_key(self, header: str):
        return self.pool.env_key(header)

    def lease(self, key, *, affinity=None):
        import contextlib

        from prover.errors import StaleHandleError

        outer = self

        @contextlib.asynccontextmanager
        async def lease_cm():
            async with outer.pool.lease(key, affinity=affinity) as lease:
                if not outer.dead:
                    yield lease
                    return

                class Dead:
                    worker = lease.worker

                    async def command(self, *a, **k):
                        raise StaleHandleError("pool actor restarted")

                    tactic = command

                yield Dead()

        return lease_cm()


async def test_a_lost_lease_degrades_to_infrastructure_outcomes_then_recovers() -> None:
    async with sim_pool() as pool:
        flaky = _LeaseDiesOnce(pool)
        env = PoolLeanSession(flaky)
        root = (await env.start(StateOrigin.theorem(P_ADD))).state
        assert root is not None and root.goals == (R,)
        flaky.dead = True
        lost = await env.apply(root, ["rw [Nat.add_zero]"])
        assert [o.kind for o in lost.outcomes] == [StepKind.INFRASTRUCTURE]
        flaky.dead = False  # the next request takes a fresh lease and rebuilds the state
        again = await env.apply(root.at(("rw [Nat.add_zero]",)), ["rfl"])
        assert [o.kind for o in again.outcomes] == [StepKind.PROVED]
        assert env.stats.rematerialisations >= 1


# -- resume: a finished problem needs no services ------------------------------------------------


def _attempt(index: int, status: CheckStatus = CheckStatus.FAILED) -> Attempt:
    return Attempt(problem="t_long", sample_index=index, strategy="bfs",
                   verdict=VerdictChecker(status, "search:exhausted").verdict)


def test_is_complete_once_every_attempt_is_recorded_or_one_proved() -> None:
    from prover.eval.pipeline import pending_problems

    config = ProverConfig().with_overrides({"eval.passes": 3})
    strategy = BestFirstStrategy()
    all_failed = {(0, i): _attempt(i) for i in range(3)}
    assert strategy.is_complete(P_LONG, config, all_failed)
    assert not strategy.is_complete(P_LONG, config, {k: v for k, v in all_failed.items() if k != (0, 2)})
    assert not BestFirstStrategy(passes=4).is_complete(P_LONG, config, all_failed)  # its own --pass
    proved_one = {(0, 1): _attempt(1, CheckStatus.PROVED)}
    assert strategy.is_complete(P_LONG, config, proved_one)  # stop_on_first: the rest never run
    assert not strategy.is_complete(P_LONG, config.with_overrides({"bfs.stop_on_first": False}), proved_one)
    assert pending_problems([P_LONG, P_ADD], config, strategy, {"t_long": all_failed}) == [P_ADD]


async def test_a_complete_problem_touches_no_service() -> None:
    def no_lean(goals, tactic):
        raise AssertionError("a finished problem must not use Lean")

    sampler = TableSampler(SUGGESTIONS)
    session = ScriptedLeanSession(("⊢ P",), no_lean)
    ctx = _ctx(session, sampler, VerdictChecker(CheckStatus.PROVED, "accepted"), passes=2)
    done = {(0, i): _attempt(i) for i in range(2)}
    recorded: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        recorded.append(attempt)

    await BestFirstStrategy().prove(P_LONG, ctx, record, done=done)
    assert recorded == [] and sampler.prompts == [] and session.stats.lean_calls == 0


# -- budgets per tactic and cache replays --------------------------------------------------------


async def test_a_tactic_waits_at_most_the_lean_timeout_not_the_whole_budget() -> None:
    env = table_env(["⊢ P"], {("⊢ P", "go"): ["⊢ Q"], ("⊢ Q", "done"): "QED"})
    timeouts: list[float | None] = []
    apply = env.apply

    async def recording(state, tactics, *, chain=False, timeout=None):
        timeouts.append(timeout)
        return await apply(state, tactics, chain=chain, timeout=timeout)

    env.apply = recording  # type: ignore[method-assign]
    sampler = TableSampler({"⊢ P": [("go", -0.1)], "⊢ Q": [("done", -0.1)]})
    ctx = _ctx(env, sampler, VerdictChecker(CheckStatus.PROVED, "accepted"), passes=1, time_budget=600)
    ctx = ctx.with_changes(config=ctx.config.with_overrides({"lean.timeout": 7.0}))
    attempt = await BestFirstStrategy().run_attempt(P_ADD, ctx, 0)
    assert attempt.verdict.proved
    assert len(timeouts) == 2 and all(t is not None and t <= 7.0 for t in timeouts)


async def test_attempt_seeds_depend_on_the_problem_and_stay_below_2_31() -> None:
    seeds: list[tuple[str, int]] = []

    class SeedRecorder(TableSampler):
        async def generate(self, request):
            seeds.append((request.tag, request.seed))
            return await super().generate(request)

    transitions = {("⊢ P", "go"): ["⊢ Q"], ("⊢ Q", "done"): "QED"}
    sampler = SeedRecorder({"⊢ P": [("go", -0.1)], "⊢ Q": [("done", -0.1)]})
    ctx = _ctx(table_env(["⊢ P"], transitions), sampler, VerdictChecker(CheckStatus.PROVED, "accepted"), passes=1)
    ctx = ctx.with_changes(config=ctx.config.with_overrides({"sampler.seed": 2**31 - 1}))
    strategy = BestFirstStrategy()
    for problem in (P_ADD, P_CHAIN):
        for index in (0, 1, 10**9):  # a huge --pass used to push seeds past 2**31 and 2**63
            assert (await strategy.run_attempt(problem, ctx, index)).verdict.proved
    assert len(seeds) == 2 * 3 * 2  # two expansions per attempt
    assert all(0 <= seed < 2**31 for _, seed in seeds)
    by_problem = {name: [seed for tag, seed in seeds if tag == name] for name in (P_ADD.name, P_CHAIN.name)}
    assert len(set(by_problem[P_ADD.name])) == 6  # attempts and expansions all differ
    assert not set(by_problem[P_ADD.name]) & set(by_problem[P_CHAIN.name])  # attempt i differs per problem


async def test_a_cached_script_that_makes_no_progress_is_stale_not_a_crash() -> None:
    transitions = {("⊢ P", "noop"): ["⊢ P"], ("⊢ P", "done"): "QED"}
    cache = MemoryProofCache()
    await cache.publish_proof(CacheKey.of("", ["⊢ P"]), ["noop", "done"])  # Lean accepts each step
    result = await run_search(_search(P_ADD), lean=table_env(["⊢ P"], transitions),
                              sampler=TableSampler({"⊢ P": [("done", -0.1)]}), cache=cache)
    assert result.proved and result.tactics == ["done"]
    assert result.cache_stale == 1 and result.cache_proof_hits == 0
    assert (await cache.lookup(CacheKey.of("", ["⊢ P"]))).tactics == ("done",)  # retracted, replaced


async def test_a_proof_the_checker_refuses_leaves_the_cache() -> None:
    from prover.lean_env.checker import ProofChecker

    cache = MemoryProofCache()
    async with sim_pool() as pool:
        ctx = _ctx(pool, TableSampler(SUGGESTIONS), None, passes=2, cache=cache)
        ctx = ctx.with_changes(checker=ProofChecker(pool, ctx.config.checker))
        recorded = await _prove(P_TACTIC_ONLY, ctx, BestFirstStrategy(parallel_attempts=1))
    assert [a.verdict.rule for a in recorded] == ["lean_error"] * 2
    # the second attempt searched for itself instead of replaying the refused script
    assert [(a.extra["expansions"], a.extra["cache_proof_hits"]) for a in recorded] == [(1, 0), (1, 0)]
    assert await cache.lookup(CacheKey.of("", ["⊢ M"])) is None
