"""Render a run directory into summary.json, report.md and a pass@k plot; `prover report DIR`.

Everything is recomputed from `run.json` + `attempts.jsonl`, so a report can be re-rendered at
any time, also while a run is still going or after it was killed.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from prover.errors import RunError
from prover.eval.metrics import Summary, outcomes, summarize
from prover.eval.store import RECORDED_AT, ResultsStore, RunInfo, read_events
from prover.types import Attempt

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PLOT_FILE = "passk.png"
MAX_PROOF_LINES = 60


def wall_seconds(run_dir: Path, attempts: list[Attempt]) -> float:
    """Sum over sessions (open/resume events) of the time until the session's last record."""
    events = read_events(run_dir)
    starts = sorted(e["t"] for e in events if e.get("event") in ("open", "resume") and "t" in e)
    if not starts:
        return 0.0
    stamps = [e["t"] for e in events if "t" in e]
    stamps += [a.model_extra[RECORDED_AT] for a in attempts if a.model_extra and RECORDED_AT in a.model_extra]
    total = 0.0
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else float("inf")
        inside = [t for t in stamps if start <= t < stop]
        total += max(inside, default=start) - start
    return total


def compute_summary(store: ResultsStore) -> Summary:
    info = store.info
    attempts = store.attempts()
    return summarize(
        attempts,
        problems=info.problems,
        categories=info.categories,
        budget=info.passes,
        wall_seconds=wall_seconds(store.run_dir, attempts),
        benchmark=info.benchmark,
        model=info.model_label,
        strategy=info.strategy,
    )


