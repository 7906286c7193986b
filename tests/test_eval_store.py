"""ResultsStore: durable appends, resume, torn lines, duplicates, config mismatch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.errors import RunError
from prover.eval.store import ATTEMPTS_FILE, RUN_FILE, ResultsStore, read_events, read_run_info
from eval_helpers import attempt, info


def test_new_run_writes_run_json_and_attempts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsStore.open(run, info()) as store:
        assert store.append(attempt("p0", 0))
        assert store.append(attempt("p0", 1, proved=True))
        # on disk before close: each line is flushed and fsync'ed
        lines = (run / ATTEMPTS_FILE).read_text().splitlines()
        assert [json.loads(line)["sample_index"] for line in lines] == [0, 1]
    recorded = read_run_info(run)
    assert recorded.benchmark == "minif2f" and recorded.model == "test/model" and recorded.passes == 4
    assert recorded.problems == ["p0", "p1", "p2"] and recorded.categories["p1"] == "odd"
    assert recorded.versions["python"] and recorded.versions["prover"]
    assert recorded.config["eval"]["passes"] == 4
    assert recorded.command == ["prover", "eval", "minif2f"] and recorded.created
    assert [e["event"] for e in read_events(run)] == ["open", "close"]


def test_existing_run_without_resume_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ResultsStore.open(run, info()).close()
    with pytest.raises(RunError, match=f"{run} already holds a run; pass --resume"):
        ResultsStore.open(run, info())
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(RunError, match="not empty"):
        ResultsStore.open(other, info())


def test_run_killed_while_creating_run_json_can_start_again(tmp_path: Path) -> None:
    """SIGKILL between writing run.json.tmp and renaming it leaves only the temp file behind."""
    run = tmp_path / "run"
    run.mkdir()
    (run / (RUN_FILE + ".tmp")).write_text('{"benchmark": "minif2')
    for resume in (True, False):
        with ResultsStore.open(run, info(), resume=resume) as store:
            assert store.append(attempt("p0", 0))
        (run / RUN_FILE).rename(run / (RUN_FILE + ".tmp"))
        (run / ATTEMPTS_FILE).unlink()
        (run / "events.jsonl").unlink()


def test_resume_reads_attempts_and_done_map(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsStore.open(run, info(rounds=1)) as store:
        store.append_many([attempt("p0", 0), attempt("p0", 0, round_=1, proved=True), attempt("p1", 3)])
    with ResultsStore.open(run, info(rounds=1), resume=True) as store:
        done = store.done("p0")
        assert set(done) == {(0, 0), (1, 0)} and done[(1, 0)].verdict.proved
        assert set(store.done("p1")) == {(0, 3)} and store.done("p2") == {}
        assert store.append(attempt("p2", 0))
    assert len(ResultsStore.read(run)) == 4
    assert len(read_run_info(run).sessions) == 2
    assert [e["event"] for e in read_events(run)] == ["open", "close", "resume", "close"]


def test_duplicate_key_is_skipped(tmp_path: Path) -> None:
    with ResultsStore.open(tmp_path / "run", info()) as store:
        assert store.append(attempt("p0", 0))
        assert not store.append(attempt("p0", 0, proved=True))
        assert store.append_many([attempt("p0", 0), attempt("p0", 1), attempt("p0", 1)]) == 1
    with ResultsStore.open(tmp_path / "run", info(), resume=True) as store:
        assert not store.append(attempt("p0", 1))
    lines = (tmp_path / "run" / ATTEMPTS_FILE).read_text().splitlines()
    assert len(lines) == 2
    assert not ResultsStore.read(tmp_path / "run").done("p0")[(0, 0)].verdict.proved


def test_torn_last_line_is_truncated_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsStore.open(run, info()) as store:
        store.append_many([attempt("p0", 0), attempt("p0", 1)])
    path = run / ATTEMPTS_FILE
    good = path.read_bytes()
    path.write_bytes(good + b'{"problem": "p0", "sample_index": 2, "verd')
    assert len(ResultsStore.read(run)) == 2  # readers ignore it without touching the file
    assert path.read_bytes() != good
    with ResultsStore.open(run, info(), resume=True) as store:
        assert path.read_bytes() == good
        assert set(store.done("p0")) == {(0, 0), (0, 1)}
        assert store.append(attempt("p0", 2))
    assert len(path.read_text().splitlines()) == 3
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsStore.open(run, info()) as store:
        store.append(attempt("p0", 0))
    path = run / ATTEMPTS_FILE
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with ResultsStore.open(run, info(), resume=True) as store:
        store.append(attempt("p0", 1))
    assert len(ResultsStore.read(run)) == 2


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsStore.open(run, info()) as store:
        store.append_many([attempt("p0", 0), attempt("p0", 1)])
    path = run / ATTEMPTS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"problem": 1}', lines[1]]) + "\n")
    with pytest.raises(RunError, match=f"{path}:2: not a valid attempt record"):
        ResultsStore.open(run, info(), resume=True)


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        ({"passes": 8}, "passes"),
        ({"rounds": 2}, "rounds"),
        ({"sampler.model": "other/model"}, "model"),
        ({"eval.benchmark": "proofnet"}, "benchmark"),
        ({"eval.strategy": "bfs"}, "strategy"),
        ({"sampler.temperature": 0.6}, "sampler.temperature"),
        ({"sampler.prompt_format": "kimina"}, "sampler.prompt_format"),
        ({"checker.allow_native_decide": True}, "checker"),
        ({"samplers.prover.temperature": 0.3}, "samplers.prover.temperature"),
    ],
)
def test_resume_with_result_changing_settings_is_refused(tmp_path: Path, changed: dict, field: str) -> None:
    run = tmp_path / "run"
    ResultsStore.open(run, info()).close()
    kwargs: dict = {}
    overrides = {}
    for key, value in changed.items():
        if key in ("passes", "rounds"):
            kwargs[key] = value
        else:
            overrides[key] = value
    with pytest.raises(RunError, match=f"cannot resume {run}.*{field}: recorded"):
        ResultsStore.open(run, info(**kwargs, **overrides), resume=True)


def test_resume_with_other_infrastructure_is_allowed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ResultsStore.open(run, info()).close()
    other = {"sampler.backend": "openai", "lean.workers": 7, "lean.timeout": 5.0, "sampler.max_retries": 1}
    ResultsStore.open(run, info(**other), resume=True).close()
    assert read_run_info(run).config["lean"]["workers"] == 7


def test_resume_with_more_problems_extends_the_list(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ResultsStore.open(run, info(n=2)).close()
    ResultsStore.open(run, info(n=4, **{"lean.workers": 3}), resume=True).close()
    recorded = read_run_info(run)
    assert recorded.problems == ["p0", "p1", "p2", "p3"]
    assert recorded.config["lean"]["workers"] == 3


def test_read_missing_or_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        ResultsStore.read(tmp_path / "missing")
    with pytest.raises(RunError, match=f"no {RUN_FILE}"):
        ResultsStore.read(tmp_path)
    with pytest.raises(RunError, match="read-only"):
        ResultsStore.read(ResultsStore.open(tmp_path / "r", info()).run_dir).append(attempt("p0", 0))


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from prover.eval.store import ResultsStore
from eval_helpers import attempt, info
store = ResultsStore.open(sys.argv[1], info(passes=10000))
for i in range(10000):
    store.append(attempt("p0", i))
    if i == 20:
        print("ready", flush=True)
"""


