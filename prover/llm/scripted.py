"""A sampler that replays completions from a JSONL file.

Used by tests (deterministic "model" output) and to re-check generations made elsewhere
(`prover eval ... --backend scripted --script FILE`). One line per problem and round::

    {"name": "mathd_algebra_478", "completions": ["...", "..."]}
    {"name": "mathd_algebra_478", "round": 1, "completions": ["..."]}

A completion is a string, or an object `{"text": ..., "cumulative_logprob"?: float,
"token_logprobs"?: [float], "finish_reason"?: str}` when a strategy needs log-probs (best-first
search). Lines with the same (name, round) are concatenated in file order.

Requests are routed by `GenRequest.tag`: `"<name>"` (round 0) or `"<name>#round=<r>"`. Each
(name, round) serves its completions in order and cycles when more are asked for than the file
holds. Output depends only on the order of requests, never on `seed` or temperature, so a run is
reproducible exactly when its requests arrive in the same order.

Token counts are whitespace-token estimates (`len(text.split())`), not tokenizer counts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prover.config import SamplerConfig
from prover.errors import ConfigError, DataError, SamplerRequestError
from prover.llm.base import Sampler
from prover.types import Completion, GenRequest, GenResult

__all__ = ["ScriptedCompletion", "ScriptedSampler", "parse_tag"]

_ROUND_MARK = "#round="


class ScriptedCompletion(BaseModel):
    """One recorded completion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    cumulative_logprob: float | None = None
    token_logprobs: tuple[float, ...] | None = None
    finish_reason: str | None = "stop"


class _ScriptLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    round: int = Field(default=0, ge=0)
    completions: list[str | ScriptedCompletion] = Field(min_length=1)

    def items(self) -> list[ScriptedCompletion]:
        return [c if isinstance(c, ScriptedCompletion) else ScriptedCompletion(text=c) for c in self.completions]


def parse_tag(tag: str) -> tuple[str, int]:
    """Split a request tag `"<name>"` / `"<name>#round=<r>"` into (name, round)."""
    name, mark, rest = tag.rpartition(_ROUND_MARK)
    if not mark:
        return tag, 0
    try:
        return name, int(rest)
    except ValueError:
        raise SamplerRequestError(f"request tag {tag!r}: round after '#round=' is not an integer") from None


def _whitespace_tokens(text: str) -> int:
    return len(text.split())


class ScriptedSampler(Sampler):
    """Replays completions recorded in a JSONL script (see the module docstring)."""

    backend = "scripted"

    def __init__(self, script: dict[tuple[str, int], list[ScriptedCompletion]], *, source: str = "<memory>"):
        super().__init__()
        self._script = script
        self._source = source
        self._cursor: dict[tuple[str, int], int] = {}

    @classmethod
    def from_file(cls, path: Path | str) -> ScriptedSampler:
        """Load a JSONL script.

        Raises:
            DataError: the file is missing or a line is malformed (file and line are named).
        """
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DataError(f"cannot read sampler script {path}: {exc}") from exc
        script: dict[tuple[str, int], list[ScriptedCompletion]] = {}
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            line = _parse_line(raw, path, number)
            script.setdefault((line.name, line.round), []).extend(line.items())
        if not script:
            raise DataError(f"sampler script {path} holds no completions")
        return cls(script, source=str(path))

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> ScriptedSampler:
        """Build from in-memory records shaped like script lines (handy in tests)."""
        script: dict[tuple[str, int], list[ScriptedCompletion]] = {}
        for number, record in enumerate(records, 1):
            line = _validate_line(record, f"<records>:{number}")
            script.setdefault((line.name, line.round), []).extend(line.items())
        return cls(script)

    @classmethod
    def from_config(cls, config: SamplerConfig) -> ScriptedSampler:
        if config.script is None:
            raise ConfigError("sampler.backend = 'scripted' needs sampler.script (a JSONL file)")
        return cls.from_file(config.script)

    async def generate(self, request: GenRequest) -> GenResult:
        started = time.perf_counter()
        try:
            key = parse_tag(request.tag)
            items = self._lookup(key)
        except SamplerRequestError:
            self.stats.errors += 1
            raise
        start = self._cursor.get(key, 0)
        self._cursor[key] = start + request.n
        chosen = [items[(start + i) % len(items)] for i in range(request.n)]
        completions = tuple(
            Completion(
                text=item.text,
                tokens=_whitespace_tokens(item.text),
                cumulative_logprob=item.cumulative_logprob,
                token_logprobs=item.token_logprobs if request.logprobs else None,
                finish_reason=item.finish_reason,
            )
            for item in chosen
        )
        result = GenResult(
            completions=completions,
            prompt_tokens=_prompt_tokens(request),
            seconds=time.perf_counter() - started,
        )
        self.stats.add(request, result)
        return result

    def _lookup(self, key: tuple[str, int]) -> list[ScriptedCompletion]:
        items = self._script.get(key)
        if items is not None:
            return items
        name, round_no = key
        if not name:
            raise SamplerRequestError("scripted sampler: request has no tag naming the problem")
        rounds = sorted(r for n, r in self._script if n == name)
        if rounds:
            raise SamplerRequestError(
                f"scripted sampler: problem {name!r} has no completions for round {round_no} "
                f"in {self._source} (rounds present: {rounds})"
            )
        raise SamplerRequestError(f"scripted sampler: problem {name!r} is not in {self._source}")

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "script": self._source, "entries": len(self._script)}


def _parse_line(raw: str, path: Path, number: int) -> _ScriptLine:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return _validate_line(data, f"{path}:{number}")


def _validate_line(data: object, where: str) -> _ScriptLine:
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object with 'name' and 'completions'")
    try:
        return _ScriptLine.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<line>'}: {err['msg']}" for err in exc.errors()
        )
        raise DataError(f"{where}: malformed script line: {problems}") from exc


def _prompt_tokens(request: GenRequest) -> int:
    if request.prompt is not None:
        return _whitespace_tokens(request.prompt)
    return sum(_whitespace_tokens(m.content) for m in request.messages or ())
