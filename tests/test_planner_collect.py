"""`prover collect` with the planner: sketch and subgoal rows (Parquet) beside the proof rows, with
what a trainer needs — the exact prompt, the completion, Lean's verdict, and the step ids that join
a sketch to its holes and their outcomes. SIMULATED REPL, scripted models (tests/planner_world.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from planner_world import NAME, SHARED, world

from prover.cluster.collect import CollectConfig, collect


def _rows(out: Path, kind: str) -> list[dict]:
    return [row for shard in sorted((out / "shards").glob(f"{kind}-*.parquet")) for row in pq.read_table(shard).to_pylist()]


def test_collect_writes_sketch_and_subgoal_rows_a_trainer_can_join(tmp_path: Path, datasets_dir: Path) -> None:
    config, items = world(tmp_path, datasets_dir)
    summary = collect(config, items, tmp_path / "out", CollectConfig(), progress=False)
    assert summary.problems == 2 and summary.proved_problems == 2
    assert summary.rows["sketch"] == 6 and summary.rows["proofs"] == 0  # an episode has no completion of its own

    sketches = {(r["problem"], json.loads(r["extra"])["step"]): r for r in _rows(tmp_path / "out", "sketch")}
    assert set(sketches) == {(NAME, s) for s in ("p0.t0", "p0.t1", "p0.g0/p0.t0", "p0.g0/p0.t1", "p1.t0")} | {(SHARED, "p0.t0")}
    first = sketches[(NAME, "p0.t0")]
    assert (first["status"], first["rule"]) == ("rejected", "sketch:statement_changed")
    repaired = json.loads(sketches[(NAME, "p0.t1")]["prompt"])  # the whole conversation, as sent
    assert [m["role"] for m in repaired] == ["system", "user", "assistant", "user"]
    assert repaired[2]["content"] == first["completion"] and "different statement" in repaired[3]["content"]
    replan = sketches[(NAME, "p1.t0")]
    assert "Claims that could not be proved" in json.loads(replan["prompt"])[-1]["content"]
    assert (replan["rule"], json.loads(replan["extra"])["elaborated"]) == ("sorry", True)  # elaborated, with holes
    assert replan["prompt_tokens"] > 0 and replan["completion_tokens"] > 0

    subgoals = _rows(tmp_path / "out", "subgoal")
    assert all(r["prompt"] and r["completion"] for r in subgoals)  # cache replays have no completion: no row
    hb = [r for r in subgoals if json.loads(r["extra"])["lemma"] == f"{NAME}_hb"]
    assert hb and all(r["status"] == "proved" and f"theorem {NAME}_hb" in r["prompt"] for r in hb)
    bad = [r for r in subgoals if json.loads(r["extra"])["step"] == "p0.g0"]
    assert bad and all(r["status"] == "failed" and r["errors"] for r in bad)
    closing = [json.loads(r["extra"]) for r in subgoals if "outcome" in json.loads(r["extra"])]
    assert {(e["step"], e["outcome"]["proved"]) for e in closing} >= {("p1.g0", True), ("p1.g1", True), ("p0.g0", False)}
