"""An episode's records: every nested attempt it makes, found again by step when it resumes.

Each piece of work of an episode has a step id that says where in the episode it happens, the
same in every run of it:

    p<plan>.t<turn>            a planner call and the check of its sketch        kind "sketch"
    p<plan>.g<goal>            a hole's sub-prover job (its samples/searches)    kind "subgoal"
    p<plan>.g<goal>.d          that hole decomposed (its stitched lemma proof)   kind "subgoal"
    p<plan>.s                  a stitched proof that is not the episode's answer kind "stitched"
    p<plan>.g<goal>/p0.t0 ...  steps of a decomposition (a scope of its own)

(`Attempt.extra["step"]`). Resuming, an episode walks the same steps and takes the recorded
result of every step that has one (a planner reply, a sketch verdict, a job's outcome, a stitched
verdict) instead of doing it again. A job's outcome is written with its last attempt, so a job
cut off halfway is run again. Nested attempts are numbered per kind, new ones after every
recorded one. The episode's own attempt (kind "proof", `sample_index` = the episode) is written
last with the episode's tallies for the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from prover.planner.subgoal import SubgoalOutcome
from prover.search.base import RecordAttempt
from prover.types import Attempt, Problem

__all__ = ["OUTCOME", "STEP", "EpisodeLog", "SKETCH", "STITCHED", "SUBGOAL"]

SKETCH, SUBGOAL, STITCHED = "sketch", "subgoal", "stitched"
STEP = "step"
OUTCOME = "outcome"
"""`extra` key of the attempt that closes a job: the job's `SubgoalOutcome` (without attempts)."""


class EpisodeLog:
    """The nested attempts of one episode: recorded by an earlier run, and new ones."""

    def __init__(self, problem: Problem, episode: int, strategy: str, recorded: Sequence[Attempt],
                 record: RecordAttempt) -> None:
        self.problem = problem
        self.episode = episode
        self.strategy = strategy
        self._record = record
        self.attempts: list[Attempt] = []
        self._steps: dict[tuple[str, str], list[Attempt]] = {}
        self._next: dict[str, int] = {}
        for attempt in sorted(recorded, key=lambda a: (a.kind, a.sample_index)):
            self._index(attempt)

    def _index(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self._steps.setdefault((attempt.kind, str(attempt.extra.get(STEP, ""))), []).append(attempt)
        self._next[attempt.kind] = max(self._next.get(attempt.kind, 0), attempt.sample_index + 1)

    # -- what an earlier run recorded ----------------------------------------------------------

    def sketch(self, step: str) -> Attempt | None:
        found = self._steps.get((SKETCH, step))
        return found[-1] if found else None

    def stitched(self, step: str) -> Attempt | None:
        found = self._steps.get((STITCHED, step))
        return found[-1] if found else None

    def outcome(self, step: str) -> SubgoalOutcome | None:
        """The outcome of a finished job (None if the job never finished)."""
        for attempt in reversed(self._steps.get((SUBGOAL, step), [])):
            summary = attempt.extra.get(OUTCOME)
            if isinstance(summary, dict):
                return SubgoalOutcome.model_validate(summary)
        return None

    # -- recording -------------------------------------------------------------------------------

    async def add(self, kind: str, step: str, attempt: Attempt) -> Attempt:
        """Record a nested attempt of this episode at `step` (identity fields are set here)."""
        stamped = self._stamp(attempt, kind, step, self._next.get(kind, 0))
        self._index(stamped)
        await self._record(stamped)
        return stamped

    async def add_job(self, outcome: SubgoalOutcome) -> None:
        """Record a job's attempts (renumbered after the recorded ones); the last carries the outcome."""
        base = self._next.get(SUBGOAL, 0)
        ordered = sorted(outcome.attempts, key=lambda a: a.sample_index)
        stamped = []
        for k, attempt in enumerate(ordered):
            extra = dict(attempt.extra)
            if k == len(ordered) - 1:
                extra[OUTCOME] = outcome.summary()
            duplicate = None if attempt.duplicate_of is None else base + attempt.duplicate_of
            renumbered = attempt.model_copy(update={"extra": extra, "duplicate_of": duplicate})
            stamped.append(self._stamp(renumbered, SUBGOAL, outcome.step, base + attempt.sample_index))
        for attempt in stamped:  # the whole block is numbered before another job can take numbers
            self._index(attempt)
        for attempt in stamped:
            await self._record(attempt)

    def _stamp(self, attempt: Attempt, kind: str, step: str, index: int) -> Attempt:
        return attempt.model_copy(update={
            "problem": self.problem.name, "benchmark": self.problem.benchmark, "strategy": self.strategy,
            "kind": kind, "parent": self.episode, "sample_index": index,
            "extra": {**attempt.extra, STEP: step},
        })

    # -- for the episode's own attempt ---------------------------------------------------------

    def tallies(self) -> dict[str, int]:
        """What the report adds up over episodes (`Attempt.extra["tallies"]`)."""
        sketches = [a for a in self.attempts if a.kind == SKETCH]
        outcomes = [SubgoalOutcome.model_validate(a.extra[OUTCOME]) for a in self.attempts
                    if a.kind == SUBGOAL and isinstance(a.extra.get(OUTCOME), dict)]
        direct = [o for o in outcomes if o.method != "decomposed"]
        proved = {o.step.removesuffix(".d") for o in outcomes if o.proved}
        plans = {(str(a.extra.get("scope", "")), a.extra.get("plan")) for a in sketches}
        return {
            "sketches tried": len(sketches),
            "sketches elaborated": sum(bool(a.extra.get("elaborated")) for a in sketches),
            "subgoals total": len(direct),
            "subgoals proven": sum(o.step in proved for o in direct),
            "subgoal cache hits": sum(o.cache_hit for o in outcomes),
            "re-plans": sum(1 for _, plan in plans if plan != 0),
            "decompositions": len(outcomes) - len(direct),
        }

    def peaks(self) -> dict[str, int]:
        """What the report takes the maximum of (`Attempt.extra["peaks"]`)."""
        depths = [int(str(a.extra.get("depth", 0))) for a in self.attempts if a.kind == SKETCH]
        return {"depth reached": max(depths, default=0)}

    def cost(self) -> tuple[int, int, float]:
        """(prompt tokens, completion tokens, generation seconds) of the episode's nested attempts:
        the episode's own cost, which the report adds up over top-level attempts."""
        return (sum(a.prompt_tokens for a in self.attempts), sum(a.completion_tokens for a in self.attempts),
                round(sum(a.gen_seconds for a in self.attempts), 4))
