"""Render a subgoal as a standalone lemma, for sub-provers that write whole proofs.

A goal `x y : ℕ, h : x < y ⊢ x ≤ y` becomes

    theorem name
        (x y : ℕ)
        (h : x < y) :
        x ≤ y := by

(a `Problem.formal_statement`, ending in `:= by` like every benchmark statement). A proof `P` of
that lemma is then pasted into the sketch's hole: in the hole the context is the same, so `P` runs
there as it ran in the lemma, after `RenderedLemma.hole_prelude`, which gives the hole's hypotheses
the names the lemma used.

What cannot be written back as it was printed:

* Inaccessible and shadowed names (`x✝`, `a✝¹`) get fresh accessible names (`x_1`, never a name
  that occurs in the goal), consistently in later types and the target; in the hole `rename_i`
  gives them the same names (it renames exactly the inaccessible and shadowed hypotheses, last
  first, so it gets one entry per such hypothesis, `_` to keep one).
* `this` is a keyword, never a binder name: it becomes a fresh name and the hole gets
  `have this_1 := this`.
* Anonymous instances (`inst✝ : Fact p`) become `[Fact p]`, unnamed in the lemma as in the hole;
  one that a later type mentions gets a name like any inaccessible hypothesis.
* A `let` hypothesis `n : ℕ := 3` becomes `(n : ℕ) (n_def : n = 3)`: the lemma is then exactly as
  strong as the hole (∀ n, n = 3 → P n is P 3), and the hole gets `have n_def : n = 3 := rfl`.
* Universe levels (`Sort u_1`) are declared with a `universe` line before the theorem.

A goal with `⋯` (an elided proof or deep term), metavariables (`?m.5`) or `sorry` is
`NotRenderable`: its text does not say what the goal is. Such a subgoal is proved from its proof
state in tactic mode instead. Elaborate the sketch with `SUBGOAL_PP_OPTIONS` set so that goals
print without elisions and with the types that make printing round-trip; then check each rendered
lemma by elaborating it with `sorry` and comparing the goal Lean reports with
`RenderedLemma.confirms` (a mismatch means the printed text did not round-trip: prove that
subgoal in tactic mode too).
"""

from __future__ import annotations

import textwrap
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.planner.goals import Goal, Hypothesis, parse_goal
from prover.planner.lean_text import Token, is_inaccessible, token_texts, tokens
from prover.types import Problem

FROZEN = ConfigDict(frozen=True, extra="forbid")

_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_LEVEL_KEYWORDS = frozenset({"max", "imax", "_"})


class PpOption(BaseModel):
    """A pretty-printer option a sketch check sets, and why."""

    model_config = FROZEN
    name: str
    value: str
    why: str

    def command(self) -> str:
        return f"set_option {self.name} {self.value}"


SUBGOAL_PP_OPTIONS: tuple[PpOption, ...] = (
    PpOption(name="pp.proofs", value="true", why="print proofs inside terms instead of `⋯` (default false)"),
    PpOption(name="pp.deepTerms", value="true",
             why="print deeply nested terms instead of `⋯` (default false; option from lean4#3201, 2024-02)"),
    PpOption(name="pp.maxSteps", value="1000000", why="no `⋯` after 5000 visited subterms (the default)"),
    PpOption(name="pp.numericTypes", value="true",
             why="`(2 : ℝ)`: a literal's type survives re-elaboration; `2 ^ 2 = 4` alone would become a "
             "statement about ℕ (lean4#2933; it also turns on pp.natLit, so raw literals print as "
             "`nat_lit 2`, which reads back as the same term)"),
    PpOption(name="pp.coercions.types", value="true",
             why="`(↑n : ℝ)`: a coercion's target type survives re-elaboration (lean4#6119, 2024-11; "
             "older Lean lacks this option)"),
    PpOption(name="pp.funBinderTypes", value="true", why="`fun (x : ℝ) => ..`: lambda binder types survive"),
    PpOption(name="pp.letVarTypes", value="true", why="`let x : ℕ := ..` inside terms keeps its type"),
)
"""Set on the environment the sketch is checked in, so its `sorries` goals render as lemmas.

`set_option` of an option the Lean version does not have is an error: drop the ones older Lean
lacks. Left at their defaults on purpose: `pp.all`/`pp.explicit` (round-trip but unreadable for
the sub-prover model), `pp.fullNames` (the lemma is checked in the same header environment, with
the same `open`s), `pp.sanitizeNames` (keeps `✝` on inaccessible and shadowed names, which
`render_lemma` relies on)."""


