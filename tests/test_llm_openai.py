"""OpenAISampler against a real HTTP server on 127.0.0.1 started by the test (stdlib http.server).

The server speaks enough of the OpenAI API (/v1/completions, /v1/chat/completions) to test n,
log-probs, usage, retries on 429/5xx/timeouts, Retry-After, 4xx errors, malformed replies and the
concurrency limit (it counts the requests it is serving at the same time).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from prover.config import SamplerConfig
from prover.errors import ConfigError, SamplerError, SamplerRequestError, SamplerUnavailable
from prover.llm import OpenAISampler, make_sampler
from prover.types import ChatMessage, GenRequest

TOKEN_LOGPROBS = [-0.25, -0.5, -1.0]


@dataclass
class Action:
    """A scripted reply: status, body (dict -> JSON, str -> raw), headers, delay before replying."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeOpenAIServer:
    """A threaded local HTTP server with a queue of scripted replies, then default successes."""

    def __init__(self) -> None:
        self.plan: deque[Action] = deque()
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self.active = 0
        self.max_active = 0
        self.reasoning: str | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reply(self, path: str, body: dict[str, Any]) -> tuple[Action, dict[str, Any]]:
        with self._lock:
            action = self.plan.popleft() if self.plan else Action(delay=self.delay)
        if action.body is None and action.status == 200:
            action.body = self.success(path, body)
        return action, body

    def success(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        n = body.get("n", 1)
        chat = path.endswith("/chat/completions")
        choices = []
        for i in range(n):
            text = f"sample {i}" + " more" * i
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop" if i % 2 == 0 else "length"}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
                if self.reasoning:
                    choice["message"]["reasoning_content"] = self.reasoning
                if body.get("logprobs"):
                    choice["logprobs"] = {
                        "content": [{"token": f"t{k}", "logprob": lp, "top_logprobs": []} for k, lp in enumerate(TOKEN_LOGPROBS)]
                    }
            else:
                choice["text"] = text
                if body.get("logprobs") is not None:
                    choice["logprobs"] = {"tokens": ["a", "b", "c"], "token_logprobs": TOKEN_LOGPROBS, "top_logprobs": None}
            choices.append(choice)
        choices.reverse()  # servers may return choices in any order; index says which is which
        return {"id": "x", "object": "text_completion", "choices": choices,
                "usage": {"prompt_tokens": 7, "completion_tokens": 10 * n, "total_tokens": 7 + 10 * n}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                with server._lock:
                    server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    action, _ = server.reply(self.path, body)
                    time.sleep(action.delay)
                    payload = action.body if isinstance(action.body, str) else json.dumps(action.body)
                    data = payload.encode()
                    self.send_response(action.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in action.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server._lock:
                        server.active -= 1

        return Handler


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    srv = FakeOpenAIServer().start()
    yield srv
    srv.stop()


def _sampler(server: FakeOpenAIServer, **kwargs: Any) -> OpenAISampler:
    options: dict[str, Any] = {"max_retries": 3, "retry_backoff": 0.001, "request_timeout": 5.0}
    options.update(kwargs)
    return OpenAISampler(server.base_url, "test-model", **options)


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "BadRequestError", "code": 400}}


# ---------------------------------------------------------------------------------------------
# Happy paths
# ---------------------------------------------------------------------------------------------


async def test_completions_with_n_logprobs_stop_and_seed(server: FakeOpenAIServer) -> None:
    async with _sampler(server) as sampler:
        request = GenRequest(prompt="theorem t := by", n=3, stop=("```",), seed=11, max_tokens=64, logprobs=True)
        result = await sampler.generate(request)
    (sent,) = server.requests
    assert sent["path"] == "/v1/completions"
    body = sent["body"]
    assert body["model"] == "test-model" and body["prompt"] == "theorem t := by"
    assert (body["n"], body["stop"], body["seed"], body["max_tokens"], body["logprobs"]) == (3, ["```"], 11, 64, 1)
    assert [c.text for c in result.completions] == ["sample 0", "sample 1 more", "sample 2 more more"]
    assert [c.finish_reason for c in result.completions] == ["stop", "length", "stop"]
    for completion in result.completions:
        assert completion.token_logprobs == tuple(TOKEN_LOGPROBS)
        assert completion.cumulative_logprob == pytest.approx(sum(TOKEN_LOGPROBS))
        assert completion.tokens == 3
    assert result.prompt_tokens == 7 and result.seconds > 0
    assert sampler.stats.requests == 1 and sampler.stats.samples == 3
    assert sampler.stats.prompt_tokens == 7 and sampler.stats.completion_tokens == 9


async def test_chat_with_logprobs(server: FakeOpenAIServer) -> None:
    async with _sampler(server) as sampler:
        messages = (ChatMessage(role="system", content="s"), ChatMessage(role="user", content="prove"))
        result = await sampler.generate(GenRequest(messages=messages, n=2, logprobs=True, temperature=0.6, top_p=0.9))
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert body["messages"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "prove"}]
    assert body["logprobs"] is True and "seed" not in body and "stop" not in body
    assert (body["temperature"], body["top_p"]) == (0.6, 0.9)
    assert [c.text for c in result.completions] == ["sample 0", "sample 1 more"]
    assert result.completions[1].cumulative_logprob == pytest.approx(-1.75)


