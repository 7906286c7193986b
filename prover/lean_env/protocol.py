"""Typed messages of the leanprover-community/repl JSON protocol.

Requests are validated here, client-side, because malformed JSON or a request matching no shape
makes the real REPL raise out of its main loop (it dies instead of answering). Replies keep every
field they arrive with (`extra="allow"`), so a reply re-serialised with
`model_dump(mode="json", by_alias=True, exclude_unset=True)` is the object the REPL printed.

Wire format: a request is `json.dumps(obj)` on ONE line followed by a blank line (the REPL strips
and concatenates physical lines, so raw newlines inside strings would be lost); a reply is a
pretty-printed, multi-line JSON object followed by a blank line.

Failed tactics and Lean errors are data on replies (`errors()`, `has_sorry()`), never exceptions.

The REPL has no request ids, and code the model wrote runs inside it and can print to its stdout.
So a reply is taken only if it has a shape that answers the request (`check_reply`), and only if
the next block on stdout answers a *fence* sent after it: `#print "<nonce>"` on a clean env, whose
reply echoes a fresh random nonce (`fence_request`, `is_fence_reply`). Anything in between is
output that is not a reply to our request: a protocol error, never a reply.

Examples:
    >>> encode_request(CommandRequest(cmd="theorem t : 1 = 1 := by\\n  rfl", env=0))
    '{"cmd": "theorem t : 1 = 1 := by\\\\n  rfl", "env": 0}\\n\\n'
    >>> parse_reply({"env": 3}).env
    3
"""

from __future__ import annotations

import json
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from prover.errors import ReplProtocolError
from prover.types import LeanMessage, Pos

MESSAGE_CONFIG = ConfigDict(frozen=True, populate_by_name=True, extra="allow", alias_generator=to_camel)

SORRY_WARNINGS: tuple[str, ...] = ("declaration uses 'sorry'", "declaration uses `sorry`")
"""Both spellings of Lean's sorry warning (single quotes up to v4.27, backquotes from v4.28)."""

InfotreeMode = Literal["full", "tactics", "original", "substantive"]


class _Message(BaseModel):
    model_config = MESSAGE_CONFIG


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


class _Request(_Message):
    def to_json(self) -> dict[str, Any]:
        """The JSON object sent to the REPL (aliases, no unset/None fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CommandRequest(_Request):
    """Elaborate Lean source; without `env` it starts fresh (imports allowed)."""

    cmd: str
    env: int | None = Field(default=None, ge=0)
    all_tactics: bool | None = None
    root_goals: bool | None = None
    infotree: InfotreeMode | None = None


class FileRequest(_Request):
    """Elaborate a file (read by the REPL process itself, relative to its working directory)."""

    path: str
    env: int | None = Field(default=None, ge=0)
    all_tactics: bool | None = None
    root_goals: bool | None = None
    infotree: InfotreeMode | None = None


class TacticRequest(_Request):
    """Run one tactic-category syntax item on a stored proof state."""

    tactic: str
    proof_state: int = Field(ge=0)


class PickleEnvRequest(_Request):
    pickle_to: str
    env: int = Field(ge=0)


class UnpickleEnvRequest(_Request):
    unpickle_env_from: str


class PickleProofStateRequest(_Request):
    pickle_to: str
    proof_state: int = Field(ge=0)


class UnpickleProofStateRequest(_Request):
    unpickle_proof_state_from: str
    env: int | None = Field(default=None, ge=0)


Request = Union[
    CommandRequest,
    FileRequest,
    TacticRequest,
    PickleEnvRequest,
    UnpickleEnvRequest,
    PickleProofStateRequest,
    UnpickleProofStateRequest,
]

_REQUEST_ORDER: tuple[tuple[type[_Request], tuple[str, ...]], ...] = (
    (TacticRequest, ("tactic", "proofState")),
    (PickleEnvRequest, ("pickleTo", "env")),
    (UnpickleEnvRequest, ("unpickleEnvFrom",)),
    (PickleProofStateRequest, ("pickleTo", "proofState")),
    (UnpickleProofStateRequest, ("unpickleProofStateFrom",)),
    (CommandRequest, ("cmd",)),
    (FileRequest, ("path",)),
)


def parse_request(obj: Any) -> Request:
    """Validate a request object, dispatching in the real REPL's order; ValueError if none fits."""
    if isinstance(obj, dict):
        for model, keys in _REQUEST_ORDER:
            if all(k in obj for k in keys):
                try:
                    return model.model_validate(obj)
                except ValidationError as exc:
                    raise ValueError(f"invalid {model.__name__}: {exc}") from exc
    raise ValueError(f"not a REPL request: {json.dumps(obj)[:200]}")


def encode_request(req: Request) -> str:
    """One JSON line (newlines escaped) followed by the blank line that ends a request."""
    return json.dumps(req.to_json(), ensure_ascii=False) + "\n\n"


# ---------------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------------


class Sorry(_Message):
    """A `sorry` in the source (or a root goal): its goal and a proof state to continue from."""

    goal: str
    proof_state: int | None = None
    pos: Pos | None = None
    end_pos: Pos | None = None


