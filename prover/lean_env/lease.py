"""What a caller holds while it uses one pooled worker: typed requests with handle checks.

Every env / proof-state handle names the worker and process generation that created it; using
it on another worker or after a restart raises StaleHandleError before anything is sent, so a
reused REPL id can never silently answer for a different state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from prover.errors import PoolClosed, StaleHandleError
from prover.lean_env.protocol import (
    CommandRequest,
    CommandResponse,
    FileRequest,
    InfotreeMode,
    PickleEnvRequest,
    PickleProofStateRequest,
    ProofStepResponse,
    Request,
    TacticRequest,
    UnpickleEnvRequest,
    UnpickleProofStateRequest,
)
from prover.lean_env.results import EnvHandle, OutcomeKind, ProofStateHandle, ReplResult, WorkerRef
from prover.lean_env.worker import Outcome, ReplWorker

if TYPE_CHECKING:
    from prover.lean_env.pool import LeanPool

EnvArg = EnvHandle | None | Literal["header"]
Handle = EnvHandle | ProofStateHandle


class WorkerLease:
    """Exclusive use of one warm worker until the `async with pool.lease(...)` block ends."""

    def __init__(self, worker: ReplWorker, pool: LeanPool) -> None:
        self._worker = worker
        self._pool = pool
        self.released = False

    @property
    def worker(self) -> WorkerRef:
        """The worker and its *current* generation (changes if the process restarted)."""
        return self._worker.ref

    @property
    def header_env(self) -> EnvHandle | None:
        """The header's env in the current generation; None when the header is empty."""
        env = self._worker.header_env
        return None if env is None else EnvHandle(worker=self.worker, env=env)

    # -- typed requests -----------------------------------------------------------------------
    async def command(
        self,
        cmd: str,
        *,
        env: EnvArg = "header",
        all_tactics: bool = False,
        root_goals: bool = False,
        infotree: InfotreeMode | None = None,
        timeout: float | None = None,
    ) -> ReplResult:
        """Elaborate `cmd` on `env` ("header" = the worker's header env, None = fresh)."""
        opts = {"all_tactics": all_tactics or None, "root_goals": root_goals or None, "infotree": infotree}
        return await self._send(lambda e: CommandRequest(cmd=cmd, env=e, **opts), env, timeout)

    async def file(self, path: str, *, env: EnvArg = "header", all_tactics: bool = False, timeout: float | None = None) -> ReplResult:
        return await self._send(lambda e: FileRequest(path=path, env=e, all_tactics=all_tactics or None), env, timeout)

    async def tactic(self, state: ProofStateHandle, tactic: str, *, timeout: float | None = None) -> ReplResult:
        """Run one tactic on a proof state; failed tactics come back as data (LEAN_ERROR)."""
        return await self._send(lambda _: TacticRequest(tactic=tactic, proof_state=state.proof_state), state, timeout)

    async def pickle_env(self, env: EnvHandle, path: str, *, timeout: float | None = None) -> ReplResult:
        return await self._send(lambda _: PickleEnvRequest(pickle_to=path, env=env.env), env, timeout)

    async def unpickle_env(self, path: str, *, timeout: float | None = None) -> ReplResult:
        return await self._send(lambda _: UnpickleEnvRequest(unpickle_env_from=path), None, timeout)

    async def pickle_proof_state(self, state: ProofStateHandle, path: str, *, timeout: float | None = None) -> ReplResult:
        req = lambda _: PickleProofStateRequest(pickle_to=path, proof_state=state.proof_state)
        return await self._send(req, state, timeout)

    async def unpickle_proof_state(self, path: str, *, env: EnvArg = None, timeout: float | None = None) -> ReplResult:
        return await self._send(lambda e: UnpickleProofStateRequest(unpickle_proof_state_from=path, env=e), env, timeout)

    # -- plumbing -------------------------------------------------------------------------------
    async def _send(self, build: Callable[[int | None], Request], handle: EnvArg | ProofStateHandle, timeout: float | None) -> ReplResult:
        """Check handles, send, retry infrastructure failures while no explicit handle is involved."""
        retries = self._pool.config.infra_retries
        explicit = isinstance(handle, (EnvHandle, ProofStateHandle))
        for attempt in range(retries + 1):
            self._check_usable(handle)
            if not self._worker.alive:
                out = await self._revive()
                if out is not None:
                    self._pool.record(out, sent=False)
                    return make_result(out, self._worker.worker_id)
                self._check_usable(handle)  # explicit handles are stale now
            req = build(self._env_id(handle))
            out = await self._worker.run(req, timeout=timeout or self._pool.config.timeout)
            retry = out.kind is OutcomeKind.INFRASTRUCTURE and attempt < retries and not explicit
            self._pool.record(out, retried=retry)
            if not retry:
                return make_result(out, self._worker.worker_id)
        raise AssertionError("unreachable")

    async def _revive(self) -> Outcome | None:
        """Restart a worker that died between requests; an INFRASTRUCTURE outcome if that fails."""
        try:
            await self._worker.restart()
        except Exception as exc:  # noqa: BLE001 - reported as data, like every REPL failure
            return Outcome(OutcomeKind.INFRASTRUCTURE, None, 0.0, f"cannot restart REPL: {exc}", self._worker.generation)
        return None

    def _env_id(self, handle: EnvArg | ProofStateHandle) -> int | None:
        if handle == "header":
            return self._worker.header_env
        if isinstance(handle, EnvHandle):
            return handle.env
        return None

    def _check_usable(self, handle: EnvArg | ProofStateHandle) -> None:
        if self.released:
            raise StaleHandleError("this worker lease was released; lease the pool again")
        if self._worker.closed:
            raise PoolClosed("the Lean pool was closed while this lease was held")
        if isinstance(handle, (EnvHandle, ProofStateHandle)) and handle.worker != self.worker:
            raise StaleHandleError(
                f"handle from worker {handle.worker.worker_id} generation {handle.worker.generation} used on "
                f"worker {self.worker.worker_id} generation {self.worker.generation} (process restarted or "
                "another worker): re-create the env / proof state"
            )


def make_result(out: Outcome, worker_id: int) -> ReplResult:
    """Attach generation-stamped handles to a worker outcome."""
    ref = WorkerRef(worker_id=worker_id, generation=out.generation)
    reply = out.response
    env = EnvHandle(worker=ref, env=reply.env) if isinstance(reply, CommandResponse) else None
    state = ProofStateHandle(worker=ref, proof_state=reply.proof_state) if isinstance(reply, ProofStepResponse) else None
    sorry_states = tuple(
        ProofStateHandle(worker=ref, proof_state=s.proof_state) if s.proof_state is not None else None
        for s in getattr(reply, "sorries", ())
    )
    return ReplResult(
        kind=out.kind,
        response=reply,
        env=env,
        proof_state=state,
        sorry_states=sorry_states,
        seconds=out.seconds,
        detail=out.detail,
    )
