"""SIMULATED Lean semantics for the simulated REPL: scenario data, not a Lean implementation.

`Scenario` (YAML/JSON) says which proofs and tactic steps succeed for which theorem, with which
goals, messages and axioms; `SimulatedLean.handle(request_obj) -> reply_obj` applies it with the
REPL's state model (append-only env and proof-state ids). No Lean is run here: anything a scenario
does not mention fails the way Lean would report it (an error message), so tests never pass by
accident. Used by `simulated_repl.py` (the process) and directly by unit tests.

Default behaviours (see the team contract): `sorry` -> `sorries` + "declaration uses `sorry`" +
axiom sorryAx; `admit` -> the warning only; `native_decide` -> axiom Lean.ofReduceBool;
`axiom X : T` -> X is an axiom that declarations mentioning X depend on (transitively through
earlier declarations); `#print axioms N` -> an info message on the env where N is declared;
`#print "s"` -> an info message `s`.

Environments carry, besides constants, the state of environment extensions the code installed.
One is simulated: a model-defined elaborator for `#print axioms` (`elab "#print" "axioms" ...` or
`@[command_elab ...printAxioms]`), after which that env's `#print axioms` prints whatever the
hijack wants (here: "does not depend on any axioms"). As in the real REPL, a pickle stores the
imports and constants only, so an unpickled env has no extensions; unpickling replays every
constant in the kernel, and a constant the kernel refuses (a scenario proof with `kernel_error`,
e.g. one added under `debug.skipKernelTC`) makes the REPL die with the uncaught exception, as
REPL v4.15 does.

Sketches (`simulated_sketch.py`): a tactic body with top-level `have` steps that no `proofs` entry
accepts is elaborated step by step, as the real REPL reports it: each `have n : T := by sorry`
gives a `sorries` entry whose goal is the context so far plus `⊢ T`, later goals list the earlier
`have`s, and every other tactic (in the body, in a `have`'s proof, or in tactic mode from a
sorry's proof state) is a `steps` entry from the goals as printed there. No scenario field is
needed for this: `goals` and `steps` are all it reads (see tests/data/planner/scenario.yaml).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prover.lean_env.simulated_sketch import SketchRun, has_have_step, normalize, runs_as_block
from prover.lean_syntax import blank_comments_and_strings

SPEC = ConfigDict(extra="forbid", populate_by_name=True)
SORRY_AX = "sorryAx"
NATIVE_AX = "Lean.ofReduceBool"

_DECL = re.compile(
    r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec|unsafe|partial)\s+)*"
    r"(theorem|lemma|example|def|abbrev|instance|axiom|opaque|structure|inductive|class)\b"
    r"(?:\s+([^\s:({\[]+))?"
)
_OTHER_CMD = re.compile(
    r"^(?:#\w+|open|set_option|namespace|section|end|variable|universe|import|attribute|macro|"
    r"macro_rules|syntax|notation|infix[lr]?|elab|run_cmd|noncomputable\s+section|--|/-)"
)
_PRINT_AXIOMS = re.compile(r"^#print\s+axioms\s+(\S+)")
_PRINT_STRING = re.compile(r'^#print\s+"((?:[^"\\]|\\.)*)"\s*$')
_HIJACK = re.compile(r'^(?:elab\s+"#print"\s+"axioms"|@\[command_elab\s+\S*printAxioms)')
HIJACK = "print_axioms"
"""The simulated extension: a model elaborator answering `#print axioms`."""
_CHECK = re.compile(r"^#check\s+@?([^\s@()]+)\s*$")


class MessageSpec(BaseModel):
    model_config = SPEC
    severity: str = "warning"
    data: str


class ProofSpec(BaseModel):
    """A whole proof that succeeds: `body` (whitespace-normalised equality) or `pattern`
    (regex, full match against the whitespace-normalised body)."""

    model_config = SPEC
    body: str | None = None
    pattern: str | None = None
    axioms: list[str] | None = None
    messages: list[MessageSpec] = Field(default_factory=list)
    kernel_error: str | None = None
    """The declaration was never checked by the kernel (e.g. `debug.skipKernelTC`): replaying it
    (unpickling) fails with this kernel error."""

    @model_validator(mode="after")
    def _one_of(self) -> ProofSpec:
        if (self.body is None) == (self.pattern is None):
            raise ValueError("a proof needs exactly one of `body` or `pattern`")
        return self

    def matches(self, body: str) -> bool:
        if self.body is not None:
            return normalize(self.body) == normalize(body)
        return re.fullmatch(self.pattern or "", normalize(body), re.DOTALL) is not None


class StepSpec(BaseModel):
    """A tactic-mode transition from a goal list (exact strings, trimmed)."""

    model_config = SPEC
    from_: list[str] = Field(alias="from")
    tactic: str
    to: list[str] = Field(default_factory=list)
    error: str | None = None
    throw: str | None = None
    messages: list[MessageSpec] = Field(default_factory=list)


class TheoremSpec(BaseModel):
    model_config = SPEC
    name: str
    goals: list[str] = Field(default_factory=list)
    proofs: list[ProofSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(default_factory=list)


class Faults(BaseModel):
    """Fault injection; patterns are regexes searched in the request's cmd/tactic/path text."""

    model_config = SPEC
    crash_on: list[str] = Field(default_factory=list)
    hang_on: list[str] = Field(default_factory=list)
    garbage_on: list[str] = Field(default_factory=list)
    forge_reply_on: list[str] = Field(default_factory=list)
    """Model code that prints a well-formed, clean-looking reply to stdout during elaboration:
    it appears before the REPL's own reply."""
    oom_on: list[str] = Field(default_factory=list)
    slow_on: dict[str, float] = Field(default_factory=dict)
    crash_after_requests: int | None = None
    """Exit once this many requests (and the worker's fence after the last one) are answered."""
    crash_every: int | None = Field(default=None, ge=1)
    """Each process dies on reading its Nth request (the header included) without answering, and
    its replacement counts afresh: the REPL dies on every Nth request it serves, and a check
    retried on a fresh process gets N-1 requests through."""
    crash_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a request kills the process after it was read (random, like a flaky node)."""
    crash_rate_on: list[str] = Field(default_factory=list)
    """Only requests matching one of these patterns are exposed to `crash_rate` (empty: all)."""
    grow_mb_per_request: float = 0.0
    stderr_noise_kb: float = 0.0
    oom_cap_mb: int = 4096
    """Safety cap for `oom_on` when no RLIMIT stops the allocation first (shared machines)."""


class Scenario(BaseModel):
    """Everything the simulated REPL knows; load with `Scenario.load(path)`."""

    model_config = SPEC
    latency: float = 0.0
    """Seconds every request takes (with `proof_latency` set: every request but proof elaboration)."""
    proof_latency: float | None = None
    """Seconds instead of `latency` for a request that elaborates a proof: a tactic step, or a
    command with a theorem/lemma/example whose proof is not `sorry`. As in Lean, an audit
    (`#print axioms`, `#check`), a statement proved by `sorry` or a health check stays cheap."""
    import_latency: float = 0.0
    axioms_default: list[str] = Field(default_factory=lambda: ["propext", "Classical.choice", "Quot.sound"])
    faults: Faults = Field(default_factory=Faults)
    theorems: list[TheoremSpec] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | str) -> Scenario:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.model_validate(data or {})

    def dump(self, path: Path | str) -> Path:
        """Write as JSON (what `simulated_repl_command` reads back)."""
        Path(path).write_text(self.model_dump_json(by_alias=True, indent=1), encoding="utf-8")
        return Path(path)


@dataclass(frozen=True)
class _PState:
    goals: tuple[str, ...]
    tainted: bool = False  # a sorry or logged error was used on the way here


@dataclass(frozen=True)
class _Info:
    axioms: frozenset[str]
    signature: str  # what `#check @name` prints: the statement text after the name, normalised
    kernel_error: str = ""


@dataclass
class _Env:
    decls: dict[str, _Info]
    """By full name (`namespace X` ... `theorem t` declares `X.t`)."""
    extensions: frozenset[str] = frozenset()
    scopes: tuple[tuple[str, ...], ...] = ()
    """Open `namespace`/`section` blocks (a section is `()`); pickled, like the REPL's scopes."""

    @property
    def namespace(self) -> tuple[str, ...]:
        return tuple(part for scope in self.scopes for part in scope)


