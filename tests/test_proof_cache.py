"""The shared proof cache: precedence rules, keys, persistence, several processes at once."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

import pytest

from prover.search.proof_cache import (
    CacheEntry,
    CacheKey,
    MemoryProofCache,
    ProofCache,
    SqliteProofCache,
)

GOAL = "x : Nat\n⊢ x + 0 = x"


@pytest.fixture(params=["memory", "sqlite"])
async def cache(request, tmp_path):
    made: ProofCache = MemoryProofCache() if request.param == "memory" else SqliteProofCache(tmp_path / "c.sqlite")
    yield made
    await made.close()


async def test_miss_then_proof_hit(cache: ProofCache) -> None:
    key = CacheKey.of("import Mathlib", [GOAL])
    assert await cache.lookup(key) is None
    await cache.publish_proof(key, ["rw [Nat.add_zero]", "rfl"])
    assert await cache.lookup(key) == CacheEntry(kind="proof", tactics=("rw [Nat.add_zero]", "rfl"))
    stats = await cache.stats()
    assert (stats.lookups, stats.proof_hits, stats.misses, stats.entries) == (2, 1, 1, 1)


async def test_precedence_proof_over_dead_and_shorter_over_longer(cache: ProofCache) -> None:
    key = CacheKey.of("", [GOAL])
    await cache.publish_dead(key)
    assert (await cache.lookup(key)).kind == "dead"
    await cache.publish_proof(key, ["a", "b", "c"])
    assert (await cache.lookup(key)).tactics == ("a", "b", "c")
    await cache.publish_dead(key)  # never overrides a proof
    await cache.publish_proof(key, ["a", "b", "c", "d"])  # longer: ignored
    assert (await cache.lookup(key)).tactics == ("a", "b", "c")
    await cache.publish_proof(key, ["simp"])  # shorter: replaces
    assert (await cache.lookup(key)).tactics == ("simp",)
    with pytest.raises(ValueError, match="empty tactic script"):
        await cache.publish_proof(key, [])


async def test_retract_is_compare_and_delete(cache: ProofCache) -> None:
    key = CacheKey.of("", [GOAL])
    await cache.publish_proof(key, ["a", "b"])
    await cache.retract(key, ["x"])  # not the stored script: kept
    assert (await cache.lookup(key)).tactics == ("a", "b")
    await cache.retract(key, ["a", "b"])
    assert await cache.lookup(key) is None
    await cache.publish_proof(key, ["a", "b", "c"])  # a longer proof is welcome again
    assert (await cache.lookup(key)).tactics == ("a", "b", "c")
    assert (await cache.stats()).retracted == 2


async def test_key_includes_header_and_normalises_goals(cache: ProofCache) -> None:
    await cache.publish_proof(CacheKey.of("import Mathlib", [GOAL + "   \n"]), ["omega"])
    assert (await cache.lookup(CacheKey.of("import Mathlib", [GOAL]))) is not None
    assert (await cache.lookup(CacheKey.of("import Mathlib\nopen Real", [GOAL]))) is None
    assert CacheKey.of("h", [GOAL]) == CacheKey.of("h", GOAL)


async def test_sqlite_persists_and_refuses_use_after_close(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "proofs.sqlite"
    first = SqliteProofCache(path)
    await first.publish_proof(CacheKey.of("", [GOAL]), ["omega"])
    await first.close()
    await first.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await first.lookup(CacheKey.of("", [GOAL]))
    second = SqliteProofCache(path)
    assert (await second.lookup(CacheKey.of("", [GOAL]))).tactics == ("omega",)
    await second.close()


def _writer(path: str, worker: int, count: int) -> None:
    async def run() -> None:
        cache = SqliteProofCache(path)
        for i in range(count):
            await cache.publish_proof(CacheKey.of("", [f"⊢ goal {i}"]), [f"tac{worker}"] * (1 + (i + worker) % 3))
            await cache.publish_dead(CacheKey.of("", [f"⊢ dead {worker} {i}"]))
            await cache.lookup(CacheKey.of("", [f"⊢ goal {(i * 7) % count}"]))
        await cache.close()

    asyncio.run(run())


async def test_sqlite_is_safe_for_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    SqliteProofCache(path)  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = SqliteProofCache(path)
    stats = await cache.stats()
    assert stats.entries == 60 + 3 * 60
    # every goal kept its shortest script (length 1 exists for each i across the three writers)
    for i in range(60):
        entry = await cache.lookup(CacheKey.of("", [f"⊢ goal {i}"]))
        assert entry is not None and entry.kind == "proof" and len(entry.tactics) == 1
    await cache.close()
