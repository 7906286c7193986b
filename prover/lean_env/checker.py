"""The sound proof checker: model text in, `Verdict` out, with the rule and stage that decided it.

Pipeline (each step's rule in brackets; the first that fails decides):

stage `preflight`
1. token-level ban list on the model's text                            [preflight:<item>]
stage `assembly`
2. assemble header + model aux + BENCHMARK statement + model body      [missing_theorem, empty_proof]
stage `lean` (a pooled worker; the model's code runs here)
3. elaborate it on the header's warm env (one REPL command)            [timeout, out_of_memory, crash,
                                                                        infrastructure]
4. no error message anywhere                                           [lean_error]
5. no `sorries`, no "declaration uses sorry" in either spelling         [sorry]
6. pickle the resulting env (the REPL stores imports + constants only)
stage `audit` (same worker, a clean environment)
7. unpickle it: the env is rebuilt from the imports and every constant is replayed in the
   kernel; nothing of the model's environment extensions comes along (elaborators, macros,
   notations, attributes, instances, options)                          [audit_replay]
8. trusted commands on that env: `#check @<theorem>` (pp.all) and `#print axioms <theorem>`
   - unknown constant, or Lean printed another constant's name         [missing_theorem]
   - fully explicit type differs from the benchmark statement
     elaborated alone on the header env (once per problem)             [statement_mismatch]
   - an axiom outside allowed + extra (sorryAx never allowed; with `allow_header_axioms`,
     axioms the header environment itself declares are allowed)        [axioms]
stage `replay` (`checker.replay`: on when the workspace has the tool)
9. compile the checked file to an .olean, replay it with lean4checker  [replay:rejected, replay:compile_error,
                                                                        replay:timeout, replay:error,
                                                                        replay:missing_tool]
10. accepted                                                           [accepted], stage audit or replay

Because the audit's environment is rebuilt from constants alone, no elaborator, macro or
delaborator the model defined exists there to answer it (E7). What survives is process-global
state, which model code could change only by running arbitrary code at elaboration time: the ban
list blocks every known way to do that, the sandbox contains it, and the replay stage re-checks
in fresh processes. (Auditing on workers of their own would cost a pool slot per header and, in
a saturated pool, evict and re-import workers between the two keys on every check.)

Statuses: PROVED (accepted), FAILED (lean_error, sorry, empty_proof), REJECTED (preflight,
missing_theorem, statement_mismatch, axioms, audit_replay, replay:rejected, replay:compile_error),
TIMEOUT (timeout, replay:timeout), ERROR (out_of_memory, crash, infrastructure, replay:error,
replay:missing_tool). Message positions in the verdict refer to `Verdict.code` (header included).

A check that ends in ERROR (or TIMEOUT with `lean.retry_timeouts`) is run again from step 1 on a
fresh process, up to `lean.retries` times (`lean_env/retry.py`); `Verdict.tries` says how many ran.

`check_sketch` runs the pipeline up to the audit on a proof with `sorry` holes (a planner's
sketch): the ban list except the `sorry` token itself, the benchmark statement, no Lean error,
then the same audit (clean environment, trusted statement check, axioms with `sorryAx` aside).
Its verdict is still the verdict on the sketch *as a proof* (`sorry` when nothing else is wrong);
`SketchCheck.accepted` says the holes are all that is missing, and `sorries` are the goals Lean
reported for them. There is nothing for the kernel replay to replay: a sketch proves nothing.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.config import CheckerConfig
from prover.errors import LeanError, PoolClosed, PoolOverloaded
from prover.lean_env.assemble import ASSEMBLER_VERSION, AssembledProof, AssemblyRejected, assemble
from prover.lean_env.inflight import InFlight
from prover.lean_env.lease import WorkerLease
from prover.lean_env.pool import LeanPool
from prover.lean_env.preflight import PreflightResult, banned_items, preflight, rules_hash
from prover.lean_env.protocol import CommandResponse, ReplErrorResponse, Sorry
from prover.lean_env.replay import KernelReplay
from prover.lean_env.results import EnvKey, OutcomeKind, ReplResult
from prover.lean_env.retry import RetryPolicy
from prover.lean_env.verdict_cache import VerdictCache, verdict_key
from prover.lean_syntax import current_namespace, name_parts, tokenize
from prover.types import CheckStatus, LeanMessage, Pos, Problem, Verdict, content_hash

CHECKER_VERSION = "checker/v3-clean-audit"
"""Bump when the pipeline changes meaning: it is part of every cache key."""

NATIVE_AXIOMS: tuple[str, ...] = ("Lean.ofReduceBool", "Lean.trustCompiler")
"""Allowed in addition when `allow_native_decide` is set (what `native_decide` depends on)."""

NEVER_ALLOWED: frozenset[str] = frozenset({"sorryAx"})

Stage = Literal["preflight", "assembly", "lean", "audit", "replay"]

_FAILURE_KINDS = {
    OutcomeKind.TIMEOUT: (CheckStatus.TIMEOUT, "timeout"),
    OutcomeKind.OUT_OF_MEMORY: (CheckStatus.ERROR, "out_of_memory"),
    OutcomeKind.CRASH: (CheckStatus.ERROR, "crash"),
    OutcomeKind.INFRASTRUCTURE: (CheckStatus.ERROR, "infrastructure"),
}
_AXIOMS = re.compile(r"'(.*)' depends on axioms:\s*\[(.*)\]", re.DOTALL)
_NO_AXIOMS = re.compile(r"'(.*)' does not depend on any axioms", re.DOTALL)
_AXIOM_NAME = re.compile(r"(?:«[^»]*»|[^,«\s])+")
"""One name in a printed axiom list. `«»` parts stay as printed: `«Classical.choice»` (one name
component containing a dot, or `«propext, Quot.sound»`) is not `Classical.choice`."""
_KERNEL = "(kernel)"
_CHECK_LINES, _AXIOMS_LINES = (1, 3), (4, 1 << 30)
"""Line ranges of the trusted command's two parts (see `_trusted_command`): the `#check` reply may
be reported at its `set_option ... in` prefix or at `#check` itself."""
PP_OPTIONS = ("pp.all true", "pp.explicit true", "pp.notation false", "pp.universes true", "pp.fullNames true")
"""Set explicitly (not only via pp.all) so options the model set in its code cannot hide details."""


SKETCH_HOLE = "sorry"
"""The one banned token a sketch may contain (as a token: `sorryAx`, `admit` stay banned)."""


class SketchCheck(BaseModel):
    """The checker's word on a sketch: a proof whose only gaps are `sorry` holes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accepted: bool
    """Lean elaborated it without errors, on the benchmark statement, with only banned-list-clean
    text and no axiom besides the allowed ones and `sorryAx`: the holes are all that is missing."""
    verdict: Verdict
    """The pipeline's verdict on the sketch as a proof (rule `sorry` when accepted)."""
    command: str = ""
    """Benchmark statement + the sketch's body, as assembled (what `sorries` positions refer to)."""
    sent: str = ""
    """What was elaborated on the header env: `command` after the pretty-printer options (the code
    a hole's goal state is re-created from, `StateOrigin(header, sent, index)`)."""
    sorries: tuple[Sorry, ...] = ()
    """Lean's `sorries` entries, positions relative to `command`, without proof-state ids (those
    belong to the worker that checked it)."""


