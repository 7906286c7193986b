"""prover.cluster.collect: filters, shards + manifest, `prover collect`, `prover data stats`, resume."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from context_helpers import make_ctx
from cluster_helpers import (
    bfs_problem,
    bfs_world,
    make_problem,
    sim_config,
    whole_proof_world,
)

import prover.cluster.collect as collect_module
from prover.cli import main
from prover.cluster.collect import (
    CollectConfig,
    FilterConfig,
    ProblemRows,
    TrajectoryWriter,
    apply_filters,
    collect,
    data_stats,
    load_collect_config,
    tactic_perplexity,
)
from prover.cluster.local_ray import init_local_ray
from prover.config import ProverConfig
from prover.errors import ConfigError, RunError
from prover.search.base import Strategy
from prover.types import Attempt, CheckStatus, Problem, Verdict

# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


def _step(tactic: str, logprob: float, on_path: bool) -> dict[str, Any]:
    return {
        "problem": "p", "attempt": 0, "state": "⊢ s", "tactic": tactic, "logprob": logprob,
        "outcome": "ok" if on_path else "error", "next_state": None, "on_proof_path": on_path, "depth": 0,
    }


def _whole(status: str) -> dict[str, Any]:
    return {"problem": "p", "status": status, "rule": "accepted" if status == "proved" else "lean_error"}


def test_tactic_perplexity_is_exp_of_minus_mean_token_logprob() -> None:
    assert tactic_perplexity(0.0) == 1.0
    assert tactic_perplexity(-1.0) == pytest.approx(math.e)


def test_perplexity_band_drops_both_tails() -> None:
    rows = ProblemRows(
        problem="p", attempts=2, proved=1,
        rows={"steps": [_step("easy", -0.01, True), _step("mid", -0.5, True), _step("noisy", -4.0, False)]},
    )
    kept, dropped = apply_filters(rows, FilterConfig(tactic_ppl_band=(1.1, 10.0)))
    assert [r["tactic"] for r in kept.steps] == ["mid"] and dropped == ""


def test_proved_paths_only_and_drop_all_solved() -> None:
    rows = ProblemRows(
        problem="p", attempts=2, proved=1,
        rows={"steps": [_step("good", -0.5, True), _step("bad", -0.5, False)],
              "proofs": [_whole("proved"), _whole("failed")]},
    )
    kept, _ = apply_filters(rows, FilterConfig(proved_paths_only=True))
    assert [r["tactic"] for r in kept.steps] == ["good"]
    assert [r["status"] for r in kept.proofs] == ["proved"]
    solved = rows.model_copy(update={"proved": 2})
    kept, dropped = apply_filters(solved, FilterConfig(drop_all_solved=True))
    assert (kept.steps, kept.proofs, dropped) == ([], [], "all_solved")
    assert apply_filters(rows, FilterConfig(drop_all_solved=True))[1] == ""  # 1 of 2: kept


def test_band_must_be_ordered_perplexities() -> None:
    with pytest.raises(ValueError, match="1 <= low <= high"):
        FilterConfig(tactic_ppl_band=(5.0, 2.0))


def test_band_needs_token_logprobs() -> None:
    with pytest.raises(ValueError, match="logprobs: true"):
        CollectConfig(logprobs=False, filters=FilterConfig(tactic_ppl_band=(1.0, 5.0)))


# ---------------------------------------------------------------------------------------------
# Shards + manifest
# ---------------------------------------------------------------------------------------------


def _rows(name: str, n: int) -> ProblemRows:
    return ProblemRows(problem=name, attempts=1, proved=1, rows={"steps": [_step(f"t{i}", -0.5, True) for i in range(n)]})


def test_writer_shards_atomically_and_resume_skips_finished(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer = TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=2, resume=False)
    for i in range(5):
        writer.add(_rows(f"p{i}", i + 1))
    # two full shards written, p4 still buffered (lost on a crash, rerun on resume)
    assert sorted(writer.finished) == ["p0", "p1", "p2", "p3"]
    assert [s.file for s in writer.manifest.shards] == ["steps-00000.parquet", "steps-00001.parquet"]
    assert pq.read_table(out / "shards" / "steps-00001.parquet").num_rows == 3 + 4
    (out / "shards" / "steps-00009.parquet").write_bytes(b"torn")  # written, never listed
    with pytest.raises(RunError, match="--resume"):
        TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=2, resume=False)
    with pytest.raises(RunError, match="strategy=bfs"):
        TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(drop_all_solved=True), problems_per_shard=2, resume=True)
    again = TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=2, resume=True)
    assert not (out / "shards" / "steps-00009.parquet").exists()
    assert "p4" not in again.finished
    again.add(_rows("p4", 5))
    again.flush()
    stats = data_stats(out)
    assert stats.problems == 5 and stats.rows["steps"] == 1 + 2 + 3 + 4 + 5


def test_resume_deletes_only_its_own_unlisted_shard_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer = TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=1, resume=False)
    writer.add(_rows("p0", 1))
    (out / "shards" / ".steps-00001.parquet.tmp").write_bytes(b"torn")
    (out / "shards" / "notes.txt").write_text("mine")
    (out / "shards" / "extra").mkdir()
    TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=1, resume=True)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["extra", "notes.txt", "steps-00000.parquet"]


def test_data_stats_names_a_broken_manifest_or_missing_shard(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out"
    assert main(["data", "stats", str(out)]) == 2
    assert "not a collect directory" in capsys.readouterr().err
    writer = TrajectoryWriter(out, strategy="bfs", filters=FilterConfig(), problems_per_shard=1, resume=False)
    writer.add(_rows("p0", 2))
    (out / "shards" / "steps-00000.parquet").unlink()
    with pytest.raises(RunError, match="steps-00000.parquet"):
        data_stats(out)
    (out / "manifest.json").write_text('{"strategy": "bfs"}')
    assert main(["data", "stats", str(out)]) == 2
    assert "manifest.json is not a valid collect manifest" in capsys.readouterr().err


def test_collect_config_section_is_split_from_prover_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {"bfs": {"width": 3}, "collect": {"strategy": "bfs", "temperature": 1.3, "filters": {"drop_all_solved": True}}}
        )
    )
    config, settings = load_collect_config(path, user_defaults=False)
    assert config.bfs.width == 3 and settings.filters.drop_all_solved
    applied = settings.apply(config)
    assert applied.eval.strategy == "bfs" and applied.bfs.temperature == 1.3 and applied.sampler.temperature == 1.3
    path.write_text(yaml.safe_dump({"collect": {"temprature": 1.0}}))
    with pytest.raises(ConfigError, match="temprature"):
        load_collect_config(path, user_defaults=False)
    path.write_text(yaml.safe_dump({"collect": ["strategy", "bfs"]}))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_collect_config(path, user_defaults=False)
    with pytest.raises(ConfigError, match="not found"):
        load_collect_config(tmp_path / "missing.yaml")


def test_collect_config_layers_over_the_user_config_like_prover_config_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prover.config import ProverConfig, user_config_path

    monkeypatch.setenv("PROVER_CONFIG_HOME", str(tmp_path / "home"))
    user_file = user_config_path()
    user_file.parent.mkdir(parents=True)
    user_file.write_text('[lean]\nworkspace = "/ws/a"\nrepl_cmd = ["/ws/a/repl"]\nlean_version = "4.9.0"\ntimeout = 7.0\n')
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"lean": {"workspace": "/ws/b"}}))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"lean": {"workspace": "/ws/b"}, "collect": {"strategy": "bfs"}}))
    config, _ = load_collect_config(path)
    # the REPL binary and Lean version recorded for /ws/a are wrong for /ws/b: not inherited
    assert config.lean.repl_cmd is None and config.lean.lean_version != "4.9.0" and config.lean.timeout == 7.0
    assert config.lean == ProverConfig.load(plain).lean


# ---------------------------------------------------------------------------------------------
# End to end on the simulated REPL
# ---------------------------------------------------------------------------------------------

BFS_NAMES = ["q0", "q1", "q2"]
ROOT = "⊢ ∀ (x : Nat), x + 0 = x"
S1 = "x : Nat\n⊢ x + 0 = x"


def _bfs_config_file(tmp_path: Path, **collect: Any) -> Path:
    scenario, script = bfs_world(tmp_path, BFS_NAMES)
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(bfs_problem(n).model_dump()) + "\n" for n in BFS_NAMES))
    config = sim_config(tmp_path, scenario, script)
    data = json.loads(config.model_dump_json())
    data["eval"]["passes"] = 2
    data["bfs"].update({"width": 3, "max_expansions": 6, "stop_on_first": False})
    data["lean"]["workers"] = 1
    data["collect"] = {"strategy": "bfs", "problems": "problems.jsonl", "problems_per_shard": 2, **collect}
    path = tmp_path / "collect.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _shard_rows(out: Path, kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for shard in sorted((out / "shards").glob(f"{kind}-*.parquet")):
        rows.extend(pq.read_table(shard).to_pylist())
    return rows


def test_prover_collect_bfs_rows_match_the_search_trees(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    trees: list[Any] = []
    original = collect_module._read_trees

    def capture(attempts: Any) -> list[Any]:
        found = original(attempts)
        trees.extend(found)
        return found

    monkeypatch.setattr(collect_module, "_read_trees", capture)
    path = _bfs_config_file(tmp_path)
    out = tmp_path / "out"
    assert main(["collect", "--config", str(path), "--out", str(out)]) == 0
    assert "collected 3 problem(s)" in capsys.readouterr().out

    rows = _shard_rows(out, "steps")
    expected = [r.model_dump() for t in trees for r in t.step_records()]
    key = lambda r: json.dumps(r, sort_keys=True)
    assert sorted(map(key, rows)) == sorted(map(key, expected))
    assert len(trees) == 2 * len(BFS_NAMES) and {t.problem for t in trees} == set(BFS_NAMES)
    # the proof path of every proved problem is intro x -> simp, a chain of states
    for name in ("q0", "q2"):
        for attempt in (0, 1):
            path_rows = sorted(
                (r for r in rows if r["problem"] == name and r["attempt"] == attempt and r["on_proof_path"]),
                key=lambda r: r["depth"],
            )
            assert [(r["state"], r["tactic"]) for r in path_rows] == [(ROOT, "intro x"), (S1, "simp")]
            assert path_rows[0]["next_state"] == S1 and path_rows[1]["next_state"] == ""
    q1 = [r for r in rows if r["problem"] == "q1"]
    assert q1 and not any(r["on_proof_path"] for r in q1) and {r["outcome"] for r in q1} == {"error"}
    assert {r["tactic"] for r in rows if r["outcome"] == "error" and r["problem"] == "q0"} >= {"bad"}

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["problems"]["q0"]["proved"] == 2 and manifest["problems"]["q1"]["proved"] == 0
    assert main(["data", "stats", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "problems: 3  proved: 2 (66.7%)" in printed
    assert f"steps={len(rows)}" in printed and "error:" in printed and "tactic logprob quantiles" in printed


def test_perplexity_band_uses_the_mean_token_logprob_of_each_tactic(tmp_path: Path) -> None:
    # scripted tactics: "intro x" -0.2 over 2 tokens (ppl e^0.1 = 1.105; e^0.2 = 1.221 if the
    # cumulative log-prob were used), "simp" -0.1 over 1 token, "bad" -3.0 over 1 (ppl 20)
    path = _bfs_config_file(tmp_path, filters={"tactic_ppl_band": [1.0, 1.15]})
    assert main(["collect", "--config", str(path), "--out", str(tmp_path / "out")]) == 0
    rows = _shard_rows(tmp_path / "out", "steps")
    assert {r["tactic"] for r in rows} == {"intro x", "simp"}
    # cached replays (attempt 1 reuses attempt 0's proof; q2 may reuse q0's, whose goals are the
    # same) have no log-prob of their own: dropped
    assert "cached" not in {r["outcome"] for r in rows}
    intro = [r["logprob"] for r in rows if r["tactic"] == "intro x"]
    assert len(intro) >= 2 and intro == pytest.approx([-0.1] * len(intro))
    stats = data_stats(tmp_path / "out")
    assert stats.problems == 3 and all(1.0 <= v <= 1.15 for v in stats.perplexity_quantiles.values())


def test_drop_all_solved_does_not_count_proofs_replayed_from_the_proof_cache(tmp_path: Path) -> None:
    # lean.workers 1: attempt 1 of q0/q2 starts after attempt 0 published its proof, and replays it
    path = _bfs_config_file(tmp_path, filters={"drop_all_solved": True})
    assert main(["collect", "--config", str(path), "--out", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    q0 = manifest["problems"]["q0"]
    assert (q0["attempts"], q0["proved"], q0["replayed"], q0["dropped"]) == (2, 2, 1, "")
    assert any(r["on_proof_path"] for r in _shard_rows(tmp_path / "out", "steps") if r["problem"] == "q0")
    stats = data_stats(tmp_path / "out")
    assert stats.dropped == {} and stats.logprob_quantiles["p95"] < 0  # cached 0.0 placeholders left out


class _SameTreeFileStrategy(Strategy):
    """Writes every problem's tree to the same relative path of its artifacts directory (as the
    real strategy does for names that sanitise alike), and records only after both problems wrote
    theirs."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.both_written = asyncio.Event()

    async def prove(self, problem: Problem, ctx: Any, record: Any, done: Any) -> None:
        from prover.search.tree import EdgeOutcome, SearchTree

        tree = SearchTree(problem.name, 0)
        root = tree.add_root([f"⊢ goal of {problem.name}"])
        tree.add_failure(root, "bad", -1.0, EdgeOutcome.ERROR, "unknown tactic", 0.0)
        assert ctx.artifacts is not None
        path = ctx.artifacts / "q_0" / "attempt_000.json"
        tree.write_json(path)
        self.written.append(problem.name)
        if len(self.written) == 2:
            self.both_written.set()
        await asyncio.wait_for(self.both_written.wait(), timeout=10)
        verdict = Verdict(status=CheckStatus.FAILED, rule="lean_error")
        await record(Attempt(problem=problem.name, strategy="bfs", sample_index=0, verdict=verdict,
                             extra={"tree_file": str(path)}))


