"""Transient faults never change results (issue 12), on the SIMULATED REPL.

- a crash / OOM kill / infrastructure failure of a check or a tactic step is retried on a fresh
  process before it becomes the answer; a proof that crashes Lean every time still ends as `crash`;
- `prover check` and `prover eval` with a REPL that dies on every Nth request give the same
  verdicts and summary as without faults (real CLI);
- error attempts are shown apart, resume re-checks (or redoes) them and the new record supersedes
  the error; `--no-retry-errors` keeps them; pass@k with errors left is a lower bound;
- disk faults while recording: a clear error, nothing recorded is lost, resume works once the disk
  is usable again (a real full tmpfs where the test may mount one);
- bad settings (negative retries, `--pass 0`) are clear errors.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bfs_helpers import DATA as BFS_DATA
from bfs_helpers import P_ADD, P_CHAIN, SUGGESTIONS, TableSampler
from checker_helpers import PROBLEM, SCENARIO, lean_config, problem_line
from context_helpers import make_ctx
from eval_cli_helpers import EXPECTED, SCENARIO as EVAL_SCENARIO, attempts, cli, env, eval_args, run
from eval_helpers import attempt, info

from prover.config import LeanConfig, ProverConfig
from prover.errors import ConfigError, RunError
from prover.eval import store as store_module
from prover.eval.metrics import summarize
from prover.eval.pipeline import pending_problems
from prover.eval.recheck import RETRIED_ERROR, prove_problem
from prover.eval.report import markdown_report
from prover.eval.store import ATTEMPTS_FILE, ResultsStore
from prover.lean_env.checker import ProofChecker, check_many
from prover.lean_env.pool import LeanPool
from prover.lean_env.retry import RetryPolicy
from prover.lean_env.scripted_session import ScriptedLeanSession, Transition
from prover.lean_env.session import PoolLeanSession, StartOutcome, StateOrigin, StepKind
from prover.lean_env.simulated_lean import Scenario
from prover.lean_env.simulated_repl import simulated_repl_command
from prover.search.base import DoneAttempts, Strategy
from prover.search.bfs import BestFirstStrategy
from prover.types import Attempt, CheckStatus, Problem, Verdict

assert env  # a pytest fixture, used by name below

CRASH_EVERY = 7
"""Each simulated REPL process dies on reading its 7th request: a fresh process serves 6, more than
any single check needs (header, proof, trusted command, statement reference), so a retry on a
fresh worker always gets through, while a process serving several checks dies under one of them."""

HONEST = ["positivity", "nlinarith [sq_nonneg x]", "exact pow_pos h₀ 2", "linarith", "exact helper x", "norm_num"]
"""Proof bodies for checker_helpers.PROBLEM, some the scenario accepts and some Lean rejects."""


def with_faults(scenario: Path, tmp_path: Path, **faults: Any) -> Path:
    """A copy of `scenario` with `faults` added (JSON, what the simulated REPL reads)."""
    data = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    data["faults"] = {**(data.get("faults") or {}), **faults}
    return Scenario.model_validate(data).dump(tmp_path / f"{scenario.stem}-faulty.json")


def same_answer(verdict: Verdict) -> tuple[Any, ...]:
    """What must not change when only the infrastructure misbehaves."""
    return (verdict.status, verdict.rule, verdict.detail, verdict.messages, verdict.axioms, verdict.code)


# -- checks -----------------------------------------------------------------------------------


async def _check_all(scenario: Path, **lean: Any) -> tuple[list[Verdict], Any]:
    config = lean_config(scenario, workers=2, **lean)
    async with LeanPool(config) as pool:
        verdicts = await check_many(ProofChecker(pool, ProverConfig().checker), [(PROBLEM, "\n  " + b) for b in HONEST * 3],
                                    concurrency=4)
        return verdicts, pool.stats()


async def test_crashing_repl_gives_the_same_verdicts_as_a_healthy_one(tmp_path: Path) -> None:
    faulty = with_faults(SCENARIO, tmp_path, crash_every=CRASH_EVERY)
    clean, _ = await _check_all(SCENARIO)
    retried, stats = await _check_all(faulty)
    assert [same_answer(v) for v in retried] == [same_answer(v) for v in clean]
    assert stats.crashes > 0 and any(v.tries > 1 for v in retried)
    assert all(v.tries == 1 for v in clean)
    # the same faults without retries would have changed results
    unretried, _ = await _check_all(faulty, retries=0)
    assert any((v.status, v.rule) == (CheckStatus.ERROR, "crash") for v in unretried)


async def test_a_proof_that_crashes_lean_every_time_ends_as_crash_after_the_retries() -> None:
    async with LeanPool(lean_config(retries=2)) as pool:
        verdict = await ProofChecker(pool, ProverConfig().checker).check(PROBLEM, "\n  crash_the_repl")
        assert (verdict.status, verdict.rule, verdict.tries) == (CheckStatus.ERROR, "crash", 3)
        assert pool.stats().crashes == 3


async def test_timeouts_stay_verdicts_unless_configured() -> None:
    async with LeanPool(lean_config(timeout=0.4)) as pool:
        verdict = await ProofChecker(pool, ProverConfig().checker).check(PROBLEM, "\n  hang_forever_tactic")
        assert (verdict.status, verdict.tries) == (CheckStatus.TIMEOUT, 1)
    async with LeanPool(lean_config(timeout=0.4, retries=1, retry_timeouts=True)) as pool:
        verdict = await ProofChecker(pool, ProverConfig().checker).check(PROBLEM, "\n  hang_forever_tactic")
        assert (verdict.status, verdict.tries) == (CheckStatus.TIMEOUT, 2)
        assert pool.stats().timeouts == 2


def test_negative_retries_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lean\.retries[\s\S]*greater than or equal to 0"):
        ProverConfig().with_overrides({"lean.retries": -1})
    settings = tmp_path / "bad.toml"
    settings.write_text("[lean]\nretries = -3\n")
    with pytest.raises(ConfigError, match=rf"{settings}[\s\S]*lean\.retries"):
        ProverConfig.load(settings, user_defaults=False)
    with pytest.raises(ValueError, match="retries must be >= 0"):
        RetryPolicy(retries=-1)


# -- tactic steps ---------------------------------------------------------------------------------


async def _chain_twice(scenario: Path, retries: int = 2) -> tuple[list[list[StepKind]], int]:
    """Twice: a command, then P_CHAIN's four tactics as a chain. That is six requests per round, so
    with `crash_every=6` each chain's last tactic kills its process (and so does the second
    command, the old process's 6th request): the tactic is retried on a fresh process, after
    its state is rebuilt there (start + three tactics, then the retried one: five requests)."""
    config = LeanConfig(repl_cmd=simulated_repl_command(scenario), workers=1, timeout=20, rss_limit_mb=None)
    async with LeanPool(config) as pool:
        session = PoolLeanSession(pool, retry=RetryPolicy(retries=retries))
        kinds = []
        for _ in range(2):
            await session.command("", "theorem warm_up : True := by trivial")
            start = await session.start(StateOrigin.theorem(P_CHAIN))
            assert start.state is not None
            batch = await session.apply(start.state, ["step_a", "step_b", "step_c", "close"], chain=True)
            kinds.append([o.kind for o in batch.outcomes])
        return kinds, pool.stats().crashes


async def test_tactic_steps_are_retried_on_a_fresh_process(tmp_path: Path) -> None:
    faulty = with_faults(BFS_DATA / "nat.yaml", tmp_path, crash_every=6)
    proved = [StepKind.OK, StepKind.OK, StepKind.OK, StepKind.PROVED]
    kinds, crashes = await _chain_twice(faulty)
    assert kinds == [proved, proved] and crashes == 3
    kinds, _ = await _chain_twice(faulty, retries=0)
    assert StepKind.CRASH in kinds[0]


async def test_a_tactic_that_kills_lean_every_time_ends_as_crash() -> None:
    config = LeanConfig(repl_cmd=simulated_repl_command(BFS_DATA / "nat.yaml"), workers=1, timeout=20, rss_limit_mb=None)
    async with LeanPool(config) as pool:
        session = PoolLeanSession(pool, retry=RetryPolicy(retries=2))
        start = await session.start(StateOrigin.theorem(P_ADD))
        assert start.state is not None
        batch = await session.apply(start.state, ["crash_me"])
        assert [o.kind for o in batch.outcomes] == [StepKind.CRASH]
        assert pool.stats().crashes == 3


# -- prover check through the CLI ---------------------------------------------------------------


def _prover(*args: str, stdin: str | None = None, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli(), *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env=environ or dict(os.environ))


def _check_cli(path: Path, scenario: Path, *extra: str) -> tuple[list[dict[str, Any]], str, int]:
    repl = " ".join(simulated_repl_command(scenario))
    proc = _prover("check", str(path), "--repl-cmd", repl, "--workers", "2", "--no-cache", *extra)
    answers = [{k: v for k, v in json.loads(line).items() if k not in ("lean_seconds", "tries")}
               for line in proc.stdout.splitlines()]
    summary = proc.stderr.strip().splitlines()[-1].rsplit(" in ", 1)[0]  # without the time taken
    return answers, summary, proc.returncode


def test_prover_check_with_a_crashing_repl_matches_a_healthy_one(tmp_path: Path) -> None:
    path = tmp_path / "proofs.jsonl"
    path.write_text("\n".join(problem_line(PROBLEM, "\n  " + b) for b in HONEST * 2) + "\n", encoding="utf-8")
    faulty = with_faults(SCENARIO, tmp_path, crash_every=CRASH_EVERY)
    clean = _check_cli(path, SCENARIO)
    statuses = {a["status"] for a in clean[0]}
    assert clean[2] == 0 and statuses == {"proved", "failed"}, clean
    assert _check_cli(path, faulty) == clean
    answers, summary, code = _check_cli(path, faulty, "--retries", "0")
    assert code == 1 and any(a["status"] == "error" for a in answers)  # what the retries prevent


def test_bad_counts_are_refused_by_the_cli_naming_the_flag(tmp_path: Path) -> None:
    proc = _prover("check", "-", "--retries", "-1", stdin="")
    assert proc.returncode == 2 and "argument --retries: must be at least 0, got -1" in proc.stderr
    proc = _prover("eval", "minif2f", "--pass", "0", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "argument --pass: must be at least 1, got 0" in proc.stderr
    proc = _prover("eval", "minif2f", "--pass", "two", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "argument --pass: expected a whole number, got 'two'" in proc.stderr
    assert not (tmp_path / "run").exists()


# -- prover eval through the CLI: retries, error attempts, resume ---------------------------------


def _latest(out: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The answer of each slot: its highest revision."""
    latest: dict[tuple[str, int, int], dict[str, Any]] = {}
    for a in attempts(out):
        key = (a["problem"], a["round"], a["sample_index"])
        if key not in latest or a["revision"] > latest[key]["revision"]:
            latest[key] = a
    return latest


