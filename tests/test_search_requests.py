"""The request server's sampler deadlines: each call is cut at its own deadline by one shared
timer, and a cancellation from outside is never mistaken for a timeout."""

from __future__ import annotations

import asyncio

import pytest
from bfs_helpers import table_env

from prover.llm.base import Sampler
from prover.search.requests import RequestServer, SampleTactics
from prover.types import Completion, GenRequest, GenResult


class SleepySampler(Sampler):
    """Answers after `float(request.tag)` seconds."""

    backend = "sleepy"

    async def generate(self, request: GenRequest) -> GenResult:
        await asyncio.sleep(float(request.tag))
        return GenResult(completions=(Completion(text=request.tag, tokens=1),))


def _sample(seconds: float, timeout: float) -> SampleTactics:
    return SampleTactics(GenRequest(prompt="⊢ P:::", tag=str(seconds)), timeout)


async def test_concurrent_sampler_calls_are_cut_at_their_own_deadlines() -> None:
    server = RequestServer(table_env(["⊢ P"], {}), SleepySampler())
    late, early, unbounded = await asyncio.gather(
        server.serve(_sample(30.0, 0.2)),  # would answer after its deadline: cut
        server.serve(_sample(0.05, 30.0)),  # answers before its (later) deadline
        server.serve(SampleTactics(GenRequest(prompt="⊢ P:::", tag="0.3"), None)),
    )
    assert late is None
    assert early.completions[0].text == "0.05" and unbounded.completions[0].text == "0.3"
    # the server keeps serving after a cut, with a fresh deadline
    again = await server.serve(_sample(0.01, 0.5))
    assert again.completions[0].text == "0.01"


async def test_cancelling_a_sampling_task_is_not_taken_for_a_timeout() -> None:
    server = RequestServer(table_env(["⊢ P"], {}), SleepySampler())
    task = asyncio.ensure_future(server.serve(_sample(30.0, 0.3)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await server.serve(_sample(30.0, 0.05))) is None  # and deadlines still work afterwards
