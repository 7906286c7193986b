"""The search graph: merging, status propagation, proof paths, exports, RL step records."""

from __future__ import annotations

import json

import networkx as nx

from prover.search.tree import (
    QED,
    EdgeOutcome,
    NodeStatus,
    SearchTree,
    normalise_goals,
    state_id,
)

R = "x : Nat\n⊢ x + 0 = x"
A = "x : Nat\n⊢ x = x"
B = "x : Nat\n⊢ 0 + x = x"


def test_identical_states_merge_and_keep_both_tactics() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    a1, new1 = tree.add_success(root, "rw [Nat.add_zero]", -0.1, [A], 0.01)
    a2, new2 = tree.add_success(root, "simp only [Nat.add_zero]", -0.4, [A + "   "], 0.01)
    assert (new1, new2) == (True, False) and a1 == a2
    assert tree.graph.number_of_nodes() == 2
    edge = tree.graph.edges[root, a1]
    assert edge["tactic"] == "rw [Nat.add_zero]" and edge["alt_tactics"] == [["simp only [Nat.add_zero]", -0.4]]
    # a state reached from elsewhere keeps its first depth and cumulative logprob
    b, _ = tree.add_success(root, "tac", -1.0, [B], 0.0)
    again, is_new = tree.add_success(b, "other", -2.0, [A], 0.0)
    assert again == a1 and not is_new and tree.graph.nodes[a1]["depth"] == 1
    assert tree.graph.nodes[a1]["logprob"] == -0.1


def test_goal_normalisation_ignores_trailing_space_only() -> None:
    assert normalise_goals(["x : Nat  \n⊢ x = x\n"]) == A
    assert state_id(normalise_goals([A])) != state_id(normalise_goals([A, B]))


def test_proved_propagates_up_and_proof_path_is_shortest() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    a, _ = tree.add_success(root, "long1", -0.1, [A], 0.0)
    b, _ = tree.add_success(a, "long2", -0.1, [B], 0.0)
    tree.mark_expanded(root)
    tree.mark_expanded(a)
    tree.add_success(b, "close", -0.1, None, 0.0)
    changed = tree.mark_expanded(b)
    assert set(changed) == {root, a, b}
    assert tree.status(root) is NodeStatus.PROVED
    assert tree.proof_path() == ["long1", "long2", "close"]
    # a shorter route found later wins
    tree.add_success(a, "short", -3.0, None, 0.0)
    tree.propagate(a)
    assert tree.proof_path() == ["long1", "short"]
    assert tree.graph.nodes[root]["distance"] == 2


def test_failed_propagates_only_when_every_child_failed() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    a, _ = tree.add_success(root, "t1", -0.1, [A], 0.0)
    tree.add_failure(root, "bad", -0.2, EdgeOutcome.ERROR, "unknown identifier", 0.0)
    tree.mark_expanded(root)
    assert tree.status(root) is NodeStatus.OPEN  # `a` is still open
    tree.add_failure(a, "bad2", -0.2, EdgeOutcome.INCOMPLETE, "contains sorry", 0.0)
    changed = tree.mark_expanded(a)
    assert changed == [a, root]
    assert tree.status(root) is NodeStatus.FAILED and tree.graph.nodes[root]["definitive"]


def test_failures_from_budgets_are_not_definitive() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    tree.add_failure(root, "slow", -0.1, EdgeOutcome.TIMEOUT, "timeout", 1.0)
    tree.mark_expanded(root)
    assert tree.status(root) is NodeStatus.FAILED and not tree.graph.nodes[root]["definitive"]

    tree2 = SearchTree("p", 1)
    root2 = tree2.add_root([R])
    deep, _ = tree2.add_success(root2, "t", -0.1, [A], 0.0)
    tree2.mark_expanded(root2)
    tree2.mark_dead(deep, "max_depth", definitive=False)
    assert tree2.status(root2) is NodeStatus.FAILED and not tree2.graph.nodes[root2]["definitive"]

    tree3 = SearchTree("p", 2)
    root3 = tree3.add_root([R])
    tree3.mark_expanded(root3, complete=False)  # empty sample
    assert tree3.status(root3) is NodeStatus.FAILED and not tree3.graph.nodes[root3]["definitive"]