def render_report(run_dir: Path | str) -> Summary:
    """Re-render summary.json, report.md and passk.png of a run directory; returns the summary.

    Raises:
        RunError: the directory is missing or holds no run.
    """
    run_dir = Path(run_dir)
    store = ResultsStore.read(run_dir)
    summary = compute_summary(store)
    try:
        (run_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (run_dir / REPORT_FILE).write_text(markdown_report(summary, store), encoding="utf-8")
        plot_pass_at_k(summary, run_dir / PLOT_FILE)
    except OSError as exc:
        raise RunError(
            f"cannot write the report of {run_dir}: {exc.strerror or exc}; the attempts are intact, "
            f"re-render it with `prover report {run_dir}` once the disk is writable"
        ) from exc
    return summary


# ---------------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def benchmark_label(benchmark: str) -> str:
    """A benchmark name short enough for titles: user files keep their last two path parts
    (`jsonl:/data/x/mine.jsonl` -> `jsonl:x/mine.jsonl`)."""
    kind, sep, where = benchmark.partition(":")
    if not sep or kind not in ("jsonl", "lean", "leandojo") or "/" not in where:
        return benchmark
    return f"{kind}:{'/'.join(Path(where.rstrip('/')).parts[-2:])}"


def run_title(benchmark: str, model: str) -> str:
    """The title of a run's report and of its plot: what was proved, by what."""
    return f"{benchmark_label(benchmark)} — {model}"


def markdown_report(summary: Summary, store: ResultsStore) -> str:
    info = store.info
    lines = [f"# {run_title(info.benchmark, summary.model)}", ""]
    lines += [
        f"**Solved {summary.solved} / {summary.problems}** "
        f"({_pct(summary.solved / summary.problems) if summary.problems else 'n/a'}) "
        f"with a budget of {summary.budget} sample(s) per problem.",
        "",
        "## pass@k",
        "",
        *_lower_bound_note(summary),
        "| k | pass@k (unbiased) | solved by first k samples |",
        "|---:|---:|---:|",
    ]
    at_least = "≥ " if summary.pass_at_k_is_lower_bound else ""
    for k, value in summary.pass_at_k.items():
        lines.append(f"| {k} | {at_least}{_pct(value)} | {at_least}{summary.any_at_k[k]} / {summary.problems} |")
    lines.append("")
    if summary.per_category:
        budget = str(summary.budget)
        lines += [
            "## Per category",
            "",
            f"| category | problems | solved | pass@1 | pass@{budget} |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, cat in summary.per_category.items():
            lines.append(
                f"| {name} | {cat.problems} | {cat.solved} | {_pct(cat.pass_at_k['1'])} "
                f"| {_pct(cat.pass_at_k[budget])} |"
            )
        lines.append("")
    lines += _totals(summary)
    lines += _solved_section(store)
    lines += _metadata(info)
    return "\n".join(lines) + "\n"


def errors_line(summary: Summary) -> str:
    """"N attempts ended in infrastructure errors ..." ("" when none did)."""
    if not summary.errors:
        return ""
    return (
        f"{summary.errors} attempt(s) ended in infrastructure errors (crash, out of memory, lost worker); "
        "they count as unsolved, so pass@k is a lower bound. `prover eval --resume` re-checks them."
    )


def _lower_bound_note(summary: Summary) -> list[str]:
    line = errors_line(summary)
    return [f"**Lower bound.** {line}", ""] if line else []


def _totals(summary: Summary) -> list[str]:
    rows = [
        ("problems attempted", f"{summary.attempted_problems} / {summary.problems}"),
        ("attempts recorded", summary.attempts),
        ("Lean checks", summary.checks),
        ("checks saved by dedupe", summary.dedupe_saved),
        ("verdict cache hits", summary.cache_hits),
        ("no proof extracted", summary.extraction_failures),
        ("infrastructure errors (not failures)", summary.errors),
        ("error attempts re-checked or redone", summary.errors_retried),
        ("checks retried after a crash", summary.check_retries),
        ("prompt tokens", summary.tokens.get("prompt", 0)),
        ("completion tokens", summary.tokens.get("completion", 0)),
        ("Lean seconds", f"{summary.lean_seconds:.1f}"),
        ("check seconds", f"{summary.check_seconds:.1f}"),
        ("generation seconds", f"{summary.gen_seconds:.1f}"),
        ("wall seconds", f"{summary.wall_seconds:.1f}"),
    ]
    rows += [
        (f"{kind} attempts (proved)", f"{count} ({summary.nested_proved.get(kind, 0)})")
        for kind, count in summary.nested.items()
    ]
    rows += list(summary.tallies.items())
    rows += [(f"{name} (max)", value) for name, value in summary.peaks.items()]
    lines = ["## Totals", "", "| | |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    if summary.verdicts:
        lines += ["", "Verdicts: " + ", ".join(f"{rule} {count}" for rule, count in summary.verdicts.items())]
    return [*lines, ""]


def _solved_section(store: ResultsStore) -> list[str]:
    per_problem = outcomes(store.attempts(), store.info.problems, store.info.categories)
    solved = [o for o in per_problem.values() if o.proving is not None]
    lines = ["## Solved problems", ""]
    if not solved:
        return [*lines, "None.", ""]
    for outcome in sorted(solved, key=lambda o: o.name):
        attempt = outcome.proving
        assert attempt is not None
        proof = (attempt.proof or "").strip("\n")
        proof_lines = proof.splitlines()
        if len(proof_lines) > MAX_PROOF_LINES:
            proof = "\n".join(proof_lines[:MAX_PROOF_LINES] + ["-- ... (truncated; full proof in attempts.jsonl)"])
        lines += [
            f"### {outcome.name}",
            "",
            f"sample {attempt.sample_index}, round {attempt.round} "
            f"({outcome.c} of {outcome.n} samples proved it)",
            "",
            "```lean",
            proof,
            "```",
            "",
        ]
    return lines


def _metadata(info: RunInfo) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in info.versions.items() if version)
    rows: list[tuple[str, Any]] = [
        ("benchmark", info.benchmark + (f" ({info.split})" if info.split else "")),
        ("model", info.model_label),
        ("strategy", info.strategy),
        ("passes", info.passes),
        ("strategy settings", ", ".join(f"{k}={v}" for k, v in info.strategy_settings.items()) or "defaults"),
        ("Lean", info.lean_version or "unknown"),
        ("REPL", info.repl_version or "unknown"),
        ("versions", versions),
        ("created", info.created),
        ("sessions", len(info.sessions)),
        ("command", " ".join(info.command)),
    ]
    return ["## Run", "", *(f"- {name}: {value}" for name, value in rows), ""]


# ---------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------


def plot_pass_at_k(summary: Summary, path: Path) -> None:
    """pass@k (unbiased) and any-of-first-k against k on a log2 axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [int(k) for k in summary.pass_at_k]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        ax.plot(ks, [100 * v for v in summary.pass_at_k.values()], marker="o", label="pass@k (unbiased)")
        if summary.problems:
            ax.plot(
                ks,
                [100 * v / summary.problems for v in summary.any_at_k.values()],
                marker="s",
                linestyle="--",
                label="solved by first k samples",
            )
        if len(ks) > 1:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("k (samples per problem)")
        ax.set_ylabel("% of problems")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fit_title(fig, ax, run_title(summary.benchmark, summary.model))
        fig.savefig(path)
    finally:
        plt.close(fig)


TITLE_WIDTH = 60
"""Characters per title line before wrapping (fits a 6-inch figure at the default font size)."""


def fit_title(fig: Any, ax: Any, title: str) -> None:
    """Set `title`, one line if it is short, else its ` — ` parts on their own lines (wrapped),
    and shrink the font until it fits the figure."""
    if len(title) <= TITLE_WIDTH:
        lines = [title]
    else:
        head, sep, tail = title.partition(" — ")
        parts = [head, sep.strip() + " " + tail] if sep else [title]
        lines = [line for part in parts for line in textwrap.wrap(part, width=TITLE_WIDTH, break_on_hyphens=False)]
    text = ax.set_title("\n".join(lines[:4]))
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    while text.get_fontsize() > 6:
        box = text.get_window_extent(renderer)
        if box.x0 >= figure_box.x0 and box.x1 <= figure_box.x1 and box.y1 <= figure_box.y1:
            return
        text.set_fontsize(text.get_fontsize() - 1)
        fig.tight_layout()


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def register_report(subparsers: argparse._SubParsersAction) -> None:
    """Add `prover report DIR`."""
    parser = subparsers.add_parser(
        "report",
        help="re-render summary.json, report.md and the pass@k plot of a run directory",
        description="Recompute pass@k and totals from run.json + attempts.jsonl of a run directory.",
    )
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="run directory (the --out of prover eval)")
    parser.add_argument("--json", action="store_true", help="print summary.json instead of a short summary")
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    summary = render_report(args.run_dir)
    if args.json:
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        print(short_summary(summary, args.run_dir))
    return 0


def short_summary(summary: Summary, run_dir: Path) -> str:
    at_least = ">=" if summary.pass_at_k_is_lower_bound else "="
    rates = "  ".join(f"pass@{k}{at_least}{_pct(v)}" for k, v in summary.pass_at_k.items())
    errors = f"{errors_line(summary)}\n" if summary.errors else ""
    return (
        f"{summary.benchmark}: solved {summary.solved}/{summary.problems}  {rates}\n"
        f"attempts={summary.attempts} checks={summary.checks} dedupe_saved={summary.dedupe_saved} "
        f"errors={summary.errors} wall={summary.wall_seconds:.1f}s\n"
        f"{errors}"
        f"report: {run_dir / REPORT_FILE}"
    )
