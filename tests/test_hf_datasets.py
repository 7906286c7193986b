"""Hugging Face datasets as benchmarks (`hf:`): local `datasets` folders and Parquet files, column
mappings and presets, bad input; and `prover collect` shards read back with `datasets`.

No network: HF_HUB_OFFLINE=1 and a per-session datasets cache (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prover.cli import main
from prover.datasets import load_benchmark
from prover.datasets.hf import MATHLIB_HEADER, PRESETS, layout_for, parse_columns
from prover.errors import DataError

datasets = pytest.importorskip("datasets")

EVAL_DATA = Path(__file__).resolve().parent / "data" / "eval"


def save(tmp: Path, name: str, columns: dict[str, list[Any]], *, splits: dict[str, slice] | None = None) -> Path:
    """A `save_to_disk` folder (a DatasetDict when `splits` is given)."""
    table = datasets.Dataset.from_dict(columns)
    path = tmp / name
    if splits:
        datasets.DatasetDict({s: table.select(range(len(table))[sl]) for s, sl in splits.items()}).save_to_disk(str(path))
    else:
        table.save_to_disk(str(path))
    return path


def renamed_eval_problems() -> dict[str, list[Any]]:
    """tests/data/eval/problems.jsonl in another layout: problem_id, lean4_code (docstring and
    `:= by sorry` inside the code), nl_statement."""
    rows = [json.loads(line) for line in (EVAL_DATA / "problems.jsonl").read_text().splitlines()]
    code = [
        (f"/-- Informal {r['name']}. -/\n" if i % 2 == 0 else "") + r["formal_statement"] + " sorry"
        for i, r in enumerate(rows)
    ]
    return {
        "problem_id": [r["name"] for r in rows],
        "lean4_code": code,
        "nl_statement": [f"says {r['name']}" if i % 3 == 0 else None for i, r in enumerate(rows)],
    }


# ---------------------------------------------------------------------------------------------
# Through the CLI
# ---------------------------------------------------------------------------------------------


def test_prover_eval_on_a_local_dataset_with_its_own_column_layout(tmp_path: Path) -> None:
    """The end-to-end eval of test_eval_e2e, with the problems in a `datasets` folder whose columns
    are named differently: the same hand-computed summary (pass@1 0.375, pass@2 0.5, pass@4 2/3)."""
    folder = save(tmp_path, "mine", renamed_eval_problems())
    out = tmp_path / "run"
    env = {**os.environ, "PROVER_CONFIG_HOME": str(tmp_path / "cfg"), "PROVER_CACHE_DIR": str(tmp_path / "cache")}
    repl = f"{sys.executable} -m prover.lean_env.simulated_repl --scenario {EVAL_DATA / 'scenario.yaml'}"
    args = [
        sys.executable, "-m", "prover", "eval", f"hf:{folder}",
        "--columns", "name=problem_id,formal_statement=lean4_code,informal_statement=nl_statement",
        "--pass", "4", "--backend", "scripted", "--script", str(EVAL_DATA / "script.jsonl"),
        "--prompt-format", "kimina", "--repl-cmd", repl, "--workers", "2", "--out", str(out), "--quiet",
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass_at_k"] == pytest.approx({"1": 0.375, "2": 0.5, "4": 4 / 6})
    assert summary["solved_names"] == ["e_add_zero", "e_axiom", "e_mul_comm", "e_two"]
    assert json.loads((out / "run.json").read_text())["benchmark"] == f"hf:{folder}"


def test_prover_eval_names_an_unknown_dataset_offline_and_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(["eval", "hf:no-such-org/no-such-dataset", "--backend", "scripted", "--script",
                 str(EVAL_DATA / "script.jsonl"), "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "hf:no-such-org/no-such-dataset: cannot load the dataset from the Hugging Face hub" in err
    assert "HF_HUB_OFFLINE" in err and "hf:PATH" in err
    assert not out.exists()


def test_prover_eval_names_missing_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = save(tmp_path, "mine", renamed_eval_problems())
    assert main(["eval", f"hf:{folder}", "--backend", "scripted", "--script", str(EVAL_DATA / "script.jsonl"),
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "columns 'name' (for name), 'formal_statement' (for formal_statement) not in the dataset" in err
    assert "its columns are: problem_id, lean4_code, nl_statement" in err and "--columns name=COL" in err


# ---------------------------------------------------------------------------------------------
# Layouts and presets
# ---------------------------------------------------------------------------------------------


def test_kimina_layout_splits_header_and_docstring_out_of_the_statement(tmp_path: Path) -> None:
    """AI-MO/minif2f_test's layout (name, formal_statement with header + docstring, informal_prefix)."""
    header = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
    statement = "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by"
    table = datasets.Dataset.from_dict(
        {"name": ["mathd_algebra_10"], "informal_prefix": ["/-- Find |0.12*30 - 1.3*20|. Show it is 10.-/\n"],
         "formal_statement": [header + "/-- Find |0.12*30 - 1.3*20|. Show it is 10.-/\n" + statement + "\n"]}
    )
    path = tmp_path / "minif2f_test.parquet"
    table.to_parquet(str(path))
    [problem] = load_benchmark(f"hf:{path}", columns="kimina")
    assert problem.header == header and problem.formal_statement == statement
    assert problem.informal_statement == "Find |0.12*30 - 1.3*20|. Show it is 10."
    assert problem.split == "train" and problem.source == f"hf:{path}[train] row 0"
    assert layout_for("AI-MO/minif2f_test", None) == PRESETS["kimina"]  # known hub ids pick their preset