def test_no_progress_and_cycles() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    sink, is_new = tree.add_success(root, "skip", -0.1, [R], 0.0)
    assert not is_new and tree.graph.edges[root, sink]["outcome"] is EdgeOutcome.NO_PROGRESS
    a, _ = tree.add_success(root, "t", -0.1, [A], 0.0)
    back, _ = tree.add_success(a, "undo", -0.1, [R], 0.0)
    assert back == root
    tree.mark_expanded(root)
    tree.mark_expanded(a)  # cycle root -> a -> root: stays open, terminates
    assert tree.status(root) is NodeStatus.OPEN
    assert tree.path_to(a) == ("t",)


def test_json_round_trip_and_graphml(tmp_path) -> None:
    tree = SearchTree("p", 3)
    root = tree.add_root([R])
    a, _ = tree.add_success(root, "rw [h]", -0.1, [A], 0.02)
    tree.add_failure(root, "exact foo", -0.5, EdgeOutcome.ERROR, "unknown identifier 'foo'", 0.01)
    tree.mark_expanded(root)
    tree.add_success(a, "rfl", -0.05, None, 0.01)
    tree.mark_expanded(a)
    path = tree.write_json(tmp_path / "t.json")
    data = json.loads(path.read_text())
    assert {"nodes", "links", "graph"} <= set(data) and data["graph"]["root"] == root
    again = SearchTree.read_json(path)
    assert again.proof_path() == ["rw [h]", "rfl"]
    assert again.status(root) is NodeStatus.PROVED
    graphml = tree.write_graphml(tmp_path / "t.graphml")
    loaded = nx.read_graphml(graphml)
    assert loaded.number_of_nodes() == tree.graph.number_of_nodes()
    assert loaded.nodes[root]["status"] == "proved"
    errors = [d["error"] for _, _, d in loaded.edges(data=True) if d["outcome"] == "error"]
    assert errors == ["unknown identifier 'foo'"]


def test_step_records_flag_the_proof_path() -> None:
    tree = SearchTree("prob", 1)
    root = tree.add_root([R])
    a, _ = tree.add_success(root, "rw [h]", -0.1, [A], 0.0)
    tree.add_success(root, "simp", -0.3, [A], 0.0)  # alternative tactic, same state
    tree.add_failure(root, "bad", -0.9, EdgeOutcome.ERROR, "boom", 0.0)
    tree.mark_expanded(root)
    tree.add_success(a, "rfl", -0.05, None, 0.0)
    tree.mark_expanded(a)
    records = {(r.state, r.tactic): r for r in tree.step_records()}
    assert len(records) == 4
    assert records[(R, "rw [h]")].on_proof_path and records[(A, "rfl")].on_proof_path
    assert not records[(R, "simp")].on_proof_path and not records[(R, "bad")].on_proof_path
    assert records[(R, "bad")].next_state is None and records[(R, "bad")].outcome == "error"
    assert records[(A, "rfl")].next_state == "" and records[(A, "rfl")].depth == 1
    assert records[(R, "rw [h]")].problem == "prob" and records[(R, "rw [h]")].attempt == 1
    assert QED in tree.graph


def test_graph_view_follows_every_change() -> None:
    tree = SearchTree("p", 0)
    root = tree.add_root([R])
    a, _ = tree.add_success(root, "t", -0.1, [A], 0.0)
    assert set(tree.graph.nodes) == {root, a} and tree.graph.nodes[a]["status"] is NodeStatus.OPEN
    tree.add_success(a, "rfl", -0.1, None, 0.0)
    tree.mark_expanded(a)
    assert tree.graph.nodes[a]["status"] is NodeStatus.PROVED and tree.graph.has_edge(a, QED)
    tree.set_priority(a, -0.5)
    tree.note(a, lost_expansions=1)
    assert tree.graph.nodes[a]["priority"] == -0.5 and tree.graph.nodes[a]["lost_expansions"] == 1
    assert tree.edge_outcome(a, QED) is EdgeOutcome.PROVED
