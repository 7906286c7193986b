"""Values the Lean pool hands out: keys, generation-stamped handles, classified results, stats.

They are plain frozen pydantic models so they cross process boundaries (Ray) unchanged. A handle
names the worker *and the process generation* that created it: after a restart the REPL's ids
mean something else, so an old handle is refused (StaleHandleError) instead of answered wrongly.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict

from prover.lean_env.protocol import Reply

FROZEN = ConfigDict(frozen=True, extra="forbid")


class EnvKey(BaseModel):
    """What makes two workers interchangeable: same workspace, Lean version and header."""

    model_config = FROZEN
    workspace: str
    lean_version: str
    header: str


class WorkerRef(BaseModel):
    model_config = FROZEN
    worker_id: int
    generation: int


class EnvHandle(BaseModel):
    model_config = FROZEN
    worker: WorkerRef
    env: int


class ProofStateHandle(BaseModel):
    model_config = FROZEN
    worker: WorkerRef
    proof_state: int


class OutcomeKind(str, Enum):
    """How a request ended. Only INFRASTRUCTURE is retried; the rest are deterministic answers.

    For tactic replies, OK covers "Completed" and "Incomplete: open goals remain" (a good step);
    INCOMPLETE means sorry / metavariables; LEAN_ERROR an error message, a thrown tactic or a
    kernel rejection.
    """

    OK = "ok"
    LEAN_ERROR = "lean_error"
    INCOMPLETE = "incomplete"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    CRASH = "crash"
    INFRASTRUCTURE = "infrastructure"


class ReplResult(BaseModel):
    """One answered request. `response` is None when the process failed (timeout/crash/oom)."""

    model_config = FROZEN
    kind: OutcomeKind
    response: Reply | None = None
    env: EnvHandle | None = None
    proof_state: ProofStateHandle | None = None
    sorry_states: tuple[ProofStateHandle | None, ...] = ()
    seconds: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


class PoolStats(BaseModel):
    """Counters since the pool started (a snapshot).

    `imports`: commands without env starting with `import` (header elaborations included);
    `starts`: processes spawned; `restarts`: new processes for an existing worker (failure,
    death, recycling); `reuses`: leases served by an already-warm worker; `requests`: attempts
    sent to a process (an infrastructure retry counts twice; header elaborations are not
    requests); `timeouts`/`crashes`/`ooms`/`infra_failures`: request outcomes of those kinds (a dead worker that cannot be restarted for a request counts
    as an infrastructure failure); `retries`: infrastructure retries of requests and of worker
    starts; `evictions`: idle workers closed for another key or above `max_idle_workers`;
    `recycles`: restarts after `max_uses` requests or above `rss_limit_mb`; `cancellations`:
    workers killed because their caller was cancelled mid-request; `rejected`: leases refused
    by `queue_limit`. Gauges: `workers` (in any state), `busy` (leased, starting or
    restarting), `waiting` (callers queued for a worker)."""

    model_config = FROZEN
    imports: int = 0
    reuses: int = 0
    starts: int = 0
    restarts: int = 0
    requests: int = 0
    timeouts: int = 0
    crashes: int = 0
    ooms: int = 0
    infra_failures: int = 0
    retries: int = 0
    evictions: int = 0
    recycles: int = 0
    cancellations: int = 0
    rejected: int = 0
    workers: int = 0
    busy: int = 0
    waiting: int = 0
