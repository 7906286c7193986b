"""Reading LeanDojo Benchmark 4 statements from sources: does the cost per theorem stay flat as
files grow? (Mathlib files hold hundreds of theorems; a reader that re-lexes the whole file per
theorem would be quadratic.)

Builds a synthetic traced repository (no Lean) with files of `--small` and `--large` theorems and
times `load_leandojo` on each (CPU time, best of `--repeat`: the machine is shared). Ideal: the
per-theorem cost does not depend on the file size.
Prints on the last line:
    per_theorem_cost_ratio=<large-file cost / small-file cost per theorem> theorems_per_s=<large run>
Target: per_theorem_cost_ratio close to 1 (<= 1.5). What growth remains is copying each problem's
header (its file prefix), which every problem must own.

    python benchmarks/bench_leandojo.py [--small 100] [--large 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from prover.datasets.leandojo import load_leandojo

URL = "https://github.com/bench/Synthetic"
COMMIT = "0" * 40
THEOREM = """/-- Statement {i}. -/
@[simp]
theorem t{i} (a b : ℕ) (h : a ≤ b) : let c := a + {i}; c ≤ b + {i} := by
  intro c
  -- a comment with := and theorem inside
  simp only [c]
  omega

"""


def build(root: Path, count: int) -> Path:
    """One source file with `count` theorems and its LeanDojo split file."""
    head = "import Mathlib.Tactic\n\nnamespace Bench\n\n"
    parts, entries = [head], []
    offset = len(head)
    for i in range(count):
        block = THEOREM.format(i=i)
        start = offset + block.index("theorem")
        end = offset + block.index("  omega") + len("  omega")
        parts.append(block)
        offset += len(block)
        entries.append((start, end, i))
    text = "".join(parts)
    (root / "Bench").mkdir(parents=True, exist_ok=True)
    (root / "Bench" / "Big.lean").write_text(text, encoding="utf-8")

    def pos(at: int) -> list[int]:
        return [text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1]

    rows = [
        {"url": URL, "commit": COMMIT, "file_path": "Bench/Big.lean", "full_name": f"Bench.t{i}",
         "start": pos(s), "end": pos(e), "traced_tactics": []}
        for s, e, i in entries
    ]
    split = root / "test.json"
    split.write_text(json.dumps(rows), encoding="utf-8")
    return split


def seconds_per_theorem(count: int, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = build(root, count)
        best = float("inf")
        for _ in range(repeat):
            started = time.process_time()
            problems = load_leandojo(split, source_dir=root)
            best = min(best, time.process_time() - started)
        assert len(problems) == count and problems[-1].formal_statement.endswith(f"c ≤ b + {count - 1} := by")
        return best / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    small = seconds_per_theorem(args.small, args.repeat)
    large = seconds_per_theorem(args.large, args.repeat)
    print(f"small file: {args.small} theorems, {1e3 * small:.2f} ms/theorem")
    print(f"large file: {args.large} theorems, {1e3 * large:.2f} ms/theorem")
    print(f"per_theorem_cost_ratio={large / small:.2f} theorems_per_s={1 / large:.0f}")


if __name__ == "__main__":
    main()
