"""The search graph of one best-first attempt, as data.

Nodes are goal states: the normalised goals text decides the node id, so two tactic paths that
reach the same state share one node (a transposition). Edges are tactic applications. Three node
kinds exist:

- ``state``: a goal state the REPL returned (the root comes from the theorem's `sorry`);
- ``qed``: the single terminal node (id ``QED``) that edges with ``proofStatus == "Completed"``
  point to;
- ``error``: one sink per failed application (Lean error, incomplete, timeout, crash, ...), so the
  failed tactic, its log-prob and its error text stay in the graph as an ordinary edge.

Statuses propagate upwards: a state is PROVED when any successful edge leads to a PROVED node (or
QED); it is FAILED when it was expanded and every edge failed or leads to a FAILED/DEAD node. A
failure is *definitive* only if every failing edge was a deterministic Lean verdict (error,
incomplete, no progress) and every FAILED/DEAD child is itself definitive; timeouts, crashes,
depth cuts and empty samples are not. Only definitive failures may be published as dead ends.

While the search runs the graph lives in plain dicts (a search adds thousands of states a second);
`graph` is the same graph as a `networkx.DiGraph`, built when asked for. It exports to node-link
JSON and GraphML; `step_records` turns it into the per-step rows RL data collection consumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict

from prover.lean_env.session import normalise_goals

QED = "QED"
"""Id of the terminal node: no goals left, `proofStatus == "Completed"`."""


class NodeStatus(str, Enum):
    OPEN = "open"
    PROVED = "proved"
    FAILED = "failed"
    DEAD = "dead"
    """Not expanded in this attempt and not proved: depth cut, or a known dead end (cache)."""


class EdgeOutcome(str, Enum):
    OK = "ok"  # a new or merged goal state
    PROVED = "proved"  # proofStatus Completed, no error
    CACHED = "cached"  # replayed from the proof cache (ok or proved)
    ERROR = "error"  # any error message (even with goals []) or a REPL `{"message"}` reply
    INCOMPLETE = "incomplete"  # goals [] without Completed (metavariables, sorry)
    NO_PROGRESS = "no_progress"  # the state did not change
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    CRASH = "crash"
    INFRASTRUCTURE = "infrastructure"


SUCCESS_OUTCOMES = frozenset({EdgeOutcome.OK, EdgeOutcome.PROVED, EdgeOutcome.CACHED})
DEFINITIVE_FAILURES = frozenset({EdgeOutcome.ERROR, EdgeOutcome.INCOMPLETE, EdgeOutcome.NO_PROGRESS})
"""Failures that are Lean's deterministic verdict on this tactic, not an accident of budget."""

# Inside the tree, statuses and outcomes are their plain string values: a dict holding only
# strings and numbers is never tracked by Python's cycle collector, which otherwise spent a
# quarter of a search's time walking the tree's dicts. The enums come back at every query and export.
_OPEN, _PROVED, _FAILED, _DEAD = (s.value for s in NodeStatus)
_OK, _PROVED_EDGE, _CACHED = EdgeOutcome.OK.value, EdgeOutcome.PROVED.value, EdgeOutcome.CACHED.value
_STATUSES = {s.value: s for s in NodeStatus}
_OUTCOMES = {o.value: o for o in EdgeOutcome}
_OUTCOME_VALUES = {o: o.value for o in EdgeOutcome}
"""Member -> value (a str enum member hashes by its name, so this map does not take values)."""
_SUCCESS = frozenset(o.value for o in SUCCESS_OUTCOMES)
_DEFINITIVE = frozenset(o.value for o in DEFINITIVE_FAILURES)
_DONE = frozenset({_PROVED, _FAILED, _DEAD})
_NO_EDGES: Mapping[str, dict[str, Any]] = MappingProxyType({})
_ERROR_SINK = {"kind": "error", "goals": "", "status": _FAILED, "definitive": True}
"""The attributes of every error sink (shared: sinks never change)."""


def state_id(goals_text: str) -> str:
    """Node id of a normalised goal state (short, stable across processes)."""
    return "s" + hashlib.blake2b(goals_text.encode("utf-8"), digest_size=8).hexdigest()


