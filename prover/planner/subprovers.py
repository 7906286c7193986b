"""Prove one hole of a sketch: the proof cache first, then the configured sub-prover.

`prove_subgoal(strategy, ctx, job)` is the job an episode sends to a prover agent (its own, or a
Ray peer through `ctx.jobs`). In order:

1. cache: a proof the shared cache holds for the hole's goal state is replayed on the hole's own
   state (re-created from the sketch); it counts only if Lean completes it there. A replay Lean
   rejects retracts the entry. No sampling.
2. `whole_proof`: the goal rendered as a standalone lemma (`planner.lemma`), confirmed by Lean
   (the lemma's own `sorry` must report the same goal), then the whole-proof strategy on that
   lemma with the job's budget, stopping at the first proof the checker accepts; where the goal
   does not render or confirm, whole proofs of the goal are run on the hole's proof state in
   tactic mode instead.
3. `bfs`: best-first searches from the hole's proof state (`BestFirstSearch(origin=...)`).

A proof is published to the cache for the goal state (best-first search publishes its own). Every
sample or search is an attempt of the outcome; its verdict is Lean's word on that sub-proof, and
only the checker's verdict on the stitched proof decides the episode.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import textwrap
import time
from collections.abc import Sequence

from prover.lean_env.assemble import AssemblyRejected, assemble
from prover.lean_env.session import LEAN_VERDICTS, GoalState, StepKind
from prover.llm.formats import find_code_blocks, get_format, split_thinking
from prover.planner.goals import GoalParseError, parse_goal
from prover.planner.lean_text import offset_of, tokens
from prover.planner.lemma import NotRenderable, RenderedLemma, render_lemma
from prover.planner.subgoal import SubgoalJob, SubgoalMethod, SubgoalOutcome
from prover.search.base import PROVER_ROLE, Budget, DoneAttempts, Strategy, StrategyContext
from prover.search.bfs import SPEC as BFS_SPEC
from prover.search.bfs import BestFirstSearch, SearchResult, checker_ban_check, default_tactic_format, run_search
from prover.search.whole_proof import SPEC as WHOLE_PROOF_SPEC
from prover.search.whole_proof import WholeProofStrategy
from prover.types import Attempt, ChatMessage, CheckStatus, GenRequest, Pos, Problem, Verdict

__all__ = ["TACTIC_MODE_PROMPT", "extract_tactics", "job_seed", "lemma_body", "prove_subgoal"]

TACTIC_MODE_PROMPT = """\
Here is a Lean 4 proof state (Mathlib is imported):

```lean4
{goal}
```