async def test_without_logprobs_usage_is_split_by_length(server: FakeOpenAIServer) -> None:
    async with _sampler(server) as sampler:
        result = await sampler.generate(GenRequest(prompt="p", n=3))
    assert "logprobs" not in server.requests[0]["body"]
    assert all(c.cumulative_logprob is None and c.token_logprobs is None for c in result.completions)
    counts = [c.tokens for c in result.completions]
    assert sum(counts) == 30 and counts[0] < counts[1] < counts[2]


async def test_reasoning_content_is_rejoined_as_think_block(server: FakeOpenAIServer) -> None:
    server.reasoning = "let me think"
    async with _sampler(server) as sampler:
        result = await sampler.generate(GenRequest(messages=(ChatMessage(role="user", content="q"),)))
    assert result.completions[0].text == "<think>\nlet me think\n</think>\nsample 0"


async def test_use_chat_overrides(server: FakeOpenAIServer) -> None:
    async with _sampler(server, use_chat=True) as sampler:
        await sampler.generate(GenRequest(prompt="hello"))
    assert server.requests[-1]["path"] == "/v1/chat/completions"
    assert server.requests[-1]["body"]["messages"] == [{"role": "user", "content": "hello"}]
    async with _sampler(server, use_chat=False) as sampler:
        with pytest.raises(SamplerRequestError, match="completions endpoint"):
            await sampler.generate(GenRequest(messages=(ChatMessage(role="user", content="q"),)))
    assert len(server.requests) == 1


