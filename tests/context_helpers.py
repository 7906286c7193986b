"""`make_ctx`: a `StrategyContext` for unit tests, with stand-ins where a test needs no service.

The default Lean session is a `ScriptedLeanSession` on which every tactic fails (whole-proof
tests never step tactics); tests of tactic search pass their own session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.config import ProverConfig
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import LeanSession, StepKind
from prover.llm.base import Sampler
from prover.search.base import PROVER_ROLE, Services, StrategyContext


def no_lean() -> ScriptedLeanSession:
    return ScriptedLeanSession(("⊢ False",), lambda goals, tactic: Transition(StepKind.ERROR, error="no Lean here"))


def make_services(
    sampler: Sampler | None,
    checker: Any,
    *,
    lean: LeanSession | None = None,
    proof_cache: Any = None,
    samplers: dict[str, Sampler] | None = None,
) -> Services:
    roles = dict(samplers or {})
    if sampler is not None:
        roles.setdefault(PROVER_ROLE, sampler)
    return Services(samplers=roles, checker=checker, lean=lean or no_lean(), proof_cache=proof_cache)


def make_ctx(
    config: ProverConfig,
    sampler: Sampler | None = None,
    checker: Any = None,
    *,
    lean: LeanSession | None = None,
    proof_cache: Any = None,
    samplers: dict[str, Sampler] | None = None,
    artifacts: Path | None = None,
) -> StrategyContext:
    services = make_services(sampler, checker, lean=lean, proof_cache=proof_cache, samplers=samplers)
    return StrategyContext.from_services(config, services, artifacts=artifacts)
