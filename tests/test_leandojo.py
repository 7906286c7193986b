"""LeanDojo: `leandojo:PATH` splits read from the traced sources, their tactic traces as step rows,
and `prover data from-repo` at the lean-dojo boundary (a stand-in `lean_dojo`, tests/standin_lean_dojo.py).

The repository and split are built by tests/dojo_helpers.py in LeanDojo Benchmark 4's format.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import standin_lean_dojo as standin
from dojo_helpers import BASIC, COMMIT, THEOREMS, URL, entries, position, write_sources, write_split

from prover.cli import main
from prover.cluster.collect import FilterConfig, ProblemRows, TrajectoryWriter
from prover.datasets.row_schemas import STEP_ROWS, arrow_schema
from prover.datasets import load_benchmark, read_jsonl
from prover.datasets.leandojo import cached_repo_dir, read_traced_theorems, trace_step_rows
from prover.errors import DataError

OWN = ["MyProj.add_zero'", "MyProj.two_eq", "MyProj.helper", "MyProj.open_goal"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_sources(tmp_path / "MyProj")


@pytest.fixture
def split(tmp_path: Path) -> Path:
    return write_split(tmp_path / "leandojo_benchmark_4" / "random" / "test.json")


def by_name(problems: list[Any]) -> dict[str, Any]:
    return {p.name: p for p in problems}


# ---------------------------------------------------------------------------------------------
# leandojo:PATH
# ---------------------------------------------------------------------------------------------


def test_split_statements_headers_and_docstrings_come_from_the_sources(
    repo: Path, split: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        problems = by_name(load_benchmark(f"leandojo:{split}", data_dir=repo))
    assert sorted(problems) == sorted([*OWN, "Dep.dep_refl"])
    assert "by_cases_eq" in caplog.text  # an equation-compiler proof has no `:=` to cut at

    add = problems["MyProj.add_zero'"]
    # the attribute moves from the file's prefix into the statement, the docstring becomes informal
    assert add.formal_statement == "@[simp]\ntheorem add_zero' (n : ℕ) : n + 0 = n := by"
    assert add.informal_statement == "Adding zero changes nothing."
    assert add.header == BASIC[: BASIC.index("/-- Adding")]
    assert add.header.endswith("namespace MyProj\n\n") and add.theorem_name == "add_zero'"
    assert add.split == "test" and add.category == "MyProj" and add.lean_version == "v4.9.0"
    assert add.source == f"{URL}@{COMMIT} MyProj/Basic.lean:9"
    assert add.benchmark == f"leandojo:{split}"

    two = problems["MyProj.two_eq"]
    assert two.formal_statement == "theorem two_eq : let x := 2; x = 1 + 1 := by"  # `let`'s own `:=`
    helper = problems["MyProj.helper"]
    assert helper.formal_statement == "private lemma helper (a b : ℕ) (h : a = b) : b = a := by"
    assert "theorem fake" not in helper.formal_statement and "intro x\n  rfl" in helper.header
    assert problems["MyProj.open_goal"].formal_statement == "theorem open_goal (n : ℕ) : n * 1 = n := by"
    dep = problems["Dep.dep_refl"]
    assert dep.header == "namespace Dep\n\n" and dep.category == ".lake/packages/dep"


def test_sources_default_to_the_lean_dojo_cache_and_their_absence_says_what_to_pass(
    tmp_path: Path, split: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "dojo-cache"))
    with pytest.raises(DataError, match=r"--data-dir DIR.*commit") as missing:
        load_benchmark(f"leandojo:{split}")
    assert str(cached_repo_dir(URL, COMMIT)) in str(missing.value)
    cached = cached_repo_dir(URL, COMMIT)
    assert cached == tmp_path / "dojo-cache" / f"example-MyProj-{COMMIT}" / "MyProj"
    write_sources(cached)
    assert len(load_benchmark(f"leandojo:{split}")) == 5


def test_sources_of_another_commit_are_refused(repo: Path, split: Path, tmp_path: Path) -> None:
    shifted = write_sources(tmp_path / "shifted")
    (shifted / "MyProj" / "Basic.lean").write_text("-- edited later\n" + BASIC, encoding="utf-8")
    with pytest.raises(DataError, match=r"Basic.lean:9: .*MyProj.add_zero'.*commit 0123456789ab"):
        load_benchmark(f"leandojo:{split}", data_dir=shifted)
    with pytest.raises(DataError, match="source folder .* does not exist"):
        load_benchmark(f"leandojo:{split}", data_dir=tmp_path / "nowhere")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_git_checkout_at_another_commit_is_refused(repo: Path, split: Path) -> None:
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    with pytest.raises(DataError, match=f"checked out at {head[:12]}, but the theorems were traced at {COMMIT[:12]}"):
        load_benchmark(f"leandojo:{split}", data_dir=repo)
    rows = entries(commit=head)
    write_split(split, rows)
    assert len(load_benchmark(f"leandojo:{split}", data_dir=repo)) == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "x", "formal_statement": "theorem x : True := by"}\n{"name": "y"}\n', "JSON Lines"),
        ('{"theorems": []}', "expected a JSON array of traced theorems, got a JSON dict"),
        ("[]", "holds no theorems"),
        ("[{", "invalid JSON"),
    ],
)
def test_files_that_are_not_leandojo_splits_are_named_as_such(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        load_benchmark(f"leandojo:{path}", data_dir=tmp_path)
    assert str(path) in str(error.value)


def test_an_entry_with_a_missing_or_malformed_key_names_the_theorem_and_the_key(tmp_path: Path, repo: Path) -> None:
    rows = entries()
    del rows[1]["full_name"]
    with pytest.raises(DataError, match=r"theorem #1 is not in LeanDojo's format: full_name: Field required"):
        load_benchmark(f"leandojo:{write_split(tmp_path / 'a.json', rows)}", data_dir=repo)
    rows = entries()
    rows[2]["start"] = [5]
    with pytest.raises(DataError, match=r"theorem #2 \(MyProj.helper\) is not in LeanDojo's format: start"):
        load_benchmark(f"leandojo:{write_split(tmp_path / 'b.json', rows)}", data_dir=repo)
    rows = entries()
    rows[0]["traced_tactics"][0].pop("state_after")
    with pytest.raises(DataError, match=r"traced_tactics.0.state_after: Field required"):
        load_benchmark(f"leandojo:{write_split(tmp_path / 'c.json', rows)}", data_dir=repo)
    rows = entries()
    rows[0]["start"] = [400, 1]
    with pytest.raises(DataError, match="line 400 is outside the file"):
        load_benchmark(f"leandojo:{write_split(tmp_path / 'd.json', rows)}", data_dir=repo)


def test_prover_eval_runs_a_leandojo_split_end_to_end(tmp_path: Path, repo: Path, split: Path) -> None:
    """Through the real CLI: the simulated REPL proves add_zero' with `simp` on its file-prefix header."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        json.dumps({"theorems": [{"name": "add_zero'", "goals": ["n : ℕ\n⊢ n + 0 = n"], "proofs": [{"body": "simp"}]}]}),
        encoding="utf-8",
    )
    script = tmp_path / "script.jsonl"
    script.write_text(
        json.dumps({"name": "MyProj.add_zero'", "completions": ["```lean4\ntheorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp\n```"]})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    env = {**os.environ, "PROVER_CONFIG_HOME": str(tmp_path / "cfg"), "PROVER_CACHE_DIR": str(tmp_path / "cache")}
    repl = f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {scenario}"
    args = [
        sys.executable, "-m", "prover", "eval", f"leandojo:{split}", "--data-dir", str(repo),
        "--names", "MyProj.add_zero'", "--backend", "scripted", "--script", str(script), "--prompt-format", "kimina",
        "--pass", "1", "--repl-cmd", repl, "--workers", "1", "--out", str(out), "--quiet",
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "solved 1/1" in result.stdout
    attempt = json.loads((out / "attempts.jsonl").read_text().splitlines()[0])
    assert attempt["verdict"]["status"] == "proved"
    assert attempt["verdict"]["code"].startswith("import Mathlib.Tactic\n\nopen Nat\n\nnamespace MyProj\n")


def test_prover_eval_names_a_bad_leandojo_file_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"theorems": []}', encoding="utf-8")
    assert main(["eval", f"leandojo:{path}", "--data-dir", str(tmp_path), "--backend", "scripted",
                 "--script", str(path), "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert "not a LeanDojo Benchmark 4 split file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Tactic traces -> step rows
# ---------------------------------------------------------------------------------------------


def test_tactic_traces_become_step_rows_with_the_collect_schema(
    tmp_path: Path, split: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sft" / "leandojo-steps.parquet"
    assert main(["data", "leandojo-steps", str(split), "--out", str(out)]) == 0
    assert "wrote 4 step row(s)" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.schema == arrow_schema(STEP_ROWS)
    rows = table.to_pylist()
    assert rows == trace_step_rows(read_traced_theorems(split))
    two = [r for r in rows if r["problem"] == "MyProj.two_eq"]
    assert [(r["tactic"], r["depth"], r["outcome"]) for r in two] == [("intro x", 0, "ok"), ("rfl", 1, "proved")]
    assert two[0]["state"] == "⊢ let x := 2;\n  x = 1 + 1" and two[0]["next_state"] == two[1]["state"]
    assert two[1]["next_state"] == "" and all(r["on_proof_path"] and r["logprob"] is None for r in rows)


def test_leandojo_steps_and_collect_shards_load_together_with_datasets(tmp_path: Path, split: Path) -> None:
    datasets = pytest.importorskip("datasets")
    collect_dir = tmp_path / "collect"
    writer = TrajectoryWriter(collect_dir, strategy="bfs", filters=FilterConfig(), problems_per_shard=1, resume=False)
    step = {"problem": "p", "attempt": 0, "state": "⊢ s", "tactic": "simp", "logprob": -0.5,
            "outcome": "proved", "next_state": "", "on_proof_path": True, "depth": 0}
    writer.add(ProblemRows(problem="p", attempts=1, proved=1, rows={STEP_ROWS: [step]}))
    main(["data", "leandojo-steps", str(split), "--out", str(tmp_path / "dojo.parquet")])
    files = [str(tmp_path / "dojo.parquet"), *map(str, sorted((collect_dir / "shards").glob("steps-*.parquet")))]
    loaded = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    assert loaded.num_rows == 4 + 1
    assert set(loaded.column_names) == set(arrow_schema(STEP_ROWS).names)
    assert loaded[4]["logprob"] == -0.5 and loaded[0]["logprob"] is None


# ---------------------------------------------------------------------------------------------
# prover data from-repo (lean-dojo boundary, stand-in)
# ---------------------------------------------------------------------------------------------


def standin_trace(root: Path) -> standin.TracedRepo:
    """The stand-in's answer for URL@COMMIT: the helper repository, plus a dependency's theorem."""
    own, dep = standin.LeanGitRepo(URL, COMMIT), standin.LeanGitRepo("https://github.com/example/dep", "f" * 40)
    theorems = []
    for entry, (rel, *_rest) in zip(entries(), THEOREMS, strict=True):
        repo = dep if rel.startswith(".lake") else own
        tactics = [
            standin.TracedTactic(t["tactic"], t["state_before"], t["state_after"], (t["tactic"], []))
            for t in entry["traced_tactics"]
        ]
        path = Path(rel.split("/", 3)[-1]) if repo is dep else Path(rel)
        theorem = standin.Theorem(repo, path, entry["full_name"])
        theorems.append(standin.TracedTheorem(theorem, tuple(entry["start"]), tuple(entry["end"]), tactics))
    return standin.TracedRepo(own, root, theorems)


@pytest.fixture
def lean_dojo(monkeypatch: pytest.MonkeyPatch, repo: Path) -> standin.TracedRepo:
    traced = standin_trace(repo.resolve())
    monkeypatch.setitem(standin.TRACES, (URL, COMMIT), traced)
    monkeypatch.setitem(sys.modules, "lean_dojo", standin)
    return traced


def test_from_repo_writes_a_benchmark_of_the_repository_s_own_theorems(
    tmp_path: Path, lean_dojo: standin.TracedRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine.jsonl"
    steps = tmp_path / "mine-steps.parquet"
    assert main(["data", "from-repo", URL, "--commit", COMMIT, "--out", str(out), "--steps", str(steps)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 4 problem(s) of 5 traced theorem(s) to {out}" in printed
    assert f"--workspace {lean_dojo.root_dir}" in printed
    assert lean_dojo.calls == [{"dst_dir": None, "build_deps": True}]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in lines] == OWN  # the dependency's theorem is not the repository's own
    assert list(lines[0]) == ["name", "split", "header", "formal_statement", "informal_statement",
                              "informal_proof", "source", "lean_version"]
    problems = by_name(read_jsonl(out, benchmark=f"jsonl:{out}"))
    assert problems["MyProj.add_zero'"].formal_statement == "@[simp]\ntheorem add_zero' (n : ℕ) : n + 0 = n := by"
    # step rows of the proved theorems only: open_goal's `sorry` is no training data
    step_rows = pq.read_table(steps).to_pylist()
    assert {r["problem"] for r in step_rows} == {"MyProj.add_zero'", "MyProj.two_eq"}


def test_from_repo_sorry_only_keeps_the_open_goals(
    tmp_path: Path, lean_dojo: standin.TracedRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "open.jsonl"
    assert main(["data", "from-repo", URL, "--commit", COMMIT, "--out", str(out), "--sorry-only", "--no-build-deps"]) == 0
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == ["MyProj.open_goal"]
    assert lean_dojo.calls[-1]["build_deps"] is False
    problem = load_benchmark(f"jsonl:{out}")[0]
    assert problem.formal_statement == "theorem open_goal (n : ℕ) : n * 1 = n := by"
    assert problem.header.startswith("import Mathlib.Tactic\n")


def test_from_repo_failures_name_the_cause_and_write_nothing(
    tmp_path: Path, lean_dojo: standin.TracedRepo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    assert main(["data", "from-repo", "https://github.com/example/Other", "--commit", COMMIT, "--out", str(out)]) == 2
    assert "lean-dojo could not trace https://github.com/example/Other" in capsys.readouterr().err
    lean_dojo.theorems[:] = [t for t in lean_dojo.theorems if "open_goal" not in t.theorem.full_name]
    assert main(["data", "from-repo", URL, "--commit", COMMIT, "--out", str(out), "--sorry-only"]) == 2
    assert "has a proof that is just `sorry`" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "lean_dojo", None)  # not installed
    assert main(["data", "from-repo", URL, "--commit", COMMIT, "--out", str(out)]) == 2
    assert "pip install 'prover[dojo]'" in capsys.readouterr().err
    assert not out.exists()


def test_positions_helper_matches_leandojo_slicing() -> None:
    """dojo_helpers positions follow LeanDojo's LeanFile[start:end]: 1-based, end exclusive."""
    text = "ab\ncd theorem x := rfl\n"
    start, end = text.index("theorem"), len(text) - 1
    (sl, sc), (el, ec) = position(text, start), position(text, end)
    lines = text.split("\n")
    assert lines[sl - 1][sc - 1 :] == "theorem x := rfl" and lines[el - 1][: ec - 1] == "cd theorem x := rfl"