def test_sigkill_loses_at_most_in_flight_attempts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    repo = Path(__file__).resolve().parent
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run), str(repo)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with ResultsStore.open(run, info(passes=10000), resume=True) as store:
        indices = sorted(i for (_, i) in store.done("p0"))
        assert 20 < len(indices) < 10000  # killed mid-run
        assert indices == list(range(len(indices)))  # a prefix: nothing lost but the tail
        assert store.append(attempt("p0", len(indices)))


def test_lean_version_falls_back_to_the_workspace_toolchain(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "lean-toolchain").write_text("leanprover/lean4:v4.15.0\n")
    assert info(**{"lean.workspace": str(tmp_path / "ws")}).lean_version == "v4.15.0"
    assert info(**{"lean.workspace": str(tmp_path / "ws"), "lean.lean_version": "v4.9.0"}).lean_version == "v4.9.0"
    assert info(**{"lean.workspace": str(tmp_path / "missing")}).lean_version is None


def test_nested_attempts_have_their_own_slots_and_come_back_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    top = attempt("p0", 0)
    subgoal = attempt("p0", 0, kind="subgoal", parent=0)  # same (round, index) as the top-level one
    sketch = attempt("p0", 0, kind="sketch", parent=0)
    with ResultsStore.open(run, info()) as store:
        assert store.append_many([top, subgoal, sketch]) == 3
        assert store.append_many([attempt("p0", 0, kind="subgoal", parent=0, proved=True)]) == 0  # slot taken
    with ResultsStore.open(run, info(), resume=True) as store:
        done = store.done("p0")
        assert list(done) == [(0, 0)] and done[(0, 0)].parent is None and not done.proved
        assert [a.kind for a in done.nested(parent=0)] == ["subgoal", "sketch"]
        assert done.nested(parent=1) == [] and [a.kind for a in done.nested(kind="sketch")] == ["sketch"]