Write Lean 4 tactics that close this goal. Reply with the tactics only (no theorem statement) in \
one ```lean4 block at the end of your answer."""
"""How the prover model is asked for a tactic proof of a goal that is not a standalone lemma."""

_SEED_RANGE = 2**31
_LEAN_FENCES = frozenset({"lean4", "lean", ""})


async def prove_subgoal(strategy: Strategy, ctx: StrategyContext, job: SubgoalJob) -> SubgoalOutcome:
    """The job an episode sends to a prover agent (see the module docstring); `strategy` is the
    agent's own (unused: everything the job needs is in `job` and `ctx`)."""
    run = _SubgoalRun(ctx, job)
    cached = await run.from_cache()
    if cached is not None:
        return cached
    if job.strategy == BFS_SPEC.name:
        return await run.search()
    lemma, why = await run.confirmed_lemma()
    if lemma is not None:
        return await run.lemma_proofs(lemma)
    return await run.tactic_mode(why)


def _with_options(statement: str, pp_options: Sequence[tuple[str, str]]) -> str:
    """`statement` with `set_option name value in` lines before its `theorem` (after any
    `universe` line), so the options hold for that declaration only."""
    prefix = "".join(f"set_option {name} {value} in\n" for name, value in pp_options)
    at = statement.find("theorem ")
    return statement[:at] + prefix + statement[at:] if at >= 0 else prefix + statement


def _as_tactic(proof: str, mode: str) -> str:
    """A proof body as a tactic block: a term becomes `exact term` (continuation lines indented)."""
    text = textwrap.dedent(proof.strip("\n")).rstrip()
    if mode == "tactic":
        return text
    first, *rest = text.split("\n")
    return "\n".join(["exact " + first, *(("  " + line) if line else line for line in rest)])


def lemma_body(problem: Problem, proof: str) -> tuple[str, str]:
    """(tactic block, auxiliary declarations) of a checked proof of `problem`, the body taken as
    the assembler placed it in the checked command (its layout is the one Lean saw).

    Raises:
        AssemblyRejected: the proof does not assemble (it would not have been accepted).
    """
    asm = assemble(problem, proof)
    segment = next(s for s in asm.segments if s.part == "body")
    start = offset_of(asm.code, Pos(line=segment.first_line, column=segment.first_column))
    body = asm.code[start:] if start is not None else asm.body
    return _as_tactic(body, asm.mode), asm.aux


def job_seed(base: int, *parts: object) -> int:
    """A 31-bit seed from a base seed and the parts that name one request stream."""
    digest = hashlib.sha256("\x00".join(map(str, (base, *parts))).encode()).hexdigest()
    return int(digest[:8], 16) % _SEED_RANGE


class _SubgoalRun:
    """One job: the services, the job, and the attempts made so far."""

    def __init__(self, ctx: StrategyContext, job: SubgoalJob) -> None:
        self.ctx = ctx
        self.job = job
        self.attempts: list[Attempt] = []

    # -- outcome and attempts -----------------------------------------------------------------

    def outcome(self, proved: bool, method: SubgoalMethod | None, *, proof: str | None = None, aux: str = "",
                detail: str = "", lemma: RenderedLemma | None = None, infrastructure: bool = False) -> SubgoalOutcome:
        if not self.attempts:  # every job leaves a record (the episode finds its outcome there on resume)
            self.add(Verdict(status=CheckStatus.FAILED, rule="subgoal:not_attempted", detail=detail), method=method)
        return SubgoalOutcome(
            step=self.job.step, goal=self.job.goal, proved=proved, proof=proof, aux=aux, method=method,
            cache_hit=method == "cache", lemma=lemma, detail=detail, infrastructure=infrastructure,
            ran_on=f"{socket.gethostname()}:{os.getpid()}", attempts=tuple(self.attempts),
        )

    def add(self, verdict: Verdict, *, method: SubgoalMethod | None, proof: str | None = None,
            completion: str | None = None, index: int | None = None, extra: dict[str, object] | None = None,
            **fields: object) -> Attempt:
        """An attempt of this job (`index`: its number within the job; default the next one)."""
        attempt = Attempt(
            problem=self.job.problem.name, sample_index=len(self.attempts) if index is None else index,
            proof=proof, completion=completion, verdict=verdict,
            extra={"method": method, "lemma": self.job.lemma_name, **(extra or {})}, **fields,  # type: ignore[arg-type]
        )
        self.attempts.append(attempt)
        return attempt

    # -- 1. the proof cache -------------------------------------------------------------------

    async def from_cache(self) -> SubgoalOutcome | None:
        cache = self.ctx.proof_cache
        if cache is None:
            return None
        key = self.job.cache_key
        entry = await cache.lookup(key)
        if entry is None or entry.kind != "proof":
            return None
        state = await self._start()
        if state is None:
            return None
        try:
            batch = await self.ctx.lean.apply(state, entry.tactics, chain=True, timeout=self.ctx.config.lean.timeout)
        finally:
            await self.ctx.lean.release(state.tree)
        outcomes = batch.outcomes
        replayed = (len(outcomes) == len(entry.tactics) and outcomes[-1].kind is StepKind.PROVED
                    and all(o.kind is StepKind.OK for o in outcomes[:-1]))
        if not replayed:
            if outcomes and all(o.kind in LEAN_VERDICTS for o in outcomes):  # Lean's word: the entry is wrong here
                await cache.retract(key, entry.tactics)
            return None
        proof = "\n".join(entry.tactics)
        verdict = Verdict(status=CheckStatus.PROVED, rule="subgoal:cache_replay", lean_seconds=batch.lean_seconds,
                          detail="a cached proof of this goal state, replayed on the hole's own state")
        self.add(verdict, method="cache", proof=proof, check_seconds=batch.lean_seconds)
        return self.outcome(True, "cache", proof=proof, detail="proved by a cached proof (no sampling)")

    async def _start(self) -> GoalState | None:
        started = await self.ctx.lean.start(self.job.origin, timeout=self.ctx.config.lean.timeout)
        return started.state

    # -- 2. whole proofs ----------------------------------------------------------------------

    async def confirmed_lemma(self) -> tuple[RenderedLemma | None, str]:
        """The goal as a lemma Lean confirms, or None and why not."""
        try:
            goal = parse_goal(self.job.goal)
        except GoalParseError as exc:
            return None, f"the goal does not parse as one goal: {exc}"
        lemma = render_lemma(goal, self.job.lemma_name)
        if isinstance(lemma, NotRenderable):
            return None, f"not a standalone lemma ({lemma.reason}): {lemma.detail}"
        code = _with_options(lemma.statement, self.job.pp_options) + " sorry\n"
        checked = await self.ctx.lean.command(self.job.problem.header, code, timeout=self.ctx.config.lean.timeout)
        for hole in checked.sorries:
            if hole.state is not None:
                await self.ctx.lean.release(hole.state.tree)
        if checked.errors or len(checked.sorries) != 1:
            why = checked.errors[0].data if checked.errors else f"{len(checked.sorries)} goals reported"
            return None, f"the rendered lemma does not elaborate: {why.strip()[:300]}"
        if not lemma.confirms(checked.sorries[0].goal):
            return None, "the rendered lemma elaborates to another goal (its printed text does not round-trip)"
        return lemma, ""

    async def lemma_proofs(self, lemma: RenderedLemma) -> SubgoalOutcome:
        """The whole-proof strategy on the lemma, stopping at its first accepted proof."""
        problem = lemma.problem(self.job.problem)
        config = self.ctx.config.with_overrides({
            f"{WHOLE_PROOF_SPEC.name}.early_stop": True,
            f"samplers.{PROVER_ROLE}.seed": self.job.seed,
        })
        sub = self.ctx.with_changes(config=config, budget=Budget(passes=self.job.passes))
        recorded: list[Attempt] = []

        async def record(attempt: Attempt) -> None:
            recorded.append(attempt)

        await WholeProofStrategy().prove(problem, sub, record, DoneAttempts())
        for attempt in sorted(recorded, key=lambda a: (a.round, a.sample_index)):
            self._add_whole_proof(attempt)
        proving = next((a for a in self.attempts if a.verdict.proved and a.proof), None)
        if proving is None:
            infra = any(a.verdict.status in (CheckStatus.ERROR, CheckStatus.TIMEOUT) for a in self.attempts)
            return self.outcome(False, "lemma", lemma=lemma, infrastructure=infra,
                                detail=f"no accepted proof of the lemma in {self.job.passes} sample(s)")
        try:
            body, aux = lemma_body(problem, proving.proof or "")
        except AssemblyRejected as exc:  # cannot happen for an accepted proof; refuse rather than guess
            return self.outcome(False, "lemma", lemma=lemma, detail=f"the accepted proof does not assemble: {exc}")
        proof = lemma.proof_for_hole(body)
        if not aux and self.ctx.proof_cache is not None:
            await self.ctx.proof_cache.publish_proof(self.job.cache_key, (proof,))
        return self.outcome(True, "lemma", proof=proof, aux=aux, lemma=lemma)

    def _add_whole_proof(self, attempt: Attempt) -> None:
        """A whole-proof sample of the lemma as an attempt of this job (indices per round block)."""
        block = self.job.passes
        duplicate = attempt.duplicate_of
        if duplicate is not None:
            duplicate += block * int(str(attempt.extra.get("duplicate_of_round", attempt.round)))
        self.add(
            attempt.verdict, method="lemma", proof=attempt.proof, completion=attempt.completion,
            index=attempt.round * block + attempt.sample_index, round=attempt.round, duplicate_of=duplicate,
            prompt_tokens=attempt.prompt_tokens, completion_tokens=attempt.completion_tokens,
            gen_seconds=attempt.gen_seconds, check_seconds=attempt.check_seconds, extra=dict(attempt.extra),
        )

    async def tactic_mode(self, why: str) -> SubgoalOutcome:
        """Whole proofs of the goal run on the hole's proof state (the goal is not a lemma)."""
        state = await self._start()
        if state is None:
            return self.outcome(False, "tactic", infrastructure=True,
                                detail=f"{why}; and the hole's proof state could not be re-created")
        try:
            return await self._tactic_samples(state, why)
        finally:
            await self.ctx.lean.release(state.tree)

    async def _tactic_samples(self, state: GoalState, why: str) -> SubgoalOutcome:
        sampler_cfg = self.ctx.config.sampler_for(PROVER_ROLE)
        fmt = get_format(sampler_cfg.prompt_format, sampler_cfg.model)
        chunk = min(self.ctx.config.section(WHOLE_PROOF_SPEC).chunk, self.job.passes)
        tried: dict[str, Verdict] = {}
        for start in range(0, self.job.passes, chunk):
            n = min(chunk, self.job.passes - start)
            seed = job_seed(self.job.seed, "tactic", start)
            request = GenRequest(
                messages=(ChatMessage(role="user", content=TACTIC_MODE_PROMPT.format(goal=self.job.goal)),),
                n=n, temperature=sampler_cfg.temperature, top_p=sampler_cfg.top_p, seed=seed,
                max_tokens=sampler_cfg.max_tokens or fmt.default_max_tokens, tag=self.job.lemma_name,
            )
            result = await self.ctx.sampler(PROVER_ROLE).generate(request)
            for offset, completion in enumerate(result.completions):
                script = extract_tactics(completion.text)
                verdict = tried.get(script) if script is not None else None
                seconds = 0.0
                if script is None:
                    verdict = Verdict(status=CheckStatus.FAILED, rule="no_proof_extracted",
                                      detail="no tactic block in the completion")
                elif verdict is None:
                    t0 = time.monotonic()
                    verdict = await self._apply_script(state, script)
                    seconds = time.monotonic() - t0
                    tried[script] = verdict
                self.add(verdict, method="tactic", proof=script, completion=completion.text,
                         prompt_tokens=result.prompt_tokens if offset == 0 else 0, completion_tokens=completion.tokens,
                         gen_seconds=result.seconds / max(1, len(result.completions)), check_seconds=seconds,
                         extra={"seed": seed, "why_tactic_mode": why})
                if verdict.proved and script is not None:
                    if self.ctx.proof_cache is not None:
                        await self.ctx.proof_cache.publish_proof(self.job.cache_key, (script,))
                    return self.outcome(True, "tactic", proof=script, detail=f"proved in tactic mode ({why})")
        infra = any(a.verdict.status in (CheckStatus.ERROR, CheckStatus.TIMEOUT) for a in self.attempts)
        return self.outcome(False, "tactic", infrastructure=infra,
                            detail=f"no tactic proof in {self.job.passes} sample(s) ({why})")

    async def _apply_script(self, state: GoalState, script: str) -> Verdict:
        batch = await self.ctx.lean.apply(state, (script,), timeout=self.ctx.config.lean.timeout)
        outcome = batch.outcomes[0]
        if outcome.kind is StepKind.PROVED:
            return Verdict(status=CheckStatus.PROVED, rule="subgoal:tactic_mode", lean_seconds=batch.lean_seconds)
        if outcome.kind is StepKind.OK:
            return Verdict(status=CheckStatus.FAILED, rule="incomplete", lean_seconds=batch.lean_seconds,
                           detail="goals remain:\n" + "\n\n".join(outcome.goals or ()))
        if outcome.kind in LEAN_VERDICTS:  # the checker's rule names for Lean's refusals
            rule = "lean_error" if outcome.kind is StepKind.ERROR else "incomplete"
            return Verdict(status=CheckStatus.FAILED, rule=rule, detail=outcome.error, lean_seconds=batch.lean_seconds)
        status = CheckStatus.TIMEOUT if outcome.kind is StepKind.TIMEOUT else CheckStatus.ERROR
        return Verdict(status=status, rule=outcome.kind.value, detail=outcome.error, lean_seconds=batch.lean_seconds)

    # -- 3. best-first search -----------------------------------------------------------------

    async def search(self) -> SubgoalOutcome:
        cache = self.ctx.proof_cache
        problem = self.job.problem.model_copy(update={"name": self.job.lemma_name})
        infra = False
        for index in range(self.job.passes):
            search = BestFirstSearch(
                problem, origin=self.job.origin, config=self.ctx.config.section(BFS_SPEC), fmt=default_tactic_format(),
                attempt=index, seed=job_seed(self.job.seed, "search", index), use_cache=cache is not None,
                ban_check=checker_ban_check(self.ctx.config), tactic_timeout=self.ctx.config.lean.timeout,
            )
            result = await run_search(search, lean=self.ctx.lean, sampler=self.ctx.sampler(PROVER_ROLE), cache=cache)
            proof = "\n".join(result.tactics or ()) if result.proved else None
            verdict = _search_verdict(result)
            infra = infra or verdict.status is CheckStatus.ERROR
            tree_file = self._write_tree(result, index)
            self.add(verdict, method="search", proof=proof, prompt_tokens=result.prompt_tokens,
                     completion_tokens=result.completion_tokens, gen_seconds=result.gen_seconds,
                     extra={"seed": search.seed, "expansions": result.expansions, "stop_reason": result.stop_reason,
                            "cache_proof_hits": result.cache_proof_hits, "tree_file": tree_file})
            if proof:
                replayed = result.cache_proof_hits > 0 and result.expansions == 0
                method: SubgoalMethod = "cache" if replayed else "search"
                return self.outcome(True, method, proof=proof)
        lemma, _ = await self.confirmed_lemma()  # what a decomposition of this hole would prove
        return self.outcome(False, "search", infrastructure=infra, lemma=lemma,
                            detail=f"no proof in {self.job.passes} best-first search(es)")

    def _write_tree(self, result: SearchResult, index: int) -> str | None:
        if self.ctx.artifacts is None:
            return None
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.job.problem.name}.{self.job.step}")[:160]
        path = self.ctx.artifacts / "subgoals" / f"{name}.{index}.json"
        result.tree.write_json(path)
        return str(path)


def _search_verdict(result: SearchResult) -> Verdict:
    if result.proved:
        return Verdict(status=CheckStatus.PROVED, rule="subgoal:tactic_mode", lean_seconds=result.lean_seconds)
    if result.stop_reason == "start_failed":
        status = CheckStatus.ERROR if result.start_infrastructure else CheckStatus.FAILED
        return Verdict(status=status, rule="search:start_failed", detail=result.start_error)
    if result.stop_reason == "exhausted" and result.lost_expansions:
        return Verdict(status=CheckStatus.ERROR, rule="search:infrastructure", lean_seconds=result.lean_seconds,
                       detail=f"{result.lost_expansions} expansions lost their Lean state")
    return Verdict(status=CheckStatus.FAILED, rule=f"search:{result.stop_reason}", lean_seconds=result.lean_seconds,
                   detail=f"no proof found: {result.stop_reason} after {result.expansions} expansions")


def extract_tactics(completion: str) -> str | None:
    """The tactic block of a tactic-mode answer: its last Lean block (what follows `:= by` if the
    model restated a theorem), dedented; None if there is none."""
    _, answer, closed = split_thinking(completion)
    if not closed:
        return None
    blocks = [b for b in find_code_blocks(answer) if b.lang in _LEAN_FENCES and b.closed and b.code.strip()]
    if not blocks:
        return None
    code = blocks[-1].code
    toks = tokens(code)
    if any(t.text in ("theorem", "lemma", "example") for t in toks):
        assign = next((k for k in range(len(toks) - 1) if toks[k].text == ":=" and toks[k + 1].text == "by"), None)
        if assign is None:
            return None
        code = code[toks[assign + 1].end :]
    script = textwrap.dedent(code.strip("\n")).strip()
    return script or None
