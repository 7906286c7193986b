"""Which failures of a Lean request are retried, and how often: one rule for checks and tactic steps.

A crash, an out-of-memory kill or an infrastructure failure can be the proof's doing (a tactic
that blows the stack every time) or an accident (another request bloated the process, the node
killed it, the process was recycled under it). Running the same work once more on a fresh
process tells the two apart: an accident passes, a proof that kills Lean keeps killing it and
keeps its verdict after `retries` more tries. Lean's own answers (errors, sorry, a completed
proof) are never retried; a timeout only when the configuration says so, since a proof that is
too slow is, by default, too slow.
"""

from __future__ import annotations

from dataclasses import dataclass

from prover.config import LeanConfig
from prover.lean_env.results import OutcomeKind
from prover.types import CheckStatus, Verdict

__all__ = ["RetryPolicy"]

_ACCIDENTS = frozenset({OutcomeKind.CRASH, OutcomeKind.OUT_OF_MEMORY, OutcomeKind.INFRASTRUCTURE})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retries` more tries after a failure of a kind in `retried_kinds` (see module docstring)."""

    retries: int = 2
    retry_timeouts: bool = False

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    @classmethod
    def from_config(cls, config: LeanConfig) -> RetryPolicy:
        return cls(retries=config.retries, retry_timeouts=config.retry_timeouts)

    @property
    def tries(self) -> int:
        """Tries in total, the first included."""
        return self.retries + 1

    def retried(self, kind: OutcomeKind) -> bool:
        """Whether a request that ended as `kind` is worth another try on a fresh process."""
        return kind in _ACCIDENTS or (self.retry_timeouts and kind is OutcomeKind.TIMEOUT)

    def retried_verdict(self, verdict: Verdict) -> bool:
        """The same rule for a checker verdict: ERROR (crash, out of memory, infrastructure), and
        TIMEOUT when timeouts are retried."""
        return verdict.status is CheckStatus.ERROR or (self.retry_timeouts and verdict.status is CheckStatus.TIMEOUT)
