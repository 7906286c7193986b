"""One planning episode: sketch, check, prove the holes in parallel, stitch, check, re-plan.

An episode is one top-level attempt of a problem (`--pass K` runs K of them). It works on a
*scope* — the benchmark theorem, or a hole's lemma when that hole is decomposed — in plans:

1. the planner model (role `planner`) writes a plan and a sketch (`prompts`, `sketch`); the
   checker's sketch check (`check_sketch`: ban list but `sorry`, benchmark statement, no Lean
   error, trusted statement check, axioms but `sorryAx`) runs on it; a failure goes back to the
   planner with Lean's errors, up to `planner.repair_turns` times;
2. the holes' goals come from Lean's `sorries` (`holes`), and every distinct goal goes to a
   sub-prover at once (`dispatch`, at most `planner.parallel_subgoals`), the proof cache first;
3. a hole the sub-prover could not prove, whose lemma Lean confirmed, is decomposed (a scope of
   its own, depth + 1, up to `planner.max_depth`);
4. with every hole proved, the proofs are stitched in place of the `sorry`s (`stitch`) and the
   full checker decides; only that verdict counts;
5. otherwise the next plan starts from a re-plan prompt with the sketch, the proved and failed
   claims and Lean's last errors (or afresh, when no sketch of the plan was accepted), up to
   `planner.max_sketches` plans.

Every step is recorded as it finishes (`records`), so a resumed episode redoes none of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prover.errors import ConfigError, SamplerRequestError
from prover.lean_env.checker import SketchCheck
from prover.planner.dispatch import SubgoalDispatcher, run_together
from prover.planner.holes import HoleGoal, HolesRefused, hole_goals, lemma_name
from prover.planner.prompts import SubgoalReport, decompose_messages, repair_messages, replan_messages, sketch_messages
from prover.planner.records import SKETCH, STITCHED, EpisodeLog
from prover.planner.settings import DEFAULT_PLANNER_MAX_TOKENS, PLANNER_ROLE, SPEC, PlannerConfig
from prover.planner.sketch import Sketch, SketchFailure, SketchRejected, extract_sketch
from prover.planner.stitch import Fill, StitchError, stitch
from prover.planner.subgoal import SubgoalJob, SubgoalOutcome
from prover.planner.subprovers import job_seed, lemma_body
from prover.search.base import PROVER_ROLE, Strategy, StrategyContext
from prover.types import Attempt, ChatMessage, CheckStatus, GenRequest, LeanMessage, Problem, Verdict

__all__ = ["Episode"]

_REJECTING = frozenset({SketchFailure.STATEMENT_CHANGED, SketchFailure.EXTRA_DECLARATIONS})
"""Sketch failures that are a soundness refusal (REJECTED), not merely a bad sketch (FAILED)."""


class _Infrastructure(Exception):
    """A process fault (crash, lost worker) decided a step: the episode ends without a verdict of
    its own (status ERROR), so the fault never counts as a failed proof."""


@dataclass(frozen=True)
class _Scope:
    """What a run of plans proves: the benchmark theorem, or a decomposed hole's lemma."""

    problem: Problem
    path: str
    """Step-id prefix (`""`, or `<hole step>/` inside a decomposition)."""
    depth: int
    plans: int
    first_prompt: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class _Proof:
    text: str
    verdict: Verdict
    check_seconds: float


@dataclass(frozen=True)
class _PlanFailure:
    """Why a plan did not prove its scope, and what the next plan's prompt shows."""

    rule: str
    detail: str
    code: str | None = None
    """The plan's sketch (the re-plan's "previous"); None: start the next plan afresh."""
    reports: tuple[SubgoalReport, ...] = ()
    errors: tuple[LeanMessage, ...] = ()
    errors_code: str = ""
    infrastructure: bool = False
    stitched: _Proof | None = None
    """The plan's stitched proof and its (failing) verdict, when it got that far."""