async def test_problems_whose_tree_files_collide_keep_their_own_trees() -> None:
    strategy = _SameTreeFileStrategy()
    ctx = make_ctx(ProverConfig())
    rows = await asyncio.gather(
        *(collect_module.collect_problem(strategy, ctx, make_problem(n)) for n in ("q_0", "q'0"))
    )
    assert [[(s["problem"], s["state"]) for s in r.steps] for r in rows] == [
        [("q_0", "⊢ goal of q_0")], [("q'0", "⊢ goal of q'0")]
    ]


def test_collect_filters_keep_only_proof_paths_of_problems_not_solved_by_every_attempt(
    tmp_path: Path,
) -> None:
    names = ["w0", "w1", "w2"]
    scenario, script = whole_proof_world(tmp_path, names, all_good=("w2",))
    config = sim_config(tmp_path, scenario, script)
    settings = CollectConfig(
        strategy="whole_proof", filters=FilterConfig(proved_paths_only=True, drop_all_solved=True)
    )
    summary = collect(config, [make_problem(n) for n in names], tmp_path / "out", settings)
    assert summary.problems == 3 and summary.proved_problems == 2
    rows = _shard_rows(tmp_path / "out", "proofs")
    # w0: 1 of 4 proved -> its proved sample; w1: none proved; w2: all proved -> dropped
    assert [(r["problem"], r["attempt"], r["status"]) for r in rows] == [("w0", 0, "proved")]
    row = rows[0]
    assert "x + 0 = x" in row["prompt"] and "simp" in row["completion"] and row["proof"]
    assert row["cumulative_logprob"] == -1.0 and row["token_logprobs"] == [-0.5, -0.5]
    stats = data_stats(tmp_path / "out")
    assert stats.dropped == {"all_solved": 1} and stats.outcomes == {"proved:accepted": 1}


