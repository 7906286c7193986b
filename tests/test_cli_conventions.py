"""Everyday conventions: `python -m prover`, the sampling flags, report titles that fit their plot,
and a run's model shown as what really generated it (a scripted run shows its script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import attempt, make_run

from prover.api import default_run_dir
from prover.cli import build_parser, main
from prover.eval.report import benchmark_label, fit_title, render_report, run_title
from prover.commands.eval import build_config
from prover.eval.store import DEFAULT_MODEL, RunInfo, model_label


def test_python_dash_m_prover_runs_the_cli(tmp_path: Path) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "prover", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for command in ("eval", "report", "compare", "collect", "data"):
        assert command in help_text
    run = make_run(tmp_path / "run", [attempt("p0", 0, proved=True)], passes=1, n=1)
    report = subprocess.run(
        [sys.executable, "-m", "prover", "report", str(run)], capture_output=True, text=True, timeout=60
    )
    assert report.returncode == 0 and "solved 1/1" in report.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "prover", "report", str(tmp_path / "none")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_sampling_flags_set_the_sampler_and_the_tactic_search(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["eval", "jsonl:x.jsonl", "--temperature", "0.7", "--top-p", "0.9", "--max-tokens", "512"]
    )
    config = build_config(args)
    assert (config.sampler.temperature, config.sampler.top_p, config.sampler.max_tokens) == (0.7, 0.9, 512)
    assert (config.bfs.temperature, config.bfs.max_tokens) == (0.7, 512)
    untouched = build_config(build_parser().parse_args(["eval", "jsonl:x.jsonl"]))
    assert (untouched.sampler.temperature, untouched.sampler.max_tokens, untouched.bfs.max_tokens) == (1.0, None, 256)


def test_bad_sampling_flags_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "jsonl:x.jsonl", "--top-p", "1.5", "--out", str(tmp_path / "run")]) == 2
    assert "top_p" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_scripted_run_shows_its_script_not_the_default_model(tmp_path: Path) -> None:
    script = tmp_path / "gens.jsonl"
    overrides = {"sampler.backend": "scripted", "sampler.script": script, "sampler.model": DEFAULT_MODEL}
    run = make_run(tmp_path / "run", [attempt("p0", 0, proved=True)], passes=1, n=1, **overrides)
    summary = render_report(run)
    assert summary.model == "scripted: gens.jsonl"
    report = (run / "report.md").read_text()
    assert report.startswith("# minif2f — scripted: gens.jsonl\n")
    assert DEFAULT_MODEL not in report.split("## Run")[0]
    assert "- model: scripted: gens.jsonl" in report
    info = RunInfo.model_validate_json((run / "run.json").read_text())
    assert info.model == DEFAULT_MODEL  # what the config said is still recorded (resume checks it)
    assert model_label("scripted", "org/replayed-model", script) == "org/replayed-model (scripted: gens.jsonl)"
    assert model_label("vllm", "org/m", None) == "org/m"

    from prover.config import ProverConfig

    config = ProverConfig.load(user_defaults=False).with_overrides({**overrides, "eval.benchmark": "minif2f"})
    assert default_run_dir(config).name.startswith("minif2f-scripted_gens.jsonl-")


def test_report_title_is_the_plot_title_and_fits_the_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    long_bench = "jsonl:/data/users/someone/projects/benchmarks/very-long-folder-name/my_problem_set_v3.jsonl"
    long_model = "organisation-with-a-long-name/Some-Prover-Model-70B-Instruct-RL-step-12000-final"
    assert benchmark_label(long_bench) == "jsonl:very-long-folder-name/my_problem_set_v3.jsonl"
    assert benchmark_label("hf:AI-MO/minif2f_test:train") == "hf:AI-MO/minif2f_test:train"
    title = run_title(long_bench, long_model)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        fit_title(fig, ax, title)
        box = ax.title.get_window_extent(fig.canvas.get_renderer())
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
        assert "".join(ax.title.get_text().split()) == "".join(title.split())  # wrapped, nothing lost
    finally:
        plt.close(fig)

    run = make_run(tmp_path / "run", [attempt("p0", 0)], passes=1, n=1,
                   **{"eval.benchmark": long_bench, "sampler.model": long_model})
    render_report(run)
    assert (run / "report.md").read_text().splitlines()[0] == f"# {title}"
    assert json.loads((run / "summary.json").read_text())["model"] == long_model
