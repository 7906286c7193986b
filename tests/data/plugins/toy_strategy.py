"""A strategy that lives outside the `prover` package, registered through the `prover.strategies`
entry point (see `toy_strategy-0.1.dist-info/entry_points.txt` beside this file).

Per top-level attempt it samples a few tactics, applies each to the theorem's goal state in turn
through the context's `LeanSession` (skipping the ones Lean rejects), records that walk as a nested
attempt, and, when the walk closed the goal, has the checker judge the tactics as a whole proof.
It uses only the public contract: `StrategySpec`, `Strategy`, `StrategyContext`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from prover.config import ProverConfig
from prover.lean_env.session import StateOrigin, StepKind
from prover.registry import CliFlag, StrategySpec
from prover.search.base import DoneAttempts, RecordAttempt, Strategy, StrategyContext
from prover.types import Attempt, CheckStatus, GenRequest, Problem, Verdict


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=3, ge=1)
    """Tactics sampled per attempt."""


class ToyStrategy(Strategy):
    def is_complete(self, problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
        return all((0, index) in done for index in range(config.eval.passes))

    async def prove(
        self, problem: Problem, ctx: StrategyContext, record: RecordAttempt, done: Mapping | None = None
    ) -> None:
        done = DoneAttempts.of(done)
        for index in range(ctx.budget.passes):
            if (0, index) not in done:
                await self._attempt(problem, ctx, record, index, done)

    async def _attempt(
        self, problem: Problem, ctx: StrategyContext, record: RecordAttempt, index: int, done: DoneAttempts
    ) -> None:
        steps = ctx.config.section(SPEC).steps
        request = GenRequest(prompt=problem.formal_statement, n=steps, tag=problem.name, seed=index)
        result = await ctx.sampler().generate(request)
        start = await ctx.lean.start(StateOrigin.theorem(problem))
        applied: list[str] = []
        closed = False
        state = start.state
        for completion in result.completions:
            if state is None or closed:
                break
            outcome = (await ctx.lean.apply(state, [completion.text.strip()])).outcomes[0]
            if outcome.kind is StepKind.OK:
                state, applied = outcome.state, [*applied, outcome.tactic]
            elif outcome.kind is StepKind.PROVED:
                applied, closed = [*applied, outcome.tactic], True
        if start.state is not None:
            await ctx.lean.release(start.state.tree)
        walk = Verdict(status=CheckStatus.PROVED if closed else CheckStatus.FAILED, rule="toy:walk")
        if not done.nested(parent=index, kind="toy_walk"):
            await record(Attempt(problem=problem.name, strategy=SPEC.name, kind="toy_walk", parent=index,
                                 sample_index=0, proof="\n".join(applied), verdict=walk))
        proof = "\n  " + "\n  ".join(applied) if closed else None
        verdict = await ctx.checker.check(problem, proof) if proof else Verdict(status=CheckStatus.FAILED, rule="toy:open")
        await record(Attempt(problem=problem.name, strategy=SPEC.name, sample_index=index, proof=proof, verdict=verdict))


SPEC: StrategySpec[ToyConfig] = StrategySpec(
    name="toy",
    config_model=ToyConfig,
    factory=ToyStrategy,
    description="a plug-in test strategy: walk sampled tactics through Lean",
    cli_flags=(CliFlag("--toy-steps", "steps", "tactics sampled per attempt", metavar="N"),),
)