def test_collect_whole_proof_unfiltered_rows_carry_errors_and_resume_finishes_the_rest(
    tmp_path: Path, monkeypatch: Any
) -> None:
    names = [f"w{i}" for i in range(5)]
    scenario, script = whole_proof_world(tmp_path, names)
    config = sim_config(tmp_path, scenario, script, **{"eval.max_problems_in_flight": 1})
    settings = CollectConfig(strategy="whole_proof", problems_per_shard=2)
    problems = [make_problem(n) for n in names]

    original = TrajectoryWriter.add
    calls = {"n": 0}

    def crash_after_three(self: TrajectoryWriter, rows: ProblemRows) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash")
        original(self, rows)

    monkeypatch.setattr(TrajectoryWriter, "add", crash_after_three)
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect(config, problems, tmp_path / "out", settings)
    monkeypatch.setattr(TrajectoryWriter, "add", original)
    first = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(first["problems"]) == 3  # buffered problems were flushed on the way out

    summary = collect(config, problems, tmp_path / "out", settings, resume=True)
    assert summary.collected == 2 and summary.problems == 5
    rows = _shard_rows(tmp_path / "out", "proofs")
    assert sorted({(r["problem"], r["attempt"]) for r in rows}) == sorted((n, i) for n in names for i in range(4))
    assert len(rows) == 20
    failed = [r for r in rows if r["status"] != "proved"]
    assert failed and all(r["errors"] and r["rule"] == "lean_error" for r in failed)


