"""Whole-proof sampling: sample k proofs, dedupe, check, optionally self-correct.

This is how DeepSeek-Prover, Kimina-Prover and Goedel-Prover are evaluated: the model writes a
complete proof, Lean judges it. For each problem the budget of `passes` samples is requested in
chunks of `chunk` (one request with n=chunk each), so the engine batches them while earlier
chunks are already being checked. Identical proofs are checked once. With `rounds > 0` every
failing sample starts a self-correction chain: the proof and Lean's errors go back to the model
(Goedel-Prover-V2 / Kimina-Prover style) and round r+1 of chain i is generated only if round r
failed.

Seeds are derived from the configured seed, the problem and the chunk (or chain), so a rerun or a
resumed run asks the engine for exactly the same samples.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prover.config import ProverConfig
from prover.errors import ConfigError
from prover.llm.formats import Feedback, PromptFormat, get_format
from prover.registry import CliFlag, StrategySpec
from prover.search.base import PROVER_ROLE, DoneAttempts, RecordAttempt, Strategy, StrategyContext
from prover.types import (
    Attempt,
    CheckStatus,
    Completion,
    GenRequest,
    GenResult,
    Problem,
    Verdict,
    content_hash,
)

__all__ = ["SPEC", "WholeProofConfig", "WholeProofStrategy", "derive_seed", "expected_attempts_done", "normalise_proof"]

log = logging.getLogger(__name__)

NO_PROOF_RULE = "no_proof_extracted"


class WholeProofConfig(BaseModel):
    """Sample whole proofs, check them, optionally self-correct (the `whole_proof:` section).

    The number of samples per problem is `eval.passes` (`--pass K`).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    chunk: int = Field(default=8, ge=1)
    """Samples per sampler request (n); k is requested in ceil(k/chunk) requests."""
    rounds: int = Field(default=0, ge=0)
    """Rounds of self-correction after the first sample of each chain."""
    early_stop: bool = False
    """Stop sampling a problem once one proof is accepted (breaks unbiased pass@k)."""
    max_errors_in_feedback: int | None = Field(default=None, ge=1)
    """Lean errors shown per correction turn; None takes the model family's own (8 for
    Goedel-V2 and DeepSeek-V2, 3 for Kimina)."""

    @model_validator(mode="before")
    @classmethod
    def _passes_moved(cls, data: object) -> object:
        if isinstance(data, dict) and "passes" in data:
            raise ValueError("`passes` is now `eval.passes` (the budget of every strategy; `--pass K`)")
        return data


def normalise_proof(proof: str) -> str:
    """Dedupe key of a proof: the text without trailing whitespace, nothing more.

    Two proofs share a verdict only if Lean cannot tell them apart: indentation is syntax
    (`·` blocks, column-0 tactic blocks that newer Lean rejects), and line breaks or spaces
    inside a string literal change its value, so any looser key could copy "proved" onto a proof
    that does not compile.
    """
    return proof.rstrip()


def derive_seed(base: int, problem: str, round_: int, index: int) -> int:
    """A 31-bit sampling seed that depends only on (config seed, problem, round, chunk or chain)."""
    digest = content_hash(str(base), problem, str(round_), str(index))
    return int(digest[:8], 16) & 0x7FFFFFFF