def test_lean_workbook_preset_adds_the_mathlib_header_and_normalises_the_ending(tmp_path: Path) -> None:
    folder = save(tmp_path, "wb", {
        "id": ["lean_workbook_plus_1", "lean_workbook_plus_2"],
        "split": ["lean_workbook_plus", "lean_workbook"],
        "natural_language_statement": ["Prove that a^2 >= 0.", "Show 1 + 1 = 2."],
        "formal_statement": ["theorem lean_workbook_plus_1 (a : ℝ) : a ^ 2 ≥ 0 := by sorry",
                             "theorem lean_workbook_plus_2 : (1 : ℕ) + 1 = 2 :=\n  sorry"],
        "answer": ["", ""],
    })
    first, second = load_benchmark(f"hf:{folder}", columns="lean-workbook")
    assert first.header == second.header == MATHLIB_HEADER
    assert first.formal_statement == "theorem lean_workbook_plus_1 (a : ℝ) : a ^ 2 ≥ 0 := by"
    assert second.formal_statement == "theorem lean_workbook_plus_2 : (1 : ℕ) + 1 = 2 := by"
    assert (first.split, second.split) == ("lean_workbook_plus", "lean_workbook")
    assert first.informal_statement == "Prove that a^2 >= 0."


def test_deepseek_preset_strips_the_informal_docstring_and_a_column_overrides_it(tmp_path: Path) -> None:
    folder = save(tmp_path, "ds", {
        "name": ["t1"], "split": ["valid"], "header": ["import Mathlib\n"],
        "informal_prefix": ["/-- What is 2+2? Show that it is 4.-/\n"],
        "formal_statement": ["theorem t1 : 2 + 2 = 4 := by\n"], "goal": ["⊢ 2 + 2 = 4"], "key": ["k1"],
    })
    [problem] = load_benchmark(f"hf:{folder}", columns="deepseek")
    assert problem.header == "import Mathlib\n" and problem.split == "valid"
    assert problem.informal_statement == "What is 2+2? Show that it is 4."
    [renamed] = load_benchmark(f"hf:{folder}", columns="deepseek,name=key")
    assert renamed.name == "k1"