def set_option_commands(options: tuple[PpOption, ...] = SUBGOAL_PP_OPTIONS) -> str:
    """The options as commands, one per line (options persist in the env they are set in)."""
    return "\n".join(o.command() for o in options)


class NotRenderable(BaseModel):
    """A goal whose printed text does not determine it; prove it in tactic mode instead."""

    model_config = FROZEN
    kind: Literal["not_renderable"] = "not_renderable"
    reason: Literal["elided", "metavariables", "sorry", "unbindable_name"]
    detail: str


class RenderedLemma(BaseModel):
    """A goal as a standalone lemma, and how a proof of it goes back into the hole."""

    model_config = FROZEN
    kind: Literal["lemma"] = "lemma"
    name: str
    statement: str
    """`[universe ..]` + `theorem name binders :\\n    target := by`."""
    renames: tuple[tuple[str, str], ...] = ()
    """(name in the goal, name in the lemma) for every hypothesis that was renamed."""
    hole_prelude: tuple[str, ...] = ()
    """Tactics that make the hole's context the lemma's (names, `let` equations)."""
    expected: Goal
    """The goal the lemma's own `sorry` must report when it round-trips."""
    let_equations: tuple[str, ...] = ()
    """Names of the `n_def : n = v` hypotheses added for `let` hypotheses."""

    def proof_for_hole(self, proof: str) -> str:
        """A tactic proof of the lemma, as a tactic proof of the hole (prelude first)."""
        body = textwrap.dedent(proof.strip("\n"))
        return "\n".join([*self.hole_prelude, body]) if self.hole_prelude else body

    def problem(self, parent: Problem) -> Problem:
        """The lemma as a problem of its own, in the parent's header environment."""
        return Problem(name=self.name, split=parent.split, header=parent.header, formal_statement=self.statement,
                       source=parent.source, lean_version=parent.lean_version, benchmark=parent.benchmark,
                       category=parent.category)

    def confirms(self, reported_goal: str) -> bool:
        """Is `reported_goal` (what Lean reports for `statement` followed by `sorry`) the goal this
        lemma was rendered from? False also when it does not parse as one goal."""
        try:
            reported = parse_goal(reported_goal)
        except ValueError:
            return False
        if self.expected.same_as(reported):
            return True
        return _without_let_parens(self.expected, self.let_equations).same_as(reported)


def render_lemma(goal: Goal, name: str) -> RenderedLemma | NotRenderable:
    """Render `goal` as `theorem name ...` (see the module docstring)."""
    if token_texts(name) != (name,) or is_inaccessible(name):
        raise ValueError(f"not a Lean identifier for a lemma name: {name!r}")
    refused = _refusal(goal)
    if refused is not None:
        return refused
    plan = _Plan(goal)
    hypotheses, binders = plan.render()
    target = plan.rename(goal.target, plan.final)
    universes = _universes([*(h.type for h in hypotheses), target])
    head = f"universe {' '.join(universes)}\n\n" if universes else ""
    statement = f"{head}theorem {name}" + "".join("\n    " + _indent(b) for b in binders)
    statement += " :\n    " + _indent(target) + " := by"
    expected_text = "\n".join([*(_hyp_line(h) for h in hypotheses), "⊢ " + target])
    expected = Goal(hypotheses=tuple(hypotheses), target=target, text=expected_text)
    return RenderedLemma(name=name, statement=statement, renames=tuple(plan.renames), hole_prelude=plan.prelude(),
                         expected=expected, let_equations=tuple(plan.equations.values()))


# ---------------------------------------------------------------------------------------------
# What cannot be rendered
# ---------------------------------------------------------------------------------------------


