"""Samplers and prompt formats.

`make_sampler(config.sampler)` builds a backend behind the `Sampler` interface; `get_format` picks
how a model family is prompted and how its answers are read. The vLLM backend is imported only
when used (`prover.llm.VllmSampler` or `make_sampler` with backend "vllm"): importing vllm takes
seconds and pulls in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prover.llm.base import Sampler, SamplerStats, make_sampler
from prover.llm.formats import (
    FORMAT_NAMES,
    BfsFormat,
    ChatFormat,
    DeepSeekV2Format,
    DeepSeekV15Format,
    Feedback,
    GoedelV2Format,
    KiminaFormat,
    PromptFormat,
    extract_code_answer,
    get_format,
    infer_format_name,
)
from prover.llm.openai_backend import OpenAISampler
from prover.llm.scripted import ScriptedSampler

if TYPE_CHECKING:
    from prover.llm.vllm_backend import VllmSampler

__all__ = [
    "FORMAT_NAMES",
    "BfsFormat",
    "ChatFormat",
    "DeepSeekV15Format",
    "DeepSeekV2Format",
    "Feedback",
    "GoedelV2Format",
    "KiminaFormat",
    "OpenAISampler",
    "PromptFormat",
    "Sampler",
    "SamplerStats",
    "ScriptedSampler",
    "VllmSampler",
    "extract_code_answer",
    "get_format",
    "infer_format_name",
    "make_sampler",
]


def __getattr__(name: str) -> Any:
    """Import the vLLM backend on first access only."""
    if name == "VllmSampler":
        from prover.llm.vllm_backend import VllmSampler

        return VllmSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
