"""Data that crosses module and process boundaries.

Everything here is a pydantic model so it serialises the same way into JSONL run files, over Ray,
and into caches. Components exchange these messages, never live objects.
"""

from __future__ import annotations

import hashlib
import re
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FROZEN = ConfigDict(frozen=True, extra="forbid")

_DECL_NAME = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(?:theorem|lemma|def|example|abbrev|instance)\s+([^\s:({\[]+)",
    re.MULTILINE,
)


def content_hash(*parts: str) -> str:
    """Stable SHA-256 over several strings (length-prefixed so boundaries cannot collide)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------


class RepoRef(BaseModel):
    """Where a theorem lives in a Lean repository (LeanDojo's `Theorem`: repo, file, full name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    commit: str
    file_path: str
    """Relative to the repository root."""
    full_name: str


class Problem(BaseModel):
    """One theorem to prove, in the uniform JSONL schema of the benchmark files.

    The Lean file to check is `header + formal_statement + proof`, where `formal_statement` ends
    with `:= by`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    split: str = "test"
    header: str = ""
    formal_statement: str
    informal_statement: str | None = None
    informal_proof: str | None = None
    source: str = ""
    lean_version: str | None = None
    benchmark: str = ""
    """Registry name of the benchmark the problem came from (empty for ad-hoc problems)."""
    category: str | None = None
    """Benchmark category (e.g. LeanGeo folder, miniF2F prefix) for per-category reports."""
    repo: RepoRef | None = None
    """The theorem's place in a traced repository (LeanDojo benchmarks), when known."""

    @property
    def theorem_name(self) -> str:
        """Lean declaration name in the statement; can differ from `name` (ProofNet)."""
        match = _DECL_NAME.search(self.formal_statement)
        if match is None:
            raise ValueError(f"problem {self.name!r}: cannot find a declaration name in the statement")
        return match.group(1)

    @property
    def key(self) -> str:
        """Content address of the statement (header + statement), used by caches."""
        return content_hash(self.header, self.formal_statement)


# ---------------------------------------------------------------------------------------------
# Lean messages and verdicts
# ---------------------------------------------------------------------------------------------


class Pos(BaseModel):
    """A position in Lean source: 1-based line, 0-based column (REPL convention)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    line: int
    column: int


class LeanMessage(BaseModel):
    """A Lean diagnostic as the REPL reports it."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    severity: Literal["trace", "info", "warning", "error"]
    pos: Pos
    end_pos: Pos | None = Field(default=None, alias="endPos")
    data: str


class CheckStatus(str, Enum):
    """Outcome of checking one proof. Only PROVED counts."""

    PROVED = "proved"
    FAILED = "failed"  # Lean rejected it (errors, sorry, incomplete)
    REJECTED = "rejected"  # refused by a soundness rule (ban list, axioms, missing theorem, ...)
    TIMEOUT = "timeout"
    ERROR = "error"  # infrastructure: crash, out of memory, protocol failure


class Verdict(BaseModel):
    """The checker's decision about one proof, with the rule that decided it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CheckStatus
    rule: str
    """Which rule decided: `accepted`, `preflight:<item>`, `lean_error`, `sorry`, `axioms`,
    `missing_theorem`, `empty_proof`, `timeout`, `out_of_memory`, `crash`, `infrastructure`, ..."""
    detail: str = ""
    messages: tuple[LeanMessage, ...] = ()
    axioms: tuple[str, ...] | None = None
    code: str = ""
    """The exact Lean code that was checked (assembled by the checker, never the model's text)."""
    lean_seconds: float = 0.0
    """Lean time of every try together."""
    cached: bool = False
    stage: Literal["", "preflight", "assembly", "lean", "audit", "replay"] = ""
    """The stage that decided: for PROVED, the last stage that accepted the proof (`audit`: the
    REPL and the audit in a clean environment; `replay`: also the kernel replay)."""
    tries: int = Field(default=1, ge=1)
    """Times the checker ran its pipeline for this verdict: 1, plus one per retry on a fresh
    worker after a crash, out-of-memory kill or infrastructure failure (`lean.retries`)."""

    @property
    def proved(self) -> bool:
        return self.status is CheckStatus.PROVED


# ---------------------------------------------------------------------------------------------
# Sampling messages
# ---------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = FROZEN

    role: Literal["system", "user", "assistant"]
    content: str


class GenRequest(BaseModel):
    """One sampling request: a prompt (completion) or chat messages, and `n` samples of it."""

    model_config = FROZEN

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=2048, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    """Return per-token log-probs of the sampled tokens (cumulative log-prob is always returned
    where the backend has it)."""
    tag: str = ""
    """Free-form label (problem name, round) used in logs and by the scripted backend."""


class Completion(BaseModel):
    model_config = FROZEN

    text: str
    tokens: int
    cumulative_logprob: float | None = None
    token_logprobs: tuple[float, ...] | None = None
    finish_reason: str | None = None


class GenResult(BaseModel):
    model_config = FROZEN

    completions: tuple[Completion, ...]
    prompt_tokens: int = 0
    seconds: float = 0.0
    """Wall time from submission to the last completion."""

    @property
    def completion_tokens(self) -> int:
        return sum(c.tokens for c in self.completions)


# ---------------------------------------------------------------------------------------------
# Attempts (what a run records)
# ---------------------------------------------------------------------------------------------


TOP_LEVEL_KIND = "proof"
"""`Attempt.kind` of the attempts pass@k counts (a whole proof, a search, a planning episode)."""


class Attempt(BaseModel):
    """One recorded proof attempt: a line of `attempts.jsonl`.

    Top-level attempts (`parent is None`) are the samples of the problem's budget that pass@k,
    early stop and resume count. Nested attempts serve one of them (`parent` is its
    `sample_index`; `kind` says what they are, e.g. "sketch" or "subgoal"); their
    `sample_index` numbers them within (parent, kind).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    problem: str
    benchmark: str = ""
    strategy: str = ""
    sample_index: int
    """Index of the sample within the problem's budget (0 .. pass-1); unique per (problem, round)."""
    round: int = 0
    kind: str = TOP_LEVEL_KIND
    parent: int | None = None
    proof: str | None = None
    """The extracted proof that was checked (None when extraction failed)."""
    completion: str | None = None
    verdict: Verdict
    duplicate_of: int | None = None
    """Sample index whose identical proof was checked instead (dedupe); verdict is copied."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gen_seconds: float = 0.0
    check_seconds: float = 0.0
    extra: dict[str, object] = Field(default_factory=dict)
    revision: int = Field(default=0, ge=0)
    """0 for the first record of a slot. Resuming a run re-checks an attempt that ended in an
    infrastructure error (or redoes a search that failed that way) and appends the slot again
    with the next revision; the highest revision is the slot's answer (store, pass@k, reports)."""

    @property
    def key(self) -> tuple[str, int, int]:
        """(problem, round, sample_index): the identity of a top-level attempt."""
        return (self.problem, self.round, self.sample_index)

    @property
    def slot(self) -> tuple[str, int | None, int, int]:
        """(kind, parent, round, sample_index): unique among one problem's attempts, nested included."""
        return (self.kind, self.parent, self.round, self.sample_index)

    @property
    def top_level(self) -> bool:
        return self.parent is None