def expected_attempts_done(problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
    """True if `done` already holds everything this strategy would record for `problem`.

    Lets the pipeline skip finished problems without starting an engine or Lean workers.
    """
    section = config.section(SPEC)
    if section.early_stop and any(a.verdict.proved for a in done.values()):
        return True
    for index in range(config.eval.passes):
        attempt = done.get((0, index))
        if attempt is None:
            return False
        for round_ in range(1, section.rounds + 1):
            if attempt.verdict.proved:
                break
            attempt = done.get((round_, index))
            if attempt is None:
                return False
    return True


@dataclass
class _Original:
    """The first sample with a given proof: later identical proofs wait for its verdict."""

    sample_index: int
    round: int
    verdict: asyncio.Future[Verdict]


@dataclass
class _Sample:
    """One generated completion with its share of the request's cost."""

    completion: Completion
    seed: int
    gen_seconds: float
    prompt_tokens: int


@dataclass
class _ProblemRun:
    """State of one problem's budget: dedupe table, early-stop flag, running tasks."""

    problem: Problem
    ctx: StrategyContext
    record: RecordAttempt
    done: DoneAttempts
    format: PromptFormat
    originals: dict[str, _Original] = field(default_factory=dict)
    proved: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def cfg(self) -> WholeProofConfig:
        return self.ctx.config.section(SPEC)

    # -- driver ------------------------------------------------------------------------------

    async def run(self) -> None:
        if self.cfg.early_stop and self.done.proved:
            return
        self._register_done()
        passes = self.ctx.budget.passes
        chunk = min(self.cfg.chunk, passes)
        starts = range(0, passes, chunk)
        await self._run_all(
            self._first_round_chunk(c, list(range(s, min(s + chunk, passes)))) for c, s in enumerate(starts)
        )

    def _register_done(self) -> None:
        """Earlier verdicts of this problem take part in dedupe like fresh ones."""
        for (round_, index), attempt in sorted(self.done.items()):
            if attempt.proof is None or attempt.duplicate_of is not None:
                continue
            key = normalise_proof(attempt.proof)
            if key in self.originals:
                continue
            future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
            future.set_result(attempt.verdict)
            self.originals[key] = _Original(index, round_, future)

    async def _run_all(self, coros: Iterable[Awaitable[None]]) -> None:
        """Run coroutines as tasks; the first failure cancels the rest and is re-raised."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        self.tasks.update(tasks)
        try:
            pending = set(tasks)
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in finished:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.tasks.difference_update(tasks)

    def _stop_others(self) -> None:
        """Early stop: cancel every other sampling/checking task of this problem."""
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()

    # -- rounds ------------------------------------------------------------------------------

    async def _first_round_chunk(self, chunk_index: int, indices: list[int]) -> None:
        missing = [i for i in indices if (0, i) not in self.done]
        samples: dict[int, _Sample] = {}
        if missing:
            request = self._request((), n=len(indices), seed_index=chunk_index, round_=0)
            result = await self._generate(request)
            # The whole chunk is requested again on resume (same seed -> same samples); only the
            # indices not yet recorded are used.
            for offset, index in enumerate(indices):
                if offset < len(result.completions):
                    samples[index] = self._sample(result, offset, request.seed)
        await self._run_all(self._chain(i, samples.get(i)) for i in indices)

    async def _chain(self, index: int, first: _Sample | None) -> None:
        """Round 0 of chain `index`, then self-correction rounds while it keeps failing."""
        history: list[Attempt] = []
        for round_ in range(self.cfg.rounds + 1):
            if self.proved and self.cfg.early_stop:
                return
            attempt = self.done.get((round_, index))
            if attempt is None:
                sample = first if round_ == 0 else await self._correction_sample(index, round_, history)
                if sample is None:
                    return  # the engine returned fewer samples than asked; nothing to record
                attempt = await self._process(index, round_, sample)
            history.append(attempt)
            if attempt.verdict.proved:
                return

    async def _correction_sample(self, index: int, round_: int, history: Sequence[Attempt]) -> _Sample | None:
        request = self._request(self._feedback(history), n=1, seed_index=index, round_=round_)
        result = await self._generate(request)
        return self._sample(result, 0, request.seed) if result.completions else None

    def _feedback(self, history: Sequence[Attempt]) -> list[Feedback]:
        """The chain so far, oldest first: proof, reply, Lean's messages and the checked code."""
        return [
            Feedback(
                proof=a.proof or "",
                completion=a.completion or "",
                messages=a.verdict.messages,
                code=a.verdict.code,
                detail=a.verdict.rule if not a.verdict.detail else f"{a.verdict.rule}: {a.verdict.detail}",
            )
            for a in history
        ]

    # -- sampling ----------------------------------------------------------------------------

    def _request(self, feedback: Sequence[Feedback], *, n: int, seed_index: int, round_: int) -> GenRequest:
        sampler_cfg = self.ctx.config.sampler_for(PROVER_ROLE)
        base = self.format.whole_proof_request(
            self.problem, feedback, max_errors=self.cfg.max_errors_in_feedback
        )
        tag = self.problem.name if round_ == 0 else f"{self.problem.name}#round={round_}"
        return base.model_copy(
            update={
                "n": n,
                "temperature": sampler_cfg.temperature,
                "top_p": sampler_cfg.top_p,
                "max_tokens": sampler_cfg.max_tokens or self.format.default_max_tokens,
                "seed": derive_seed(sampler_cfg.seed, self.problem.name, round_, seed_index),
                "tag": tag,
            }
        )

    async def _generate(self, request: GenRequest) -> GenResult:
        return await self.ctx.sampler(PROVER_ROLE).generate(request)

    @staticmethod
    def _sample(result: GenResult, offset: int, seed: int | None) -> _Sample:
        n = max(1, len(result.completions))
        return _Sample(
            completion=result.completions[offset],
            seed=seed or 0,
            gen_seconds=result.seconds / n,  # amortised: the n samples share one request
            prompt_tokens=result.prompt_tokens if offset == 0 else 0,  # the prompt is sent once
        )

    # -- checking ----------------------------------------------------------------------------

    async def _process(self, index: int, round_: int, sample: _Sample) -> Attempt:
        """Extract, dedupe, check and record one sample."""
        text = sample.completion.text
        proof = self.format.extract_proof(self.problem, text)
        duplicate_of: int | None = None
        extra: dict[str, object] = {"seed": sample.seed}
        if sample.completion.finish_reason:
            extra["finish_reason"] = sample.completion.finish_reason
        check_seconds = 0.0
        if proof is None or not proof.strip():
            proof = None
            verdict = Verdict(
                status=CheckStatus.FAILED,
                rule=NO_PROOF_RULE,
                detail="the prompt format found no proof in the completion",
            )
        else:
            key = normalise_proof(proof)
            original = self.originals.get(key)
            if original is not None:
                verdict = await asyncio.shield(original.verdict)
                duplicate_of = original.sample_index
                if original.round != round_:
                    extra["duplicate_of_round"] = original.round
            else:
                verdict, check_seconds = await self._check(key, index, round_, proof)
        attempt = Attempt(
            problem=self.problem.name,
            benchmark=self.problem.benchmark,
            strategy=SPEC.name,
            sample_index=index,
            round=round_,
            proof=proof,
            completion=text,
            verdict=verdict,
            duplicate_of=duplicate_of,
            prompt_tokens=sample.prompt_tokens,
            completion_tokens=sample.completion.tokens,
            gen_seconds=sample.gen_seconds,
            check_seconds=check_seconds,
            extra=extra,
        )
        # Shielded: an early-stop cancellation must not tear a line that is being written.
        await asyncio.shield(self.record(attempt))
        if verdict.proved and not self.proved:
            self.proved = True
            if self.cfg.early_stop:
                self._stop_others()
        return attempt

    async def _check(self, key: str, index: int, round_: int, proof: str) -> tuple[Verdict, float]:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self.originals[key] = _Original(index, round_, future)
        started = time.perf_counter()
        try:
            verdict = await self.ctx.checker.check(self.problem, proof)
        except BaseException as exc:
            # Duplicates waiting on this check must not hang; they fail the same way.
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: the error is raised here as well
            del self.originals[key]
            raise
        future.set_result(verdict)
        return verdict, time.perf_counter() - started


class WholeProofStrategy(Strategy):
    """Sample `passes` whole proofs per problem (in chunks), dedupe, check, self-correct.

    Args:
        prompt_format: a `PromptFormat` to use instead of the one named by the config
            (`sampler.prompt_format`, or inferred from `sampler.model`).
    """

    name = "whole_proof"

    def __init__(self, prompt_format: PromptFormat | None = None) -> None:
        self._format = prompt_format

    def prompt_format(self, config: ProverConfig) -> PromptFormat:
        if self._format is None:
            sampler = config.sampler_for(PROVER_ROLE)
            self._format = get_format(sampler.prompt_format, sampler.model)
        return self._format

    def validate(self, config: ProverConfig) -> None:
        """Fail before any sampling when the settings cannot work (e.g. rounds on a completion format)."""
        fmt = self.prompt_format(config)
        if config.section(SPEC).rounds > 0 and not fmt.supports_feedback:
            raise ConfigError(
                f"prompt format {fmt.name!r} cannot do self-correction rounds; "
                "use --rounds 0 or a chat format (goedel-v2, kimina, deepseek-v2, chat)"
            )

    def is_complete(self, problem: Problem, config: ProverConfig, done: Mapping[tuple[int, int], Attempt]) -> bool:
        """Whether resuming `problem` would record nothing new (used to skip finished problems)."""
        return expected_attempts_done(problem, config, done)

    def checks_per_batch(self, config: ProverConfig) -> int:
        """One request's samples are checked together: a chunk."""
        return min(config.section(SPEC).chunk, config.eval.passes)

    async def prove(
        self,
        problem: Problem,
        ctx: StrategyContext,
        record: RecordAttempt,
        done: Mapping[tuple[int, int], Attempt] | None = None,
    ) -> None:
        run = _ProblemRun(problem, ctx, record, DoneAttempts.of(done), self.prompt_format(ctx.config))
        await run.run()


SPEC: StrategySpec[WholeProofConfig] = StrategySpec(
    name=WholeProofStrategy.name,
    config_model=WholeProofConfig,
    factory=WholeProofStrategy,
    roles=(PROVER_ROLE,),
    description="sample whole proofs, check them (deduplicated), optionally self-correct from Lean errors",
    resume_settings=("rounds",),
    cli_flags=(
        CliFlag("--rounds", "rounds", "self-correction rounds after each failed sample", metavar="R"),
        CliFlag("--chunk", "chunk", "samples per sampler request", metavar="N"),
        CliFlag("--early-stop", "early_stop", "stop sampling a problem once proved", kind="flag"),
    ),
)
