"""Verdict cache: persistence, what is (not) stored, multi-process safety, in-flight dedupe."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

import pytest

from prover.lean_env.verdict_cache import VerdictCache, verdict_key
from prover.types import CheckStatus, Verdict

PROVED = Verdict(status=CheckStatus.PROVED, rule="accepted", axioms=("propext",), code="theorem t ...")


def _key(proof: str, rules: str = "r1") -> str:
    return verdict_key(workspace="/ws", lean_version="v4.15.0", repl_cmd="", header="import Mathlib\n",
                       statement="theorem t : True := by", proof=proof, rules=rules)


def test_key_covers_every_part() -> None:
    base = {"workspace": "/ws", "lean_version": "v4.15.0", "repl_cmd": "", "header": "h", "statement": "s",
            "proof": "p", "rules": "r"}
    keys = {verdict_key(**base)}
    for field, value in base.items():
        keys.add(verdict_key(**{**base, field: value + "x"}))
    assert len(keys) == len(base) + 1
    assert verdict_key(**{**base, "header": "ab", "statement": "c"}) != verdict_key(**{**base, "header": "a", "statement": "bc"})


def test_roundtrip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    cache = VerdictCache(path)
    assert cache.get(_key("p")) is None
    assert cache.put(_key("p"), PROVED)
    cache.close()
    again = VerdictCache(path)
    hit = again.get(_key("p"))
    assert hit is not None and hit.cached and hit.model_copy(update={"cached": False}) == PROVED
    assert again.get(_key("p", rules="r2")) is None
    again.close()


@pytest.mark.parametrize("status", [CheckStatus.TIMEOUT, CheckStatus.ERROR])
def test_transient_outcomes_not_stored(tmp_path: Path, status: CheckStatus) -> None:
    cache = VerdictCache(tmp_path / "c.sqlite")
    assert not cache.put(_key("p"), Verdict(status=status, rule="timeout"))
    assert cache.get(_key("p")) is None and len(cache) == 0


def _writer(path: str, worker: int, count: int, queue: multiprocessing.Queue) -> None:
    try:
        cache = VerdictCache(path, busy_timeout=30)
        for i in range(count):
            cache.put(_key(f"{worker}-{i}"), PROVED.model_copy(update={"detail": f"{worker}-{i}"}))
            cache.put(_key("shared"), PROVED)  # both processes hammer one row too
            assert cache.get(_key(f"{worker}-{i}")) is not None
        cache.close()
        queue.put(("ok", worker))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", repr(exc)))


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    VerdictCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, w, 150, queue)) for w in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(results) == [("ok", 0), ("ok", 1)], results
    cache = VerdictCache(path)
    assert len(cache) == 2 * 150 + 1
    assert cache.get(_key("1-149")).detail == "1-149"  # type: ignore[union-attr]
    cache.close()


async def test_in_flight_dedupe_and_hits() -> None:
    cache = VerdictCache(":memory:")
    calls = 0

    async def compute() -> Verdict:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return PROVED

    results = await asyncio.gather(*(cache.get_or_compute(_key("p"), compute) for _ in range(6)))
    assert calls == 1 and cache.stats.deduped == 5 and cache.stats.misses == 1
    assert [r.cached for r in results].count(False) == 1
    later = await cache.get_or_compute(_key("p"), compute)
    assert later.cached and calls == 1 and cache.stats.hits == 1


async def test_transient_results_are_recomputed() -> None:
    cache = VerdictCache(":memory:")
    calls = 0

    async def compute() -> Verdict:
        nonlocal calls
        calls += 1
        return Verdict(status=CheckStatus.TIMEOUT, rule="timeout")

    await cache.get_or_compute(_key("p"), compute)
    await cache.get_or_compute(_key("p"), compute)
    assert calls == 2


async def test_a_waiter_cancelled_together_with_the_computation_stays_cancelled() -> None:
    """A problem's samples are cancelled at once (early stop, a failed run): a waiter must not
    take its own cancellation for the computation's and start the check again."""
    cache = VerdictCache(":memory:")
    started, calls = asyncio.Event(), 0

    async def slow() -> Verdict:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(10)
        return PROVED

    for computing_first in (True, False):
        calls = 0
        started.clear()
        first = asyncio.create_task(cache.get_or_compute(_key("p"), slow))
        await started.wait()
        waiter = asyncio.create_task(cache.get_or_compute(_key("p"), slow))
        await asyncio.sleep(0.01)
        for task in (first, waiter) if computing_first else (waiter, first):
            task.cancel()
        done, _ = await asyncio.wait((first, waiter), timeout=2)
        assert done == {first, waiter} and first.cancelled() and waiter.cancelled()
        assert calls == 1  # the waiter never ran the check itself


async def test_failure_and_cancellation_of_the_computing_caller() -> None:
    cache = VerdictCache(":memory:")
    started = asyncio.Event()

    async def slow() -> Verdict:
        started.set()
        await asyncio.sleep(10)
        return PROVED

    async def quick() -> Verdict:
        return PROVED

    first = asyncio.create_task(cache.get_or_compute(_key("p"), slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_compute(_key("p"), quick))
    await asyncio.sleep(0.01)
    first.cancel()
    verdict = await asyncio.wait_for(waiter, 5)  # the waiter computes it itself
    assert verdict.proved and not verdict.cached
    with pytest.raises(asyncio.CancelledError):
        await first

    async def boom() -> Verdict:
        raise RuntimeError("lean exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        await cache.get_or_compute(_key("q"), boom)
    assert (await cache.get_or_compute(_key("q"), quick)).proved