def _refusal(goal: Goal) -> NotRenderable | None:
    if goal.elided:
        return NotRenderable(reason="elided", detail="the goal hides subterms as `⋯`; check the sketch with "
                             "SUBGOAL_PP_OPTIONS set, or prove this subgoal in tactic mode")
    texts = [goal.target, *(h.type for h in goal.hypotheses), *(h.value or "" for h in goal.hypotheses)]
    for text in texts:
        toks = tokens(text)
        for a, b in zip(toks, toks[1:]):
            if a.text == "?" and b.start == a.end and (b.kind == "ident" or b.text == "_"):
                return NotRenderable(reason="metavariables", detail=f"the goal has a metavariable `?{b.text}`")
        if any(t.kind == "ident" and t.text == "sorry" for t in toks):
            return NotRenderable(reason="sorry", detail="the goal mentions `sorry`")
    for n in goal.names:
        if not is_inaccessible(n) and ("." in n.replace("«", "").replace("»", "") or token_texts(n) != (n,)):
            return NotRenderable(reason="unbindable_name", detail=f"hypothesis name `{n}` cannot be a binder")
    return None


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


class _Plan:
    """Which hypotheses get which names in the lemma, decided once for the whole goal."""

    def __init__(self, goal: Goal) -> None:
        self.goal = goal
        self.decls = [(i, n) for i, h in enumerate(goal.hypotheses) for n in h.names]
        self.used = {_head_name(t) for t in tokens(goal.text) if t.kind == "ident"}
        self.anonymous = self._anonymous_instances()
        self.new_name: dict[int, str] = {}  # decl index -> lemma name (only for renamed decls)
        for k, (_, n) in enumerate(self.decls):
            if k not in self.anonymous and (is_inaccessible(n) or self._shadowed(k) or n == "this"):
                self.new_name[k] = self._fresh(_base(n))
        self.equations = {k: self._fresh(self._lemma_name(k) + "_def")
                          for k, (i, _) in enumerate(self.decls) if goal.hypotheses[i].is_let}
        self.renames = [(self.decls[k][1], v) for k, v in self.new_name.items()]
        self.final = self._mapping_after(len(self.decls))

    def _anonymous_instances(self) -> set[int]:
        """Decls that stay unnamed instance binders: auto-named instances (`inst✝`) that nothing
        after them mentions, in hypothesis lines that hold nothing else."""
        hyps, found, k = self.goal.hypotheses, set(), 0
        for i, hyp in enumerate(hyps):
            later = [self.goal.target, *(h.type for h in hyps[i + 1 :]), *(h.value or "" for h in hyps[i:])]
            mentioned = {_head_name(t) for text in later for t in tokens(text) if t.kind == "ident"}
            if all(is_inaccessible(n) and _base(n) == "inst" and n not in mentioned for n in hyp.names):
                found.update(range(k, k + len(hyp.names)))
            k += len(hyp.names)
        return found

    def _shadowed(self, k: int) -> bool:
        return any(n == self.decls[k][1] for _, n in self.decls[k + 1 :])

    def _fresh(self, base: str) -> str:
        """`base` itself if nothing in the goal is called that, else `base_1`, `base_2`, ..."""
        name, n = base, 0
        while name in self.used or name == "this":
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def _lemma_name(self, k: int) -> str:
        return self.new_name.get(k, self.decls[k][1])

    def _mapping_after(self, count: int) -> dict[str, str]:
        """Goal name -> lemma name for references after the first `count` decls (scoping: a later
        decl of the same name shadows an earlier one)."""
        mapping: dict[str, str] = {}
        for k in range(count):
            mapping[self.decls[k][1]] = self._lemma_name(k)
        return {a: b for a, b in mapping.items() if a != b}

    @staticmethod
    def rename(text: str, mapping: dict[str, str]) -> str:
        """`text` with identifiers (their first dotted component) renamed by `mapping`."""
        if not mapping:
            return text
        out, last = [], 0
        for t in tokens(text):
            head = _head_name(t)
            if t.kind == "ident" and head in mapping:
                out.append(text[last : t.start] + mapping[head] + t.text[len(head) :])
                last = t.end
        return "".join(out) + text[last:]

    def render(self) -> tuple[list[Hypothesis], list[str]]:
        """The lemma's context (as Lean will print it) and its binders, in order."""
        hypotheses: list[Hypothesis] = []
        binders: list[str] = []
        k = 0
        for hyp in self.goal.hypotheses:
            scope = self._mapping_after(k)
            typ = self.rename(hyp.type, scope)
            ks = range(k, k + len(hyp.names))
            k += len(hyp.names)
            if ks[0] in self.anonymous:
                binders.extend(f"[{typ}]" for _ in ks)
                hypotheses.append(Hypothesis(names=hyp.names, type=typ))
                continue
            names = tuple(self._lemma_name(j) for j in ks)
            instance = all(_base(self.decls[j][1]) == "inst" and is_inaccessible(self.decls[j][1]) for j in ks)
            binders.append(f"[{names[0]} : {typ}]" if instance and len(names) == 1 else f"({' '.join(names)} : {typ})")
            hypotheses.append(Hypothesis(names=names, type=typ))
            if hyp.value is not None:
                j = ks[0]
                equation = f"{names[0]} = {_parenthesised(self.rename(hyp.value, scope))}"
                binders.append(f"({self.equations[j]} : {equation})")
                hypotheses.append(Hypothesis(names=(self.equations[j],), type=equation))
        return hypotheses, binders

    def prelude(self) -> tuple[str, ...]:
        """Tactics run in the hole before the lemma's proof."""
        lines: list[str] = []
        hidden = [k for k, (_, n) in enumerate(self.decls) if is_inaccessible(n) or self._shadowed(k)]
        entries = [self.new_name.get(k, "_") for k in hidden]
        while entries and entries[0] == "_":
            entries.pop(0)
        if entries:
            lines.append("rename_i " + " ".join(entries))
        lines.extend(f"have {self.new_name[k]} := this" for k, (_, n) in enumerate(self.decls)
                     if n == "this" and k in self.new_name and not self._shadowed(k))
        for k, eq in self.equations.items():
            i = self.decls[k][0]
            scope = self._mapping_after(k)
            value = _parenthesised(self.rename(self.goal.hypotheses[i].value or "", scope))
            lines.append(f"have {eq} : {self._lemma_name(k)} = {value} := rfl")
        return tuple(lines)