def _verdicts(out: Path) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    fields = ("status", "rule", "detail", "messages", "axioms", "code")
    return {key: tuple(str(a["verdict"][f]) for f in fields) for key, a in _latest(out).items()}


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _assert_expected(out: Path) -> None:
    summary = _summary(out)
    for key, value in EXPECTED.items():
        assert summary[key] == (pytest.approx(value) if key == "pass_at_k" else value), key
    assert summary["errors"] == 0 and not summary["pass_at_k_is_lower_bound"]


def test_prover_eval_with_a_crashing_repl_gives_the_same_summary(tmp_path: Path, env: dict[str, str]) -> None:
    faulty = with_faults(EVAL_SCENARIO, tmp_path, crash_every=CRASH_EVERY)
    clean = run(eval_args(tmp_path / "clean"), {**env, "PROVER_CACHE_DIR": str(tmp_path / "cache-clean")})
    assert clean.returncode == 0, clean.stderr
    faults = run(eval_args(tmp_path / "faults", scenario=faulty), env)
    assert faults.returncode == 0, faults.stderr
    _assert_expected(tmp_path / "faults")
    assert _verdicts(tmp_path / "faults") == _verdicts(tmp_path / "clean")
    assert faults.stdout.splitlines()[0] == clean.stdout.splitlines()[0]  # solved, pass@k
    assert _summary(tmp_path / "faults")["check_retries"] > 0


