"""Sampling through any OpenAI-compatible HTTP server (vLLM server, SGLang, hosted APIs).

`OpenAISampler` maps a `GenRequest` onto `/completions` (prompt) or `/chat/completions` (messages)
with `n`, `logprobs`, `stop`, `seed`, `max_tokens`, `temperature` and `top_p`, and maps the reply
back to a `GenResult`. Policy, in one place:

* at most `max_concurrency` requests in flight (an asyncio semaphore held only during the call);
* 408/429/5xx, timeouts and connection errors are retried up to `max_retries` times with
  exponential backoff and full jitter, waiting `Retry-After` instead when the server sends it;
  exhausting retries raises `SamplerUnavailable`;
* any other 4xx raises `SamplerRequestError` at once, carrying the server's message;
* a 2xx reply that is not the expected JSON raises `SamplerError` naming what is missing;
* a server that returns fewer choices than `n` (some hosted APIs ignore `n`) is asked again for
  the missing ones, with the seed moved on so the extra samples differ; more choices than `n` is
  a malformed reply.

Log-probs are requested only when `GenRequest.logprobs` is set (they multiply reply sizes); the
cumulative log-prob is then the sum of the sampled tokens' log-probs. Token counts come from the
reply's `usage`; with several choices and no log-probs, the completion total is apportioned by text
length (the API reports only the total). Chat replies that carry the reasoning separately
(`reasoning_content`, as vLLM's reasoning parsers do) are rejoined as `<think>…</think>` + content
so that prompt-format extraction sees the same text as with the in-process backend.

Tests inject an `httpx` transport (`httpx.MockTransport`) or point `base_url` at a local server.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import httpx

from prover.config import SamplerConfig
from prover.errors import ConfigError, SamplerError, SamplerRequestError, SamplerUnavailable
from prover.llm.base import Sampler
from prover.types import Completion, GenRequest, GenResult

__all__ = ["OpenAISampler"]

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300.0


class _Retryable(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class OpenAISampler(Sampler):
    """An OpenAI-compatible HTTP client with bounded concurrency and retries.

    Examples:
        >>> sampler = OpenAISampler("http://127.0.0.1:8000/v1", "deepseek-ai/DeepSeek-Prover-V2-7B")
        >>> # result = await sampler.generate(GenRequest(messages=..., n=4))
    """

    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        use_chat: bool | None = None,
        max_concurrency: int = 64,
        max_retries: int = 5,
        retry_backoff: float = 1.0,
        request_timeout: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        try:
            parsed = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"sampler.base_url {base_url!r} is not a URL: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"sampler.base_url {base_url!r} must look like http://host:port/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.use_chat = use_chat
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._api_key = api_key
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._timeout = httpx.Timeout(request_timeout, connect=min(request_timeout, 30.0))
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._rng = random.Random()

    @classmethod
    def from_config(
        cls, config: SamplerConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> OpenAISampler:
        """Build from `config.sampler`; the API key is read from `$<config.api_key_env>` (optional)."""
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        return cls(
            config.base_url,
            config.model,
            api_key=api_key or None,
            use_chat=config.use_chat,
            max_concurrency=config.max_concurrency,
            max_retries=config.max_retries,
            retry_backoff=config.retry_backoff,
            request_timeout=config.request_timeout,
            transport=transport,
        )

    # -- public API ----------------------------------------------------------------------------

    async def generate(self, request: GenRequest) -> GenResult:
        started = time.perf_counter()
        completions: list[Completion] = []
        prompt_tokens = 0
        try:
            while len(completions) < request.n:
                part = _remaining_part(request, len(completions))
                endpoint, payload = self._build(part)
                data = await self._post_with_retries(endpoint, payload)
                chat = endpoint.endswith("chat/completions")
                reply = _parse_reply(data, part, chat=chat, url=self._url(endpoint))
                completions.extend(reply.completions)
                prompt_tokens += reply.prompt_tokens
        except SamplerError:
            self.stats.errors += 1
            raise
        result = GenResult(
            completions=tuple(completions),
            prompt_tokens=prompt_tokens,
            seconds=time.perf_counter() - started,
        )
        self.stats.add(request, result)
        return result

    async def close(self) -> None:
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def describe(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "model": self.model,
            "base_url": self.base_url,
            "use_chat": self.use_chat,
            "max_concurrency": self._max_concurrency,
            "httpx": httpx.__version__,
        }

    # -- request building ----------------------------------------------------------------------

    def _build(self, request: GenRequest) -> tuple[str, dict[str, Any]]:
        chat = self.use_chat if self.use_chat is not None else request.messages is not None
        payload: dict[str, Any] = {
            "model": self.model,
            "n": request.n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.seed is not None:
            payload["seed"] = request.seed
        if chat:
            if request.messages is not None:
                messages = [m.model_dump() for m in request.messages]
            elif request.prompt is not None:
                messages = [{"role": "user", "content": request.prompt}]
            else:
                raise SamplerRequestError("request has neither a prompt nor messages")
            payload["messages"] = messages
            if request.logprobs:
                payload["logprobs"] = True
            return "chat/completions", payload
        if request.prompt is None:
            raise SamplerRequestError(
                "request has chat messages but the sampler is set to the completions endpoint "
                "(sampler.use_chat = false); use a completion prompt format or use_chat = true"
            )
        payload["prompt"] = request.prompt
        if request.logprobs:
            payload["logprobs"] = 1
        return "completions", payload

    def _url(self, endpoint: str) -> str:
        return f"{self.base_url}/{endpoint}"

    # -- transport and retries -----------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise SamplerUnavailable(f"sampler for {self.base_url} is closed")
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            # The semaphore bounds concurrency; a pool cap too would queue requests into PoolTimeout.
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=self._max_concurrency)
            self._client = httpx.AsyncClient(
                headers=headers, timeout=self._timeout, limits=limits, transport=self._transport
            )
        return self._client

    async def _post_with_retries(self, endpoint: str, payload: dict[str, Any]) -> Any:
        url = self._url(endpoint)
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                async with self._semaphore:
                    return await self._post_once(url, payload)
            except _Retryable as exc:
                last = exc.reason
                if attempt == self.max_retries:
                    break
                await asyncio.sleep(self._delay(attempt, exc.retry_after))
        tries = self.max_retries + 1
        raise SamplerUnavailable(f"{url} failed after {tries} attempt{'s' if tries > 1 else ''}: {last}")

    async def _post_once(self, url: str, payload: dict[str, Any]) -> Any:
        try:
            response = await self._http().post(url, json=payload)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach the server ({type(exc).__name__}: {exc})") from exc
        if response.status_code in RETRY_STATUS:
            raise _Retryable(
                f"HTTP {response.status_code}: {_server_message(response)}",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code >= 400:
            hint = ""
            if response.status_code in (401, 403):
                hint = " (check the API key environment variable named by sampler.api_key_env)"
            raise SamplerRequestError(
                f"{url} refused the request: HTTP {response.status_code}: {_server_message(response)}{hint}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise SamplerError(
                f"{url} replied HTTP {response.status_code} with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from exc

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        ceiling = min(MAX_BACKOFF, self.retry_backoff * (2**attempt))
        return self._rng.uniform(0.0, ceiling)


# ---------------------------------------------------------------------------------------------
# Reply parsing (pure functions)
# ---------------------------------------------------------------------------------------------


def _server_message(response: httpx.Response) -> str:
    """The error text of an OpenAI-style error body, or the start of the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:500]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _remaining_part(request: GenRequest, received: int) -> GenRequest:
    """The request for the samples still missing after `received` came back (seed moved on)."""
    if received == 0:
        return request
    seed = None if request.seed is None else request.seed + received
    return request.model_copy(update={"n": request.n - received, "seed": seed})


