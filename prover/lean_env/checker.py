"""The sound proof checker: model text in, `Verdict` out, with the rule that decided it.

Pipeline (each step's rule in brackets; the first that fails decides):

1. preflight ban-list on the model's text                              [preflight:<item>]
2. assemble header + model aux + BENCHMARK statement + model body      [missing_theorem, empty_proof]
3. elaborate it on the header's warm env (one REPL command)            [timeout, out_of_memory, crash,
                                                                        infrastructure]
4. no error message anywhere                                           [lean_error]
5. no `sorries`, no "declaration uses sorry" in either spelling         [sorry]
6. separate trusted command on the resulting env (never text appended to the model's code):
   `set_option pp.all true in #check @<theorem>` and `#print axioms <theorem>`
   - unknown constant                                                  [missing_theorem]
   - fully explicit (pp.all) type differs from the benchmark statement
     elaborated alone on the header env (computed once per problem)    [statement_mismatch]
   - an axiom outside allowed + extra (sorryAx never allowed; with `allow_header_axioms`,
     axioms the header environment itself declares are allowed)        [axioms]
7. accepted                                                            [accepted]

Statuses: PROVED (accepted), FAILED (lean_error, sorry, empty_proof), REJECTED (preflight,
missing_theorem, statement_mismatch, axioms), TIMEOUT (timeout), ERROR (out_of_memory, crash,
infrastructure). Message positions in the verdict refer to `Verdict.code` (header included).

A check that ends in ERROR (or TIMEOUT with `lean.retry_timeouts`) is run again from step 1 on a
fresh lease, up to `lean.retries` times (`lean_env/retry.py`); `Verdict.tries` says how many ran.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Sequence

from prover.config import CheckerConfig
from prover.errors import LeanError, PoolClosed, PoolOverloaded
from prover.lean_env.assemble import AssembledProof, AssemblyRejected, assemble
from prover.lean_env.lease import WorkerLease
from prover.lean_env.pool import LeanPool
from prover.lean_env.preflight import banned_items, preflight
from prover.lean_env.protocol import CommandResponse
from prover.lean_env.results import EnvKey, OutcomeKind, ReplResult
from prover.lean_env.retry import RetryPolicy
from prover.lean_env.verdict_cache import VerdictCache, verdict_key
from prover.types import CheckStatus, LeanMessage, Pos, Problem, Verdict, content_hash

CHECKER_VERSION = "checker/v2"
"""Bump when the pipeline changes meaning: it is part of every cache key."""

NATIVE_AXIOMS: tuple[str, ...] = ("Lean.ofReduceBool", "Lean.trustCompiler")
"""Allowed in addition when `allow_native_decide` is set (what `native_decide` depends on)."""

NEVER_ALLOWED: frozenset[str] = frozenset({"sorryAx"})

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
_CHECK_LINES, _AXIOMS_LINES = (1, 3), (4, 1 << 30)
"""Line ranges of the trusted command's two parts (see `_trusted_command`): the `#check` reply may
be reported at its `set_option ... in` prefix or at `#check` itself."""
PP_OPTIONS = ("pp.all true", "pp.explicit true", "pp.notation false", "pp.universes true", "pp.fullNames true")
"""Set explicitly (not only via pp.all) so options the model set in its code cannot hide details."""


class _Decided(Exception):
    """Internal: a step reached its verdict."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.rule)
        self.verdict = verdict