class TacticInfo(_Message):
    """One tactic of an `allTactics` reply, with the goals before it and a resumable state."""

    tactic: str
    goals: str
    proof_state: int | None = None
    pos: Pos | None = None
    end_pos: Pos | None = None
    used_constants: tuple[str, ...] | None = None


class _Response(_Message):
    def to_json(self) -> dict[str, Any]:
        """The JSON object this reply was parsed from (lossless round trip)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class _Reply(_Response):
    messages: tuple[LeanMessage, ...] = ()
    sorries: tuple[Sorry, ...] = ()

    def errors(self) -> tuple[LeanMessage, ...]:
        return tuple(m for m in self.messages if m.severity == "error")

    def has_errors(self) -> bool:
        return bool(self.errors())

    def has_sorry(self) -> bool:
        """Sorries listed, or either spelling of the "declaration uses sorry" warning."""
        return bool(self.sorries) or any(
            m.severity == "warning" and any(w in m.data for w in SORRY_WARNINGS) for m in self.messages
        )


class CommandResponse(_Reply):
    """Reply to a command/file/env-pickle request: the new env id and what elaboration said."""

    env: int
    tactics: tuple[TacticInfo, ...] = ()
    infotree: list[Any] | None = None


class ProofStepResponse(_Reply):
    """Reply to a tactic/proof-state request. Only proofStatus "Completed" means proved."""

    proof_state: int
    goals: tuple[str, ...] = ()
    traces: tuple[str, ...] = ()
    proof_status: str | None = None

    @property
    def completed(self) -> bool:
        return self.proof_status == "Completed" and not self.has_errors() and not self.sorries


class ReplErrorResponse(_Response):
    """`{"message": ...}`: unknown env/proof state, a tactic that threw, an IO error."""

    message: str

    def errors(self) -> tuple[LeanMessage, ...]:
        return (LeanMessage(severity="error", pos=Pos(line=0, column=0), data=self.message),)

    def has_errors(self) -> bool:
        return True

    def has_sorry(self) -> bool:
        return False


Reply = Union[CommandResponse, ProofStepResponse, ReplErrorResponse]


def parse_reply(obj: Any) -> Reply:
    """Classify and validate one decoded reply object; ReplProtocolError if it fits no shape."""
    if not isinstance(obj, dict):
        raise ReplProtocolError(f"REPL reply is not a JSON object: {str(obj)[:200]}")
    try:
        if "env" in obj:
            return CommandResponse.model_validate(obj)
        if "proofState" in obj:
            return ProofStepResponse.model_validate(obj)
        if "message" in obj:
            return ReplErrorResponse.model_validate(obj)
    except ValidationError as exc:
        raise ReplProtocolError(f"malformed REPL reply {json.dumps(obj)[:200]}: {exc}") from exc
    raise ReplProtocolError(f"REPL reply has none of env/proofState/message: {json.dumps(obj)[:200]}")


_ANSWERS: dict[type, tuple[type, ...]] = {
    CommandRequest: (CommandResponse, ReplErrorResponse),
    FileRequest: (CommandResponse, ReplErrorResponse),
    UnpickleEnvRequest: (CommandResponse, ReplErrorResponse),
    PickleEnvRequest: (CommandResponse, ReplErrorResponse),
    TacticRequest: (ProofStepResponse, ReplErrorResponse),
    PickleProofStateRequest: (ProofStepResponse, ReplErrorResponse),
    UnpickleProofStateRequest: (ProofStepResponse, ReplErrorResponse),
}
FENCE_PREFIX = "prover-fence "


def check_reply(req: Request, reply: Reply) -> None:
    """Raise ReplProtocolError unless `reply` has a shape that answers `req`."""
    allowed = _ANSWERS[type(req)]
    if not isinstance(reply, allowed):
        raise ReplProtocolError(
            f"a {type(reply).__name__} is not an answer to a {type(req).__name__}: output that is not a reply"
        )
    if isinstance(req, PickleEnvRequest) and isinstance(reply, CommandResponse) and reply.env != req.env:
        raise ReplProtocolError(f"pickling env {req.env} answered with env {reply.env}")


def fence_request(nonce: str, env: int | None) -> CommandRequest:
    """A request Lean answers at once, echoing `nonce` (`#print "s"` logs `s` as info)."""
    return CommandRequest(cmd=f'#print "{FENCE_PREFIX}{nonce}"', env=env)


def is_fence_reply(reply: Reply, nonce: str) -> bool:
    return (
        isinstance(reply, CommandResponse) and len(reply.messages) == 1 and reply.messages[0].severity == "info"
        and reply.messages[0].data.strip() == FENCE_PREFIX + nonce
    )


def decode_reply(text: str) -> Reply:
    """Parse one framed reply (the text between blank lines)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplProtocolError(f"REPL wrote something that is not JSON: {text[:200]!r}") from exc
    return parse_reply(obj)


def split_replies(text: str) -> list[str]:
    """Split a stream of blank-line-separated replies (e.g. a recorded transcript)."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks
