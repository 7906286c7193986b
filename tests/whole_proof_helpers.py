"""Test doubles for the whole-proof strategy, pipeline and API tests (owned by the eval-pipeline tests).

`FakeSampler` answers from a function of the request (with optional latency) and logs every
request; `FakeChecker` decides from a table of proof bodies (with optional latency) and logs checks.
They are stand-ins for unit tests only; the end-to-end tests use the scripted sampler and the
simulated REPL through the real CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prover.llm.base import Sampler
from prover.types import (
    CheckStatus,
    Completion,
    GenRequest,
    GenResult,
    LeanMessage,
    Pos,
    Problem,
    Verdict,
)

Responder = Callable[[GenRequest], list[str]]


def lean_block(problem: Problem, body: str) -> str:
    """A chat answer holding the complete code for `problem` with tactic body `body`."""
    return f"Here is the proof.\n```lean4\n{problem.formal_statement}\n  {body}\n```\n"


class FakeSampler(Sampler):
    backend = "fake"

    def __init__(self, respond: Responder, *, latency: float | Callable[[GenRequest], float] = 0.0) -> None:
        super().__init__()
        self.respond = respond
        self.latency = latency
        self.requests: list[GenRequest] = []
        self.cancelled = 0

    async def generate(self, request: GenRequest) -> GenResult:
        self.requests.append(request)
        delay = self.latency(request) if callable(self.latency) else self.latency
        try:
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        texts = self.respond(request)[: request.n]
        result = GenResult(
            completions=tuple(Completion(text=t, tokens=len(t.split()), finish_reason="stop") for t in texts),
            prompt_tokens=7,
            seconds=delay,
        )
        self.stats.add(request, result)
        return result


def body_of(proof: str) -> str:
    """The tactic body of complete code `... := by\\n  body` (what FakeChecker keys on)."""
    return proof.split(":= by", 1)[-1].strip()


class FakeChecker:
    """Proved iff the proof's tactic body is in `good`; otherwise a Lean-like error."""

    def __init__(self, good: set[str], *, latency: float = 0.0) -> None:
        self.good = good
        self.latency = latency
        self.checked: list[str] = []

    async def check(self, problem: Problem, proof: str) -> Verdict:
        self.checked.append(proof)
        if self.latency:
            await asyncio.sleep(self.latency)
        body = body_of(proof)
        if body in self.good:
            return Verdict(status=CheckStatus.PROVED, rule="accepted", code=proof, axioms=("propext",))
        message = LeanMessage(
            severity="error",
            pos=Pos(line=2, column=2),
            end_pos=Pos(line=2, column=2 + len(body)),
            data=f"unsolved goals\nx : Nat\n⊢ x + 0 = x [after {body}]",
        )
        return Verdict(status=CheckStatus.FAILED, rule="lean_error", messages=(message,), code=proof)