class ProofChecker:
    """Checks proofs with the full soundness pipeline (module docstring).

    Args:
        pool: the Lean pool whose warm header envs run the checks.
        config: the rules (allowed axioms, ban list, native_decide).
        cache: optional verdict cache (identical checks are then also computed once).
        verify_statement: compare the checked theorem's fully explicit type with the benchmark
            statement elaborated alone (one extra command per problem and worker process).

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
    ) -> None:
        self.pool = pool
        self.config = config
        self.cache = cache
        self.verify_statement = verify_statement
        self.banned = banned_items(config)
        self._references: dict[tuple[EnvKey, str], tuple[str, ...]] = {}
        self._header_axioms: dict[tuple[EnvKey, str], bool] = {}

    # -- public API -------------------------------------------------------------------------
    def allowed_axioms(self, extra: Sequence[str] = ()) -> frozenset[str]:
        """The allow-list for one check (sorryAx is removed whatever the configuration says)."""
        names = {*self.config.allowed_axioms, *self.config.extra_allowed_axioms, *extra}
        if self.config.allow_native_decide:
            names.update(NATIVE_AXIOMS)
        return frozenset(names - NEVER_ALLOWED)

    def rules_fingerprint(self, extra: Sequence[str] = ()) -> str:
        """Hash of everything in the rules that can change a verdict (part of cache keys)."""
        return content_hash(
            CHECKER_VERSION,
            ",".join(sorted(self.allowed_axioms(extra))),
            ",".join(sorted(self.banned)),
            str(self.verify_statement),
            str(self.config.allow_header_axioms),
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
        """The whole pipeline again, on a fresh lease, after a failure the proof may not have caused
        (`RetryPolicy`): the crashed worker has restarted, so the next try runs on a new process.
        The last try's verdict counts; `tries` and the Lean time of every try are recorded."""
        policy = RetryPolicy.from_config(self.pool.config)
        seconds = 0.0
        for tries in range(1, policy.tries + 1):
            verdict = await self._check(problem, proof, extra)
            seconds += verdict.lean_seconds
            if tries == policy.tries or not policy.retried_verdict(verdict):
                break
        return verdict.model_copy(update={"tries": tries, "lean_seconds": seconds})

    # -- pipeline -----------------------------------------------------------------------------
    async def _check(self, problem: Problem, proof: str, extra: Sequence[str]) -> Verdict:
        pre = preflight(proof, banned=self.banned, header=problem.header)
        if not pre.ok:
            return Verdict(status=CheckStatus.REJECTED, rule=pre.rule, detail=pre.describe())
        try:
            asm = assemble(problem, proof)
        except AssemblyRejected as exc:
            status = CheckStatus.FAILED if exc.rule == "empty_proof" else CheckStatus.REJECTED
            return Verdict(status=status, rule=exc.rule, detail=exc.detail)
        started = time.monotonic()
        try:
            async with self.pool.lease(self.pool.env_key(problem.header)) as lease:
                verdict = await self._run(lease, problem, asm, extra)
        except _Decided as decided:
            verdict = decided.verdict
        except (PoolClosed, PoolOverloaded):
            raise
        except LeanError as exc:
            # the worker could not start, the header does not elaborate, or the process died
            # between the model's command and the trusted one (StaleHandleError): not the proof's fault
            verdict = Verdict(status=CheckStatus.ERROR, rule="infrastructure", detail=str(exc), code=asm.code)
        seconds = verdict.lean_seconds or time.monotonic() - started
        return verdict.model_copy(update={"lean_seconds": seconds})

    async def _run(self, lease: WorkerLease, problem: Problem, asm: AssembledProof, extra: Sequence[str]) -> Verdict:
        seconds = 0.0
        result = await lease.command(asm.command)
        seconds += result.seconds
        response = self._response(result, asm, seconds)
        messages = _shift(response.messages, asm.header_lines)
        base = {"code": asm.code, "messages": messages}
        errors = [m for m in messages if m.severity == "error"]
        if errors:
            detail = _describe(errors[0], asm)
            return Verdict(status=CheckStatus.FAILED, rule="lean_error", detail=detail, lean_seconds=seconds, **base)
        if response.has_sorry():
            return Verdict(status=CheckStatus.FAILED, rule="sorry", detail="the proof uses sorry",
                           lean_seconds=seconds, **base)
        if result.env is None:
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="infrastructure",
                                   detail="the REPL returned no environment", **base))
        trusted = await lease.command(_trusted_command(asm.theorem_name), env=result.env)
        seconds += trusted.seconds
        trusted_response = self._response(trusted, asm, seconds)
        base["lean_seconds"] = seconds
        axioms = _parse_axioms(asm.theorem_name, _in_lines(trusted_response.messages, _AXIOMS_LINES))
        if isinstance(axioms, Verdict):
            return axioms.model_copy(update=base)
        if self.verify_statement:
            mismatch = await self._statement_mismatch(lease, problem, asm, trusted_response)
            if mismatch:
                return Verdict(status=CheckStatus.REJECTED, rule="statement_mismatch", detail=mismatch,
                               axioms=axioms, **base)
        forbidden = [a for a in axioms if a not in self.allowed_axioms(extra)]
        if forbidden and self.config.allow_header_axioms:
            forbidden = await self._not_declared_by_header(lease, problem, asm, forbidden)
        if forbidden:
            return Verdict(status=CheckStatus.REJECTED, rule="axioms", axioms=axioms,
                           detail=f"`{asm.theorem_name}` depends on axioms outside the allow-list: {forbidden}",
                           **base)
        return Verdict(status=CheckStatus.PROVED, rule="accepted", axioms=axioms, **base)

    def _response(self, result: ReplResult, asm: AssembledProof, seconds: float) -> CommandResponse:
        """The command reply, or a decided verdict for timeouts, crashes and protocol surprises."""
        if result.kind in _FAILURE_KINDS:
            status, rule = _FAILURE_KINDS[result.kind]
            raise _Decided(Verdict(status=status, rule=rule, detail=result.detail, code=asm.code,
                                   lean_seconds=seconds))
        if not isinstance(result.response, CommandResponse):
            detail = getattr(result.response, "message", "") or result.detail or "no reply"
            raise _Decided(Verdict(status=CheckStatus.ERROR, rule="infrastructure", code=asm.code,
                                   detail=f"unexpected REPL reply: {detail}", lean_seconds=seconds))
        return result.response

    async def _statement_mismatch(
        self, lease: WorkerLease, problem: Problem, asm: AssembledProof, trusted: CommandResponse
    ) -> str:
        """Empty if the checked theorem's explicit type equals the reference's; else why not."""
        checked = tuple(m.data for m in _in_lines(trusted.messages, _CHECK_LINES))
        reference = await self._reference(lease, problem, asm)
        if checked == reference:
            return ""
        return (
            f"`{asm.theorem_name}` in the checked environment does not have the benchmark statement's type:\n"
            f"expected: {' | '.join(reference) or '(nothing)'}\nfound:    {' | '.join(checked) or '(nothing)'}"
        )

    async def _not_declared_by_header(
        self, lease: WorkerLease, problem: Problem, asm: AssembledProof, names: Sequence[str]
    ) -> list[str]:
        """The names among `names` that are not axioms of the header environment (sorryAx never is).

        One `#print axioms <name>` line per unknown name, on the header env: `name` is a header
        axiom iff the reply names exactly that constant and lists it as its own axiom. Asking
        `#check @name` would not do: the header's `namespace`/`open`s resolve a model axiom
        `sqrt_cheat` to `Real.sqrt_cheat` if that exists, and any def or theorem would pass."""
        key = self.pool.env_key(problem.header)
        unknown = [n for n in names if (key, n) not in self._header_axioms and n not in NEVER_ALLOWED]
        if unknown:
            cmd = "\n".join(f"#print axioms {name}" for name in unknown) + "\n"
            result = await lease.command(cmd)
            replies: dict[int, list[str]] = {}
            for m in self._response(result, asm, result.seconds).messages:
                replies.setdefault(m.pos.line, []).append(m.data.strip() if m.severity == "info" else "")
            for line, name in enumerate(unknown, start=1):
                printed = [_printed_axioms(data) for data in replies.get(line, [])]
                self._header_axioms[(key, name)] = (
                    len(printed) == 1 and printed[0] is not None and printed[0][0] == name and name in printed[0][1]
                )
        return [n for n in names if n in NEVER_ALLOWED or not self._header_axioms[(key, n)]]

    async def _reference(self, lease: WorkerLease, problem: Problem, asm: AssembledProof) -> tuple[str, ...]:
        """`#check` output of the benchmark statement elaborated alone on the header env."""
        key = (self.pool.env_key(problem.header), problem.formal_statement)
        if key in self._references:
            return self._references[key]
        statement = problem.formal_statement.rstrip()
        cmd = f"{statement} sorry\n\n" + _trusted_command(asm.theorem_name)
        result = await lease.command(cmd)
        offset = statement.count("\n") + 2  # the trusted part starts after the statement and a blank line
        response = self._response(result, asm, result.seconds)
        shifted = _shift(response.messages, -offset)
        reference = tuple(m.data for m in _in_lines(shifted, _CHECK_LINES))
        self._references[key] = reference
        return reference


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _trusted_command(name: str) -> str:
    """Our own command, run on the env the model's code produced: `#check` on lines 1-2 (fully
    explicit, so an instance or notation change shows), `#print axioms` on line 4."""
    options = " ".join(f"set_option {o} in" for o in PP_OPTIONS)
    return f"{options}\n#check @{name}\n\n#print axioms {name}\n"


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


def _parse_axioms(name: str, messages: Sequence[LeanMessage]) -> tuple[str, ...] | Verdict:
    """Axioms from the trusted `#print axioms` reply; a REJECTED verdict if it is not one clean
    info message (fail closed: anything unexpected is not evidence of a proof)."""
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


__all__ = ["CHECKER_VERSION", "NATIVE_AXIOMS", "ProofChecker", "check_many"]