class _Decided(Exception):
    """Internal: a step reached its verdict."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.rule)
        self.verdict = verdict


@dataclass(frozen=True)
class _Elaborated:
    """What the `lean` stage hands to the audit."""

    messages: tuple[LeanMessage, ...]
    pickle: Path
    seconds: float


class ProofChecker:
    """Checks proofs with the full soundness pipeline (module docstring).

    Args:
        pool: the Lean pool whose warm header envs run the checks.
        config: the rules (allowed axioms, ban list, native_decide, kernel replay).
        cache: optional verdict cache (identical checks are then also computed once).
        verify_statement: compare the checked theorem's fully explicit type with the benchmark
            statement elaborated alone (one extra command per problem and checker).
        replay: the kernel replay stage; default from `config.replay` and the pool's workspace.

    Example:
        checker = ProofChecker(pool, CheckerConfig())
        verdict = await checker.check(problem, "  norm_num")
    """

    def __init__(
        self,
        pool: LeanPool,
        config: CheckerConfig,
        *,
        cache: VerdictCache | None = None,
        verify_statement: bool = True,
        replay: KernelReplay | None | Literal["config"] = "config",
    ) -> None:
        self.pool = pool
        self.config = config
        self.cache = cache
        self.verify_statement = verify_statement
        self.banned = banned_items(config)
        self.replay = KernelReplay.from_config(pool.config, config, pool.launcher) if replay == "config" else replay
        self._references: dict[tuple[EnvKey, str], tuple[str, ...]] = {}
        """Statement references by (env key, statement)."""
        self._reference_flights: InFlight[tuple[EnvKey, str], tuple[str, ...]] = InFlight()
        self._header_axioms: dict[tuple[EnvKey, str], bool] = {}
        self._exchange = Path(tempfile.mkdtemp(prefix="prover-audit-"))
        weakref.finalize(self, shutil.rmtree, self._exchange, True)

    # -- public API -------------------------------------------------------------------------
    def allowed_axioms(self, extra: Sequence[str] = ()) -> frozenset[str]:
        """The allow-list for one check (sorryAx is removed whatever the configuration says)."""
        names = {*self.config.allowed_axioms, *self.config.extra_allowed_axioms, *extra}
        if self.config.allow_native_decide:
            names.update(NATIVE_AXIOMS)
        return frozenset(names - NEVER_ALLOWED)

    def rules_fingerprint(self, extra: Sequence[str] = ()) -> str:
        """Hash of everything in the rules that can change a verdict (part of cache keys): the
        ban list itself, the assembler's and checker's versions, the axioms, the replay tool."""
        return content_hash(
            CHECKER_VERSION,
            ASSEMBLER_VERSION,
            rules_hash(),
            ",".join(sorted(self.allowed_axioms(extra))),
            ",".join(sorted(self.banned)),
            str(self.verify_statement),
            str(self.config.allow_header_axioms),
            "replay:" + (self.replay.fingerprint if self.replay is not None else "off"),
        )

    async def check(self, problem: Problem, proof: str, *, extra_allowed_axioms: Sequence[str] = ()) -> Verdict:
        """Check `proof` (tactic body or complete code) against `problem`'s own statement."""
        if self.cache is None:
            return await self._check_retrying(problem, proof, extra_allowed_axioms)
        env_key = self.pool.env_key(problem.header)
        key = verdict_key(
            workspace=env_key.workspace,
            lean_version=env_key.lean_version,
            repl_cmd=shlex.join(self.pool.config.repl_cmd or ()),
            header=problem.header,
            statement=problem.formal_statement,
            proof=proof,
            rules=self.rules_fingerprint(extra_allowed_axioms),
        )
        return await self.cache.get_or_compute(key, lambda: self._check_retrying(problem, proof, extra_allowed_axioms))

    async def _check_retrying(self, problem: Problem, proof: str, extra: Sequence[str]) -> Verdict:
        """The whole pipeline again, on a fresh process, after a failure the proof may not have caused
        (`RetryPolicy`): the retry leases a process that has served nothing yet (`fresh`).
        The last try's verdict counts; `tries` and the Lean time of every try are recorded."""
        policy = RetryPolicy.from_config(self.pool.config)
        seconds = 0.0
        for tries in range(1, policy.tries + 1):
            verdict = await self._check(problem, proof, extra, fresh=tries > 1)
            seconds += verdict.lean_seconds
            if tries == policy.tries or not policy.retried_verdict(verdict):
                break
        return verdict.model_copy(update={"tries": tries, "lean_seconds": seconds})

    async def check_sketch(
        self, problem: Problem, proof: str, *, pp_options: Sequence[tuple[str, str]] = ()
    ) -> SketchCheck:
        """Check a sketch: `proof` (a body or complete code, as for `check`) with `sorry` holes.

        Args:
            pp_options: (name, value) pretty-printer options set for this elaboration only
                (`set_option name value in`), so the holes' goals print the way the caller needs.

        Retried like `check` (`RetryPolicy`) after a failure the sketch may not have caused.
        """
        policy = RetryPolicy.from_config(self.pool.config)
        seconds = 0.0
        for tries in range(1, policy.tries + 1):
            checked = await self._check_sketch(problem, proof, pp_options, fresh=tries > 1)
            seconds += checked.verdict.lean_seconds
            if tries == policy.tries or not policy.retried_verdict(checked.verdict):
                break
        return checked.model_copy(update={"verdict": checked.verdict.model_copy(update={"tries": tries,
                                                                                          "lean_seconds": seconds})})

    async def _check_sketch(
        self, problem: Problem, proof: str, pp_options: Sequence[tuple[str, str]], *, fresh: bool = False
    ) -> SketchCheck:
        pre = preflight(proof, banned=self.banned, header=problem.header)
        hits = tuple(h for h in pre.hits if not (h.item == SKETCH_HOLE and h.text == SKETCH_HOLE))
        if hits:
            left = PreflightResult(hits=hits)
            return _sketch_refused(Verdict(status=CheckStatus.REJECTED, rule=left.rule, detail=left.describe(),
                                           stage="preflight"))
        try:
            asm = assemble(problem, proof)
        except AssemblyRejected as exc:
            status = CheckStatus.FAILED if exc.rule == "empty_proof" else CheckStatus.REJECTED
            return _sketch_refused(Verdict(status=status, rule=exc.rule, detail=exc.detail, stage="assembly"))
        prefix = "".join(f"set_option {name} {value} in\n" for name, value in pp_options)
        sent = prefix + asm.command
        started = time.monotonic()
        pickle = self._exchange / f"{content_hash(sent, str(time.monotonic_ns()))}.olean"
        stage: Stage = "lean"
        try:
            async with self.pool.lease(self.pool.env_key(problem.header), fresh=fresh) as lease:
                elaborated = await self._elaborate_sketch(lease, asm, sent, prefix.count("\n"), pickle)
                if isinstance(elaborated, Verdict):
                    checked = _sketch_refused(elaborated)
                else:
                    stage = "audit"
                    found, sorries = elaborated
                    verdict = await self._audit(lease, problem, asm, found, (), holes=True)
                    checked = _sketch_audited(verdict, sorries)
        except _Decided as decided:
            checked = _sketch_refused(decided.verdict.model_copy(update={"stage": decided.verdict.stage or stage}))
        except (PoolClosed, PoolOverloaded):
            raise
        except LeanError as exc:
            checked = _sketch_refused(Verdict(status=CheckStatus.ERROR, rule="infrastructure", detail=str(exc),
                                              code=asm.code, stage=stage))
        finally:
            pickle.unlink(missing_ok=True)
        seconds = checked.verdict.lean_seconds or time.monotonic() - started
        verdict = checked.verdict.model_copy(update={"lean_seconds": seconds})
        return checked.model_copy(update={"verdict": verdict, "command": asm.command, "sent": sent})

    # -- pipeline -----------------------------------------------------------------------------
    async def _check(self, problem: Problem, proof: str, extra: Sequence[str], *, fresh: bool = False) -> Verdict:
        pre = preflight(proof, banned=self.banned, header=problem.header)
        if not pre.ok:
            return Verdict(status=CheckStatus.REJECTED, rule=pre.rule, detail=pre.describe(), stage="preflight")
        try:
            asm = assemble(problem, proof)
        except AssemblyRejected as exc:
            status = CheckStatus.FAILED if exc.rule == "empty_proof" else CheckStatus.REJECTED
            return Verdict(status=status, rule=exc.rule, detail=exc.detail, stage="assembly")
        started = time.monotonic()
        pickle = self._exchange / f"{content_hash(proof, str(time.monotonic_ns()))}.olean"
        stage: Stage = "lean"
        try:
            async with self.pool.lease(self.pool.env_key(problem.header), fresh=fresh) as lease:
                elaborated = await self._elaborate(lease, asm, pickle)
                if isinstance(elaborated, Verdict):
                    verdict = elaborated
                else:
                    stage = "audit"
                    verdict = await self._audit(lease, problem, asm, elaborated, extra)
            if verdict.proved and self.replay is not None:
                stage = "replay"
                verdict = await self._replay(verdict, asm)
        except _Decided as decided:
            verdict = decided.verdict.model_copy(update={"stage": decided.verdict.stage or stage})
        except (PoolClosed, PoolOverloaded):
            raise
        except LeanError as exc:
            # the worker could not start, the header does not elaborate, or the process died
            # between two requests that needed the same process (StaleHandleError): not the proof's fault
            verdict = Verdict(status=CheckStatus.ERROR, rule="infrastructure", detail=str(exc), code=asm.code,
                              stage=stage)
        finally:
            pickle.unlink(missing_ok=True)
        seconds = verdict.lean_seconds or time.monotonic() - started
        return verdict.model_copy(update={"lean_seconds": seconds})

    async def _elaborate(self, lease: WorkerLease, asm: AssembledProof, pickle: Path) -> Verdict | _Elaborated:
        """Stage `lean`: run the model's code; a verdict if Lean says no, else the pickled env."""
        result = await lease.command(asm.command)
        seconds = result.seconds
        response = self._response(result, asm, seconds, "lean")
        messages = _shift(response.messages, asm.header_lines)
        base = {"code": asm.code, "messages": messages, "lean_seconds": seconds, "stage": "lean"}
        errors = [m for m in messages if m.severity == "error"]
        if errors:
            return Verdict(status=CheckStatus.FAILED, rule="lean_error", detail=_describe(errors[0], asm), **base)
        if response.has_sorry():
            return Verdict(status=CheckStatus.FAILED, rule="sorry", detail="the proof uses sorry", **base)
        if result.env is None:
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="infrastructure",
                                   detail="the REPL returned no environment", **base))
        pickled = await lease.pickle_env(result.env, str(pickle))
        seconds += pickled.seconds
        self._response(pickled, asm, seconds, "lean")
        return _Elaborated(messages=messages, pickle=pickle, seconds=seconds)

    async def _elaborate_sketch(
        self, lease: WorkerLease, asm: AssembledProof, sent: str, prefix_lines: int, pickle: Path
    ) -> Verdict | tuple[_Elaborated, tuple[Sorry, ...]]:
        """`_elaborate` for a sketch: `sent` carries the caller's options; its sorries are the point."""
        result = await lease.command(sent)
        seconds = result.seconds
        response = self._response(result, asm, seconds, "lean")
        refused_options = [m.data for m in response.errors() if 0 < m.pos.line <= prefix_lines]
        if refused_options:  # the caller's options, not the sketch: this Lean lacks one of them
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="pp_options", lean_seconds=seconds, stage="lean",
                                   detail=f"Lean refused a pretty-printer option: {refused_options[0].strip()}"))
        messages = _shift(response.messages, asm.header_lines - prefix_lines)
        base = {"code": asm.code, "messages": messages, "lean_seconds": seconds, "stage": "lean"}
        errors = [m for m in messages if m.severity == "error"]
        if errors:
            return Verdict(status=CheckStatus.FAILED, rule="lean_error", detail=_describe(errors[0], asm), **base)
        if result.env is None:
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="infrastructure",
                                   detail="the REPL returned no environment", **base))
        pickled = await lease.pickle_env(result.env, str(pickle))
        seconds += pickled.seconds
        self._response(pickled, asm, seconds, "lean")
        sorries = tuple(_sorry_in_command(s, prefix_lines) for s in response.sorries)
        return _Elaborated(messages=messages, pickle=pickle, seconds=seconds), sorries

    async def _audit(
        self, audit: WorkerLease, problem: Problem, asm: AssembledProof, elaborated: _Elaborated, extra: Sequence[str],
        *, holes: bool = False,
    ) -> Verdict:
        """Stage `audit`: the trusted commands on the model's env rebuilt from its constants alone
        (`holes`: a sketch's, whose `sorryAx` is expected)."""
        seconds = elaborated.seconds
        base = {"code": asm.code, "messages": elaborated.messages, "stage": "audit"}
        reference = await self._reference(audit, problem, asm) if self.verify_statement else ()
        loaded = await audit.unpickle_env(str(elaborated.pickle))
        seconds += loaded.seconds
        replay_failure = _replay_failure(loaded)
        if replay_failure:
            return Verdict(status=CheckStatus.REJECTED, rule="audit_replay", lean_seconds=seconds, **base,
                           detail=f"the kernel refused a declaration when the environment was rebuilt: {replay_failure}")
        self._response(loaded, asm, seconds, "audit")
        trusted = await audit.command(_trusted_command(asm.theorem_name), env=loaded.env)
        seconds += trusted.seconds
        trusted_response = self._response(trusted, asm, seconds, "audit")
        base["lean_seconds"] = seconds
        axioms = _parse_axioms(asm.theorem_name, _in_lines(trusted_response.messages, _AXIOMS_LINES),
                               namespace=current_namespace(tokenize(problem.header).tokens))
        if isinstance(axioms, Verdict):
            return axioms.model_copy(update=base)
        if self.verify_statement:
            mismatch = _statement_mismatch(asm, trusted_response, reference)
            if mismatch:
                return Verdict(status=CheckStatus.REJECTED, rule="statement_mismatch", detail=mismatch,
                               axioms=axioms, **base)
        allowed = self.allowed_axioms(extra) | (NEVER_ALLOWED if holes else frozenset())
        forbidden = [a for a in axioms if a not in allowed]
        if forbidden and self.config.allow_header_axioms:
            forbidden = await self._not_declared_by_header(audit, problem, asm, forbidden)
        if forbidden:
            return Verdict(status=CheckStatus.REJECTED, rule="axioms", axioms=axioms,
                           detail=f"`{asm.theorem_name}` depends on axioms outside the allow-list: {forbidden}",
                           **base)
        return Verdict(status=CheckStatus.PROVED, rule="accepted", axioms=axioms, **base)

    async def _replay(self, verdict: Verdict, asm: AssembledProof) -> Verdict:
        """Stage `replay`: only a proof the kernel replay accepts stays PROVED."""
        assert self.replay is not None
        outcome = await self.replay.check(asm.code)
        update = {"stage": "replay", "lean_seconds": verdict.lean_seconds + outcome.seconds}
        if outcome.status is CheckStatus.PROVED:
            return verdict.model_copy(update={**update, "detail": outcome.detail})
        return verdict.model_copy(update={**update, "status": outcome.status, "rule": outcome.rule,
                                          "detail": outcome.detail})

    def _response(self, result: ReplResult, asm: AssembledProof, seconds: float, stage: Stage) -> CommandResponse:
        """The command reply, or a decided verdict for timeouts, crashes and protocol surprises."""
        if result.kind in _FAILURE_KINDS:
            status, rule = _FAILURE_KINDS[result.kind]
            raise _Decided(Verdict(status=status, rule=rule, detail=result.detail, code=asm.code,
                                   lean_seconds=seconds, stage=stage))
        if not isinstance(result.response, CommandResponse):
            detail = result.response.message if isinstance(result.response, ReplErrorResponse) else result.detail
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="infrastructure", code=asm.code,
                                   detail=f"unexpected REPL reply: {detail or 'no reply'}", lean_seconds=seconds,
                                   stage=stage))
        return result.response

    async def _not_declared_by_header(
        self, audit: WorkerLease, problem: Problem, asm: AssembledProof, names: Sequence[str]
    ) -> list[str]:
        """The names among `names` that are not axioms of the header environment (sorryAx never is).

        One `#print axioms <name>` line per unknown name, on the header env: `name` is a header axiom iff the reply names exactly that constant and lists it as its own axiom.
        Asking `#check @name` would not do: the header's `namespace`/`open`s resolve a model axiom
        `sqrt_cheat` to `Real.sqrt_cheat` if that exists, and any def or theorem would pass."""
        key = self.pool.env_key(problem.header)
        unknown = [n for n in names if (key, n) not in self._header_axioms and n not in NEVER_ALLOWED]
        if unknown:
            cmd = "\n".join(f"#print axioms {name}" for name in unknown) + "\n"
            result = await audit.command(cmd)
            replies: dict[int, list[str]] = {}
            for m in self._response(result, asm, result.seconds, "audit").messages:
                replies.setdefault(m.pos.line, []).append(m.data.strip() if m.severity == "info" else "")
            for line, name in enumerate(unknown, start=1):
                printed = [_printed_axioms(data) for data in replies.get(line, [])]
                self._header_axioms[(key, name)] = (
                    len(printed) == 1 and printed[0] is not None and printed[0][0] == name and name in printed[0][1]
                )
        return [n for n in names if n in NEVER_ALLOWED or not self._header_axioms[(key, n)]]

    def _reference_key(self, problem: Problem) -> tuple[EnvKey, str]:
        return self.pool.env_key(problem.header), problem.formal_statement

    async def _reference(self, audit: WorkerLease, problem: Problem, asm: AssembledProof) -> tuple[str, ...]:
        """`#check` output of the benchmark statement elaborated alone on the header env: computed
        once per problem; a check that finds it being computed waits for it, and computes it
        itself only if that computation failed."""
        key = self._reference_key(problem)
        if key not in self._references:
            reference, _ = await self._reference_flights.run(key, lambda: self._compute_reference(audit, problem, asm))
            self._references[key] = reference
        return self._references[key]

    async def _compute_reference(self, audit: WorkerLease, problem: Problem, asm: AssembledProof) -> tuple[str, ...]:
        statement = problem.formal_statement.rstrip()
        cmd = f"{statement} sorry\n\n" + _trusted_command(asm.theorem_name)
        result = await audit.command(cmd)
        offset = statement.count("\n") + 2  # the trusted part starts after the statement and a blank line
        response = self._response(result, asm, result.seconds, "audit")
        shifted = _shift(response.messages, -offset)
        return tuple(m.data for m in _in_lines(shifted, _CHECK_LINES))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _trusted_command(name: str) -> str:
    """Our own command, run on the audited env: `#check` on lines 1-2 (fully explicit, so an
    instance or notation change shows), `#print axioms` on line 4."""
    options = " ".join(f"set_option {o} in" for o in PP_OPTIONS)
    return f"{options}\n#check @{name}\n\n#print axioms {name}\n"