def test_error_attempts_are_shown_apart_and_rechecked_on_resume(tmp_path: Path, env: dict[str, str]) -> None:
    faulty = with_faults(EVAL_SCENARIO, tmp_path, crash_every=CRASH_EVERY)
    out = tmp_path / "run"
    first = run(eval_args(out, "--retries", "0", scenario=faulty), env)
    assert first.returncode == 0, first.stderr
    summary = _summary(out)
    errors = summary["errors"]
    assert errors > 0 and summary["pass_at_k_is_lower_bound"] and summary["solved"] < EXPECTED["solved"]
    assert f"{errors} attempt(s) ended in infrastructure errors" in first.stdout and "pass@1>=" in first.stdout
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "**Lower bound.**" in report and f"| infrastructure errors (not failures) | {errors} |" in report
    lines = len(attempts(out))

    kept = run(eval_args(out, "--resume", "--no-retry-errors", scenario=faulty), env)
    assert kept.returncode == 0, kept.stderr
    assert _summary(out)["errors"] == errors and len(attempts(out)) == lines  # nothing re-checked

    resumed = run(eval_args(out, "--resume"), env)  # the proofs on disk, checked again: no sampling
    assert resumed.returncode == 0, resumed.stderr
    _assert_expected(out)
    superseding = [a for a in attempts(out) if a["revision"] == 1]
    assert len(attempts(out)) == lines + errors == lines + len(superseding)
    assert all(a["extra"][RETRIED_ERROR] in ("crash", "infrastructure") for a in superseding)
    assert _summary(out)["errors_retried"] == errors
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e for e in events if e["event"] == "pipeline"][-1]["requests"] == 0  # nothing sampled
    again = run(eval_args(out, "--resume"), env)
    assert again.returncode == 0 and len(attempts(out)) == lines + errors  # finished: nothing to redo