class StepRecord(BaseModel):
    """One tactic application, the unit of RL / preference data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    problem: str
    attempt: int
    state: str
    tactic: str
    logprob: float
    outcome: str
    next_state: str | None
    """Goals after the tactic; "" when the proof was completed; None when it failed."""
    on_proof_path: bool
    depth: int


class SearchTree:
    """Goal-state graph of one attempt, with upward status propagation.

    The search core builds it at thousands of expansions per second, so the graph lives in plain
    dicts (node attributes, successors, extra parents); `graph` builds the equivalent
    `networkx.DiGraph` on demand (export, analysis, tests) and keeps it until the next change.

    Examples:
        >>> t = SearchTree("p", 0)
        >>> root = t.add_root(["⊢ 1 = 1"])
        >>> _ = t.add_success(root, "rfl", -0.1, None, 0.0)
        >>> _ = t.mark_expanded(root)
        >>> t.proof_path()
        ['rfl']
    """

    def __init__(self, problem: str = "", attempt: int = 0) -> None:
        self.problem = problem
        self.attempt = attempt
        self.root: str | None = None
        self._nodes: dict[str, dict[str, Any]] = {}
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        """Edges out of each node that has any (most states are never expanded)."""
        self._more_parents: dict[str, list[str]] = {}
        """Parents of a state besides the one that found it (`parent`): transpositions, cycles."""
        self._errors = 0
        self._graph: nx.DiGraph | None = None

    # -- building ---------------------------------------------------------------------------

    def add_root(self, goals: Sequence[str]) -> str:
        text = normalise_goals(goals)
        node = state_id(text)
        self.root = node
        self._add_node(node, _state_attrs(text, 0, 0.0, None, None))
        return node

    def _add_node(self, node: str, attrs: dict[str, Any]) -> None:
        self._graph = None
        self._nodes[node] = attrs

    def _add_edge(self, parent: str, child: str, attrs: dict[str, Any]) -> None:
        self._graph = None
        edges = self._succ.get(parent)
        if edges is None:
            edges = self._succ[parent] = {}
        edges[child] = attrs
        cattrs = self._nodes[child]
        if cattrs["kind"] == "state" and cattrs["parent"] != parent:
            self._more_parents.setdefault(child, []).append(parent)

    def _parents(self, node: str) -> list[str]:
        first = self._nodes[node]["parent"]
        more = self._more_parents.get(node, [])
        return more if first is None else [first, *more]

    def _children(self, node: str) -> Mapping[str, dict[str, Any]]:
        return self._succ.get(node, _NO_EDGES)

    def add_success(
        self,
        parent: str,
        tactic: str,
        logprob: float,
        goals: Sequence[str] | None,
        seconds: float,
        *,
        cached: bool = False,
    ) -> tuple[str, bool]:
        """Record a tactic that produced a goal state (or completed the proof when `goals` is None).

        Returns the child's node id and whether it is new. A child equal to the parent is recorded
        as a NO_PROGRESS failure instead (returned id is the error sink).
        """
        self._graph = None
        nodes = self._nodes
        if goals is None:
            if QED not in nodes:
                self._add_node(QED, {"kind": "qed", "goals": "", "status": _PROVED, "distance": 0})
            child, is_new = QED, False
            outcome = _CACHED if cached else _PROVED_EDGE
        else:
            text = normalise_goals(goals)
            child = state_id(text)
            if child == parent:
                return self.add_failure(parent, tactic, logprob, EdgeOutcome.NO_PROGRESS, "", seconds), False
            is_new = child not in nodes
            if is_new:
                pattrs = nodes[parent]
                nodes[child] = _state_attrs(text, pattrs["depth"] + 1, pattrs["logprob"] + logprob, parent, tactic)
            outcome = _CACHED if cached else _OK
        edges = self._succ.get(parent)
        if edges is None:
            edges = self._succ[parent] = {}
        edge = edges.get(child)
        if edge is not None:  # a second tactic between the same two states
            edge["alt_tactics"] = (*edge["alt_tactics"], (tactic, logprob))
        else:  # `_add_edge`, inlined: this is the search's most frequent call
            edges[child] = _edge_attrs(tactic, logprob, outcome, seconds, "")
            if not is_new and child != QED and nodes[child]["parent"] != parent:
                self._more_parents.setdefault(child, []).append(parent)
        return child, is_new

    def add_failure(
        self, parent: str, tactic: str, logprob: float, outcome: EdgeOutcome, error: str, seconds: float
    ) -> str:
        """Record a failed application as an edge to a fresh error sink."""
        self._graph = None
        self._errors += 1
        sink = f"{parent}!e{self._errors}"
        self._nodes[sink] = _ERROR_SINK
        value = _OUTCOME_VALUES.get(outcome) or EdgeOutcome(outcome).value
        self._add_edge(parent, sink, _edge_attrs(tactic, logprob, value, seconds, error))
        return sink

    def mark_expanded(self, node: str, *, complete: bool = True) -> list[str]:
        """Note that `node` got its children; returns nodes whose status changed.

        `complete` is False when the expansion was cut short (empty sample, tactics not applied),
        so a failure of this node can never be definitive.
        """
        self._graph = None
        attrs = self._nodes[node]
        attrs["expanded"] = True
        attrs["complete"] = complete
        return self.propagate(node)

    def mark_dead(self, node: str, reason: str, *, definitive: bool) -> list[str]:
        """Give up on `node` (depth cut, known dead end); returns nodes whose status changed."""
        attrs = self._nodes[node]
        if attrs["status"] != _OPEN:
            return []
        self._graph = None
        attrs.update(status=_DEAD, cut=reason, definitive=definitive)
        return [node, *self._propagate_parents(node)]

    def note(self, node: str, **attrs: float | int | str | bool | None) -> None:
        """Set search bookkeeping attributes of a state (lost expansions, ...)."""
        self._graph = None
        self._nodes[node].update(attrs)

    def set_priority(self, node: str, priority: float) -> None:
        """The priority the search queued a state with (kept for analysis of the tree)."""
        self._graph = None
        self._nodes[node]["priority"] = priority

    # -- status propagation -----------------------------------------------------------------

    def propagate(self, node: str) -> list[str]:
        """Recompute `node`, then its ancestors while anything changes."""
        changed: list[str] = []
        work = [node]
        while work:
            current = work.pop()
            if self._recompute(current):
                changed.append(current)
                work.extend(self._parents(current))
        if changed:
            self._graph = None
        return changed

    def _propagate_parents(self, node: str) -> list[str]:
        changed: list[str] = []
        for parent in self._parents(node):
            changed.extend(self.propagate(parent))
        return changed

    def _recompute(self, node: str) -> bool:
        attrs = self._nodes[node]
        if attrs["kind"] != "state":
            return False
        best = -1
        all_failed = attrs["expanded"]
        definitive = attrs["complete"]
        nodes = self._nodes
        for child, edge in self._children(node).items():
            outcome = edge["outcome"]
            if outcome in _SUCCESS:
                cattrs = nodes[child]
                status = cattrs["status"]
                if status == _PROVED:
                    dist = cattrs["distance"] + 1
                    best = dist if best < 0 else min(best, dist)
                elif status in _DONE:
                    definitive = definitive and cattrs["definitive"]
                else:
                    all_failed = False
            elif outcome not in _DEFINITIVE:
                definitive = False
        if best >= 0:
            if attrs["status"] == _PROVED and attrs["distance"] <= best:
                return False
            attrs.update(status=_PROVED, distance=best)
            return True
        if attrs["status"] == _OPEN and all_failed:
            attrs.update(status=_FAILED, definitive=definitive)
            return True
        return False

    # -- queries ----------------------------------------------------------------------------

    def status(self, node: str) -> NodeStatus:
        return _STATUSES[self._nodes[node]["status"]]

    def expandable(self, node: str) -> bool:
        """Open and not expanded yet (what the search may still pop)."""
        attrs = self._nodes[node]
        return attrs["status"] == _OPEN and not attrs["expanded"]

    def definitive(self, node: str) -> bool:
        """A FAILED/DEAD state whose failure is Lean's deterministic verdict (publishable)."""
        return bool(self._nodes[node].get("definitive"))

    def score(self, node: str) -> tuple[float, int]:
        """(cumulative log-prob, depth) of a state: what search priorities are made of."""
        attrs = self._nodes[node]
        return attrs["logprob"], attrs["depth"]

    def goals(self, node: str) -> str:
        return self._nodes[node]["goals"]

    def attribute(self, node: str, name: str, default: Any = None) -> Any:
        """One attribute of `node` as stored (statuses and outcomes as their string values)."""
        return self._nodes[node].get(name, default)

    def is_state(self, node: str) -> bool:
        return self._nodes[node]["kind"] == "state"

    def path_to(self, node: str) -> tuple[str, ...]:
        """Tactics from the root to `node` along first-discovery edges (used to replay a state)."""
        tactics: list[str] = []
        nodes = self._nodes
        while nodes[node]["parent"] is not None:
            tactics.append(nodes[node]["parent_tactic"])
            node = nodes[node]["parent"]
        tactics.reverse()
        return tuple(tactics)

    def proof_path(self, node: str | None = None) -> list[str] | None:
        """Shortest proved tactic script from `node` (default root) to QED, or None."""
        edges = self.proof_edges(node)
        return None if edges is None else [tactic for _, _, tactic in edges]

    def proof_edges(self, node: str | None = None) -> list[tuple[str, str, str]] | None:
        """(state, next state, tactic) along the shortest proof from `node` (default root)."""
        node = self.root if node is None else node
        if node is None or self._nodes[node]["status"] != _PROVED:
            return None
        edges: list[tuple[str, str, str]] = []
        seen = {node}
        while node != QED:
            step = self._best_proved_edge(node)
            if step is None or step[0] in seen:
                return None
            child, tactic = step
            edges.append((node, child, tactic))
            seen.add(child)
            node = child
        return edges

    def edge_outcome(self, parent: str, child: str) -> EdgeOutcome:
        """The outcome of the edge `parent -> child` (KeyError if there is none)."""
        return _OUTCOMES[self._succ[parent][child]["outcome"]]

    def _best_proved_edge(self, node: str) -> tuple[str, str] | None:
        best: tuple[int, str, str] | None = None
        for child, edge in self._children(node).items():
            cattrs = self._nodes[child]
            if (
                edge["outcome"] in _SUCCESS
                and cattrs["status"] == _PROVED
                and (best is None or cattrs["distance"] < best[0])
            ):
                best = (cattrs["distance"], child, edge["tactic"])
        return None if best is None else (best[1], best[2])

    def counts(self) -> dict[str, int]:
        kinds = {"state": 0, "error": 0, "qed": 0}
        for attrs in self._nodes.values():
            kinds[attrs["kind"]] += 1
        edges = sum(len(children) for children in self._succ.values())
        return {"states": kinds["state"], "failed_edges": kinds["error"], "edges": edges}

    def _edges(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for src, children in self._succ.items():
            for dst, edge in children.items():
                yield src, dst, edge

    def step_records(self) -> list[StepRecord]:
        """Every application in the graph (alternative tactics too), proof path flagged."""
        on_path = {(src, dst) for src, dst, _ in self.proof_edges() or ()}
        records: list[StepRecord] = []
        nodes = self._nodes
        for src, dst, edge in self._edges():
            sattrs, dattrs = nodes[src], nodes[dst]
            nxt = None if dattrs["kind"] == "error" else dattrs["goals"]
            path_edge = (src, dst) in on_path
            for i, (tactic, logprob) in enumerate([(edge["tactic"], edge["logprob"]), *edge["alt_tactics"]]):
                records.append(
                    StepRecord(
                        problem=self.problem,
                        attempt=self.attempt,
                        state=sattrs["goals"],
                        tactic=tactic,
                        logprob=logprob,
                        outcome=edge["outcome"],
                        next_state=nxt,
                        on_proof_path=path_edge and i == 0,
                        depth=sattrs["depth"],
                    )
                )
        return records

    # -- export -----------------------------------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph:
        """The tree as a `networkx.DiGraph` (statuses and outcomes as enums, alternative tactics as
        `[tactic, logprob]` lists), built on first use after a change: for reading, analysis and
        export (change the tree through its methods)."""
        if self._graph is None:
            graph = nx.DiGraph(problem=self.problem, attempt=self.attempt)
            graph.add_nodes_from((n, _node_view(a)) for n, a in self._nodes.items())
            graph.add_edges_from((u, v, _edge_view(a)) for u, v, a in self._edges())
            self._graph = graph
        return self._graph

    def to_json(self) -> dict[str, Any]:
        """Node-link JSON (networkx layout: `nodes`, `links`), with enums as plain strings."""
        return {
            "directed": True,
            "multigraph": False,
            "graph": {"problem": self.problem, "attempt": self.attempt, "root": self.root},
            "nodes": [{"id": n, **a} for n, a in self._nodes.items()],
            "links": [{"source": u, "target": v, **_plain_edge(a)} for u, v, a in self._edges()],
        }

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return path

    def write_graphml(self, path: Path) -> Path:
        """GraphML needs scalar attributes: lists become JSON text, None becomes ""."""
        flat = nx.DiGraph()
        flat.graph.update(_scalars({"problem": self.problem, "attempt": self.attempt}))
        for n, a in self._nodes.items():
            flat.add_node(n, **_scalars(a))
        for u, v, a in self._edges():
            flat.add_edge(u, v, **_scalars(_plain_edge(a)))
        path.parent.mkdir(parents=True, exist_ok=True)
        nx.write_graphml(flat, path)
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchTree:
        graph = data.get("graph", {})
        tree = cls(graph.get("problem", ""), int(graph.get("attempt", 0)))
        tree.root = graph.get("root")
        for item in data["nodes"]:
            attrs = {k: v for k, v in item.items() if k != "id"}
            attrs["status"] = NodeStatus(attrs["status"]).value
            tree._add_node(item["id"], attrs)
        for item in data["links"]:
            attrs = {k: v for k, v in item.items() if k not in ("source", "target")}
            attrs["outcome"] = EdgeOutcome(attrs["outcome"]).value
            attrs["alt_tactics"] = tuple((t, lp) for t, lp in attrs.get("alt_tactics", ()))
            tree._add_edge(item["source"], item["target"], attrs)
        tree._errors = sum(1 for a in tree._nodes.values() if a["kind"] == "error")
        return tree

    @classmethod
    def read_json(cls, path: Path) -> SearchTree:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes


def _state_attrs(text: str, depth: int, logprob: float, parent: str | None, tactic: str | None) -> dict[str, Any]:
    return {
        "kind": "state",
        "goals": text,
        "depth": depth,
        "logprob": logprob,
        "priority": 0.0,
        "status": _OPEN,
        "expanded": False,
        "complete": False,
        "definitive": False,
        "distance": -1,
        "parent": parent,
        "parent_tactic": tactic,
        "cut": "",
    }


def _edge_attrs(tactic: str, logprob: float, outcome: str, seconds: float, error: str) -> dict[str, Any]:
    return {"tactic": tactic, "logprob": logprob, "outcome": outcome, "seconds": seconds, "error": error,
            "alt_tactics": ()}  # fmt: skip


def _node_view(attrs: dict[str, Any]) -> dict[str, Any]:
    return {**attrs, "status": _STATUSES[attrs["status"]]}


def _edge_view(attrs: dict[str, Any]) -> dict[str, Any]:
    return {**attrs, "outcome": _OUTCOMES[attrs["outcome"]], "alt_tactics": [list(a) for a in attrs["alt_tactics"]]}


def _plain_edge(attrs: dict[str, Any]) -> dict[str, Any]:
    return {**attrs, "alt_tactics": [list(a) for a in attrs["alt_tactics"]]}


def _scalars(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, (list, tuple, dict)):
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out