def _sketch_refused(verdict: Verdict) -> SketchCheck:
    return SketchCheck(accepted=False, verdict=verdict)


def _sketch_audited(verdict: Verdict, sorries: tuple[Sorry, ...]) -> SketchCheck:
    """The audit's verdict on a sketch: passed, it is `sorry` (the holes are all that is missing)."""
    if not verdict.proved:
        return _sketch_refused(verdict)
    holes = f"{len(sorries)} hole(s)" if sorries else "no `sorries` entry"
    detail = f"a sketch: elaborates with {holes}"
    hole_verdict = verdict.model_copy(update={"status": CheckStatus.FAILED, "rule": "sorry", "detail": detail})
    return SketchCheck(accepted=bool(sorries), verdict=hole_verdict, sorries=sorries)


def _sorry_in_command(sorry: Sorry, prefix_lines: int) -> Sorry:
    """A `sorries` entry with its positions moved from the sent text to `command` coordinates."""

    def moved(pos: Pos | None) -> Pos | None:
        return None if pos is None else Pos(line=pos.line - prefix_lines, column=pos.column)

    return sorry.model_copy(update={"pos": moved(sorry.pos), "end_pos": moved(sorry.end_pos), "proof_state": None})


def _replay_failure(loaded: ReplResult) -> str:
    """Why rebuilding the env failed in the kernel ("" if it did not): the REPL answers an error
    message, or (v4.15 and earlier) dies with the exception on stderr."""
    if isinstance(loaded.response, ReplErrorResponse) and _KERNEL in loaded.response.message:
        return loaded.response.message.strip()[:500]
    if loaded.kind is OutcomeKind.CRASH and _KERNEL in loaded.detail:
        return loaded.detail[loaded.detail.index(_KERNEL) :][:500]
    return ""


