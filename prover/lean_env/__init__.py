"""Everything that talks to Lean: REPL protocol, worker processes, the warm pool, the simulated REPL."""

from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.lease import WorkerLease
from prover.lean_env.pool import LeanPool
from prover.lean_env.protocol import (
    CommandRequest,
    CommandResponse,
    FileRequest,
    PickleEnvRequest,
    PickleProofStateRequest,
    ProofStepResponse,
    Reply,
    ReplErrorResponse,
    Request,
    Sorry,
    TacticInfo,
    TacticRequest,
    UnpickleEnvRequest,
    UnpickleProofStateRequest,
    encode_request,
    parse_reply,
)
from prover.lean_env.results import (
    EnvHandle,
    EnvKey,
    OutcomeKind,
    PoolStats,
    ProofStateHandle,
    ReplResult,
    WorkerRef,
)
from prover.lean_env.session import (
    CommandOutcome,
    GoalState,
    LeanSession,
    PoolLeanSession,
    SorryHole,
    StartOutcome,
    StateOrigin,
    StepBatch,
    StepKind,
    StepOutcome,
)
from prover.lean_env.simulated_lean import Scenario, simulated_repl_command
from prover.lean_env.worker import ReplWorker

__all__ = [
    "CommandOutcome",
    "CommandRequest",
    "CommandResponse",
    "GoalState",
    "LeanSession",
    "PoolLeanSession",
    "SorryHole",
    "StartOutcome",
    "StateOrigin",
    "StepBatch",
    "StepKind",
    "StepOutcome",
    "EnvHandle",
    "EnvKey",
    "FileRequest",
    "LeanPool",
    "OutcomeKind",
    "PickleEnvRequest",
    "PickleProofStateRequest",
    "PoolStats",
    "ProofStateHandle",
    "ProofStepResponse",
    "Reply",
    "ReplErrorResponse",
    "ReplLauncher",
    "ReplResult",
    "ReplWorker",
    "Request",
    "Scenario",
    "Sorry",
    "TacticInfo",
    "TacticRequest",
    "UnpickleEnvRequest",
    "UnpickleProofStateRequest",
    "WorkerLease",
    "WorkerRef",
    "encode_request",
    "parse_reply",
    "simulated_repl_command",
]

# Checker side (preflight, assembly, checker, verdict cache).
from prover.lean_env.assemble import AssembledProof, AssemblyRejected, assemble  # noqa: E402
from prover.lean_env.checker import ProofChecker  # noqa: E402
from prover.lean_env.preflight import BAN_ITEMS, DEFAULT_BANNED, PreflightResult, preflight  # noqa: E402
from prover.lean_env.verdict_cache import VerdictCache  # noqa: E402

__all__ += [
    "AssembledProof",
    "AssemblyRejected",
    "BAN_ITEMS",
    "DEFAULT_BANNED",
    "PreflightResult",
    "ProofChecker",
    "VerdictCache",
    "assemble",
    "preflight",
]