def _head_name(t: Token) -> str:
    """The first dotted component of an identifier (`h.le` refers to the local `h`)."""
    if t.text.startswith("«"):
        return t.text[: t.text.find("»") + 1]
    return t.text.split(".", 1)[0]


def _base(name: str) -> str:
    """`a✝¹` -> `a`: the name a fresh name is built from."""
    return name.split("✝", 1)[0].rstrip(_SUPERSCRIPTS) or "h"


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


def _parenthesised(value: str) -> str:
    return value if len(token_texts(value)) == 1 else f"({value})"


def _indent(text: str) -> str:
    """Continuation lines of a binder or target, indented under the statement."""
    return text.replace("\n", "\n      ")


def _hyp_line(h: Hypothesis) -> str:
    return f"{' '.join(h.names)} : {h.type}"


def _universes(texts: list[str]) -> list[str]:
    """Universe level names in `Sort u` / `Type (max u v)` (in order of appearance)."""
    found: list[str] = []
    for text in texts:
        toks = tokens(text)
        for k, t in enumerate(toks[:-1]):
            if t.text not in ("Sort", "Type"):
                continue
            nxt = toks[k + 1]
            level = [nxt]
            if nxt.text == "(":
                depth, j, level = 0, k + 1, []
                while j < len(toks):
                    depth += toks[j].text == "("
                    depth -= toks[j].text == ")"
                    if depth == 0:
                        break
                    level.append(toks[j])
                    j += 1
            found.extend(u.text for u in level if u.kind == "ident" and u.text not in _LEVEL_KEYWORDS)
    return list(dict.fromkeys(found))


def _without_let_parens(goal: Goal, equations: tuple[str, ...]) -> Goal:
    """`goal` with the `n_def : n = (v)` equations written `n = v` (how Lean prints them when `v`
    needs no parentheses)."""
    hyps = []
    for h in goal.hypotheses:
        lhs, _, rhs = h.type.partition(" = ")
        if h.names[0] in equations and rhs.startswith("(") and rhs.endswith(")"):
            h = Hypothesis(names=h.names, type=f"{lhs} = {rhs[1:-1]}")
        hyps.append(h)
    return goal.model_copy(update={"hypotheses": tuple(hyps)})
