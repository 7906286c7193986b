"""Everything that talks to Lean: REPL protocol, worker processes, the warm pool, the simulated REPL.

The names below load on first use, like the package root's: a process that needs one of these
modules (the simulated REPL process, `prover check`) starts without importing the pool, the
workers and the checker too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prover.lazy_exports import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "launcher": ("ReplLauncher",),
    "lease": ("WorkerLease",),
    "pool": ("LeanPool",),
    "protocol": (
        "CommandRequest", "CommandResponse", "FileRequest", "PickleEnvRequest", "PickleProofStateRequest",
        "ProofStepResponse", "Reply", "ReplErrorResponse", "Request", "Sorry", "TacticInfo", "TacticRequest",
        "UnpickleEnvRequest", "UnpickleProofStateRequest", "encode_request", "parse_reply",
    ),
    "results": ("EnvHandle", "EnvKey", "OutcomeKind", "PoolStats", "ProofStateHandle", "ReplResult", "WorkerRef"),
    "session": (
        "CommandOutcome", "GoalState", "LeanSession", "PoolLeanSession", "SorryHole", "StartOutcome",
        "StateOrigin", "StepBatch", "StepKind", "StepOutcome",
    ),
    "simulated_lean": ("Scenario", "simulated_repl_command"),
    "worker": ("ReplWorker",),
    "checker": ("ProofChecker",),
    "verdict_cache": ("VerdictCache",),
}  # fmt: skip
"""Module of this package -> the names it exports here."""

_LAZY: dict[str, str] = {name: f"prover.lean_env.{module}" for module, names in _EXPORTS.items() for name in names}

# Functions named like their modules are imported now: a later `import prover.lean_env.preflight`
# would otherwise bind the package's `preflight` to the module.
from prover.lean_env.assemble import AssembledProof, AssemblyRejected, assemble  # noqa: E402
from prover.lean_env.preflight import BAN_ITEMS, DEFAULT_BANNED, PreflightResult, preflight  # noqa: E402

__all__ = sorted(
    [*_LAZY, "AssembledProof", "AssemblyRejected", "BAN_ITEMS", "DEFAULT_BANNED", "PreflightResult", "assemble", "preflight"]
)

if TYPE_CHECKING:
    from prover.lean_env.launcher import ReplLauncher
    from prover.lean_env.lease import WorkerLease
    from prover.lean_env.pool import LeanPool
    from prover.lean_env.protocol import (
        CommandRequest, CommandResponse, FileRequest, PickleEnvRequest, PickleProofStateRequest,
        ProofStepResponse, Reply, ReplErrorResponse, Request, Sorry, TacticInfo, TacticRequest,
        UnpickleEnvRequest, UnpickleProofStateRequest, encode_request, parse_reply,
    )
    from prover.lean_env.results import (
        EnvHandle, EnvKey, OutcomeKind, PoolStats, ProofStateHandle, ReplResult, WorkerRef,
    )
    from prover.lean_env.session import (
        CommandOutcome, GoalState, LeanSession, PoolLeanSession, SorryHole, StartOutcome,
        StateOrigin, StepBatch, StepKind, StepOutcome,
    )
    from prover.lean_env.simulated_lean import Scenario, simulated_repl_command
    from prover.lean_env.worker import ReplWorker
    from prover.lean_env.checker import ProofChecker
    from prover.lean_env.verdict_cache import VerdictCache


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
