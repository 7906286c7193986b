"""`prover check FILE.jsonl` and `prover setup lean`: thin CLI layers over the checker and setup.

`prover check` reads one problem per line (the schema of `../shared/datasets/README.md`) plus a
field `proof` (a tactic body, or complete Lean code containing the theorem), checks them
concurrently through the pool, and writes one JSON line per input to stdout, in input order:

    {"line": 3, "name": "...", "proved": false, "status": "rejected", "rule": "preflight:sorry",
     "stage": "preflight", "detail": "...", "messages": [...], "axioms": null, "lean_seconds": 0.0, "cached": false,
     "tries": 1}

A check whose REPL crashed (or was killed as out of memory) is run again on a fresh worker,
`--retries` times (`tries` counts them); only a proof that fails that way every time ends as
`error`.

Malformed lines (not UTF-8, not JSON, no `proof`, no declaration in the statement) get
`"status": "error", "rule": "malformed_input"` (and a message on stderr naming the line); the rest
are still checked. Input is read in a thread, so results stream out while a slow producer is still
writing to stdin. Exit code: 0 when every line was checked (proved or not), 1 when a line was
malformed or a check ended with status `error` (out_of_memory, crash, infrastructure), 2 for usage
errors.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shlex
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from prover.commands.arguments import count
from prover.config import ProverConfig
from prover.errors import DataError
from prover.lean_env.checker import ProofChecker
from prover.lean_env.launcher import ReplLauncher
from prover.lean_env.pool import LeanPool
from prover.lean_env.setup import add_setup_lean_arguments, run_setup_lean
from prover.lean_env.verdict_cache import VerdictCache
from prover.types import CheckStatus, Problem, Verdict

PROGRESS_EVERY = 5.0
"""Seconds between progress lines on stderr (only for runs that last longer than that)."""
READ_AHEAD = 256
"""Input lines read ahead of the checks (bounds memory on huge inputs)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check` and `setup lean` to the `prover` command."""
    check = subparsers.add_parser(
        "check",
        help="check proofs from a JSONL file (one problem + `proof` per line)",
        description="Check each line's `proof` against its own statement with the sound checker; "
        "one JSON result per input line on stdout (input order), a summary on stderr.",
    )
    check.add_argument("file", help="JSONL file of problems with a `proof` field (`-` = stdin)")
    check.add_argument("--repl-cmd", metavar="CMD", help="command line that starts one REPL process (shell-quoted)")
    check.add_argument("--workspace", type=Path, metavar="DIR", help="Lean workspace (the REPL's working directory)")
    check.add_argument("--workers", type=count(1), metavar="N", help="REPL processes")
    check.add_argument("--timeout", type=float, metavar="S", help="wall-clock seconds per REPL request")
    check.add_argument("--retries", type=count(0), metavar="N",
                       help="re-runs of a check on a fresh worker after a crash, OOM kill or infrastructure "
                       "failure before it becomes the verdict (default 2)")
    check.add_argument("--allow-axiom", action="append", default=[], metavar="NAME",
                       help="also allow this axiom (repeatable), e.g. SMT_VERIF for LeanGeo")
    check.add_argument("--config", type=Path, metavar="FILE", help="settings file (.toml/.yaml)")
    check.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                       help="use the verdict cache (default: the config's cache.enabled)")
    check.add_argument("--with-code", action="store_true", help="include the assembled Lean code in each result")
    check.set_defaults(run=run_check)

    setup = subparsers.add_parser("setup", help="set up external tools")
    targets = setup.add_subparsers(dest="target", required=True, metavar="TARGET")
    lean = targets.add_parser(
        "lean",
        help="create a Lean workspace with Mathlib and the REPL, and record it in the user config",
        description="Write a Lake workspace (toolchain, Mathlib, leanprover-community/repl at matching "
        "versions), build it with elan/lake, and record it in the user config file.",
    )
    add_setup_lean_arguments(lean)
    lean.set_defaults(run=run_setup_lean)


# ---------------------------------------------------------------------------------------------
# prover check
# ---------------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    config = _config(args)
    ReplLauncher.require(config.lean)
    source = sys.stdin.buffer if args.file == "-" else _open(Path(args.file))
    try:
        return asyncio.run(_check_file(config, source, args))
    finally:
        if source is not sys.stdin.buffer:
            source.close()


def _config(args: argparse.Namespace) -> ProverConfig:
    config = ProverConfig.load(args.config)
    overrides: dict[str, Any] = {
        "lean.repl_cmd": shlex.split(args.repl_cmd) if args.repl_cmd else None,
        "lean.workspace": args.workspace,
        "lean.workers": args.workers,
        "lean.timeout": args.timeout,
        "lean.retries": args.retries,
        "cache.enabled": args.cache,
    }
    if args.allow_axiom:
        overrides["checker.extra_allowed_axioms"] = (*config.checker.extra_allowed_axioms, *args.allow_axiom)
    return config.with_overrides(overrides)


def _open(path: Path) -> BinaryIO:
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    return path.open("rb")


async def _input_lines(source: BinaryIO) -> AsyncIterator[tuple[int, bytes]]:
    """(line number, raw line) of every non-blank line, read in a daemon thread: a slow producer
    on stdin never stalls the event loop (and the REPL requests timed on it)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(maxsize=READ_AHEAD)

    def pump() -> None:
        try:
            for raw in source:
                asyncio.run_coroutine_threadsafe(queue.put(raw), loop).result()
            end: bytes | BaseException = b""
        except BaseException as exc:  # noqa: BLE001 - handed over to the event loop and re-raised there
            end = exc
        asyncio.run_coroutine_threadsafe(queue.put(end), loop).result()

    threading.Thread(target=pump, name="prover-check-input", daemon=True).start()
    number = 0
    while True:
        raw = await queue.get()
        if isinstance(raw, BaseException):
            raise raw
        if not raw:
            return
        number += 1
        if raw.strip():
            yield number, raw


def _parse_line(number: int, raw: bytes) -> tuple[Problem | None, str, str]:
    """(problem or None, proof, error) for one input line."""
    try:
        obj = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
    except UnicodeDecodeError as exc:
        return None, "", f"line {number}: not UTF-8 (byte {exc.start + 1})"
    except json.JSONDecodeError as exc:
        return None, "", f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(obj, dict):
        return None, "", f"line {number}: expected a JSON object"
    proof = obj.get("proof")
    if not isinstance(proof, str):
        return None, "", f"line {number}: missing string field `proof`"
    try:
        problem = Problem.model_validate(obj)
        problem.theorem_name  # noqa: B018 - validates the statement has a declaration name
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()
        return None, "", f"line {number}: not a problem ({' '.join(first[:3])})"
    return problem, proof, ""


def _result(number: int, problem: Problem | None, verdict: Verdict, with_code: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "line": number,
        "name": problem.name if problem else None,
        "proved": verdict.proved,
        "status": verdict.status.value,
        "rule": verdict.rule,
        "stage": verdict.stage,
        "detail": verdict.detail,
        "messages": [m.model_dump(mode="json", by_alias=True) for m in verdict.messages],
        "axioms": list(verdict.axioms) if verdict.axioms is not None else None,
        "lean_seconds": round(verdict.lean_seconds, 4),
        "cached": verdict.cached,
        "tries": verdict.tries,
    }
    if with_code:
        out["code"] = verdict.code
    return out


class _Progress:
    """Counts by status; prints a progress line every PROGRESS_EVERY seconds and a summary."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.started = time.monotonic()
        self.last = self.started
        self.done = 0

    def add(self, status: str) -> None:
        self.counts[status] += 1
        self.done += 1
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            print(f"prover check: {self.done} checked, {self.counts['proved']} proved ({rate:.1f}/s)",
                  file=sys.stderr, flush=True)

    def summary(self, malformed: int) -> str:
        parts = ", ".join(f"{s.value} {self.counts[s.value]}" for s in CheckStatus)
        extra = f" ({malformed} malformed)" if malformed else ""
        return f"prover check: {self.done} lines: {parts}{extra} in {time.monotonic() - self.started:.1f} s"


_Pending = tuple[int, Problem | None, "asyncio.Future[Verdict]"]
"""(line number, problem or None, its verdict to come), in input order."""


async def _check_file(config: ProverConfig, source: BinaryIO, args: argparse.Namespace) -> int:
    """Submit every line (at most `window` ahead of the output) and write results in input order
    as soon as the earliest unfinished one is done."""
    cache = VerdictCache.from_config(config.cache)
    window = max(4 * config.lean.workers, 16)
    progress, malformed, errors = _Progress(), 0, 0
    ordered: asyncio.Queue[_Pending | BaseException | None] = asyncio.Queue(maxsize=window)
    inflight: set[asyncio.Future[Verdict]] = set()

    async def submit_all(checker: ProofChecker) -> None:
        nonlocal malformed
        try:
            async for number, raw in _input_lines(source):
                problem, proof, error = _parse_line(number, raw)
                future: asyncio.Future[Verdict]
                if problem is None:
                    malformed += 1
                    print(f"prover check: {error}", file=sys.stderr, flush=True)
                    future = asyncio.get_running_loop().create_future()
                    future.set_result(Verdict(status=CheckStatus.ERROR, rule="malformed_input", detail=error))
                else:
                    future = asyncio.ensure_future(checker.check(problem, proof))
                inflight.add(future)
                await ordered.put((number, problem, future))
        except Exception as exc:  # noqa: BLE001 - re-raised by the writer, in order
            await ordered.put(exc)
        else:
            await ordered.put(None)

    try:
        async with LeanPool(config.lean) as pool:
            reader = asyncio.create_task(submit_all(ProofChecker(pool, config.checker, cache=cache)))
            try:
                while (item := await ordered.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    number, problem, future = item
                    verdict = await future
                    inflight.discard(future)
                    print(json.dumps(_result(number, problem, verdict, args.with_code), ensure_ascii=False),
                          flush=True)
                    progress.add(verdict.status.value)
                    errors += verdict.status is CheckStatus.ERROR and verdict.rule != "malformed_input"
            finally:
                reader.cancel()
                for future in inflight:
                    future.cancel()
    finally:
        if cache is not None:
            cache.close()
    print(progress.summary(malformed), file=sys.stderr, flush=True)
    return 1 if malformed or errors else 0