# -- error attempts: re-check and redo (library level) --------------------------------------------


ERROR = Verdict(status=CheckStatus.ERROR, rule="crash", detail="REPL exited")
PROVED = Verdict(status=CheckStatus.PROVED, rule="accepted")


class CountingChecker:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.proofs: list[str] = []

    async def check(self, problem: Problem, proof: str) -> Verdict:
        self.proofs.append(proof)
        return self.verdict


class SeesDone(Strategy):
    """Records nothing; remembers the `done` it was handed."""

    def __init__(self) -> None:
        self.seen: DoneAttempts | None = None

    async def prove(self, problem, ctx, record, done=None) -> None:
        self.seen = DoneAttempts.of(done)


def _error(index: int, proof: str | None, **fields: Any) -> Attempt:
    return Attempt(problem="p0", sample_index=index, proof=proof, verdict=ERROR, **fields)


async def test_resume_rechecks_error_attempts_once_per_proof_and_supersedes_them() -> None:
    done = DoneAttempts([
        _error(0, "  simp"), _error(1, "  simp  ", duplicate_of=0), _error(2, "  omega"),
        attempt("p0", 3),  # a Lean failure is a verdict, not an error: left alone
    ])
    checker, recorded = CountingChecker(PROVED), []
    strategy = SeesDone()

    async def record(a: Attempt) -> None:
        recorded.append(a)

    ctx = make_ctx(ProverConfig(), checker=checker)
    await prove_problem(strategy, Problem(name="p0", formal_statement="theorem p0 : True := by"), ctx, record, done)
    assert sorted(checker.proofs) == ["  omega", "  simp"]  # trailing spaces: the same proof to Lean
    assert sorted(a.sample_index for a in recorded) == [0, 1, 2]
    assert all(a.revision == 1 and a.verdict.proved and a.extra[RETRIED_ERROR] == "crash" for a in recorded)
    assert recorded[[a.sample_index for a in recorded].index(1)].duplicate_of == 0
    assert strategy.seen is not None and all(strategy.seen[(0, i)].verdict.proved for i in range(3))
    assert not strategy.seen[(0, 3)].verdict.proved

    checker.proofs.clear()
    off = make_ctx(ProverConfig().with_overrides({"eval.retry_errors": False}), checker=checker)
    await prove_problem(strategy, Problem(name="p0", formal_statement="theorem p0 : True := by"), off, record, done)
    assert checker.proofs == [] and strategy.seen[(0, 0)].verdict.status is CheckStatus.ERROR


