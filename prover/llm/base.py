"""The sampling interface every strategy talks to.

`Sampler.generate(GenRequest) -> GenResult` is the whole contract; backends (vLLM in-process,
OpenAI-compatible HTTP, scripted replay) implement it and `make_sampler` picks one from the
config, the way vLLM's `EngineCoreClient.make_client` picks a transport. Many coroutines may
call `generate` concurrently; backends batch or limit concurrency themselves.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from prover.config import SamplerConfig
from prover.types import GenRequest, GenResult


class SamplerStats(BaseModel):
    """Token and time accounting that run summaries add up."""

    model_config = ConfigDict(extra="forbid")

    requests: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    """Sum of per-request wall times (overlapping requests each count fully)."""
    errors: int = 0

    def add(self, request: GenRequest, result: GenResult) -> None:
        self.requests += 1
        self.samples += len(result.completions)
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.seconds += result.seconds


class Sampler(ABC):
    """Generates completions for prompts or chat messages. Async; safe for concurrent callers."""

    #: backend name recorded in run metadata
    backend: str = "abstract"

    def __init__(self) -> None:
        self.stats = SamplerStats()

    @abstractmethod
    async def generate(self, request: GenRequest) -> GenResult:
        """Sample `request.n` completions of one prompt.

        Raises:
            SamplerRequestError: the request is invalid for this backend (not worth retrying).
            SamplerUnavailable: the backend is dead or unreachable.
        """

    async def generate_many(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Submit several requests at once so the backend can batch them."""
        return list(await asyncio.gather(*(self.generate(r) for r in requests)))

    async def close(self) -> None:
        """Release engines, connections and threads. Idempotent."""

    async def __aenter__(self) -> Sampler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def describe(self) -> dict[str, object]:
        """Backend, model and versions for run metadata."""
        return {"backend": self.backend}


def make_sampler(config: SamplerConfig) -> Sampler:
    """Build the backend named by `config.backend`. Heavy imports happen only for that backend."""
    if config.backend == "scripted":
        from prover.llm.scripted import ScriptedSampler

        return ScriptedSampler.from_config(config)
    if config.backend == "openai":
        from prover.llm.openai_backend import OpenAISampler

        return OpenAISampler.from_config(config)
    if config.backend == "vllm":
        from prover.llm.vllm_backend import VllmSampler

        return VllmSampler.from_config(config)
    raise ValueError(f"unknown sampler backend {config.backend!r}")
