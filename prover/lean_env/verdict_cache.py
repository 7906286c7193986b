"""Content-addressed verdict cache: (environment, statement, proof, rules) -> Verdict.

The key hashes everything that can change a verdict: workspace, Lean version, REPL command, header, statement,
the model's proof text and a fingerprint of the checker's rules (the ban list's own definitions,
the assembler's and checker's versions, allowed axioms, the replay tool), so changing a rule or
the allow-list never serves a stale verdict. Storage is one SQLite file in WAL mode
with a busy timeout, safe for several processes (eval workers, Ray actors on one node) at once.
Identical checks in flight in the same event loop are computed once: later callers await the
first caller's future.

Only answers about the proof are stored (PROVED, FAILED, REJECTED). TIMEOUT and ERROR (crash,
out of memory, infrastructure) depend on load, limits and luck rather than on the proof; caching
them would turn one overloaded minute into a permanent wrong answer, so they are always re-checked.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from prover.config import CacheConfig, user_cache_dir
from prover.lean_env.inflight import InFlight
from prover.types import CheckStatus, Verdict, content_hash

CACHEABLE: frozenset[CheckStatus] = frozenset({CheckStatus.PROVED, CheckStatus.FAILED, CheckStatus.REJECTED})
DEFAULT_FILE = "prover-cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass
class CacheStats:
    """Counters of one cache object (this process only)."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    deduped: int = 0
    """Callers that awaited an identical check already in flight instead of running it."""


def verdict_key(
    *, workspace: str, lean_version: str, repl_cmd: str, header: str, statement: str, proof: str, rules: str
) -> str:
    """The content address of one check. `repl_cmd` is the configured REPL command line ("" for
    the workspace's own REPL): a verdict of another REPL (the simulated one, another build) on
    the same workspace must never be served."""
    return content_hash("verdict/v1", workspace, lean_version, repl_cmd, header, statement, proof, rules)


class VerdictCache:
    """SQLite-backed verdict store with in-flight deduplication.

    Args:
        path: SQLite file (created with its folder), `":memory:"` for a private in-memory store,
            or None for `<user cache dir>/prover-cache.sqlite`.
        busy_timeout: seconds a writer waits for another process's lock before failing.

    Examples:
        >>> cache = VerdictCache(":memory:")
        >>> cache.get("missing") is None
        True
    """

    def __init__(self, path: Path | str | None = None, *, busy_timeout: float = 30.0) -> None:
        if path is None:
            path = user_cache_dir() / DEFAULT_FILE
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute(_SCHEMA)
        self._inflight: InFlight[str, Verdict] = InFlight()
        self.stats = CacheStats()

    @classmethod
    def from_config(cls, config: CacheConfig) -> VerdictCache | None:
        """The configured cache, or None when caching is disabled."""
        return cls(config.path) if config.enabled else None

    # -- synchronous store --------------------------------------------------------------------
    def get(self, key: str) -> Verdict | None:
        """The stored verdict (marked `cached=True`), or None."""
        with self._lock:
            row = self._conn.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Verdict.model_validate_json(row[0]).model_copy(update={"cached": True})

    def put(self, key: str, verdict: Verdict) -> bool:
        """Store a verdict if its status is cacheable; returns whether it was stored."""
        if verdict.status not in CACHEABLE:
            return False
        data = verdict.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO verdicts (key, verdict, created) VALUES (?, ?, ?)", (key, data, time.time())
            )
        self.stats.stored += 1
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- async front door -----------------------------------------------------------------------
    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[Verdict]]) -> Verdict:
        """Cached verdict, or the result of an identical check in flight, or `compute()` (stored).

        Waiters on an in-flight check get its verdict marked `cached=True`; if that check fails
        or is cancelled, they run the check themselves.
        """
        verdict, shared = await self._inflight.run(key, lambda: self._lookup_or_compute(key, compute))
        if shared:
            self.stats.deduped += 1
            return verdict.model_copy(update={"cached": True})
        return verdict

    async def _lookup_or_compute(self, key: str, compute: Callable[[], Awaitable[Verdict]]) -> Verdict:
        hit = await asyncio.to_thread(self.get, key)
        if hit is not None:
            self.stats.hits += 1
            return hit
        self.stats.misses += 1
        verdict = await compute()
        await asyncio.to_thread(self.put, key, verdict)
        return verdict
