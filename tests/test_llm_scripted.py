"""ScriptedSampler: JSONL replay, ordering, cycling, rounds, errors, stats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prover.config import SamplerConfig
from prover.errors import ConfigError, DataError, SamplerRequestError
from prover.llm import ScriptedSampler, make_sampler
from prover.llm.scripted import parse_tag
from prover.types import ChatMessage, GenRequest


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "script.jsonl",
        [
            {"name": "p1", "completions": ["a b", "c", "d e f"]},
            {"name": "p1", "round": 1, "completions": ["fix one", "fix two"]},
            {"name": "p#2", "completions": ["only"]},
            {"name": "bfs", "completions": [{"text": "simp", "cumulative_logprob": -0.5, "token_logprobs": [-0.5]}]},
        ],
    )


async def test_serves_in_order_then_cycles(script: Path) -> None:
    sampler = ScriptedSampler.from_file(script)
    first = await sampler.generate(GenRequest(prompt="x", n=2, tag="p1"))
    second = await sampler.generate(GenRequest(prompt="x", n=3, tag="p1"))
    assert [c.text for c in first.completions] == ["a b", "c"]
    assert [c.text for c in second.completions] == ["d e f", "a b", "c"]


async def test_rounds_are_separate_streams(script: Path) -> None:
    sampler = ScriptedSampler.from_file(script)
    fix = await sampler.generate(GenRequest(prompt="x", n=3, tag="p1#round=1"))
    assert [c.text for c in fix.completions] == ["fix one", "fix two", "fix one"]
    base = await sampler.generate(GenRequest(prompt="x", n=1, tag="p1"))
    assert base.completions[0].text == "a b"
    # names containing '#' still work; explicit round 0 is the same stream as no round
    assert (await sampler.generate(GenRequest(prompt="x", tag="p#2#round=0"))).completions[0].text == "only"


async def test_token_estimates_and_stats(script: Path) -> None:
    sampler = ScriptedSampler.from_file(script)
    request = GenRequest(messages=(ChatMessage(role="user", content="prove this now"),), n=3, tag="p1")
    result = await sampler.generate(request)
    assert [c.tokens for c in result.completions] == [2, 1, 3]  # whitespace tokens
    assert result.prompt_tokens == 3
    assert sampler.stats.requests == 1 and sampler.stats.samples == 3
    assert sampler.stats.completion_tokens == 6 and sampler.stats.prompt_tokens == 3
    with pytest.raises(SamplerRequestError):
        await sampler.generate(GenRequest(prompt="x", tag="nope"))
    assert sampler.stats.errors == 1 and sampler.stats.requests == 1


async def test_logprob_objects(script: Path) -> None:
    sampler = ScriptedSampler.from_file(script)
    with_lp = await sampler.generate(GenRequest(prompt="s:::", tag="bfs", logprobs=True))
    assert with_lp.completions[0].cumulative_logprob == -0.5
    assert with_lp.completions[0].token_logprobs == (-0.5,)
    without = await sampler.generate(GenRequest(prompt="s:::", tag="bfs"))
    assert without.completions[0].token_logprobs is None


async def test_unknown_problem_and_round_are_named(script: Path) -> None:
    sampler = ScriptedSampler.from_file(script)
    with pytest.raises(SamplerRequestError, match=r"problem 'missing' is not in .*script\.jsonl"):
        await sampler.generate(GenRequest(prompt="x", tag="missing"))
    with pytest.raises(SamplerRequestError, match=r"'p1' has no completions for round 2.*rounds present: \[0, 1\]"):
        await sampler.generate(GenRequest(prompt="x", tag="p1#round=2"))
    with pytest.raises(SamplerRequestError, match="no tag"):
        await sampler.generate(GenRequest(prompt="x"))
    with pytest.raises(SamplerRequestError, match="not an integer"):
        await sampler.generate(GenRequest(prompt="x", tag="p1#round=x"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"script\.jsonl:2: not valid JSON"),
        ('["a", "b"]', r"script\.jsonl:2: expected a JSON object"),
        ('{"name": "q"}', r"script\.jsonl:2: malformed script line: completions: Field required"),
        ('{"name": "q", "completions": []}', r"script\.jsonl:2: malformed.*completions"),
        ('{"name": "q", "completions": [3]}', r"script\.jsonl:2: malformed.*completions"),
        ('{"name": "q", "round": -1, "completions": ["a"]}', r"script\.jsonl:2: malformed.*round"),
        ('{"name": "q", "completions": ["a"], "extra": 1}', r"script\.jsonl:2: malformed.*extra"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "script.jsonl", [{"name": "ok", "completions": ["x"]}, line])
    with pytest.raises(DataError, match=message):
        ScriptedSampler.from_file(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read sampler script"):
        ScriptedSampler.from_file(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no completions"):
        ScriptedSampler.from_file(tmp_path / "empty.jsonl")


async def test_make_sampler_from_config(script: Path) -> None:
    sampler = make_sampler(SamplerConfig(backend="scripted", script=script))
    assert isinstance(sampler, ScriptedSampler)
    assert sampler.describe()["script"] == str(script)
    with pytest.raises(ConfigError, match="needs sampler.script"):
        make_sampler(SamplerConfig(backend="scripted"))


async def test_concurrent_callers_get_disjoint_consecutive_samples(script: Path) -> None:
    sampler = ScriptedSampler.from_records([{"name": "p", "completions": [str(i) for i in range(12)]}])
    results = await sampler.generate_many([GenRequest(prompt="x", n=3, tag="p") for _ in range(4)])
    texts = sorted(int(c.text) for r in results for c in r.completions)
    assert texts == list(range(12))


def test_parse_tag() -> None:
    assert parse_tag("a") == ("a", 0)
    assert parse_tag("a#round=3") == ("a", 3)
    assert parse_tag("x#y#round=1") == ("x#y", 1)


def test_duplicate_lines_are_concatenated(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", [{"name": "p", "completions": ["a"]}, {"name": "p", "completions": ["b"]}])
    sampler = ScriptedSampler.from_file(path)
    result = asyncio.run(sampler.generate(GenRequest(prompt="x", n=2, tag="p")))
    assert [c.text for c in result.completions] == ["a", "b"]