@dataclass
class _Decl:
    kind: str
    name: str | None
    text: str
    offset: int


def _position(source: str, offset: int) -> dict[str, int]:
    line = source.count("\n", 0, offset) + 1
    return {"line": line, "column": offset - (source.rfind("\n", 0, offset) + 1)}


def _split_items(source: str) -> list[_Decl]:
    """Cut a command into top-level items at column-0 declaration/command keywords."""
    items: list[_Decl] = []
    offset = 0
    for line in source.splitlines(keepends=True):
        decl = _DECL.match(line)
        if decl or _OTHER_CMD.match(line):
            kind = decl.group(1) if decl else "command"
            name = decl.group(2) if decl else None
            items.append(_Decl(kind, name, line, offset))
        elif items:
            items[-1].text += line
        offset += len(line)
    return items


def _split_body(text: str) -> tuple[str, str | None, int]:
    """(statement, body or None, body offset): body is what follows `:=` at bracket depth 0."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{⟨":
            depth += 1
        elif ch in ")]}⟩":
            depth -= 1
        elif depth == 0 and text.startswith(":=", i):
            return text[:i], text[i + 2 :], i + 2
    return text, None, len(text)


def _signature(statement: str) -> str:
    head = _DECL.match(statement)
    return normalize(statement[head.end() :] if head else statement)


def _default_goals(statement: str) -> tuple[str, ...]:
    """`theorem t (x y : Nat) (h : P) : Q` -> ("x y : Nat\\nh : P\\n⊢ Q",) when no scenario goal."""
    head = _DECL.match(statement)
    rest = statement[head.end() :] if head else statement
    hyps, depth, start = [], 0, None
    for i, ch in enumerate(rest):
        if ch in "([{":
            depth += 1
            start = i + 1 if depth == 1 else start
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and start is not None:
                hyps.append(normalize(rest[start:i]))
        elif ch == ":" and depth == 0:
            hyps = [h for h in hyps if " : " in h]
            return ("\n".join([*hyps, "⊢ " + normalize(rest[i + 1 :])]),)
    return ("⊢ " + normalize(rest),)


class SimulatedLean:
    """The REPL state machine: envs and proof states are append-only, ids never reused."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.envs: list[_Env] = []
        self.states: list[_PState] = []
        self.proofs_elaborated = 0
        """Proofs elaborated so far (tactic steps and non-`sorry` proofs): what costs Lean time."""
        self.theorems = {t.name: t for t in scenario.theorems}
        self.steps = {
            (tuple(g.strip() for g in s.from_), normalize(s.tactic)): s for t in scenario.theorems for s in t.steps
        }

    # -- dispatch, in the real REPL's order --------------------------------------------------
    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        if "tactic" in req and "proofState" in req:
            return self.tactic(req["tactic"], req["proofState"])
        if "pickleTo" in req and "env" in req:
            return self._pickle_env(req["pickleTo"], req["env"])
        if "unpickleEnvFrom" in req:
            return self._unpickle_env(req["unpickleEnvFrom"])
        if "pickleTo" in req and "proofState" in req:
            return self._pickle_state(req["pickleTo"], req["proofState"])
        if "unpickleProofStateFrom" in req:
            return self._unpickle_state(req["unpickleProofStateFrom"])
        if "cmd" in req:
            return self.command(req["cmd"], req.get("env"), root_goals=bool(req.get("rootGoals")))
        if "path" in req:
            try:
                source = Path(req["path"]).read_text(encoding="utf-8")
            except OSError as exc:
                return {"message": f"{exc.strerror} (simulated REPL)\n  file: {req['path']}"}
            return self.command(source, req.get("env"), root_goals=bool(req.get("rootGoals")))
        raise ValueError(f"Could not parse as a valid JSON command: {json.dumps(req)[:200]}")

    # -- command mode ---------------------------------------------------------------------------
    def command(self, source: str, env: int | None, *, root_goals: bool = False) -> dict[str, Any]:
        if env is not None and not 0 <= env < len(self.envs):
            return {"message": "Unknown environment."}
        base = self.envs[env] if env is not None else _Env({})
        decls, extensions, scopes = dict(base.decls), set(base.extensions), list(base.scopes)
        messages: list[dict[str, Any]] = []
        sorries: list[dict[str, Any]] = []
        for item in _split_items(source):
            if _HIJACK.match(item.text):
                extensions.add(HIJACK)
            namespace = tuple(part for scope in scopes for part in scope)
            if item.kind == "command":
                _enter_or_leave(item.text, scopes)
                self._misc_command(source, item, decls, messages, extensions, namespace)
            else:
                self._declaration(source, item, decls, messages, sorries, root_goals, namespace)
        self.envs.append(_Env(decls, frozenset(extensions), tuple(scopes)))
        reply: dict[str, Any] = {}
        if sorries:
            reply["sorries"] = sorries
        if messages:
            reply["messages"] = messages
        reply["env"] = len(self.envs) - 1
        return reply

    def _misc_command(
        self, source: str, item: _Decl, decls: dict, messages: list, extensions: set[str], namespace: tuple[str, ...]
    ) -> None:
        pos = _position(source, item.offset)
        end = _position(source, item.offset + len(item.text.rstrip()))
        check = _CHECK.match(item.text)
        if check:
            name = _resolve(check.group(1), decls, namespace)
            if name is None:
                messages.append(_msg("error", f"unknown identifier '{check.group(1)}'", pos, end))
            else:
                messages.append(_msg("info", f"{name} : {decls[name].signature}", pos, end))
            return
        printed = _PRINT_STRING.match(item.text)
        if printed:  # `#print "s"` logs `s` (the worker's fence)
            messages.append(_msg("info", json.loads(f'"{printed.group(1)}"'), pos, _position(source, item.offset + 6)))
            return
        match = _PRINT_AXIOMS.match(item.text)
        if not match:
            return
        written = match.group(1)
        name = _resolve(written, decls, namespace)
        if HIJACK in extensions:  # the model's elaborator answers instead of Lean's
            messages.append(_msg("info", f"'{written}' does not depend on any axioms", pos, end))
        elif name is None:
            messages.append(_msg("error", f"unknown constant '{written}'", pos, end))
        elif decls[name].axioms:
            listed = ", ".join(sorted(decls[name].axioms))
            messages.append(_msg("info", f"'{name}' depends on axioms: [{listed}]", pos, end))
        else:
            messages.append(_msg("info", f"'{name}' does not depend on any axioms", pos, end))

    def _declaration(self, source, item: _Decl, decls, messages, sorries, root_goals, namespace) -> None:
        statement, body, body_at = _split_body(item.text)
        name_pos = _position(source, item.offset + item.text.find(item.name or item.kind))
        name_end = {"line": name_pos["line"], "column": name_pos["column"] + len(item.name or item.kind)}
        full = _full_name(item.name, namespace)
        if item.kind == "axiom":
            decls[full or "_"] = _Info(frozenset({full or "_"}), _signature(statement))
            return
        spec = self.theorems.get(item.name or "")
        goals = tuple(spec.goals) if spec and spec.goals else _default_goals(statement)
        axioms = set().union(*(decls[n].axioms for n in decls if _uses(item.text, n)))
        text = blank_comments_and_strings(body or "")  # Lean never reads a `sorry` in a comment
        if root_goals and item.kind in ("theorem", "lemma", "example"):
            at = _position(source, item.offset + body_at)
            sorries.append(self._sorry(goals, at, at))
        if re.search(r"\bnative_decide\b", text):
            axioms.add(NATIVE_AX)
        if self._is_sketch(spec, item.kind, text):
            axioms |= self._sketch_axioms(source, item.offset + body_at, goals, messages, sorries, name_pos, name_end)
        elif re.search(r"\bsorry\b", text):
            for m in re.finditer(r"\bsorry\b", text):
                start = item.offset + body_at + m.start()
                sorries.append(self._sorry(goals, _position(source, start), _position(source, start + 5)))
            messages.append(_msg("warning", "declaration uses `sorry`", name_pos, name_end))
            axioms.add(SORRY_AX)
        elif re.search(r"\badmit\b", text):
            messages.append(_msg("warning", "declaration uses `sorry`", name_pos, name_end))
            axioms.add(SORRY_AX)
        elif item.kind in ("theorem", "lemma", "example") or spec is not None:
            self.proofs_elaborated += 1
            axioms |= self._proof_axioms(spec, source, item, body, body_at, goals, messages, decls)
        if full:
            decls[full] = _Info(frozenset(axioms), _signature(statement), self._kernel_error(spec, body))

    def _proof_axioms(self, spec, source, item, body, body_at, goals, messages, decls) -> set[str]:
        """Axioms of a proof the scenario accepts; otherwise an "unsolved goals" error.

        Without a scenario match, a body using `native_decide` or a user `axiom` is accepted too
        (that is what makes those exploits interesting to a checker)."""
        tactic_body = re.sub(r"^\s*by\b", "", body or "", count=1)
        for proof in spec.proofs if spec else []:
            if proof.matches(tactic_body) or proof.matches(body or ""):
                at = _position(source, item.offset)
                messages.extend(_msg(m.severity, m.data, at, at) for m in proof.messages)
                axioms = self.scenario.axioms_default if proof.axioms is None else proof.axioms
                return set(axioms)
        if re.search(r"\bnative_decide\b", body or ""):
            return set(self.scenario.axioms_default)
        if any(decls[n].axioms == {n} and _uses(body or "", n) for n in decls):
            return set()
        start = item.offset + body_at + (len(body or "") - len((body or "").lstrip()))
        end = item.offset + len(item.text.rstrip())
        data = "unsolved goals\n" + "\n\n".join(goals)
        messages.append(_msg("error", data, _position(source, start), _position(source, end)))
        return {SORRY_AX}

    # -- sketches: bodies with `have` steps (simulated_sketch.py) -----------------------------
    def _is_sketch(self, spec: TheoremSpec | None, kind: str, body: str) -> bool:
        """A theorem body with top-level `have` steps that no scenario `proofs` entry accepts."""
        if kind not in ("theorem", "lemma", "example") or not has_have_step(body):
            return False
        tactic_body = re.sub(r"^\s*by\b", "", body, count=1)
        return not any(p.matches(tactic_body) or p.matches(body) for p in (spec.proofs if spec else []))

    def _sketch_axioms(
        self, source: str, body_at: int, goals: tuple[str, ...], messages: list[dict[str, Any]],
        sorries: list[dict[str, Any]], name_pos: dict[str, int], name_end: dict[str, int],
    ) -> set[str]:
        """Elaborate the body step by step (see simulated_sketch); its axioms."""
        run = SketchRun(source, self._step_spec, self._new_state, positions=True)
        run.body(body_at, goals[:1])
        messages.extend(run.messages)
        sorries.extend(run.sorries)
        if run.sorries and not run.failed:
            messages.append(_msg("warning", "declaration uses `sorry`", name_pos, name_end))
        return {SORRY_AX} if run.sorries or run.failed else set(self.scenario.axioms_default)

    def _tactic_block(self, tactic: str, state: _PState) -> dict[str, Any]:
        """A tactic-mode block (`have ...`, or several steps) without a scenario step of its own:
        its steps run like a sketch body's."""
        run = SketchRun(tactic, self._step_spec, self._new_state, positions=False)
        left = run.tactic(state.goals)
        extra: dict[str, Any] = {"sorries": run.sorries} if run.sorries else {}
        if run.messages:
            extra["messages"] = run.messages
        tainted = state.tainted or bool(run.sorries) or run.failed
        return self._step(_PState(() if left is None else left, tainted), extra=extra)

    def _step_spec(self, goals: tuple[str, ...], tactic: str) -> StepSpec | None:
        return self.steps.get((goals, normalize(tactic)))

    def _new_state(self, goals: tuple[str, ...]) -> int:
        self.states.append(_PState(goals))
        return len(self.states) - 1

    @staticmethod
    def _kernel_error(spec: TheoremSpec | None, body: str | None) -> str:
        tactic_body = re.sub(r"^\s*by\b", "", body or "", count=1)
        for proof in spec.proofs if spec else []:
            if proof.kernel_error and (proof.matches(tactic_body) or proof.matches(body or "")):
                return proof.kernel_error
        return ""

    def _sorry(self, goals: tuple[str, ...], pos: dict, end: dict) -> dict[str, Any]:
        self.states.append(_PState(goals))
        return {"proofState": len(self.states) - 1, "pos": pos, "goal": "\n\n".join(goals), "endPos": end}

    # -- tactic mode ----------------------------------------------------------------------------
    def tactic(self, tactic: str, proof_state: int) -> dict[str, Any]:
        if not 0 <= proof_state < len(self.states):
            return {"message": "Unknown proof state."}
        state = self.states[proof_state]
        if not state.goals:
            return {"message": "Lean error:\nno goals to be proved"}
        if normalize(tactic) == "sorry":
            self.states.append(_PState(state.goals[:1]))
            sorry = {"proofState": len(self.states) - 1, "goal": state.goals[0]}
            return self._step(_PState(state.goals[1:], True), extra={"sorries": [sorry]})
        self.proofs_elaborated += 1
        step = self.steps.get((tuple(g.strip() for g in state.goals), normalize(tactic)))
        if step is None and runs_as_block(tactic):
            return self._tactic_block(tactic, state)
        if step is None:
            return self._logged_error(f"tactic '{normalize(tactic)}' failed (simulated REPL: no scenario step)")
        if step.throw is not None:
            return {"message": "Lean error:\n" + step.throw}
        if step.error is not None:
            return self._logged_error(step.error)
        at = {"line": 0, "column": 0}
        messages = [_msg(m.severity, m.data, at, at) for m in step.messages]
        return self._step(_PState(tuple(step.to), state.tainted), extra={"messages": messages} if messages else {})

    def _logged_error(self, data: str) -> dict[str, Any]:
        at = {"line": 0, "column": 0}
        return self._step(_PState((), True), extra={"messages": [_msg("error", data, at, at)]})

    def _step(self, new: _PState, *, extra: dict[str, Any]) -> dict[str, Any]:
        self.states.append(new)
        if new.goals:
            status = "Incomplete: open goals remain"
        else:
            status = "Incomplete: contains sorry" if new.tainted else "Completed"
        return {**extra, "proofStatus": status, "proofState": len(self.states) - 1, "goals": list(new.goals)}

    # -- pickling (JSON files standing in for .olean pickles) ----------------------------------
    def _pickle_env(self, path: str, env: int) -> dict[str, Any]:
        if not 0 <= env < len(self.envs):
            return {"message": "Unknown environment."}
        decls = self.envs[env].decls  # constants and scopes only: extension state is not pickled
        data = {"simulated": "env", "decls": {k: [sorted(v.axioms), v.signature, v.kernel_error] for k, v in decls.items()},
                "scopes": [list(scope) for scope in self.envs[env].scopes]}
        Path(path).write_text(json.dumps(data), encoding="utf-8")
        return {"env": env}

    def _unpickle_env(self, path: str) -> dict[str, Any]:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return {"message": f"simulated REPL cannot read pickle {path}: {exc}"}
        decls = {k: _Info(frozenset(a), sig, error) for k, (a, sig, error) in data["decls"].items()}
        refused = next((f"{name}: {info.kernel_error}" for name, info in decls.items() if info.kernel_error), None)
        if refused:  # Environment.replay throws; REPL v4.15 does not catch it
            raise ValueError(f"(kernel) declaration refused on replay: {refused}")
        self.envs.append(_Env(decls, scopes=tuple(tuple(scope) for scope in data.get("scopes", []))))
        return {"env": len(self.envs) - 1}

    def _pickle_state(self, path: str, proof_state: int) -> dict[str, Any]:
        if not 0 <= proof_state < len(self.states):
            return {"message": "Unknown proof state."}
        state = self.states[proof_state]
        data = {"simulated": "proofState", "goals": list(state.goals), "tainted": state.tainted}
        Path(path).write_text(json.dumps(data), encoding="utf-8")
        return self._step(state, extra={})

    def _unpickle_state(self, path: str) -> dict[str, Any]:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return {"message": f"simulated REPL cannot read pickle {path}: {exc}"}
        return self._step(_PState(tuple(data["goals"]), bool(data["tainted"])), extra={})