def _statement_mismatch(asm: AssembledProof, trusted: CommandResponse, reference: tuple[str, ...]) -> str:
    """Empty if the checked theorem's explicit type equals the reference's; else why not."""
    checked = tuple(m.data for m in _in_lines(trusted.messages, _CHECK_LINES))
    if checked == reference:
        return ""
    return (
        f"`{asm.theorem_name}` in the checked environment does not have the benchmark statement's type:\n"
        f"expected: {' | '.join(reference) or '(nothing)'}\nfound:    {' | '.join(checked) or '(nothing)'}"
    )


def _in_lines(messages: Sequence[LeanMessage], lines: tuple[int, int]) -> list[LeanMessage]:
    return [m for m in messages if lines[0] <= m.pos.line <= lines[1]]


def _shift(messages: Sequence[LeanMessage], lines: int) -> tuple[LeanMessage, ...]:
    """Move message positions by `lines` (command coordinates -> file coordinates)."""
    if not lines:
        return tuple(messages)
    out = []
    for m in messages:
        pos = Pos(line=m.pos.line + lines, column=m.pos.column) if m.pos.line > 0 else m.pos
        end = m.end_pos
        if end is not None and end.line > 0:
            end = Pos(line=end.line + lines, column=end.column)
        out.append(m.model_copy(update={"pos": pos, "end_pos": end}))
    return tuple(out)


