"""SIMULATED Lean semantics for the simulated REPL: scenario data, not a Lean implementation.

`Scenario` (YAML/JSON) says which proofs and tactic steps succeed for which theorem, with which
goals, messages and axioms; `SimulatedLean.handle(request_obj) -> reply_obj` applies it with the
REPL's state model (append-only env and proof-state ids). No Lean is run here: anything a scenario
does not mention fails the way Lean would report it (an error message), so tests never pass by
accident. Used by `simulated_repl.py` (the process) and directly by unit tests.

Default behaviours (see the team contract): `sorry` -> `sorries` + "declaration uses `sorry`" +
axiom sorryAx; `admit` -> the warning only; `native_decide` -> axiom Lean.ofReduceBool;
`axiom X : T` -> X is an axiom that declarations mentioning X depend on (transitively through
earlier declarations); `#print axioms N` -> an info message on the env where N is declared.
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
_CHECK = re.compile(r"^#check\s+@?([^\s@()]+)\s*$")


def normalize(text: str) -> str:
    """Collapse whitespace: how scenario bodies and tactics are compared."""
    return " ".join(text.split())


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
    oom_on: list[str] = Field(default_factory=list)
    slow_on: dict[str, float] = Field(default_factory=dict)
    crash_after_requests: int | None = None
    """Exit after answering this many requests: the next request finds the process gone."""
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
        self.envs: list[dict[str, _Info]] = []
        self.states: list[_PState] = []
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
        decls = dict(self.envs[env]) if env is not None else {}
        messages: list[dict[str, Any]] = []
        sorries: list[dict[str, Any]] = []
        for item in _split_items(source):
            if item.kind == "command":
                self._misc_command(source, item, decls, messages)
            else:
                self._declaration(source, item, decls, messages, sorries, root_goals)
        self.envs.append(decls)
        reply: dict[str, Any] = {}
        if sorries:
            reply["sorries"] = sorries
        if messages:
            reply["messages"] = messages
        reply["env"] = len(self.envs) - 1
        return reply

    def _misc_command(self, source: str, item: _Decl, decls: dict, messages: list) -> None:
        pos = _position(source, item.offset)
        end = _position(source, item.offset + len(item.text.rstrip()))
        check = _CHECK.match(item.text)
        if check:
            name = check.group(1)
            if name not in decls:
                messages.append(_msg("error", f"unknown identifier '{name}'", pos, end))
            else:
                messages.append(_msg("info", f"{name} : {decls[name].signature}", pos, end))
            return
        match = _PRINT_AXIOMS.match(item.text)
        if not match:
            return
        name = match.group(1)
        if name not in decls:
            messages.append(_msg("error", f"unknown constant '{name}'", pos, end))
        elif decls[name].axioms:
            listed = ", ".join(sorted(decls[name].axioms))
            messages.append(_msg("info", f"'{name}' depends on axioms: [{listed}]", pos, end))
        else:
            messages.append(_msg("info", f"'{name}' does not depend on any axioms", pos, end))

    def _declaration(self, source, item: _Decl, decls, messages, sorries, root_goals) -> None:
        statement, body, body_at = _split_body(item.text)
        name_pos = _position(source, item.offset + item.text.find(item.name or item.kind))
        name_end = {"line": name_pos["line"], "column": name_pos["column"] + len(item.name or item.kind)}
        if item.kind == "axiom":
            decls[item.name or "_"] = _Info(frozenset({item.name or "_"}), _signature(statement))
            return
        spec = self.theorems.get(item.name or "")
        goals = tuple(spec.goals) if spec and spec.goals else _default_goals(statement)
        axioms = set().union(*(decls[n].axioms for n in decls if _mentions(item.text, n)))
        text = body or ""
        if root_goals and item.kind in ("theorem", "lemma", "example"):
            at = _position(source, item.offset + body_at)
            sorries.append(self._sorry(goals, at, at))
        if re.search(r"\bnative_decide\b", text):
            axioms.add(NATIVE_AX)
        if re.search(r"\bsorry\b", text):
            for m in re.finditer(r"\bsorry\b", text):
                start = item.offset + body_at + m.start()
                sorries.append(self._sorry(goals, _position(source, start), _position(source, start + 5)))
            messages.append(_msg("warning", "declaration uses `sorry`", name_pos, name_end))
            axioms.add(SORRY_AX)
        elif re.search(r"\badmit\b", text):
            messages.append(_msg("warning", "declaration uses `sorry`", name_pos, name_end))
            axioms.add(SORRY_AX)
        elif item.kind in ("theorem", "lemma", "example") or spec is not None:
            axioms |= self._proof_axioms(spec, source, item, body, body_at, goals, messages, decls)
        if item.name:
            decls[item.name] = _Info(frozenset(axioms), _signature(statement))

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
        if any(decls[n].axioms == {n} and _mentions(body or "", n) for n in decls):
            return set()
        start = item.offset + body_at + (len(body or "") - len((body or "").lstrip()))
        end = item.offset + len(item.text.rstrip())
        data = "unsolved goals\n" + "\n\n".join(goals)
        messages.append(_msg("error", data, _position(source, start), _position(source, end)))
        return {SORRY_AX}

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
        step = self.steps.get((tuple(g.strip() for g in state.goals), normalize(tactic)))
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
        data = {"simulated": "env", "decls": {k: [sorted(v.axioms), v.signature] for k, v in self.envs[env].items()}}
        Path(path).write_text(json.dumps(data), encoding="utf-8")
        return {"env": env}

    def _unpickle_env(self, path: str) -> dict[str, Any]:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return {"message": f"simulated REPL cannot read pickle {path}: {exc}"}
        self.envs.append({k: _Info(frozenset(a), sig) for k, (a, sig) in data["decls"].items()})
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


def _mentions(text: str, name: str) -> bool:
    return re.search(r"(?<![\w.'])" + re.escape(name) + r"(?![\w'])", text) is not None


def _msg(severity: str, data: str, pos: dict, end: dict | None) -> dict[str, Any]:
    return {"severity": severity, "pos": pos, "endPos": end, "data": data}
