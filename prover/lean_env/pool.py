"""A warm pool of REPL workers keyed by (workspace, Lean version, header).

Callers lease a worker exclusively (`async with pool.lease(key) as w:`); its header was elaborated
once when the process started and every request reuses that env. Callers that find no worker
wait in one FIFO queue; a released worker goes straight to the first waiter it suits (one wake-up,
no herd), so a worker is idle between two requests only for the time of one hand-off. The pool:

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
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from prover.config import LeanConfig
from prover.errors import PoolClosed, PoolOverloaded, ProverError, ReplError
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.lease import WorkerLease
from prover.lean_env.results import EnvKey, OutcomeKind, PoolStats, WorkerRef
from prover.lean_env.worker import Outcome, ReplWorker

__all__ = ["LeanPool"]

SlotState = Literal["starting", "idle", "busy", "restarting"]
BACKGROUND_GRACE_S = 10.0
"""How long `close` waits for background restarts and closes before cancelling them."""
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


@dataclass(eq=False)
class _Waiter:
    """A caller queued for a worker: what it needs, and where its slot is handed over."""

    key: EnvKey
    affinity: WorkerRef | None
    slot: asyncio.Future[_Slot]


class LeanPool:
    """Warm, header-keyed REPL workers with LRU eviction, recycling, back-pressure and affinity."""

    def __init__(self, config: LeanConfig, *, launcher: ReplLauncher | None = None) -> None:
        self.config = config
        self.launcher = launcher or ReplLauncher.from_config(config)
        self._slots: dict[int, _Slot] = {}
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._counters: collections.Counter[str] = collections.Counter()
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
    async def lease(
        self, key: EnvKey, *, affinity: WorkerRef | None = None, fresh: bool = False
    ) -> AsyncIterator[WorkerLease]:
        """Exclusive use of a warm worker for `key` (see module docstring for affinity).

        `fresh`: a process that has served no request yet (restarted first if it has), for a retry
        after a failure the work may not have caused: whatever state the earlier process was in,
        the retry does not inherit it.
        """
        slot = await self._acquire(key, affinity)
        if fresh and slot.worker.alive and slot.worker.uses > 0:
            self._counters["restarts"] += 1
            try:
                await slot.worker.restart()
            except BaseException:
                self._release(slot)
                raise
        lease = WorkerLease(slot.worker, self)
        try:
            yield lease
        finally:
            lease.released = True
            self._release(slot)

    async def warm(self, headers: Sequence[str], workers: int) -> None:
        """Start up to `workers` idle workers for `headers` (round-robin) in the free capacity, so
        the first requests find them ready instead of waiting for a process start and a header
        import. A worker that fails to start is dropped: the next lease starts one and reports it.
        """
        keys = [self.env_key(h) for h in dict.fromkeys(headers)]
        if not keys or self._closed:
            return
        slots = []
        while len(self._slots) < self.config.workers and len(slots) < workers:
            slots.append(self._new_slot(keys[len(slots) % len(keys)]))

        async def start(slot: _Slot) -> None:
            with contextlib.suppress(ProverError):
                await self._start(slot)
                self._release(slot)

        await asyncio.gather(*(start(slot) for slot in slots))

    def stats(self) -> PoolStats:
        fields = {name: self._counters[name] for name in PoolStats.model_fields if name in self._counters}
        busy = sum(1 for s in self._slots.values() if s.state != "idle")
        return PoolStats(**fields, workers=len(self._slots), busy=busy, waiting=len(self._waiters))

    def workers(self) -> list[tuple[WorkerRef, EnvKey, str]]:
        """(ref, key, state) of every worker, for diagnostics and tests."""
        return [(s.worker.ref, s.key, s.state) for s in self._slots.values()]

    async def close(self) -> None:
        """Refuse new leases, wake waiters (PoolClosed), kill every process."""
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.slot.done():
                waiter.slot.set_exception(PoolClosed("the Lean pool was closed while waiting for a worker"))
        await asyncio.gather(*(s.worker.close() for s in self._slots.values()), return_exceptions=True)
        self._slots.clear()
        # What runs in the background restarts or closes workers that are now killed, so it ends
        # within a reap; cancelled at once it could leave a child unreaped past the event loop.
        if self._background:
            _, stuck = await asyncio.wait(set(self._background), timeout=BACKGROUND_GRACE_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

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
        # An idle slot here is one no queued caller can use (releases hand slots to waiters first).
        slot = self._choose(key, affinity)
        if slot is None:
            slot = await self._wait(key, affinity)
        if slot.state == "starting" or not slot.worker.alive:  # new, or died while idle
            await self._start(slot)
        else:
            self._counters["reuses"] += 1
        return slot

    async def _wait(self, key: EnvKey, affinity: WorkerRef | None) -> _Slot:
        """Queue for a slot; `_dispatch` hands it over (already marked busy or starting)."""
        if len(self._waiters) >= self.config.queue_limit:
            self._counters["rejected"] += 1
            raise PoolOverloaded(f"{len(self._waiters)} requests already wait for a Lean worker (queue_limit)")
        waiter = _Waiter(key, affinity, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await waiter.slot
        except asyncio.CancelledError:
            if waiter.slot.done() and not waiter.slot.cancelled() and waiter.slot.exception() is None:
                self._give_back(waiter.slot.result())  # handed over just as the caller gave up
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _dispatch(self) -> None:
        """Hand free slots to queued callers, first come first served (a caller pinned to a busy
        worker, or needing an eviction that cannot happen yet, does not hold up the ones behind)."""
        passed: list[_Waiter] = []
        while self._waiters and self._has_room():
            waiter = self._waiters.popleft()
            if waiter.slot.done():  # cancelled while queued
                continue
            slot = self._choose(waiter.key, waiter.affinity)
            if slot is None:
                passed.append(waiter)
            else:
                waiter.slot.set_result(slot)
        self._waiters.extendleft(reversed(passed))

    def _has_room(self) -> bool:
        """Whether `_choose` could find anything: an idle slot, or capacity for a new one."""
        return len(self._slots) < self.config.workers or any(s.state == "idle" for s in self._slots.values())

    def _give_back(self, slot: _Slot) -> None:
        """Return a slot that was handed to a caller who never used it."""
        if slot.state == "starting":  # reserved, never started: free the capacity
            self._slots.pop(slot.worker.worker_id, None)
        else:
            slot.state = "idle"
        self._dispatch()

    def _choose(self, key: EnvKey, affinity: WorkerRef | None) -> _Slot | None:
        """Pick (and mark busy) a slot, or None to wait. Synchronous, so no other caller can
        pick between the choice and the marking."""
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
            self._dispatch()
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
            self._dispatch()
            self._trim_idle()

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
            self._dispatch()

    def _trim_idle(self) -> None:
        limit = self.config.max_idle_workers or self.config.workers
        idle = sorted((s for s in self._slots.values() if s.state == "idle"), key=lambda s: s.last_used)
        for slot in idle[: max(0, len(idle) - limit)]:
            self._evict(slot)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