def _describe(message: LeanMessage, asm: AssembledProof) -> str:
    where = asm.part_of(message.pos.line)
    first = message.data.strip().splitlines()[0] if message.data.strip() else ""
    return f"line {message.pos.line} ({where}): {first}"


def _parse_axioms(name: str, messages: Sequence[LeanMessage], *, namespace: tuple[str, ...] = ()) -> tuple[str, ...] | Verdict:
    """Axioms from the trusted `#print axioms` reply; a REJECTED verdict if it is not one clean
    info message about the theorem itself (fail closed: anything unexpected is not evidence).

    `namespace`: the one the header leaves open, where the benchmark theorem lands."""
    errors = [m for m in messages if m.severity == "error"]
    if errors:
        data = errors[0].data
        rule = "missing_theorem" if re.search(r"unknown (constant|identifier|declaration)", data, re.IGNORECASE) else "axioms"
        return Verdict(status=CheckStatus.REJECTED, rule=rule,
                       detail=f"`#print axioms {name}` failed: {data.strip()}")
    infos = [m for m in messages if m.severity == "info"]
    if len(infos) != 1:
        return Verdict(status=CheckStatus.REJECTED, rule="axioms",
                       detail=f"`#print axioms {name}` gave {len(infos)} info messages, expected exactly one")
    data = infos[0].data.strip()
    listed = _printed_axioms(data)
    if listed is None:
        return Verdict(status=CheckStatus.REJECTED, rule="axioms",
                       detail=f"cannot read the axioms of `{name}` from: {data[:300]}")
    parts = name_parts(name)
    expected = parts[1:] if parts[:1] == ("_root_",) else namespace + parts
    if name_parts(listed[0]) != expected:
        return Verdict(status=CheckStatus.REJECTED, rule="missing_theorem",
                       detail=f"`#print axioms {name}` answered about `{listed[0]}`: the name resolves to another "
                       "constant (an open namespace?), not the benchmark theorem")
    return listed[1]


def _printed_axioms(data: str) -> tuple[str, tuple[str, ...]] | None:
    """(constant, its axioms) from one `#print axioms` info message, None if it is not one."""
    if match := _NO_AXIOMS.fullmatch(data):
        return match.group(1), ()
    if match := _AXIOMS.fullmatch(data):
        return match.group(1), tuple(_AXIOM_NAME.findall(match.group(2)))
    return None


async def check_many(
    checker: ProofChecker, items: Sequence[tuple[Problem, str]], *, concurrency: int = 8
) -> list[Verdict]:
    """Check several proofs concurrently (bounded), results in input order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(problem: Problem, proof: str) -> Verdict:
        async with gate:
            return await checker.check(problem, proof)

    return list(await asyncio.gather(*(one(p, q) for p, q in items)))


__all__ = ["CHECKER_VERSION", "NATIVE_AXIOMS", "SKETCH_HOLE", "ProofChecker", "SketchCheck", "check_many"]
