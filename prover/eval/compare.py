"""Compare runs of one benchmark: is model B better than model A, and on which problems?

`compare_runs(run_dirs)` reads each run directory (like `prover report`, from `run.json` +
`attempts.jsonl` alone) and computes, over the problems every run has:

- pass@k side by side for every k up to the largest budget (a run has no value beyond its own);
- the difference of each run to the first (the baseline) with a paired bootstrap interval:
  problems are resampled with replacement and the mean per-problem pass@k difference of each
  resample gives the interval, so a gain that a few lucky problems explain shows as uncertain;
- the problems each run solved and no other run did;
- per-category pass@k at the largest k every run reached, with the difference to the baseline.

`write_comparison` renders `compare.md` and `compare.png` (pass@k curves overlaid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from prover.errors import RunError
from prover.eval.metrics import ProblemOutcome, k_values, outcomes, pass_at_k
from prover.eval.report import benchmark_label, fit_title
from prover.eval.store import ResultsStore

COMPARE_MD = "compare.md"
COMPARE_PNG = "compare.png"
BOOTSTRAP_CHUNK = 500


class RunColumn(BaseModel):
    """One compared run."""

    run_dir: Path
    label: str
    """Short name in tables (the run directory's name, made unique)."""
    model: str
    budget: int
    problems: int
    """Problems of the run (before restricting to the common ones)."""
    pass_at_k: dict[str, float | None]
    """k -> pass@k over the compared problems; None for k beyond the run's budget."""
    solved: int
    """Compared problems the run solved."""


class PassDelta(BaseModel):
    """pass@k of a run minus the baseline's, with a paired bootstrap interval."""

    k: int
    delta: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no clear difference"


class CategoryRow(BaseModel):
    category: str
    problems: int
    pass_at_k: list[float]
    """Per run, at `Comparison.common_k`."""


class Comparison(BaseModel):
    """Everything `compare.md` shows."""

    benchmark: str
    split: str | None
    runs: list[RunColumn]
    problems: list[str]
    """Problems every run has (the comparison is over these)."""
    ks: list[int]
    common_k: int
    """The largest k every run reached (min budget): deltas and categories use k <= this."""
    deltas: dict[str, list[PassDelta]] = Field(default_factory=dict)
    """Run label (every run but the baseline) -> one entry per k <= common_k."""
    only_solved: dict[str, list[str]] = Field(default_factory=dict)
    """Run label -> compared problems that only this run solved."""
    categories: list[CategoryRow] = Field(default_factory=list)
    bootstrap: int
    confidence: float
    seed: int


# ---------------------------------------------------------------------------------------------
# Computing
# ---------------------------------------------------------------------------------------------


def _labels(run_dirs: Sequence[Path]) -> list[str]:
    """Run directory names, with parent folders added until they are unique."""
    depth = 1
    while True:
        labels = ["/".join(Path(d).resolve().parts[-depth:]) for d in run_dirs]
        if len(set(labels)) == len(labels) or depth > 8:
            return labels
        depth += 1


def _problem_pass(outcome: ProblemOutcome, k: int) -> float:
    """A problem's pass@k (0 for a problem without attempts, as in the run's own summary)."""
    return pass_at_k(outcome.n, outcome.c, k) if outcome.n else 0.0


def compare_runs(
    run_dirs: Sequence[Path | str], *, bootstrap: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """Compare runs of one benchmark and split; the first run is the baseline.

    Raises:
        RunError: fewer than two runs, a directory without a run, runs of different benchmarks
            or splits, or no problem that all runs share.
    """
    if len(run_dirs) < 2:
        raise RunError("prover compare needs at least two run directories")
    if bootstrap < 1 or not 0 < confidence < 1:
        raise RunError(f"bootstrap must be >= 1 and confidence in (0, 1), got {bootstrap} and {confidence}")
    dirs = [Path(d) for d in run_dirs]
    stores = [ResultsStore.read(d) for d in dirs]
    _same_benchmark(stores, dirs)
    per_run = [outcomes(s.attempts(), s.info.problems, s.info.categories) for s in stores]
    common = [name for name in stores[0].info.problems if all(name in o for o in per_run)]
    if not common:
        raise RunError("the runs share no problem: nothing to compare")
    budgets = [s.info.passes for s in stores]
    ks = k_values(max(budgets))
    common_k = min(budgets)
    labels = _labels(dirs)
    columns = []
    for store, run, budget, label, directory in zip(stores, per_run, budgets, labels, dirs, strict=True):
        rates = {str(k): float(np.mean([_problem_pass(run[n], k) for n in common])) if k <= budget else None for k in ks}
        columns.append(
            RunColumn(
                run_dir=directory, label=label, model=store.info.model_label, budget=budget,
                problems=len(store.info.problems), pass_at_k=rates, solved=sum(run[n].solved for n in common),
            )
        )
    compared_ks = [k for k in ks if k <= common_k]
    deltas = {
        labels[i]: _bootstrap_deltas(per_run[0], per_run[i], common, compared_ks, bootstrap, confidence, seed)
        for i in range(1, len(stores))
    }
    return Comparison(
        benchmark=stores[0].info.benchmark,
        split=stores[0].info.split,
        runs=columns,
        problems=common,
        ks=ks,
        common_k=common_k,
        deltas=deltas,
        only_solved=_only_solved(per_run, common, labels),
        categories=_categories(per_run, common, common_k),
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )


def _same_benchmark(stores: Sequence[ResultsStore], dirs: Sequence[Path]) -> None:
    first = stores[0].info
    for store, directory in zip(stores[1:], dirs[1:], strict=True):
        info = store.info
        if (info.benchmark, info.split) != (first.benchmark, first.split):
            raise RunError(
                f"cannot compare runs of different benchmarks: {dirs[0]} ran {first.benchmark} "
                f"(split {first.split or 'default'}), {directory} ran {info.benchmark} (split {info.split or 'default'})"
            )


def _bootstrap_deltas(
    base: dict[str, ProblemOutcome],
    other: dict[str, ProblemOutcome],
    common: Sequence[str],
    ks: Sequence[int],
    rounds: int,
    confidence: float,
    seed: int,
) -> list[PassDelta]:
    """Mean per-problem pass@k difference and its percentile interval over `rounds` resamples."""
    diffs = np.array([[_problem_pass(other[n], k) - _problem_pass(base[n], k) for n in common] for k in ks])
    rng = np.random.default_rng(seed)
    means = np.empty((len(ks), rounds))
    done = 0
    while done < rounds:
        size = min(BOOTSTRAP_CHUNK, rounds - done)
        picks = rng.integers(0, len(common), size=(size, len(common)))
        means[:, done : done + size] = diffs[:, picks].mean(axis=2)
        done += size
    tail = (1 - confidence) / 2
    lows, highs = np.quantile(means, [tail, 1 - tail], axis=1)
    return [
        PassDelta(k=k, delta=float(diffs[i].mean()), low=float(lows[i]), high=float(highs[i]))
        for i, k in enumerate(ks)
    ]


def _only_solved(per_run: Sequence[dict[str, ProblemOutcome]], common: Sequence[str], labels: Sequence[str]) -> dict[str, list[str]]:
    only: dict[str, list[str]] = {}
    for i, label in enumerate(labels):
        only[label] = sorted(
            n for n in common if per_run[i][n].solved and not any(run[n].solved for j, run in enumerate(per_run) if j != i)
        )
    return only


def _categories(per_run: Sequence[dict[str, ProblemOutcome]], common: Sequence[str], k: int) -> list[CategoryRow]:
    groups: dict[str, list[str]] = {}
    for name in common:
        category = per_run[0][name].category
        if category:
            groups.setdefault(category, []).append(name)
    return [
        CategoryRow(
            category=category,
            problems=len(names),
            pass_at_k=[float(np.mean([_problem_pass(run[n], k) for n in names])) for run in per_run],
        )
        for category, names in sorted(groups.items())
    ]


# ---------------------------------------------------------------------------------------------
# compare.md + compare.png
# ---------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _points(value: float) -> str:
    """A difference of rates in percentage points, signed."""
    return f"{100 * value:+.1f} pp"


def markdown_comparison(comparison: Comparison) -> str:
    runs = comparison.runs
    base = runs[0].label
    split = f" ({comparison.split})" if comparison.split else ""
    lines = [f"# Comparison: {benchmark_label(comparison.benchmark)}{split}", ""]
    lines += ["| run | model | samples per problem | problems | solved (compared) |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r.label} | {r.model} | {r.budget} | {r.problems} | {r.solved} |" for r in runs]
    lines += ["", f"Compared on the {len(comparison.problems)} problem(s) every run has; the baseline is {base}.", ""]
    lines += ["## pass@k", ""]
    others = runs[1:]
    header = "| k | " + " | ".join(r.label for r in runs) + " | " + " | ".join(f"Δ {r.label}" for r in others) + " |"
    lines += [header, "|---:|" + "---:|" * (len(runs) + len(others))]
    for k in comparison.ks:
        cells = [_pct(r.pass_at_k[str(k)]) for r in runs]
        delta_cells = [_delta_cell(comparison, r.label, k) for r in others]
        lines.append(f"| {k} | " + " | ".join(cells) + " | " + " | ".join(delta_cells) + " |")
    lines += ["", f"Δ is pass@k minus the baseline's, in percentage points, with its {comparison.confidence:.0%} "
              f"paired bootstrap interval ({comparison.bootstrap} resamples of the problems, seed {comparison.seed}).", ""]
    lines += ["## Is the difference real?", ""]
    for run in others:
        shown = comparison.deltas[run.label]
        for delta in [shown[0], *shown[-1:]] if len(shown) > 1 else shown:
            lines.append(
                f"- {run.label} vs {base} at pass@{delta.k}: {_points(delta.delta)} "
                f"[{_points(delta.low)}, {_points(delta.high)}]: **{delta.verdict}**"
                + ("" if delta.verdict == "no clear difference" else " (the interval excludes 0)")
            )
    lines += ["", "## Solved by one run only", ""]
    for run in runs:
        names = comparison.only_solved[run.label]
        lines.append(f"- {run.label} ({len(names)}): " + (", ".join(names) if names else "none"))
    if comparison.categories:
        k = comparison.common_k
        lines += ["", f"## Per category (pass@{k})", ""]
        lines += [
            "| category | problems | " + " | ".join(r.label for r in runs) + " | "
            + " | ".join(f"Δ {r.label}" for r in others) + " |",
            "|---|---:|" + "---:|" * (len(runs) + len(others)),
        ]
        for row in comparison.categories:
            deltas = [_points(v - row.pass_at_k[0]) for v in row.pass_at_k[1:]]
            lines.append(
                f"| {row.category} | {row.problems} | " + " | ".join(_pct(v) for v in row.pass_at_k) + " | "
                + " | ".join(deltas) + " |"
            )
    return "\n".join(lines) + "\n"


def _delta_cell(comparison: Comparison, label: str, k: int) -> str:
    found = next((d for d in comparison.deltas[label] if d.k == k), None)
    if found is None:
        return "—"
    return f"{_points(found.delta)} [{_points(found.low)}, {_points(found.high)}]"


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Every run's pass@k curve on one log2 axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for run in comparison.runs:
            points = [(k, v) for k, v in ((int(k), v) for k, v in run.pass_at_k.items()) if v is not None]
            ax.plot([k for k, _ in points], [100 * v for _, v in points], marker="o", label=f"{run.label}: {run.model}"[:60])
        if len(comparison.ks) > 1:
            ax.set_xscale("log", base=2)
        ax.set_xticks(comparison.ks, [str(k) for k in comparison.ks])
        ax.set_xlabel("k (samples per problem)")
        ax.set_ylabel("pass@k (% of problems)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        fit_title(fig, ax, f"{benchmark_label(comparison.benchmark)}: pass@k of {len(comparison.runs)} runs")
        fig.savefig(path)
    finally:
        plt.close(fig)


def write_comparison(comparison: Comparison, out_dir: Path | str) -> tuple[Path, Path]:
    """Write `compare.md` and `compare.png` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output folder {out}: {exc}") from exc
    markdown, plot = out / COMPARE_MD, out / COMPARE_PNG
    markdown.write_text(markdown_comparison(comparison), encoding="utf-8")
    plot_comparison(comparison, plot)
    return markdown, plot
