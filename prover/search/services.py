"""Open the real services of a run in this process: Lean pool, checker, samplers, proof cache.

What gets opened follows the strategy's `StrategySpec`: one sampler per model role it names (roles
whose settings describe the same engine share one instance, so one vLLM engine serves a planner
and a prover of the same model), a proof cache when it `uses_proof_cache`. Ray agents build the
same `Services` from actor proxies instead (`prover.cluster.actors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prover.config import ProverConfig, SamplerConfig
from prover.lean_env.session import LeanSession
from prover.registry import get_strategy_spec
from prover.search.base import Services

__all__ = ["SAMPLING_FIELDS", "check_lean_setup", "engine_key", "lean_session", "open_samplers", "open_services"]

SAMPLING_FIELDS: frozenset[str] = frozenset({"temperature", "top_p", "max_tokens", "seed", "prompt_format"})
"""SamplerConfig fields that strategies put into each request; they do not make another engine."""


def check_lean_setup(config: ProverConfig) -> None:
    """Fail fast (before any sampling) when no Lean REPL can be started (see `ReplLauncher.require`)."""
    from prover.lean_env.launcher import ReplLauncher

    ReplLauncher.require(config.lean)


def lean_session(config: ProverConfig, repl: LeanSession) -> LeanSession:
    """The run's `LeanSession`: the REPL session, or LeanDojo in front of it (`lean.backend`)."""
    if config.lean.backend == "dojo":
        from prover.lean_env.dojo_session import DojoLeanSession

        return DojoLeanSession(repl, timeout=config.lean.timeout)
    return repl


def engine_key(config: SamplerConfig) -> str:
    """What decides which engine serves a role: every setting but the per-request sampling ones."""
    return config.model_dump_json(exclude=set(SAMPLING_FIELDS))


def open_samplers(config: ProverConfig, roles: tuple[str, ...], services: Services) -> None:
    """One sampler per distinct engine among `roles`, registered in `services` (closed with it)."""
    from prover.llm.base import make_sampler

    by_engine: dict[str, Any] = {}
    for role in roles:
        role_config = config.sampler_for(role)
        key = engine_key(role_config)
        if key not in by_engine:
            sampler = make_sampler(role_config)
            services.closers.append(sampler.close)
            by_engine[key] = sampler
        services.samplers[role] = by_engine[key]


async def open_services(config: ProverConfig) -> Services:
    """The real services of `config.eval.strategy`: Lean pool + session, checker with its verdict
    cache, the samplers of the strategy's roles, and a proof cache if it uses one."""
    check_lean_setup(config)
    from prover.lean_env.checker import ProofChecker
    from prover.lean_env.pool import LeanPool
    from prover.lean_env.retry import RetryPolicy
    from prover.lean_env.session import PoolLeanSession
    from prover.lean_env.verdict_cache import VerdictCache

    spec = get_strategy_spec(config.eval.strategy)
    services = Services(samplers={}, checker=None, lean=None)  # type: ignore[arg-type]
    try:
        pool = LeanPool(config.lean)
        await pool.__aenter__()
        services.closers.append(pool.close)
        services.lean = lean_session(config, PoolLeanSession(pool, retry=RetryPolicy.from_config(config.lean)))
        services.closers.append(services.lean.close)
        services.warm_up = pool.warm
        cache = VerdictCache.from_config(config.cache)
        if cache is not None:
            services.closers.append(_as_async(cache.close))
        services.checker = ProofChecker(pool, config.checker, cache=cache)
        if spec.uses_proof_cache:
            from prover.search.proof_cache import MemoryProofCache

            services.proof_cache = MemoryProofCache()  # shared by the run's attempts and problems
            services.closers.append(services.proof_cache.close)
        open_samplers(config, spec.roles, services)
    except BaseException:
        await services.aclose()
        raise
    return services


def _as_async(func: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        outcome = func()
        if asyncio.iscoroutine(outcome):
            await outcome

    return call