class StartFailsOnce(ScriptedLeanSession):
    """Lean dies under the first search's start (an infrastructure failure before any proof)."""

    def __init__(self) -> None:
        table = {"x : Nat\n⊢ x + 0 = x": {"rw [Nat.add_zero]": ("x : Nat\n⊢ x = x",)}, "x : Nat\n⊢ x = x": {"rfl": ()}}

        def step(goals: str, tactic: str) -> Transition:
            to = table.get(goals, {}).get(tactic)
            if to is None:
                return Transition(StepKind.ERROR, error="no")
            return Transition(StepKind.OK, goals=to) if to else Transition(StepKind.PROVED)

        super().__init__(("x : Nat\n⊢ x + 0 = x",), step)
        self.failed = False

    async def start(self, origin: StateOrigin, *, timeout: float | None = None) -> StartOutcome:
        if not self.failed:
            self.failed = True
            return StartOutcome(None, "crash: REPL exited", infrastructure=True)
        return await super().start(origin, timeout=timeout)


async def test_a_search_that_failed_before_finding_a_proof_is_redone_on_resume() -> None:
    config = ProverConfig().with_overrides({"eval.passes": 1, "lean.workers": 1, "bfs.time_budget": 30})
    ctx = make_ctx(config, TableSampler(SUGGESTIONS), CountingChecker(PROVED), lean=StartFailsOnce())
    recorded: list[Attempt] = []

    async def record(a: Attempt) -> None:
        recorded.append(a)

    await prove_problem(BestFirstStrategy(), P_ADD, ctx, record)
    assert [(a.verdict.status, a.verdict.rule, a.proof) for a in recorded] == [(CheckStatus.ERROR, "search:start_failed", None)]
    assert pending_problems([P_ADD], config, BestFirstStrategy(), {P_ADD.name: DoneAttempts(recorded)}) == [P_ADD]
    off = config.with_overrides({"eval.retry_errors": False})
    assert pending_problems([P_ADD], off, BestFirstStrategy(), {P_ADD.name: DoneAttempts(recorded)}) == []

    await prove_problem(BestFirstStrategy(), P_ADD, ctx, record, DoneAttempts(recorded))  # the resume
    redone = recorded[-1]
    assert (redone.sample_index, redone.revision, redone.verdict.proved) == (0, 1, True)
    assert redone.extra[RETRIED_ERROR] == "search:start_failed"
    assert pending_problems([P_ADD], config, BestFirstStrategy(), {P_ADD.name: DoneAttempts(recorded)}) == []