def simulated_repl_command(scenario_path: Path, *, transcript: bool = False) -> list[str]:
    """argv that starts one simulated REPL process (for `ReplLauncher` / `--repl-cmd`).

    With `transcript=True`, `scenario_path` is a recorded `NAME.in` to replay."""
    flag = "--transcript" if transcript else "--scenario"
    return [sys.executable, "-m", "prover.lean_env.simulated_repl", flag, str(Path(scenario_path).resolve())]


def _enter_or_leave(text: str, scopes: list[tuple[str, ...]]) -> None:
    """`namespace A.B` / `section` open a block, `end` closes the innermost one."""
    if match := re.match(r"^namespace\s+(\S+)", text):
        scopes.append(tuple(match.group(1).split(".")))
    elif re.match(r"^(?:noncomputable\s+)?section\b", text):
        scopes.append(())
    elif re.match(r"^end\b", text) and scopes:
        scopes.pop()


def _full_name(name: str | None, namespace: tuple[str, ...]) -> str | None:
    if name is None or name.startswith("_root_."):
        return name.removeprefix("_root_.") if name else None
    return ".".join((*namespace, name))


def _resolve(written: str, decls: dict[str, _Info], namespace: tuple[str, ...]) -> str | None:
    """Lean's lookup of `written` inside `namespace`: `A.B.n`, then `A.n`, then `n`."""
    if written.startswith("_root_."):
        return written.removeprefix("_root_.") if written.removeprefix("_root_.") in decls else None
    for depth in range(len(namespace), -1, -1):
        candidate = ".".join((*namespace[:depth], written))
        if candidate in decls:
            return candidate
    return None


def _uses(text: str, full: str) -> bool:
    """Does `text` mention the constant `full` (by its full or its last name component)?"""
    return _mentions(text, full) or _mentions(text, full.rsplit(".", 1)[-1])


def _mentions(text: str, name: str) -> bool:
    return re.search(r"(?<![\w.'])" + re.escape(name) + r"(?![\w'])", text) is not None


def _msg(severity: str, data: str, pos: dict, end: dict | None) -> dict[str, Any]:
    return {"severity": severity, "pos": pos, "endPos": end, "data": data}