@dataclass(frozen=True)
class _Turn:
    """One planner call and what became of its reply."""

    reply: str | None
    """None: the planner refused the request."""
    sketch: Sketch | SketchRejected | None = None
    check: SketchCheck | None = None
    holes: tuple[HoleGoal, ...] | HolesRefused | None = None
    refusal: str = ""

    @property
    def usable(self) -> bool:
        return self.check is not None and self.check.accepted and isinstance(self.holes, tuple)


class Episode:
    """Top-level attempt `index` of `problem` (see the module docstring)."""

    def __init__(self, strategy: Strategy, problem: Problem, ctx: StrategyContext, index: int, log: EpisodeLog,
                 dispatcher: SubgoalDispatcher) -> None:
        self.strategy = strategy
        self.problem = problem
        self.ctx = ctx
        self.index = index
        self.log = log
        self.dispatcher = dispatcher
        self.settings: PlannerConfig = ctx.config.section(SPEC)
        self.pp_options = tuple((o.name, o.value) for o in self.settings.options())

    async def run(self) -> Attempt:
        """Run the episode to its verdict; returns its top-level attempt (not yet recorded)."""
        prompts = self.settings.prompts
        scope = _Scope(self.problem, "", 0, self.settings.max_sketches, sketch_messages(self.problem, prompts))
        try:
            result = await self._solve(scope)
        except _Infrastructure as exc:
            result = _PlanFailure(rule="planner:infrastructure", detail=str(exc), infrastructure=True)
        return self._attempt(result)

    def _attempt(self, result: _Proof | _PlanFailure) -> Attempt:
        proof: str | None = None
        seconds = 0.0
        if isinstance(result, _Proof):
            proof, verdict, seconds = result.text, result.verdict, result.check_seconds
        elif result.stitched is not None:
            proof, verdict, seconds = result.stitched.text, result.stitched.verdict, result.stitched.check_seconds
        elif result.infrastructure:
            verdict = Verdict(status=CheckStatus.ERROR, rule="planner:infrastructure", detail=result.detail)
        else:
            verdict = Verdict(status=CheckStatus.FAILED, rule=result.rule, detail=result.detail)
        prompt_tokens, completion_tokens, gen_seconds = self.log.cost()
        return Attempt(
            problem=self.problem.name, benchmark=self.problem.benchmark, strategy=SPEC.name, sample_index=self.index,
            proof=proof, verdict=verdict, check_seconds=seconds, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, gen_seconds=gen_seconds,
            extra={"tallies": self.log.tallies(), "peaks": self.log.peaks()},
        )

    # -- plans -------------------------------------------------------------------------------

    async def _solve(self, scope: _Scope) -> _Proof | _PlanFailure:
        last: _PlanFailure | None = None
        for plan in range(scope.plans):
            if last is None or last.code is None:
                messages = scope.first_prompt
            else:
                messages = replan_messages(scope.problem, last.code, subgoals=last.reports, errors=last.errors,
                                           code=last.errors_code, prompts=self.settings.prompts)
            result = await self._plan(scope, plan, messages, final=scope.depth == 0 and plan == scope.plans - 1)
            if isinstance(result, _Proof):
                return result
            last = result
        assert last is not None
        return last

    async def _plan(
        self, scope: _Scope, plan: int, messages: tuple[ChatMessage, ...], *, final: bool
    ) -> _Proof | _PlanFailure:
        sketched = await self._sketch(scope, plan, messages)
        if isinstance(sketched, _PlanFailure):
            return sketched
        sketch, check, holes = sketched
        outcomes = await self._prove_holes(scope, plan, check, holes)
        outcomes = await run_together(self._decompose(scope, sketch, o) for o in outcomes)
        reports = tuple(
            SubgoalReport(claim=h.claim, status="proved" if o.proved else "failed", detail="" if o.proved else o.detail)
            for h, o in zip(holes, outcomes)
        )
        failed = [(h, o) for h, o in zip(holes, outcomes) if not o.proved]
        if failed:
            names = ", ".join(f"`{h.name}`" for h, _ in failed)
            return _PlanFailure(rule="planner:subgoals_unproved", detail=f"not proved: {names}", code=sketch.code,
                                reports=reports, infrastructure=any(o.infrastructure for _, o in failed))
        return await self._stitch(scope, plan, sketch, holes, outcomes, reports, final=final)

    # -- sketches ----------------------------------------------------------------------------

    async def _sketch(
        self, scope: _Scope, plan: int, messages: tuple[ChatMessage, ...]
    ) -> tuple[Sketch, SketchCheck, tuple[HoleGoal, ...]] | _PlanFailure:
        """The plan's turns: a sketch and its repairs, until one is accepted."""
        history = messages
        turns = self.settings.repair_turns + 1
        last = "no sketch"
        for turn in range(turns):
            step = f"{scope.path}p{plan}.t{turn}"
            recorded = self.log.sketch(step)
            if recorded is not None:
                result = await self._replayed_turn(scope, recorded)
            else:
                result = await self._new_turn(scope, plan, turn, step, plan * turns + turn, history)
            if result.usable:
                assert isinstance(result.sketch, Sketch) and result.check is not None
                return result.sketch, result.check, result.holes  # type: ignore[return-value]
            last = self._trouble(result)
            if result.reply is None:
                break  # the planner refused the conversation; more turns only make it longer
            history = self._repair(history, result)
        return _PlanFailure(rule="planner:no_sketch", detail=f"no usable sketch after {turn + 1} turn(s): {last}")

    async def _new_turn(self, scope: _Scope, plan: int, turn: int, step: str, call: int,
                        history: tuple[ChatMessage, ...]) -> _Turn:
        seed = job_seed(self.ctx.config.sampler_for(PLANNER_ROLE).seed, self.problem.name, self.index, step)
        info: dict[str, object] = {"scope": scope.path, "plan": plan, "turn": turn, "depth": scope.depth, "seed": seed}
        try:
            result = await self.ctx.sampler(PLANNER_ROLE).generate(self._planner_request(scope, history, seed, call))
        except SamplerRequestError as exc:  # the request itself is refused (too long, ...): this plan ends
            verdict = Verdict(status=CheckStatus.FAILED, rule="planner:request_refused", detail=str(exc))
            await self.log.add(SKETCH, step, Attempt(problem=self.problem.name, sample_index=0, verdict=verdict,
                                                     extra=info))
            return _Turn(reply=None, refusal=str(exc))
        completion = result.completions[0] if result.completions else None
        reply = completion.text if completion is not None else ""
        turn_result = await self._checked(scope, reply)
        check = turn_result.check
        if check is not None:
            info["elaborated"] = check.accepted
            info["check"] = check.model_dump(mode="json", exclude={"verdict"})
        if isinstance(turn_result.holes, HolesRefused):
            info["holes_refused"] = turn_result.holes.detail
        if completion is not None and completion.finish_reason:
            info["finish_reason"] = completion.finish_reason
        sketch = turn_result.sketch
        attempt = Attempt(
            problem=self.problem.name, sample_index=0, proof=sketch.code if sketch is not None else None,
            completion=reply, verdict=check.verdict if check is not None else _rejection(sketch),
            prompt_tokens=result.prompt_tokens, completion_tokens=completion.tokens if completion else 0,
            gen_seconds=result.seconds, check_seconds=check.verdict.lean_seconds if check else 0.0, extra=info,
        )
        await self.log.add(SKETCH, step, attempt)
        self._refuse_faults(check)
        return turn_result

    async def _replayed_turn(self, scope: _Scope, recorded: Attempt) -> _Turn:
        """A turn an earlier run recorded: its reply is read again, its check taken as recorded
        (checked again only if a process fault decided it then)."""
        if recorded.completion is None:
            return _Turn(reply=None, refusal=recorded.verdict.detail)
        data = recorded.extra.get("check")
        if not isinstance(data, dict) or recorded.verdict.status is CheckStatus.ERROR:
            turn = await self._checked(scope, recorded.completion)
            self._refuse_faults(turn.check)
            return turn
        sketch = extract_sketch(scope.problem, recorded.completion)
        check = SketchCheck.model_validate({**data, "verdict": recorded.verdict})
        holes = hole_goals(sketch, check) if isinstance(sketch, Sketch) and check.accepted else None
        return _Turn(reply=recorded.completion, sketch=sketch, check=check, holes=holes)

    async def _checked(self, scope: _Scope, reply: str) -> _Turn:
        sketch = extract_sketch(scope.problem, reply)
        if not isinstance(sketch, Sketch):
            return _Turn(reply=reply, sketch=sketch)
        check = await self.ctx.checker.check_sketch(scope.problem, sketch.code, pp_options=self.pp_options)
        if check.verdict.rule == "pp_options":
            raise ConfigError(f"{check.verdict.detail}; list only the options this Lean has in planner.pp_options")
        holes = hole_goals(sketch, check) if check.accepted else None
        return _Turn(reply=reply, sketch=sketch, check=check, holes=holes)

    @staticmethod
    def _refuse_faults(check: SketchCheck | None) -> None:
        if check is not None and check.verdict.status is CheckStatus.ERROR:
            verdict = check.verdict
            raise _Infrastructure(f"the sketch check hit a process fault ({verdict.rule}): {verdict.detail}")

    def _planner_request(self, scope: _Scope, history: tuple[ChatMessage, ...], seed: int, call: int) -> GenRequest:
        cfg = self.ctx.config.sampler_for(PLANNER_ROLE)
        return GenRequest(
            messages=history, n=1, temperature=cfg.temperature, top_p=cfg.top_p, seed=seed,
            max_tokens=cfg.max_tokens or DEFAULT_PLANNER_MAX_TOKENS, tag=f"{scope.problem.name}#round={call}",
        )

    @staticmethod
    def _trouble(turn: _Turn) -> str:
        if turn.reply is None:
            return f"the planner refused the request: {turn.refusal}"
        if isinstance(turn.sketch, SketchRejected):
            return f"{turn.sketch.reason.value}: {turn.sketch.detail}"
        if isinstance(turn.holes, HolesRefused):
            return turn.holes.detail
        assert turn.check is not None
        return f"{turn.check.verdict.rule}: {turn.check.verdict.detail}"

    def _repair(self, history: tuple[ChatMessage, ...], turn: _Turn) -> tuple[ChatMessage, ...]:
        prompts = self.settings.prompts
        reply = turn.reply or ""
        check = turn.check
        if check is not None and check.verdict.rule == "lean_error":
            return repair_messages(history, reply, errors=check.verdict.messages, code=check.verdict.code,
                                   prompts=prompts)
        return repair_messages(history, reply, rejection=self._trouble(turn), prompts=prompts)

    # -- holes -------------------------------------------------------------------------------

    async def _prove_holes(self, scope: _Scope, plan: int, check: SketchCheck,
                           holes: Sequence[HoleGoal]) -> list[SubgoalOutcome]:
        limit = asyncio.Semaphore(self.settings.parallel_subgoals)
        base_seed = self.ctx.config.sampler_for(PROVER_ROLE).seed

        async def one(hole: HoleGoal) -> SubgoalOutcome:
            step = f"{scope.path}p{plan}.g{hole.index}"
            recorded = self.log.outcome(step)
            if recorded is not None:
                return recorded
            job = SubgoalJob(
                problem=scope.problem, step=step, name=hole.name, goal=hole.goal,
                lemma_name=lemma_name(scope.problem.theorem_name, hole.name), origin_code=check.sent,
                sorry_index=hole.sorry_index, strategy=self.settings.subgoal_strategy,
                passes=self.settings.subgoal_passes, seed=job_seed(base_seed, self.problem.name, self.index, step),
                pp_options=self.pp_options,
            )
            async with limit:
                outcome = await self.dispatcher.run(self.strategy, self.ctx, job)
            await self.log.add_job(outcome)
            return outcome.model_copy(update={"attempts": ()})

        return await run_together(one(h) for h in holes)

    async def _decompose(self, scope: _Scope, sketch: Sketch, outcome: SubgoalOutcome) -> SubgoalOutcome:
        """A failed hole whose lemma Lean confirmed, planned as a theorem of its own."""
        if outcome.proved or outcome.lemma is None or scope.depth >= self.settings.max_depth:
            return outcome
        step = f"{outcome.step}.d"
        recorded = self.log.outcome(step)
        if recorded is not None:
            return recorded
        lemma = outcome.lemma
        problem = lemma.problem(scope.problem)
        first = decompose_messages(lemma.statement, parent=scope.problem, parent_sketch=sketch.code,
                                   prompts=self.settings.prompts)
        result = await self._solve(_Scope(problem, f"{outcome.step}/", scope.depth + 1,
                                          self.settings.decompose_sketches, first))
        if isinstance(result, _Proof):
            body, aux = lemma_body(problem, result.text)
            proof = lemma.proof_for_hole(body)
            decomposed = SubgoalOutcome(step=step, goal=outcome.goal, proved=True, proof=proof, aux=aux,
                                        method="decomposed", lemma=lemma, detail="proved by decomposing it")
            attempt = Attempt(problem=problem.name, sample_index=0, proof=proof, verdict=result.verdict,
                              check_seconds=result.check_seconds, extra={"method": "decomposed"})
        else:
            decomposed = SubgoalOutcome(step=step, goal=outcome.goal, proved=False, method="decomposed", lemma=lemma,
                                        detail=f"{outcome.detail}; decomposing it failed: {result.detail}",
                                        infrastructure=outcome.infrastructure or result.infrastructure)
            verdict = Verdict(status=CheckStatus.FAILED, rule="planner:decomposition_failed", detail=result.detail)
            attempt = Attempt(problem=problem.name, sample_index=0, verdict=verdict, extra={"method": "decomposed"})
        await self.log.add_job(decomposed.model_copy(update={"attempts": (attempt,)}))
        return decomposed

    # -- stitching ---------------------------------------------------------------------------

    async def _stitch(self, scope: _Scope, plan: int, sketch: Sketch, holes: Sequence[HoleGoal],
                      outcomes: Sequence[SubgoalOutcome], reports: tuple[SubgoalReport, ...], *,
                      final: bool) -> _Proof | _PlanFailure:
        step = f"{scope.path}p{plan}.s"
        recorded = self.log.stitched(step)
        if recorded is not None and recorded.proof is not None:
            checked = _Proof(recorded.proof, recorded.verdict, recorded.check_seconds)
        else:
            fills = [Fill(pos=pos, proof=o.proof or "") for h, o in zip(holes, outcomes) for pos in h.positions]
            aux = "\n\n".join(dict.fromkeys(o.aux.strip() for o in outcomes if o.aux.strip()))
            try:
                stitched = stitch(sketch.command, fills)
            except StitchError as exc:
                return _PlanFailure(rule="planner:stitch_failed", detail=str(exc), code=sketch.code, reports=reports)
            text = f"{aux}\n\n{stitched.text}" if aux else stitched.text
            started = time.monotonic()
            verdict = await self.ctx.checker.check(scope.problem, text)
            checked = _Proof(text, verdict, time.monotonic() - started)
            keep = scope.depth > 0 or not (verdict.proved or final)  # else it is the episode's own attempt
            if keep:
                await self.log.add(STITCHED, step, Attempt(
                    problem=self.problem.name, sample_index=0, proof=text, verdict=verdict,
                    check_seconds=checked.check_seconds,
                    extra={"scope": scope.path, "plan": plan, "depth": scope.depth},
                ))
        verdict = checked.verdict
        if verdict.proved:
            return checked
        return _PlanFailure(rule=verdict.rule, detail=verdict.detail, code=sketch.code, reports=reports,
                            errors=verdict.messages, errors_code=verdict.code,
                            infrastructure=verdict.status is CheckStatus.ERROR, stitched=checked)


def _rejection(sketch: Sketch | SketchRejected | None) -> Verdict:
    """The verdict on a reply that is not a sketch at all."""
    if not isinstance(sketch, SketchRejected):
        return Verdict(status=CheckStatus.FAILED, rule="sketch:no_reply", detail="the planner returned no text")
    status = CheckStatus.REJECTED if sketch.reason in _REJECTING else CheckStatus.FAILED
    return Verdict(status=status, rule=f"sketch:{sketch.reason.value}", detail=sketch.detail)
