"""Pick the proving strategy named by `config.eval.strategy`.

Strategies are imported lazily so a whole-proof run never imports the tree search (networkx) and
vice versa.
"""

from __future__ import annotations

from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.search.base import Strategy

STRATEGIES: tuple[str, ...] = ("whole_proof", "bfs")


def make_strategy(config: ProverConfig) -> Strategy:
    """Build the strategy for `config.eval.strategy` ("whole_proof" or "bfs")."""
    name = config.eval.strategy
    if name == "whole_proof":
        from prover.search.whole_proof import WholeProofStrategy

        return WholeProofStrategy()
    if name == "bfs":
        try:
            from prover.search.bfs import BestFirstStrategy
        except ImportError as exc:
            raise ConfigError(f"strategy 'bfs' is not available: {exc}") from exc
        return BestFirstStrategy()
    raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
