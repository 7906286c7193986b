"""Shared proof cache: goal state -> proved tactic script, or a known dead end.

Search attempts (parallel passes of one problem, other problems with the same subgoal) consult it
before expanding a node and publish to it when a subtree closes. A cached proof is only a hint: the
search replays it through Lean from its own state before trusting it, and the final proof still
goes through the checker, so a wrong or stale entry costs Lean calls, never soundness.

Keys are `(header, normalised goal text)`; the header matters because the same goal text can mean
different things under different imports or `open`s.

Dead-end rule (enforced by the caller, `BestFirstSearch`): a state is published as dead only when
it was expanded and every sampled tactic failed with a deterministic Lean verdict (error,
incomplete, no progress) or led to a state that is itself a definitive dead end -- never when any
child was cut by a budget, a timeout, a crash, the depth limit or an empty sample. "Dead" is thus
relative to the sampler's candidates; searches may ignore dead entries (`use_dead_ends=False`),
and never apply one to their own root (independent pass@k attempts must each get their try).
A proof always overrides a dead entry; a dead entry never overrides a proof; a shorter proof
replaces a longer one; a proof whose replay Lean rejects, or whose assembled whole proof the
checker refuses, is retracted (compare-and-delete).

Every method takes and returns serialisable values (pydantic models, strings, tuples), so the
interface can be served by a Ray actor unchanged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.lean_env.session import normalise_goals
from prover.types import content_hash


class CacheKey(BaseModel):
    """A goal state under a header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: str
    goals: str
    """Normalised goals text (`prover.lean_env.session.normalise_goals`)."""

    @classmethod
    def of(cls, header: str, goals: Sequence[str] | str) -> CacheKey:
        text = goals if isinstance(goals, str) else normalise_goals(goals)
        return cls(header=header, goals=text)

    @property
    def digest(self) -> str:
        return content_hash("proof-cache/v1", self.header, self.goals)


class CacheEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["proof", "dead"]
    tactics: tuple[str, ...] = ()


class ProofCacheStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lookups: int = 0
    proof_hits: int = 0
    dead_hits: int = 0
    proofs_published: int = 0
    dead_published: int = 0
    retracted: int = 0
    entries: int = 0

    @property
    def misses(self) -> int:
        return self.lookups - self.proof_hits - self.dead_hits


class ProofCache(ABC):
    """What a search needs from a shared proof cache. Async so a Ray actor can serve it."""

    def __init__(self) -> None:
        self._stats = ProofCacheStats()

    async def lookup(self, key: CacheKey) -> CacheEntry | None:
        entry = await self._get(key)
        self._stats.lookups += 1
        if entry is not None:
            if entry.kind == "proof":
                self._stats.proof_hits += 1
            else:
                self._stats.dead_hits += 1
        return entry

    async def publish_proof(self, key: CacheKey, tactics: Sequence[str]) -> None:
        """Record a tactic script that closes `key` (from that state to `Completed`)."""
        if not tactics:
            raise ValueError("publish_proof: an empty tactic script proves nothing")
        self._stats.proofs_published += 1
        await self._put_proof(key, tuple(tactics))

    async def publish_dead(self, key: CacheKey) -> None:
        """Record a definitive dead end (see the module docstring for the rule)."""
        self._stats.dead_published += 1
        await self._put_dead(key)

    async def retract(self, key: CacheKey, tactics: Sequence[str]) -> None:
        """Delete the proof entry of `key` if it is still `tactics` (its replay failed in Lean).

        Compare-and-delete, so a retraction never removes a better script published meanwhile.
        """
        self._stats.retracted += 1
        await self._delete_proof(key, tuple(tactics))

    async def stats(self) -> ProofCacheStats:
        return self._stats.model_copy(update={"entries": await self._count()})

    async def close(self) -> None:
        """Release resources. Idempotent."""

    @abstractmethod
    async def _get(self, key: CacheKey) -> CacheEntry | None: ...

    @abstractmethod
    async def _put_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None: ...

    @abstractmethod
    async def _put_dead(self, key: CacheKey) -> None: ...

    @abstractmethod
    async def _delete_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None: ...

    @abstractmethod
    async def _count(self) -> int: ...


class MemoryProofCache(ProofCache):
    """In-process cache (tests, single-process runs without persistence)."""

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[str, CacheEntry] = {}

    async def _get(self, key: CacheKey) -> CacheEntry | None:
        return self._entries.get(key.digest)

    async def _put_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None:
        digest = key.digest
        old = self._entries.get(digest)
        if old is None or old.kind == "dead" or len(tactics) < len(old.tactics):
            self._entries[digest] = CacheEntry(kind="proof", tactics=tactics)

    async def _put_dead(self, key: CacheKey) -> None:
        self._entries.setdefault(key.digest, CacheEntry(kind="dead"))

    async def _delete_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None:
        if self._entries.get(key.digest) == CacheEntry(kind="proof", tactics=tactics):
            del self._entries[key.digest]

    async def _count(self) -> int:
        return len(self._entries)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS proof_cache (
    digest TEXT PRIMARY KEY,
    goals TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('proof', 'dead')),
    tactics TEXT NOT NULL,
    length INTEGER NOT NULL,
    updated REAL NOT NULL
)
"""

_UPSERT_PROOF = """
INSERT INTO proof_cache (digest, goals, kind, tactics, length, updated)
VALUES (?, ?, 'proof', ?, ?, ?)
ON CONFLICT(digest) DO UPDATE SET
    kind = 'proof', tactics = excluded.tactics, length = excluded.length, updated = excluded.updated
WHERE proof_cache.kind = 'dead' OR excluded.length < proof_cache.length
"""

_INSERT_DEAD = """
INSERT OR IGNORE INTO proof_cache (digest, goals, kind, tactics, length, updated)
VALUES (?, ?, 'dead', '[]', 0, ?)
"""


class SqliteProofCache(ProofCache):
    """SQLite-backed cache, safe for many processes on one machine (WAL, busy timeout).

    Each operation is one short transaction run in a worker thread, so the event loop never
    blocks on a lock held by another process.
    """

    def __init__(self, path: Path | str, *, busy_timeout: float = 30.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"proof cache {self.path} is closed")
            return self._conn.execute(sql, params).fetchall()

    async def _get(self, key: CacheKey) -> CacheEntry | None:
        rows = await asyncio.to_thread(
            self._run, "SELECT kind, tactics FROM proof_cache WHERE digest = ?", (key.digest,)
        )
        if not rows:
            return None
        kind, tactics = rows[0]
        return CacheEntry(kind=kind, tactics=tuple(json.loads(str(tactics))))

    async def _put_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None:
        params = (key.digest, key.goals, json.dumps(list(tactics)), len(tactics), time.time())
        await asyncio.to_thread(self._run, _UPSERT_PROOF, params)

    async def _put_dead(self, key: CacheKey) -> None:
        await asyncio.to_thread(self._run, _INSERT_DEAD, (key.digest, key.goals, time.time()))

    async def _delete_proof(self, key: CacheKey, tactics: tuple[str, ...]) -> None:
        sql = "DELETE FROM proof_cache WHERE digest = ? AND kind = 'proof' AND tactics = ?"
        await asyncio.to_thread(self._run, sql, (key.digest, json.dumps(list(tactics))))

    async def _count(self) -> int:
        rows = await asyncio.to_thread(self._run, "SELECT COUNT(*) FROM proof_cache", ())
        return int(rows[0][0])  # type: ignore[arg-type]

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
