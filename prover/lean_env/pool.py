"""A warm pool of REPL workers keyed by (workspace, Lean version, header).

Callers lease a worker exclusively (`async with pool.lease(key) as w:`); its header was elaborated
once when the process started and every request reuses that env. The pool, built on one
`asyncio.Condition`:

- starts workers up to `config.workers`; when a new key needs a slot and none is free, evicts
  the least-recently-used idle worker of another key;
- recycles a worker (fresh process, header re-elaborated) after `max_uses` requests or above
  `rss_limit_mb`, and restarts dead ones, in the background so no caller waits for it;
- bounds the number of waiting callers (`queue_limit` -> PoolOverloaded) and survives
  cancellation: a caller cancelled mid-request gets its worker killed and restarted;
- honours affinity: `lease(key, affinity=ref)` waits for that worker while it is alive with the
  same generation, so a search keeps using the process that holds its proof states;
- retries infrastructure failures (the request never reached Lean) `infra_retries` times; Lean
  errors, timeouts, crashes and OOM are answers, never retried.

Example:
    async with LeanPool(config) as pool:
        async with pool.lease(pool.env_key("import Mathlib")) as w:
            result = await w.command("theorem t : 1 + 1 = 2 := by norm_num")
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from prover.config import LeanConfig
from prover.errors import PoolClosed, PoolOverloaded, ReplError
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.lease import WorkerLease
from prover.lean_env.results import EnvKey, OutcomeKind, PoolStats, WorkerRef
from prover.lean_env.worker import Outcome, ReplWorker

__all__ = ["LeanPool"]

SlotState = Literal["starting", "idle", "busy", "restarting"]
_OUTCOME_COUNTERS = {
    OutcomeKind.TIMEOUT: "timeouts",
    OutcomeKind.CRASH: "crashes",
    OutcomeKind.OUT_OF_MEMORY: "ooms",
    OutcomeKind.INFRASTRUCTURE: "infra_failures",
}


@dataclass(eq=False)
class _Slot:
    worker: ReplWorker
    key: EnvKey
    state: SlotState
    last_used: float = field(default_factory=time.monotonic)


class LeanPool:
    """Warm, header-keyed REPL workers with LRU eviction, recycling, back-pressure and affinity."""

    def __init__(self, config: LeanConfig, *, launcher: ReplLauncher | None = None) -> None:
        self.config = config
        self.launcher = launcher or ReplLauncher.from_config(config)
        self._slots: dict[int, _Slot] = {}
        self._cond = asyncio.Condition()
        self._counters: collections.Counter[str] = collections.Counter()
        self._waiting = 0
        self._next_id = 0
        self._closed = False
        self._background: set[asyncio.Task] = set()

    # -- public API -------------------------------------------------------------------------
    async def __aenter__(self) -> LeanPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def env_key(self, header: str) -> EnvKey:
        workspace = str(self.config.workspace) if self.config.workspace else ""
        return EnvKey(workspace=workspace, lean_version=self.config.lean_version, header=header)

    @asynccontextmanager
    async def lease(self, key: EnvKey, *, affinity: WorkerRef | None = None) -> AsyncIterator[WorkerLease]:
        """Exclusive use of a warm worker for `key` (see module docstring for affinity)."""
        slot = await self._acquire(key, affinity)
        lease = WorkerLease(slot.worker, self)
        try:
            yield lease
        finally:
            lease.released = True
            self._release(slot)

    def stats(self) -> PoolStats:
        fields = {name: self._counters[name] for name in PoolStats.model_fields if name in self._counters}
        busy = sum(1 for s in self._slots.values() if s.state != "idle")
        return PoolStats(**fields, workers=len(self._slots), busy=busy, waiting=self._waiting)

    def workers(self) -> list[tuple[WorkerRef, EnvKey, str]]:
        """(ref, key, state) of every worker, for diagnostics and tests."""
        return [(s.worker.ref, s.key, s.state) for s in self._slots.values()]

    async def close(self) -> None:
        """Refuse new leases, wake waiters (PoolClosed), kill every process."""
        if self._closed:
            return
        self._closed = True
        async with self._cond:
            self._cond.notify_all()
        await asyncio.gather(*(s.worker.close() for s in self._slots.values()), return_exceptions=True)
        self._slots.clear()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- used by WorkerLease ----------------------------------------------------------------
    def record(self, out: Outcome, *, retried: bool = False, sent: bool = True) -> None:
        """Count one request's outcome (`sent=False`: it failed before reaching a process)."""
        self._counters["requests"] += sent
        if out.kind in _OUTCOME_COUNTERS:
            self._counters[_OUTCOME_COUNTERS[out.kind]] += 1
        if retried:
            self._counters["retries"] += 1

    # -- acquiring --------------------------------------------------------------------------
    async def _acquire(self, key: EnvKey, affinity: WorkerRef | None) -> _Slot:
        if self._closed:
            raise PoolClosed("the Lean pool is closed")
        if self._waiting >= self.config.queue_limit:
            self._counters["rejected"] += 1
            raise PoolOverloaded(f"{self._waiting} requests already wait for a Lean worker (queue_limit)")
        self._waiting += 1
        try:
            async with self._cond:
                while True:
                    if self._closed:
                        raise PoolClosed("the Lean pool was closed while waiting for a worker")
                    slot = self._choose(key, affinity)
                    if slot is not None:
                        break
                    await self._cond.wait()
        finally:
            self._waiting -= 1
        if slot.state == "starting" or not slot.worker.alive:  # new, or died while idle
            await self._start(slot)
        else:
            self._counters["reuses"] += 1
        return slot

    def _choose(self, key: EnvKey, affinity: WorkerRef | None) -> _Slot | None:
        """Pick (and mark busy) a slot, or None to wait. Called with the condition held."""
        pinned = self._slots.get(affinity.worker_id) if affinity else None
        if pinned and affinity and pinned.key == key and pinned.worker.generation == affinity.generation:
            if pinned.state == "idle":
                pinned.state = "busy"
                return pinned
            if pinned.state == "busy":
                return None  # alive and ours: wait for it
        idle = [s for s in self._slots.values() if s.state == "idle"]
        same = [s for s in idle if s.key == key]
        if same:
            slot = max(same, key=lambda s: s.last_used)
            slot.state = "busy"
            return slot
        if len(self._slots) >= self.config.workers:
            if not idle:
                return None
            self._evict(min(idle, key=lambda s: s.last_used))
        return self._new_slot(key)

    def _new_slot(self, key: EnvKey) -> _Slot:
        self._next_id += 1
        worker = ReplWorker(self._next_id, self.launcher, self.config, key.header, self._counters)
        slot = _Slot(worker, key, "starting")
        self._slots[worker.worker_id] = slot
        return slot

    def _evict(self, slot: _Slot) -> None:
        self._counters["evictions"] += 1
        self._slots.pop(slot.worker.worker_id, None)
        self._spawn(slot.worker.close())

    async def _start(self, slot: _Slot) -> None:
        """First start of a reserved slot, retrying infrastructure failures; frees it on failure."""
        try:
            for attempt in range(self.config.infra_retries + 1):
                try:
                    if slot.worker.generation:
                        self._counters["restarts"] += 1
                    await slot.worker.start()
                    break
                except ReplError:
                    if attempt == self.config.infra_retries or self._closed:
                        raise
                    self._counters["retries"] += 1
            slot.state = "busy"
        except BaseException:
            self._slots.pop(slot.worker.worker_id, None)
            slot.worker.kill_now("start failed")
            self._spawn(slot.worker.close())
            self._spawn(self._notify())
            raise

    # -- releasing --------------------------------------------------------------------------
    def _release(self, slot: _Slot) -> None:
        """Return a worker; dead, worn-out or bloated ones are restarted in the background."""
        slot.last_used = time.monotonic()
        worker = slot.worker
        if self._closed or slot.worker.worker_id not in self._slots:
            self._spawn(worker.close())
            return
        if not worker.alive:
            if worker.kill_reason.startswith("cancel"):
                self._counters["cancellations"] += 1
            self._refresh(slot, recycle=False)
        elif self._worn_out(slot):
            self._refresh(slot, recycle=True)
        else:
            slot.state = "idle"
            self._trim_idle()
        self._spawn(self._notify())

    def _worn_out(self, slot: _Slot) -> bool:
        cfg = self.config
        if cfg.max_uses and slot.worker.uses >= cfg.max_uses:
            return True
        return bool(cfg.rss_limit_mb) and slot.worker.rss_mb() > (cfg.rss_limit_mb or 0)

    def _refresh(self, slot: _Slot, *, recycle: bool) -> None:
        slot.state = "restarting"
        if recycle:
            self._counters["recycles"] += 1
        self._spawn(self._restart(slot))

    async def _restart(self, slot: _Slot) -> None:
        try:
            await slot.worker.restart()
            slot.state = "idle"
        except Exception:  # noqa: BLE001 - a worker that cannot restart leaves the pool
            self._slots.pop(slot.worker.worker_id, None)
            await slot.worker.close()
        finally:
            if slot.state != "idle":
                self._slots.pop(slot.worker.worker_id, None)
            await self._notify()

    def _trim_idle(self) -> None:
        limit = self.config.max_idle_workers or self.config.workers
        idle = sorted((s for s in self._slots.values() if s.state == "idle"), key=lambda s: s.last_used)
        for slot in idle[: max(0, len(idle) - limit)]:
            self._evict(slot)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
