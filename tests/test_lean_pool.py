"""LeanPool on the SIMULATED REPL: reuse, LRU eviction, recycling, affinity, back-pressure,
cancellation, retries, and a storm of random faults where every request is answered once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import pytest

from prover.errors import PoolClosed, PoolOverloaded
from prover.lean_env import OutcomeKind, ReplLauncher
from lean_pool_helpers import FOO, HEADER, make_pool, processes_running, write_scenario

FAULTS = {"crash_on": ["CRASH"], "hang_on": ["HANG"], "garbage_on": ["GARBAGE"], "oom_on": ["OOM"]}
EXPECTED = {
    "simp": OutcomeKind.OK,
    "linarith": OutcomeKind.LEAN_ERROR,
    "sorry": OutcomeKind.INCOMPLETE,
    "CRASH": OutcomeKind.CRASH,
    "HANG": OutcomeKind.TIMEOUT,
    "GARBAGE": OutcomeKind.CRASH,
    "OOM": OutcomeKind.OUT_OF_MEMORY,
}


async def _check(pool, header: str = HEADER, body: str = "simp", **lease_kw):
    async with pool.lease(pool.env_key(header), **lease_kw) as w:
        return w.worker, await w.command(FOO + body)


async def test_random_fault_storm_every_request_answered_exactly_once(tmp_path):
    rng = random.Random(7)
    bodies = rng.choices(list(EXPECTED), weights=[6, 2, 2, 1, 1, 1, 1], k=50)
    answers: dict[int, list[OutcomeKind]] = {i: [] for i in range(50)}
    # timeout 2 s: OOM (~0.3 s alone) must not turn into a timeout on a loaded machine
    async with make_pool(write_scenario(tmp_path, faults=FAULTS), workers=4, timeout=2.0, memory_limit_mb=512) as pool:

        async def one(i: int) -> None:
            _, result = await _check(pool, body=bodies[i])
            answers[i].append(result.kind)

        await asyncio.gather(*(one(i) for i in range(50)))
        assert all(len(a) == 1 for a in answers.values()), "a request was lost or answered twice"
        wrong = {i: (bodies[i], a[0]) for i, a in answers.items() if a[0] is not EXPECTED[bodies[i]]}
        assert not wrong, f"misclassified: {wrong}"
        stats = pool.stats()
        assert stats.requests == 50 and stats.timeouts == bodies.count("HANG") and stats.ooms == bodies.count("OOM")
        assert stats.crashes == bodies.count("CRASH") + bodies.count("GARBAGE")
        results = await asyncio.gather(*(_check(pool) for _ in range(8)))  # still serving
        assert all(r.kind is OutcomeKind.OK for _, r in results)
        assert pool.stats().workers <= 4


async def test_lru_eviction_of_idle_workers(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=2) as pool:
        ref_a, _ = await _check(pool, "import A")
        await _check(pool, "import B")
        await _check(pool, "import A")  # A is now most recently used
        await _check(pool, "import C")  # needs a slot: evicts B
        headers = sorted(key.header for _, key, _ in pool.workers())
        assert headers == ["import A", "import C"] and pool.stats().evictions == 1
        again, _ = await _check(pool, "import A")
        assert again == ref_a and pool.stats().imports == 3


async def test_max_idle_workers_trims_lru(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=3, max_idle_workers=1) as pool:
        await asyncio.gather(*(_check(pool, f"import H{i}") for i in range(3)))
        await asyncio.sleep(0.05)
        assert len(pool.workers()) == 1 and pool.stats().evictions == 2


async def test_affinity_waits_for_its_worker(tmp_path):
    async with make_pool(write_scenario(tmp_path, latency=0.0), workers=2) as pool:
        key = pool.env_key(HEADER)
        first, _ = await _check(pool)
        order: list[str] = []
        async with pool.lease(key, affinity=first) as holder:
            assert holder.worker == first

            async def pinned():
                async with pool.lease(key, affinity=first) as w:
                    order.append("pinned")
                    return w.worker

            task = asyncio.create_task(pinned())
            await asyncio.sleep(0.3)  # the other worker is free, yet the pinned caller waits
            assert not task.done()
            order.append("released")
        assert await task == first and order == ["released", "pinned"]
        # affinity to a dead generation falls back to any worker
        stale = first.model_copy(update={"generation": first.generation + 5})
        _, result = await _check(pool, affinity=stale)
        assert result.kind is OutcomeKind.OK


async def test_back_pressure_and_cancelled_waiters(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1, queue_limit=2) as pool:
        key = pool.env_key(HEADER)
        async with pool.lease(key):
            waiters = [asyncio.create_task(_check(pool)) for _ in range(2)]
            await asyncio.sleep(0.1)
            with pytest.raises(PoolOverloaded, match="queue_limit"):
                await _check(pool)
            waiters[0].cancel()
            await asyncio.sleep(0.05)
            assert pool.stats().waiting == 1
        _, result = await waiters[1]
        assert result.kind is OutcomeKind.OK and waiters[0].cancelled()
        assert pool.stats().rejected == 1 and pool.stats().waiting == 0


async def test_cancel_mid_request_kills_and_restarts_the_worker(tmp_path):
    async with make_pool(write_scenario(tmp_path, faults=FAULTS), workers=1, timeout=30) as pool:
        ref, _ = await _check(pool)
        task = asyncio.create_task(_check(pool, body="HANG"))
        await asyncio.sleep(0.4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        start = time.monotonic()
        new_ref, result = await _check(pool)  # not wedged behind the hung request
        assert result.kind is OutcomeKind.OK and time.monotonic() - start < 5
        assert new_ref.worker_id == ref.worker_id and new_ref.generation == ref.generation + 1
        assert pool.stats().cancellations == 1


async def test_recycle_after_max_uses(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1, max_uses=3) as pool:
        gens = [(await _check(pool))[0].generation for _ in range(7)]
        assert gens == [1, 1, 1, 2, 2, 2, 3]
        stats = pool.stats()
        assert stats.recycles == 2 and stats.imports == 3


async def test_recycle_when_memory_grows(tmp_path):
    scenario = write_scenario(tmp_path, faults={"grow_mb_per_request": 40})
    async with make_pool(scenario, workers=1, rss_limit_mb=150, memory_limit_mb=2048) as pool:
        gens = [(await _check(pool))[0].generation for _ in range(8)]
        assert gens[-1] > 1 and pool.stats().recycles >= 1
        assert all(r.kind is OutcomeKind.OK for _, r in [await _check(pool)])


async def test_infrastructure_failure_is_retried(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1, infra_retries=2) as pool:
        async with pool.lease(pool.env_key(HEADER)) as w:
            proc = pool._slots[w.worker.worker_id].worker._proc
            os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.2)  # block the loop: the death is not noticed before the write
            result = await w.command(FOO + "simp")
            assert result.kind is OutcomeKind.OK, result.detail
        stats = pool.stats()
        assert stats.restarts == 1 and stats.infra_failures == 1 and stats.retries == 1 and stats.requests == 2


async def test_concurrency_never_exceeds_workers_and_no_duplicates(tmp_path):
    async with make_pool(write_scenario(tmp_path, latency=0.02), workers=3) as pool:
        busy, peak, seen = set(), 0, []

        async def one(i: int) -> None:
            nonlocal peak
            async with pool.lease(pool.env_key(HEADER)) as w:
                assert w.worker.worker_id not in busy, "a worker was leased twice"
                busy.add(w.worker.worker_id)
                peak = max(peak, len(busy))
                seen.append((i, (await w.command(FOO + "simp")).kind))
                busy.discard(w.worker.worker_id)

        await asyncio.gather(*(one(i) for i in range(30)))
        assert peak == 3 and sorted(i for i, _ in seen) == list(range(30))
        assert pool.stats().imports == 3


async def test_closed_pool_refuses_and_wakes_waiters(tmp_path):
    pool = make_pool(write_scenario(tmp_path), workers=1)
    async with pool.lease(pool.env_key(HEADER)):
        waiter = asyncio.create_task(_check(pool))
        await asyncio.sleep(0.05)
        await pool.close()
        with pytest.raises(PoolClosed):
            await waiter
    with pytest.raises(PoolClosed):
        await _check(pool)


async def test_worker_dying_while_idle_is_restarted_on_lease(tmp_path):
    scenario = write_scenario(tmp_path, faults={"crash_after_requests": 2})
    async with make_pool(scenario, workers=1) as pool:
        first, _ = await _check(pool)  # header + 1 request: the simulated REPL then exits
        await asyncio.sleep(0.3)
        again, result = await _check(pool, affinity=first)
        assert result.kind is OutcomeKind.OK and again.generation == first.generation + 1
        assert pool.stats().restarts == 1


async def test_max_uses_counts_requests_not_leases(tmp_path):
    """REPL state grows per request: one long lease (a search) wears a worker out too."""
    async with make_pool(write_scenario(tmp_path), workers=1, max_uses=3) as pool:
        async with pool.lease(pool.env_key(HEADER)) as w:
            first = w.worker
            for _ in range(4):
                assert (await w.command(FOO + "simp")).kind is OutcomeKind.OK
        again, _ = await _check(pool)
        assert again.generation == first.generation + 1 and pool.stats().recycles == 1


async def test_lease_used_after_close_raises_pool_closed(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1) as pool:
        async with pool.lease(pool.env_key(HEADER)) as w:
            await pool.close()
            with pytest.raises(PoolClosed):
                await w.command(FOO + "simp")
        assert pool.stats().restarts == 0


async def test_failed_revive_is_counted_as_infrastructure(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1) as pool:
        async with pool.lease(pool.env_key(HEADER)) as w:
            worker = pool._slots[w.worker.worker_id].worker
            await worker.kill()
            worker.launcher = ReplLauncher(argv=[str(tmp_path / "no-such-repl")])
            result = await w.command(FOO + "simp")
            assert result.kind is OutcomeKind.INFRASTRUCTURE and "cannot restart" in result.detail
        stats = pool.stats()
        assert (stats.infra_failures, stats.requests) == (1, 0)


async def test_close_leaves_no_repl_process(tmp_path):
    """Busy, hung, restarting (recycled) and evicted workers: close() kills every one of them."""
    scenario = write_scenario(tmp_path, faults=FAULTS, import_latency=0.3)
    pool = make_pool(scenario, workers=2, max_uses=1, timeout=30)
    await _check(pool, "import A")  # released -> recycled in the background (slow import)
    hung = asyncio.create_task(_check(pool, "import B", body="HANG"))
    await asyncio.sleep(0.8)
    evicting = asyncio.create_task(_check(pool, "import C"))  # evicts A, starts C
    await asyncio.sleep(0.1)
    assert len(processes_running(str(scenario))) >= 2
    await pool.close()
    for task in (hung, evicting):
        with pytest.raises(PoolClosed):
            await task
    deadline = time.monotonic() + 5
    while processes_running(str(scenario)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not processes_running(str(scenario))


async def test_cancel_while_the_header_elaborates_leaks_no_worker(tmp_path):
    scenario = write_scenario(tmp_path, import_latency=5.0)
    async with make_pool(scenario, workers=1, header_timeout=30) as pool:
        starting = asyncio.create_task(_check(pool))
        await asyncio.sleep(0.5)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert pool.stats().workers == 0 and pool.stats().busy == 0  # the slot was freed
        deadline = time.monotonic() + 5
        while processes_running(str(scenario)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not processes_running(str(scenario))


async def test_waiters_are_served_first_come_first_served(tmp_path):
    async with make_pool(write_scenario(tmp_path, latency=0.0), workers=1) as pool:
        key = pool.env_key(HEADER)
        served: list[int] = []

        async def one(i: int) -> None:
            async with pool.lease(key) as w:
                served.append(i)
                await w.command(FOO + "simp")

        async with pool.lease(key):
            tasks = []
            for i in range(5):
                tasks.append(asyncio.create_task(one(i)))
                await asyncio.sleep(0.01)  # queued in this order
            assert pool.stats().waiting == 5
        await asyncio.gather(*tasks)
        assert served == list(range(5)) and pool.stats().waiting == 0


async def test_a_worker_handed_to_a_caller_who_gave_up_goes_back(tmp_path):
    async with make_pool(write_scenario(tmp_path, latency=0.0), workers=1) as pool:
        key = pool.env_key(HEADER)
        async with pool.lease(key):
            waiter = asyncio.create_task(_check(pool))
            await asyncio.sleep(0.05)
        waiter.cancel()  # the release above handed the worker to `waiter`, which never ran
        with pytest.raises(asyncio.CancelledError):
            await waiter
        _, result = await asyncio.wait_for(_check(pool), timeout=10)
        assert result.kind is OutcomeKind.OK and pool.stats().workers == 1 and pool.stats().waiting == 0


async def test_warm_starts_idle_workers_that_the_first_leases_reuse(tmp_path):
    async with make_pool(write_scenario(tmp_path, latency=0.0), workers=3) as pool:
        await pool.warm([HEADER, HEADER], workers=2)  # one header, two workers
        assert sorted(state for _, _, state in pool.workers()) == ["idle", "idle"]
        assert pool.stats().imports == 2
        results = await asyncio.gather(*(_check(pool) for _ in range(2)))
        assert all(r.kind is OutcomeKind.OK for _, r in results) and pool.stats().reuses == 2
        await pool.warm(["import Other"], workers=5)  # only the free capacity: one more worker
        assert len(pool.workers()) == 3


async def test_warm_with_a_broken_header_or_repl_leaves_the_error_to_the_lease(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1) as pool:
        pool.launcher = ReplLauncher(argv=[str(tmp_path / "no-such-repl")])
        await pool.warm([HEADER], workers=1)  # nothing raised here ...
        assert pool.workers() == []
        with pytest.raises(Exception, match="no-such-repl"):  # ... the first lease reports it
            await _check(pool)