def _parse_reply(data: Any, request: GenRequest, *, chat: bool, url: str) -> GenResult:
    def bad(what: str) -> SamplerError:
        return SamplerError(f"malformed reply from {url}: {what}")

    if not isinstance(data, dict):
        raise bad(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise bad("no 'choices' list")
    if len(choices) > request.n:
        raise bad(f"{len(choices)} choices for n={request.n}")
    ordered = sorted(
        choices, key=lambda c: c["index"] if isinstance(c, dict) and isinstance(c.get("index"), int) else 0
    )
    texts: list[str] = []
    logprobs: list[tuple[float, ...] | None] = []
    finishes: list[str | None] = []
    for i, choice in enumerate(ordered):
        if not isinstance(choice, dict):
            raise bad(f"choice {i} is not an object")
        texts.append(_chat_text(choice, i, bad) if chat else _completion_text(choice, i, bad))
        logprobs.append(_token_logprobs(choice, chat) if request.logprobs else None)
        finishes.append(choice.get("finish_reason"))
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    counts = _token_counts(texts, logprobs, usage.get("completion_tokens"))
    completions = tuple(
        Completion(
            text=text,
            tokens=count,
            cumulative_logprob=sum(lp) if lp is not None else None,
            token_logprobs=lp,
            finish_reason=finish,
        )
        for text, count, lp, finish in zip(texts, counts, logprobs, finishes)
    )
    prompt_tokens = usage.get("prompt_tokens")
    if not isinstance(prompt_tokens, int):
        prompt_tokens = 0
    return GenResult(completions=completions, prompt_tokens=prompt_tokens)


def _completion_text(choice: dict[str, Any], i: int, bad: Any) -> str:
    text = choice.get("text")
    if not isinstance(text, str):
        raise bad(f"choice {i} has no 'text'")
    return text


def _chat_text(choice: dict[str, Any], i: int, bad: Any) -> str:
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad(f"choice {i} has no 'message'")
    content = message.get("content")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if content is None and not reasoning:
        raise bad(f"choice {i} has no 'message.content'")
    if not isinstance(content, str | None):
        raise bad(f"choice {i} 'message.content' is not a string")
    if isinstance(reasoning, str) and reasoning:
        return f"<think>\n{reasoning}\n</think>\n{content or ''}"
    return content or ""


def _token_logprobs(choice: dict[str, Any], chat: bool) -> tuple[float, ...] | None:
    """Sampled-token log-probs; None when the server sent none."""
    block = choice.get("logprobs")
    if not isinstance(block, dict):
        return None
    if chat:
        content = block.get("content")
        if not isinstance(content, list):
            return None
        values = [item.get("logprob") for item in content if isinstance(item, dict)]
    else:
        values = block.get("token_logprobs")
        if not isinstance(values, list):
            return None
    return tuple(float(v) for v in values if isinstance(v, int | float))


def _token_counts(
    texts: Sequence[str], logprobs: Sequence[tuple[float, ...] | None], total: Any
) -> list[int]:
    """Per-choice completion tokens: log-prob counts if present, else `total` split by length."""
    if all(lp is not None for lp in logprobs):
        return [len(lp or ()) for lp in logprobs]
    if not isinstance(total, int):
        return [len(t.split()) for t in texts]
    if len(texts) == 1:
        return [total]
    weights = [len(t) for t in texts]
    whole = sum(weights)
    if whole == 0:
        shares = [total // len(texts)] * len(texts)
    else:
        shares = [total * w // whole for w in weights]
    shares[max(range(len(texts)), key=lambda k: weights[k])] += total - sum(shares)
    return shares