def test_splits_are_chosen_by_name_flag_or_default(tmp_path: Path) -> None:
    folder = save(tmp_path, "splits", {
        "name": ["a", "b", "c"], "formal_statement": [f"theorem {n} : True := by" for n in "abc"],
    }, splits={"train": slice(0, 2), "validation": slice(2, 3)})
    with pytest.raises(DataError, match=r"several splits \(train, validation\); choose one"):
        load_benchmark(f"hf:{folder}")
    assert [p.name for p in load_benchmark(f"hf:{folder}:validation")] == ["c"]
    assert [p.name for p in load_benchmark(f"hf:{folder}", split="train")] == ["a", "b"]
    assert [(p.name, p.split) for p in load_benchmark(f"hf:{folder}", split="all")] == [
        ("a", "train"), ("b", "train"), ("c", "validation")
    ]
    with pytest.raises(DataError, match="no split 'test'; splits: train, validation"):
        load_benchmark(f"hf:{folder}:test")
    with pytest.raises(DataError, match="split 'train' in the name and --split 'validation' differ"):
        load_benchmark(f"hf:{folder}:train", split="validation")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("nonsense", "unknown preset 'nonsense'; presets: uniform, deepseek, kimina"),
        ("title=x", "unknown field 'title'; fields: name, formal_statement"),
        ("name=", "no column given for field 'name'"),
        ("kimina,deepseek", "names two presets"),
    ],
)
def test_bad_column_specs_say_what_is_wrong(columns: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_columns(columns)


def test_bad_rows_name_the_row_and_the_problem(tmp_path: Path) -> None:
    def rows(statements: list[str], names: list[str] | None = None) -> Path:
        folder = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
        datasets.Dataset.from_dict({"name": names or [f"n{i}" for i in range(len(statements))],
                                    "formal_statement": statements}).save_to_disk(str(folder))
        return folder

    proved = rows(["theorem n0 : True := by", "theorem n1 : True := by\n  trivial"])
    with pytest.raises(DataError, match=r"row 1 \(n1\): formal_statement holds a proof after `:=`"):
        load_benchmark(f"hf:{proved}")
    with pytest.raises(DataError, match=r"row 0 \(n0\): formal_statement is not a theorem statement"):
        load_benchmark(f"hf:{rows(['def n0 : Nat := 1'])}")
    with pytest.raises(DataError, match=r"row 1: duplicate problem name 'same' \(first at .* row 0\)"):
        load_benchmark(f"hf:{rows(['theorem a : True := by', 'theorem b : True := by'], ['same', 'same'])}")
    with pytest.raises(DataError, match="column 'nope' \\(for header\\) not in the dataset"):
        load_benchmark(f"hf:{rows(['theorem n0 : True := by'])}", columns="header=nope")
    with pytest.raises(DataError, match="local dataset .* not found"):
        load_benchmark(f"hf:{tmp_path / 'missing.parquet'}")
    with pytest.raises(DataError, match="--columns applies to hf: benchmarks only"):
        load_benchmark("minif2f", columns="kimina")


# ---------------------------------------------------------------------------------------------
# prover collect shards through `datasets`, with the sampling flags
# ---------------------------------------------------------------------------------------------


def test_collect_shards_load_with_datasets_and_sampling_flags_reach_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml
    from cluster_helpers import make_problem, sim_config, whole_proof_world

    import prover.cluster.collect as collect_module

    names = ["w0", "w1", "w2"]
    scenario, script = whole_proof_world(tmp_path, names)
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(make_problem(n).model_dump()) + "\n" for n in names))
    data = json.loads(sim_config(tmp_path, scenario, script).model_dump_json())
    data["collect"] = {"strategy": "whole_proof", "problems": "problems.jsonl", "problems_per_shard": 2,
                       "temperature": 1.3, "top_p": 1.0}
    config_file = tmp_path / "collect.yaml"
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True))

    seen: dict[str, Any] = {}
    original = collect_module.collect

    def spy(config: Any, problems: Any, out: Any, settings: Any, **kwargs: Any) -> Any:
        seen["config"] = settings.apply(config)
        return original(config, problems, out, settings, **kwargs)

    monkeypatch.setattr(collect_module, "collect", spy)
    out = tmp_path / "out"
    assert main(["collect", "--config", str(config_file), "--out", str(out), "--temperature", "0.6",
                 "--top-p", "0.8", "--max-tokens", "300"]) == 0
    applied = seen["config"]
    assert (applied.sampler.temperature, applied.bfs.temperature, applied.sampler.top_p) == (0.6, 0.6, 0.8)
    assert (applied.sampler.max_tokens, applied.bfs.max_tokens) == (300, 300)

    shards = sorted(str(p) for p in (out / "shards").glob("proofs-*.parquet"))
    assert len(shards) == 2  # 3 problems, 2 per shard
    loaded = datasets.load_dataset("parquet", data_files={"train": shards}, split="train")
    assert loaded.num_rows == 3 * 4
    assert sorted(set(loaded["problem"])) == names
    assert sum(status == "proved" for status in loaded["status"]) == 2  # w0 and w2: 1 of 4 each
    assert main(["collect", "--config", str(config_file), "--out", str(tmp_path / "o2"), "--top-p", "1.5"]) == 2
    assert "invalid sampling flags" in capsys.readouterr().err
