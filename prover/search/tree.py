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

The graph is a plain `networkx.DiGraph`, exportable to node-link JSON and GraphML; `step_records`
turns it into the per-step rows RL data collection consumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
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

_DONE_STATUSES = frozenset({NodeStatus.PROVED, NodeStatus.FAILED, NodeStatus.DEAD})


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

    Examples:
        >>> t = SearchTree("p", 0)
        >>> root = t.add_root(["⊢ 1 = 1"])
        >>> _ = t.add_success(root, "rfl", -0.1, None, 0.0)
        >>> _ = t.mark_expanded(root)
        >>> t.proof_path()
        ['rfl']
    """

    def __init__(self, problem: str = "", attempt: int = 0) -> None:
        self.graph = nx.DiGraph(problem=problem, attempt=attempt)
        self.problem = problem
        self.attempt = attempt
        self.root: str | None = None
        self._errors = 0

    # -- building ---------------------------------------------------------------------------

    def add_root(self, goals: Sequence[str]) -> str:
        text = normalise_goals(goals)
        node = state_id(text)
        self.root = node
        self._add_state(node, text, depth=0, logprob=0.0, parent=None, tactic=None)
        return node

    def _add_state(
        self, node: str, text: str, *, depth: int, logprob: float, parent: str | None, tactic: str | None
    ) -> None:
        self.graph.add_node(
            node,
            kind="state",
            goals=text,
            depth=depth,
            logprob=logprob,
            priority=0.0,
            status=NodeStatus.OPEN,
            expanded=False,
            complete=False,
            definitive=False,
            distance=-1,
            parent=parent,
            parent_tactic=tactic,
            cut="",
        )

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
        outcome = EdgeOutcome.CACHED if cached else EdgeOutcome.OK
        if goals is None:
            if QED not in self.graph:
                self.graph.add_node(QED, kind="qed", goals="", status=NodeStatus.PROVED, distance=0)
            child, is_new = QED, False
            if not cached:
                outcome = EdgeOutcome.PROVED
        else:
            text = normalise_goals(goals)
            child = state_id(text)
            if child == parent:
                return self.add_failure(parent, tactic, logprob, EdgeOutcome.NO_PROGRESS, "", seconds), False
            is_new = child not in self.graph
            if is_new:
                pattrs = self.graph.nodes[parent]
                self._add_state(
                    child,
                    text,
                    depth=pattrs["depth"] + 1,
                    logprob=pattrs["logprob"] + logprob,
                    parent=parent,
                    tactic=tactic,
                )
        edge = self.graph.get_edge_data(parent, child)
        if edge is not None:  # a second tactic between the same two states
            edge["alt_tactics"].append([tactic, logprob])
        else:
            self.graph.add_edge(
                parent, child, tactic=tactic, logprob=logprob, outcome=outcome, seconds=seconds,
                error="", alt_tactics=[],
            )
        return child, is_new

    def add_failure(
        self, parent: str, tactic: str, logprob: float, outcome: EdgeOutcome, error: str, seconds: float
    ) -> str:
        """Record a failed application as an edge to a fresh error sink."""
        self._errors += 1
        sink = f"{parent}!e{self._errors}"
        self.graph.add_node(sink, kind="error", goals="", status=NodeStatus.FAILED, definitive=True)
        self.graph.add_edge(
            parent, sink, tactic=tactic, logprob=logprob, outcome=outcome, seconds=seconds,
            error=error, alt_tactics=[],
        )
        return sink

    def mark_expanded(self, node: str, *, complete: bool = True) -> list[str]:
        """Note that `node` got its children; returns nodes whose status changed.

        `complete` is False when the expansion was cut short (empty sample, tactics not applied),
        so a failure of this node can never be definitive.
        """
        attrs = self.graph.nodes[node]
        attrs["expanded"] = True
        attrs["complete"] = complete
        return self.propagate(node)

    def mark_dead(self, node: str, reason: str, *, definitive: bool) -> list[str]:
        """Give up on `node` (depth cut, known dead end); returns nodes whose status changed."""
        attrs = self.graph.nodes[node]
        if attrs["status"] is not NodeStatus.OPEN:
            return []
        attrs.update(status=NodeStatus.DEAD, cut=reason, definitive=definitive)
        return [node, *self._propagate_parents(node)]

    # -- status propagation -----------------------------------------------------------------

    def propagate(self, node: str) -> list[str]:
        """Recompute `node`, then its ancestors while anything changes."""
        changed: list[str] = []
        work = [node]
        while work:
            current = work.pop()
            if self._recompute(current):
                changed.append(current)
                work.extend(self.graph.predecessors(current))
        return changed

    def _propagate_parents(self, node: str) -> list[str]:
        changed: list[str] = []
        for parent in list(self.graph.predecessors(node)):
            changed.extend(self.propagate(parent))
        return changed

    def _recompute(self, node: str) -> bool:
        attrs = self.graph.nodes[node]
        if attrs["kind"] != "state":
            return False
        best = -1
        all_failed = attrs["expanded"]
        definitive = attrs["complete"]
        nodes = self.graph.nodes
        for child, edge in self.graph.succ[node].items():
            if edge["outcome"] in SUCCESS_OUTCOMES:
                cattrs = nodes[child]
                status = cattrs["status"]
                if status is NodeStatus.PROVED:
                    dist = cattrs["distance"] + 1
                    best = dist if best < 0 else min(best, dist)
                elif status in _DONE_STATUSES:
                    definitive = definitive and cattrs["definitive"]
                else:
                    all_failed = False
            elif edge["outcome"] not in DEFINITIVE_FAILURES:
                definitive = False
        if best >= 0:
            if attrs["status"] is NodeStatus.PROVED and attrs["distance"] <= best:
                return False
            attrs.update(status=NodeStatus.PROVED, distance=best)
            return True
        if attrs["status"] is NodeStatus.OPEN and all_failed:
            attrs.update(status=NodeStatus.FAILED, definitive=definitive)
            return True
        return False

    # -- queries ----------------------------------------------------------------------------

    def status(self, node: str) -> NodeStatus:
        return self.graph.nodes[node]["status"]

    def goals(self, node: str) -> str:
        return self.graph.nodes[node]["goals"]

    def path_to(self, node: str) -> tuple[str, ...]:
        """Tactics from the root to `node` along first-discovery edges (used to replay a state)."""
        tactics: list[str] = []
        nodes = self.graph.nodes
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
        if node is None or self.graph.nodes[node]["status"] is not NodeStatus.PROVED:
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

    def _best_proved_edge(self, node: str) -> tuple[str, str] | None:
        best: tuple[int, str, str] | None = None
        for child, edge in self.graph.succ[node].items():
            cattrs = self.graph.nodes[child]
            if (
                edge["outcome"] in SUCCESS_OUTCOMES
                and cattrs["status"] is NodeStatus.PROVED
                and (best is None or cattrs["distance"] < best[0])
            ):
                best = (cattrs["distance"], child, edge["tactic"])
        return None if best is None else (best[1], best[2])

    def counts(self) -> dict[str, int]:
        kinds = {"state": 0, "error": 0, "qed": 0}
        for _, kind in self.graph.nodes(data="kind"):
            kinds[kind] += 1
        return {"states": kinds["state"], "failed_edges": kinds["error"], "edges": self.graph.number_of_edges()}

    def step_records(self) -> list[StepRecord]:
        """Every application in the graph (alternative tactics too), proof path flagged."""
        on_path = {(src, dst) for src, dst, _ in self.proof_edges() or ()}
        records: list[StepRecord] = []
        nodes = self.graph.nodes
        for src, dst, edge in self.graph.edges(data=True):
            sattrs, dattrs = nodes[src], nodes[dst]
            nxt = None if dattrs["kind"] == "error" else dattrs["goals"]
            path_edge = (src, dst) in on_path
            for i, (tactic, logprob) in enumerate([[edge["tactic"], edge["logprob"]], *edge["alt_tactics"]]):
                records.append(
                    StepRecord(
                        problem=self.problem,
                        attempt=self.attempt,
                        state=sattrs["goals"],
                        tactic=tactic,
                        logprob=logprob,
                        outcome=str(EdgeOutcome(edge["outcome"]).value),
                        next_state=nxt,
                        on_proof_path=path_edge and i == 0,
                        depth=sattrs["depth"],
                    )
                )
        return records

    # -- export -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Node-link JSON (networkx layout: `nodes`, `links`), with enums as plain strings."""
        return {
            "directed": True,
            "multigraph": False,
            "graph": {**self.graph.graph, "root": self.root},
            "nodes": [{"id": n, **_plain(a)} for n, a in self.graph.nodes(data=True)],
            "links": [
                {"source": u, "target": v, **_plain(a)} for u, v, a in self.graph.edges(data=True)
            ],
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
        flat.graph.update(_scalars(self.graph.graph))
        for n, a in self.graph.nodes(data=True):
            flat.add_node(n, **_scalars(a))
        for u, v, a in self.graph.edges(data=True):
            flat.add_edge(u, v, **_scalars(a))
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
            attrs["status"] = NodeStatus(attrs["status"])
            tree.graph.add_node(item["id"], **attrs)
        for item in data["links"]:
            attrs = {k: v for k, v in item.items() if k not in ("source", "target")}
            attrs["outcome"] = EdgeOutcome(attrs["outcome"])
            tree.graph.add_edge(item["source"], item["target"], **attrs)
        tree._errors = sum(1 for _, k in tree.graph.nodes(data="kind") if k == "error")
        return tree

    @classmethod
    def read_json(cls, path: Path) -> SearchTree:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def __iter__(self) -> Iterator[str]:
        return iter(self.graph)

    def __len__(self) -> int:
        return self.graph.number_of_nodes()


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in attrs.items()}


def _scalars(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _plain(attrs).items():
        if value is None:
            out[key] = ""
        elif isinstance(value, (list, tuple, dict)):
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out