def test_summary_and_report_show_errors_apart_and_mark_the_lower_bound(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with ResultsStore.open(run_dir, info(passes=2, n=2)) as store:
        store.append_many([attempt("p0", 0, proved=True), _error(1, "  simp"), attempt("p1", 0), attempt("p1", 1)])
    store = ResultsStore.read(run_dir)
    summary = summarize(store.attempts(), problems=store.info.problems, budget=2)
    assert (summary.errors, summary.pass_at_k_is_lower_bound, summary.verdicts["crash"]) == (1, True, 1)
    report = markdown_report(summary, store)
    assert "1 attempt(s) ended in infrastructure errors" in report and "| 1 | ≥ 25.0% |" in report


# -- the store: superseding records ------------------------------------------------------------


def test_a_later_revision_supersedes_its_slot_everywhere(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with ResultsStore.open(run_dir, info()) as store:
        store.append(_error(0, "  simp"))
        assert store.append(_error(0, "  simp", revision=1).model_copy(update={"verdict": PROVED}))
        assert not store.append(_error(0, "  simp"))  # an older revision of a recorded slot
        assert len(store) == 1 and store.superseded == 1 and store.done("p0")[(0, 0)].verdict.proved
    assert len((run_dir / ATTEMPTS_FILE).read_text().splitlines()) == 2  # append-only
    for reader in (ResultsStore.read(run_dir), ResultsStore.open(run_dir, info(), resume=True)):
        assert [a.verdict.proved for a in reader.attempts()] == [True]
        reader.close()
    shuffled = DoneAttempts([_error(0, "x", revision=2), _error(0, "x", revision=1)])
    assert shuffled[(0, 0)].revision == 2


# -- disk faults ----------------------------------------------------------------------------------


def test_a_failed_write_is_a_clear_error_and_leaves_no_partial_line(tmp_path: Path, monkeypatch) -> None:
    """ENOSPC (disk full) and EROFS (the file system went read-only) raised by the kernel call the
    store makes, after part of the batch reached the file."""
    run_dir = tmp_path / "run"
    store = ResultsStore.open(run_dir, info())
    store.append(attempt("p0", 0))
    before = (run_dir / ATTEMPTS_FILE).read_bytes()
    real_write = os.write
    for code in (errno.ENOSPC, errno.EROFS):

        def failing_write(fd: int, data: bytes, code: int = code) -> int:
            real_write(fd, bytes(data[:10]))  # a torn beginning, then the failure
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(store_module.os, "write", failing_write)
        with pytest.raises(RunError, match=rf"cannot record attempts in .*{os.strerror(code)} \({errno.errorcode[code]}\).*"
                                           r"1 attempt\(s\) recorded before are kept.*--resume"):
            store.append_many([attempt("p0", 1), attempt("p0", 2)])
        monkeypatch.setattr(store_module.os, "write", real_write)
        assert (run_dir / ATTEMPTS_FILE).read_bytes() == before and len(store) == 1
    store.event("still fine")  # events of a failed disk are dropped, not raised
    assert store.append_many([attempt("p0", 1), attempt("p0", 2)]) == 2  # space is back
    store.close()
    with ResultsStore.open(run_dir, info(), resume=True) as resumed:
        assert [a.sample_index for a in resumed.attempts()] == [0, 1, 2]


MOUNT_SIZE = "2m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB tmpfs (needs root, as on CI); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE}", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the file system is full."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True, capture_output=True)


def test_full_disk_while_recording_then_read_only_then_resume(small_disk: Path, tmp_path: Path,
                                                              env: dict[str, str]) -> None:
    slow = tmp_path / "slow.json"
    data = yaml.safe_load(EVAL_SCENARIO.read_text())
    Scenario.model_validate({**data, "latency": 0.15}).dump(slow)
    out = small_disk / "run"
    proc = subprocess.Popen([*cli(), *eval_args(out, "--workers", "1", scenario=slow)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((out / ATTEMPTS_FILE).exists() and len((out / ATTEMPTS_FILE).read_bytes().splitlines()) >= 4):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        filler = _fill(small_disk)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr
    assert f"cannot record attempts in {out / ATTEMPTS_FILE}: No space left on device (ENOSPC)" in stderr
    assert "attempts recorded in" in stderr and "--resume" in stderr and "Traceback" not in stderr
    kept = (out / ATTEMPTS_FILE).read_bytes()
    assert kept.endswith(b"\n") and len(kept.splitlines()) < 24
    assert all(json.loads(line)["verdict"] for line in kept.splitlines())  # every line whole

    _remount(small_disk, "ro")  # the disk comes back read-only first
    refused = run(eval_args(out, "--resume"), env)
    assert refused.returncode == 2 and "Read-only file system (EROFS)" in refused.stderr, refused.stderr
    assert (out / ATTEMPTS_FILE).read_bytes() == kept

    _remount(small_disk, "rw")
    filler.unlink()  # space is back
    resumed = run(eval_args(out, "--resume"), env)
    assert resumed.returncode == 0, resumed.stderr
    _assert_expected(out)
    assert (out / ATTEMPTS_FILE).read_bytes().startswith(kept) and len(attempts(out)) == 24