async def test_api_key_from_named_environment_variable(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVER_TEST_LLM_KEY", "sk-test-123")
    config = SamplerConfig(backend="openai", model="m", base_url=server.base_url, api_key_env="PROVER_TEST_LLM_KEY")
    sampler = make_sampler(config)
    assert isinstance(sampler, OpenAISampler)
    async with sampler:
        await sampler.generate(GenRequest(prompt="p"))
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-test-123"
    monkeypatch.delenv("PROVER_TEST_LLM_KEY")
    async with make_sampler(config) as sampler:
        await sampler.generate(GenRequest(prompt="p"))
    assert "Authorization" not in server.requests[-1]["headers"]


# ---------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("statuses", [[429], [500], [502, 503], [504, 500, 429]])
async def test_transient_errors_are_retried_until_success(server: FakeOpenAIServer, statuses: list[int]) -> None:
    server.plan.extend(Action(status=s, body=_error(f"busy {s}")) for s in statuses)
    async with _sampler(server) as sampler:
        result = await sampler.generate(GenRequest(prompt="p", n=2))
    assert len(result.completions) == 2
    assert len(server.requests) == len(statuses) + 1
    assert sampler.stats.errors == 0 and sampler.stats.requests == 1


async def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.plan.append(Action(status=429, body=_error("slow down"), headers={"Retry-After": "0.4"}))
    async with _sampler(server, retry_backoff=0.0) as sampler:
        started = time.perf_counter()
        await sampler.generate(GenRequest(prompt="p"))
        elapsed = time.perf_counter() - started
    assert len(server.requests) == 2
    assert elapsed >= 0.4


async def test_timeout_is_retried(server: FakeOpenAIServer) -> None:
    server.plan.append(Action(delay=1.5))
    async with _sampler(server, request_timeout=0.3) as sampler:
        result = await sampler.generate(GenRequest(prompt="p"))
    assert result.completions[0].text == "sample 0"
    assert len(server.requests) == 2


async def test_persistent_5xx_gives_unavailable_with_server_message(server: FakeOpenAIServer) -> None:
    server.plan.extend(Action(status=500, body=_error("engine died")) for _ in range(10))
    async with _sampler(server, max_retries=2) as sampler:
        with pytest.raises(SamplerUnavailable, match=r"failed after 3 attempts: HTTP 500: engine died"):
            await sampler.generate(GenRequest(prompt="p"))
    assert len(server.requests) == 3
    assert sampler.stats.errors == 1 and sampler.stats.requests == 0


async def test_unreachable_port_gives_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sampler = OpenAISampler(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, retry_backoff=0.001)
    async with sampler:
        with pytest.raises(SamplerUnavailable, match=rf"127\.0\.0\.1:{port}/v1/completions failed after 3 attempts: cannot reach"):
            await sampler.generate(GenRequest(prompt="p"))
    assert sampler.stats.errors == 1


# ---------------------------------------------------------------------------------------------
# Errors that are not retried
# ---------------------------------------------------------------------------------------------


async def test_400_is_a_clear_request_error_without_retry(server: FakeOpenAIServer) -> None:
    message = "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens."
    server.plan.append(Action(status=400, body=_error(message)))
    async with _sampler(server) as sampler:
        with pytest.raises(SamplerRequestError, match=r"HTTP 400: This model's maximum context length is 4096"):
            await sampler.generate(GenRequest(prompt="p"))
    assert len(server.requests) == 1
    assert sampler.stats.errors == 1


async def test_401_mentions_the_api_key(server: FakeOpenAIServer) -> None:
    server.plan.append(Action(status=401, body={"error": "invalid api key"}))
    async with _sampler(server) as sampler:
        with pytest.raises(SamplerRequestError, match=r"HTTP 401: invalid api key.*api_key_env"):
            await sampler.generate(GenRequest(prompt="p"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>oops</html>", r"not JSON: '<html>oops</html>'"),
        ("[1, 2]", r"expected a JSON object, got list"),
        ({"usage": {}}, r"no 'choices' list"),
        ({"choices": [{"index": 0}]}, r"choice 0 has no 'text'"),
        ({"choices": [{"index": 0, "text": "a"}, {"index": 1, "text": "b"}]}, r"2 choices for n=1"),
    ],
)
async def test_malformed_replies_are_clear_errors(server: FakeOpenAIServer, body: Any, message: str) -> None:
    server.plan.append(Action(status=200, body=body if isinstance(body, str) else json.dumps(body)))
    async with _sampler(server) as sampler:
        with pytest.raises(SamplerError, match=message) as info:
            await sampler.generate(GenRequest(prompt="p"))
    assert type(info.value) is SamplerError
    assert len(server.requests) == 1


async def test_chat_reply_without_message_is_named(server: FakeOpenAIServer) -> None:
    server.plan.append(Action(body=json.dumps({"choices": [{"index": 0, "text": "wrong shape"}]})))
    async with _sampler(server) as sampler:
        with pytest.raises(SamplerError, match=r"chat/completions: choice 0 has no 'message'"):
            await sampler.generate(GenRequest(messages=(ChatMessage(role="user", content="q"),)))


async def test_server_returning_fewer_choices_is_asked_for_the_rest(server: FakeOpenAIServer) -> None:
    # Some hosted APIs ignore `n` and send one choice; the missing samples are requested again with
    # the seed moved on (the same seed would repeat the same sample).
    one = {"choices": [{"index": 0, "text": "only one", "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    server.plan.extend([Action(body=one), Action(body=one)])
    async with _sampler(server) as sampler:
        result = await sampler.generate(GenRequest(prompt="p", n=3, seed=10))
    assert [c.text for c in result.completions] == ["only one", "only one", "sample 0"]
    assert [(r["body"]["n"], r["body"]["seed"]) for r in server.requests] == [(3, 10), (2, 11), (1, 12)]
    assert result.prompt_tokens == 21  # the prompt was processed three times
    assert sampler.stats.requests == 1 and sampler.stats.samples == 3 and sampler.stats.errors == 0


async def test_bfs_tactic_request_gets_a_cumulative_logprob(server: FakeOpenAIServer) -> None:
    from prover.llm.formats import get_format

    request = get_format("bfs-prover").tactic_request("⊢ True").model_copy(update={"n": 2})
    async with _sampler(server) as sampler:
        result = await sampler.generate(request)
    assert server.requests[0]["body"]["logprobs"] == 1
    assert [c.cumulative_logprob for c in result.completions] == [sum(TOKEN_LOGPROBS)] * 2


async def test_closed_sampler_refuses(server: FakeOpenAIServer) -> None:
    sampler = _sampler(server)
    await sampler.close()
    await sampler.close()  # idempotent
    with pytest.raises(SamplerUnavailable, match="closed"):
        await sampler.generate(GenRequest(prompt="p"))


# ---------------------------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------------------------


async def test_concurrency_limit_is_enforced_by_the_server_count(server: FakeOpenAIServer) -> None:
    server.delay = 0.15
    async with _sampler(server, max_concurrency=3) as sampler:
        results = await sampler.generate_many([GenRequest(prompt=f"p{i}", n=2) for i in range(10)])
    assert len(results) == 10 and all(len(r.completions) == 2 for r in results)
    assert server.max_active == 3
    assert sampler.stats.requests == 10 and sampler.stats.samples == 20


async def test_requests_below_the_limit_overlap(server: FakeOpenAIServer) -> None:
    server.delay = 0.3
    async with _sampler(server, max_concurrency=16) as sampler:
        await asyncio.gather(*(sampler.generate(GenRequest(prompt="p")) for _ in range(8)))
    assert server.max_active >= 4  # requests overlap instead of queueing one at a time


# ---------------------------------------------------------------------------------------------
# Injectable transport (no server)
# ---------------------------------------------------------------------------------------------


async def test_mock_transport_is_accepted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "text": " simp"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}})

    config = SamplerConfig(backend="openai", model="m", base_url="http://llm.invalid/v1/")
    sampler = OpenAISampler.from_config(config, transport=httpx.MockTransport(handler))
    async with sampler:
        result = await sampler.generate(GenRequest(prompt="⊢ True:::"))
    assert str(seen[0].url) == "http://llm.invalid/v1/completions"
    assert result.completions[0].text == " simp" and result.completions[0].tokens == 1
    assert sampler.describe()["base_url"] == "http://llm.invalid/v1"


def test_base_url_is_validated_up_front() -> None:
    with pytest.raises(ConfigError, match="must look like http://host:port/v1"):
        OpenAISampler("127.0.0.1:8000/v1", "m")
    with pytest.raises(ConfigError, match="must look like"):
        OpenAISampler("ftp://127.0.0.1/v1", "m")