# ---------------------------------------------------------------------------------------------
# On Ray
# ---------------------------------------------------------------------------------------------


@pytest.mark.ray
def test_collect_on_ray_writes_the_same_rows_as_in_process(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    names = [f"w{i}" for i in range(4)]
    scenario, script = whole_proof_world(tmp_path, names)
    config = sim_config(tmp_path, scenario, script, **{"lean.rss_limit_mb": 256})
    settings = CollectConfig(strategy="whole_proof", problems_per_shard=3)
    problems = [make_problem(n) for n in names]
    collect(config, problems, tmp_path / "local", settings)
    init_local_ray(num_cpus=2, object_store_memory=150 * 1024 * 1024, log_to_driver=False)
    try:
        summary = collect(config, problems, tmp_path / "ray", settings, use_ray=True)
    finally:
        ray.shutdown()
    assert summary.collected == 4

    def canon(out: Path) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True) for r in _shard_rows(out, "proofs"))

    assert canon(tmp_path / "ray") == canon(tmp_path / "local") and len(canon(tmp_path / "ray")) == 16


def test_collect_shows_progress_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["g0", "g1", "g2"]
    scenario, script = whole_proof_world(tmp_path, names)
    config = sim_config(tmp_path, scenario, script)
    collect(config, [make_problem(n) for n in names], tmp_path / "out", CollectConfig(strategy="whole_proof"))
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("[prover collect] problems 3/3") and "attempts" in last
