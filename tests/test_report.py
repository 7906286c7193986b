"""summary.json / report.md / passk.png rendering and the `prover report` command."""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import pytest
from eval_helpers import attempt, make_run

from prover.errors import RunError
from prover.eval.report import PLOT_FILE, REPORT_FILE, SUMMARY_FILE, register_report, render_report
from prover.eval.store import ATTEMPTS_FILE


def _prepared(tmp_path: Path) -> Path:
    """p0: proved by sample 1 of 4; p1: four failures; p2: never attempted (still counted)."""
    attempts = [attempt("p0", i, proved=(i == 1)) for i in range(4)] + [attempt("p1", i) for i in range(4)]
    attempts.append(attempt("p1", 2, duplicate_of=0).model_copy(update={"round": 1}))
    return make_run(tmp_path / "run", attempts, passes=4)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_render_writes_summary_report_and_plot(tmp_path: Path) -> None:
    run = _prepared(tmp_path)
    summary = render_report(run)
    data = json.loads((run / SUMMARY_FILE).read_text())
    assert data["problems"] == 3 and data["solved"] == 1
    # p0: n=4, c=1 -> 0.25, 0.5, 1.0; p1, p2 -> 0; averaged over 3 problems
    assert data["pass_at_k"] == pytest.approx({"1": 0.25 / 3, "2": 0.5 / 3, "4": 1 / 3})
    assert data["any_at_k"] == {"1": 0, "2": 1, "4": 1}
    assert set(data["per_category"]) == {"even", "odd"}
    assert data["per_category"]["even"]["problems"] == 2  # p0 and the unattempted p2
    assert data["dedupe_saved"] == 1 and data["attempts"] == 9 and data["checks"] == 8
    assert data["tokens"] == {"prompt": 90, "completion": 45}
    assert data["wall_seconds"] >= 0 and summary.solved_names == ["p0"]
    width, height = _png_size(run / PLOT_FILE)
    assert width > 100 and height > 100


def test_report_markdown_content(tmp_path: Path) -> None:
    run = _prepared(tmp_path)
    render_report(run)
    text = (run / REPORT_FILE).read_text()
    assert "**Solved 1 / 3**" in text
    assert "| 1 | 8.3% | 0 / 3 |" in text and "| 4 | 33.3% | 1 / 3 |" in text
    assert "| even | 2 | 1 |" in text and "| odd | 1 | 0 |" in text
    assert "### p0" in text and "sample 1, round 0 (1 of 4 samples proved it)" in text
    assert "-- p0 1 0\n  simp" in text  # the proving attempt's proof
    assert "### p1" not in text
    assert "model: test/model" in text and "passes: 4" in text and "strategy settings: chunk=8, rounds=0" in text
    assert "checks saved by dedupe | 1" in text and "command: prover eval minif2f" in text


def test_rerender_is_idempotent_and_follows_new_attempts(tmp_path: Path) -> None:
    run = _prepared(tmp_path)
    first = render_report(run)
    assert render_report(run).model_dump(exclude={"wall_seconds"}) == first.model_dump(exclude={"wall_seconds"})
    line = json.dumps(attempt("p2", 0, proved=True).model_dump(mode="json"))
    with (run / ATTEMPTS_FILE).open("a") as handle:
        handle.write(line + "\n")
    assert render_report(run).solved == 2


def test_empty_run_reports_zero(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [], passes=32)
    summary = render_report(run)
    assert summary.problems == 3 and summary.solved == 0
    assert list(summary.pass_at_k) == ["1", "2", "4", "8", "16", "32"]
    assert set(summary.pass_at_k.values()) == {0.0}
    assert "None." in (run / REPORT_FILE).read_text()


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prover")
    register_report(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_report_command_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _prepared(tmp_path)
    assert _cli(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "solved 1/3" in out and "pass@1=8.3%" in out and "pass@4=33.3%" in out
    assert str(run / REPORT_FILE) in out
    assert (run / SUMMARY_FILE).exists() and (run / PLOT_FILE).exists()
    assert _cli(["report", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["solved"] == 1


def test_report_command_errors(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        _cli(["report", str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run directory"):
        _cli(["report", str(tmp_path / "empty")])


def test_through_the_real_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prover import cli

    run = _prepared(tmp_path)
    assert cli.main(["report", str(run)]) == 0
    assert "solved 1/3" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "prover: error: run directory" in capsys.readouterr().err
