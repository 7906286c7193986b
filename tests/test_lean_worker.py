"""ReplWorker + WorkerLease against the SIMULATED REPL: framing, faults, classification, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import time

import psutil
import pytest

from prover.errors import LeanError, PoolClosed, StaleHandleError
from prover.lean_env import LeanPool, OutcomeKind, ReplLauncher, ReplWorker, simulated_repl_command
from prover.lean_env import worker as worker_module
from prover.lean_env.protocol import CommandRequest, parse_reply, parse_request, split_replies
from prover.lean_env.simulated_repl import read_requests
from lean_pool_helpers import (
    FOO,
    HEADER,
    lean_config,
    make_pool,
    make_worker,
    one_answer_repl,
    processes_running,
    transcripts_dir,
    write_scenario,
)

FAULTS = {"crash_on": ["CRASH"], "hang_on": ["HANG"], "garbage_on": ["GARBAGE"], "oom_on": ["OOM"]}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("name", ["readme", "proof_step", "all_tactics", "infotree", "Mathlib/test/exact"])
async def test_real_transcripts_through_the_worker(name: str):
    """Framing against real REPL output: replay recorded replies, compare object by object."""
    stem = transcripts_dir() / name
    worker = ReplWorker(1, ReplLauncher(argv=simulated_repl_command(stem.with_suffix(".in"), transcript=True)), lean_config(), "")
    await worker.start()
    try:
        expected = [json.loads(b) for b in split_replies(stem.with_suffix(".expected.out").read_text())]
        with stem.with_suffix(".in").open("rb") as stream:
            requests = [parse_request(json.loads(t)) for t in read_requests(stream)]
        for req, want in zip(requests, expected, strict=True):
            out = await worker.run(req, timeout=5)
            assert out.response is not None and out.response.to_json() == want
    finally:
        await worker.close()


async def test_header_elaborated_once_and_reused(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1) as pool:
        for _ in range(5):
            async with pool.lease(pool.env_key(HEADER)) as w:
                assert w.header_env is not None and w.header_env.env == 0
                result = await w.command(FOO + "simp")
                assert result.kind is OutcomeKind.OK and result.env.worker == w.worker
        assert pool.stats().imports == 1 and pool.stats().reuses == 4


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("simp", OutcomeKind.OK),
        ("linarith", OutcomeKind.LEAN_ERROR),
        ("sorry", OutcomeKind.INCOMPLETE),
        ("CRASH", OutcomeKind.CRASH),
        ("HANG", OutcomeKind.TIMEOUT),
        ("GARBAGE", OutcomeKind.CRASH),
        ("OOM", OutcomeKind.OUT_OF_MEMORY),
    ],
)
async def test_each_fault_is_classified_and_worker_restarts(tmp_path, body: str, kind: OutcomeKind):
    worker = make_worker(write_scenario(tmp_path, faults=FAULTS), timeout=1.0, memory_limit_mb=512)
    await worker.start()
    try:
        pid, gen = worker._proc.pid, worker.generation
        timeout = 1.0 if body == "HANG" else 5.0  # OOM takes ~0.3 s: more on a loaded machine
        out = await worker.run(CommandRequest(cmd=FOO + body, env=worker.header_env), timeout=timeout)
        assert out.kind is kind, out.detail
        failed = kind in (OutcomeKind.CRASH, OutcomeKind.TIMEOUT, OutcomeKind.OUT_OF_MEMORY)
        assert worker.generation == gen + failed and worker.alive
        assert worker.counters["imports"] == 1 + failed  # the header was re-elaborated
        if failed:
            assert _gone(pid) and out.response is None and out.detail
        again = await worker.run(CommandRequest(cmd=FOO + "simp", env=worker.header_env), timeout=1.0)
        assert again.kind is OutcomeKind.OK
    finally:
        await worker.close()


async def test_timeout_kills_the_whole_process_group(tmp_path):
    # a wrapper shell whose child is the REPL, like `lake env repl`
    argv = ["/bin/sh", "-c", " ".join(simulated_repl_command(write_scenario(tmp_path, faults=FAULTS))) + "; true"]
    worker = ReplWorker(1, ReplLauncher(argv=argv), lean_config(), HEADER)
    await worker.start()
    try:
        await asyncio.sleep(0.3)
        child_pids = [c.pid for c in __import__("psutil").Process(worker._proc.pid).children(recursive=True)]
        assert child_pids
        out = await worker.run(CommandRequest(cmd=FOO + "HANG", env=worker.header_env), timeout=0.5)
        assert out.kind is OutcomeKind.TIMEOUT
        await asyncio.sleep(0.1)
        assert all(_gone(pid) or __import__("psutil").Process(pid).status() == "zombie" for pid in child_pids)
    finally:
        await worker.close()


async def test_rss_watch_kills_runaway_memory_as_oom(tmp_path):
    scenario = write_scenario(tmp_path, faults={"oom_on": ["OOM"], "oom_cap_mb": 2048})
    worker = make_worker(scenario, memory_limit_mb=None, rss_kill_mb=250)
    await worker.start()
    try:
        out = await worker.run(CommandRequest(cmd=FOO + "OOM", env=worker.header_env), timeout=10)
        assert out.kind is OutcomeKind.OUT_OF_MEMORY and "RSS" in out.detail
    finally:
        await worker.close()


async def test_stderr_flood_is_drained(tmp_path):
    scenario = write_scenario(tmp_path, faults={"stderr_noise_kb": 256})
    worker = make_worker(scenario)
    await worker.start()
    try:
        for _ in range(12):  # 3 MB of stderr: would wedge the REPL if nobody read the pipe
            out = await worker.run(CommandRequest(cmd=FOO + "simp", env=worker.header_env), timeout=2)
            assert out.kind is OutcomeKind.OK
        assert worker.counters["stderr_bytes"] > 3_000_000 and len(worker.stderr_tail) <= 16 * 1024
    finally:
        await worker.close()


async def test_stale_handles_refused_after_restart_and_across_workers(tmp_path):
    async with make_pool(write_scenario(tmp_path, faults=FAULTS), workers=2) as pool:
        key = pool.env_key(HEADER)
        async with pool.lease(key) as w:
            sorry = await w.command(FOO + "sorry")
            state, env = sorry.sorry_states[0], sorry.env
            assert (await w.tactic(state, "simp")).kind is OutcomeKind.OK
            assert (await w.command(FOO + "HANG", timeout=0.5)).kind is OutcomeKind.TIMEOUT
            assert w.worker.generation == state.worker.generation + 1
            with pytest.raises(StaleHandleError, match="generation"):
                await w.tactic(state, "simp")
            with pytest.raises(StaleHandleError):
                await w.command("#print axioms foo", env=env)
            fresh = await w.command(FOO + "sorry")
            async with pool.lease(key) as other:
                assert other.worker.worker_id != w.worker.worker_id
                with pytest.raises(StaleHandleError, match="another worker"):
                    await other.tactic(fresh.sorry_states[0], "simp")
        with pytest.raises(StaleHandleError, match="released"):
            await w.command(FOO + "simp")


async def test_death_between_requests_is_infrastructure_and_invisible(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1) as pool:
        async with pool.lease(pool.env_key(HEADER)) as w:
            old = await w.command(FOO + "sorry")
            proc = pool._slots[w.worker.worker_id].worker._proc
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            result = await w.command(FOO + "simp")  # header env of the new generation
            assert result.kind is OutcomeKind.OK and result.env.worker.generation == 2
            with pytest.raises(StaleHandleError):
                await w.tactic(old.sorry_states[0], "simp")
        assert pool.stats().restarts == 1


async def test_bad_header_is_a_clear_error(tmp_path):
    worker = make_worker(write_scenario(tmp_path), header="import Mathlib\ntheorem foo (x : Nat) : x + 0 = x := by ring")
    with pytest.raises(LeanError, match="header does not elaborate"):
        await worker.start()
    await worker.close()


async def test_unstartable_repl_is_reported(tmp_path):
    async with make_pool(write_scenario(tmp_path), workers=1, infra_retries=1) as pool:
        pool.launcher = ReplLauncher(argv=[str(tmp_path / "no-such-repl")])
        with pytest.raises(LeanError, match="cannot start REPL"):
            async with pool.lease(pool.env_key(HEADER)):
                pass
        assert pool.stats().workers == 0


async def test_request_the_repl_never_read_is_infrastructure(tmp_path):
    """The REPL died right after a reply: the next request was written but never read."""
    worker = ReplWorker(1, ReplLauncher(argv=one_answer_repl(tmp_path)), lean_config(), "")
    await worker.start()
    try:
        assert (await worker.run(CommandRequest(cmd="#check Nat"), timeout=5)).kind is OutcomeKind.OK
        lost = await worker.run(CommandRequest(cmd="#check Nat"), timeout=5)
        assert lost.kind is OutcomeKind.INFRASTRUCTURE and "before reading" in lost.detail, lost.detail
    finally:
        await worker.close()


async def test_request_lost_to_a_dying_repl_is_retried(tmp_path):
    async with LeanPool(lean_config(workers=1), launcher=ReplLauncher(argv=one_answer_repl(tmp_path))) as pool:
        async with pool.lease(pool.env_key("")) as w:
            assert (await w.command("#check Nat")).kind is OutcomeKind.OK
            retried = await w.command("#check Nat")
            assert retried.kind is OutcomeKind.OK and retried.env.worker.generation == 2, retried.detail
        stats = pool.stats()
        assert (stats.infra_failures, stats.retries, stats.crashes, stats.requests) == (1, 1, 0, 3)


async def _baseline_rss_mb(tmp_path) -> float:
    probe = make_worker(write_scenario(tmp_path, name="probe.json"), header="")
    await probe.start()
    try:
        await probe.run(CommandRequest(cmd="#check Nat"), timeout=5)  # fully imported and serving
        return probe.rss_mb()
    finally:
        await probe.close()


@pytest.mark.parametrize(
    ("grow_mb", "wrapped", "kind"),
    [(100, False, OutcomeKind.OUT_OF_MEMORY), (0, False, OutcomeKind.CRASH), (100, True, OutcomeKind.OUT_OF_MEMORY)],
    ids=["big", "small", "big-under-wrapper"],
)
async def test_external_sigkill_is_oom_only_near_the_rss_cap(tmp_path, grow_mb: int, wrapped: bool, kind: OutcomeKind):
    """The kernel OOM killer SIGKILLs a big REPL: OOM if its RSS was near the cap, else a crash.

    Under a wrapper (`lake env repl`, here a shell) the REPL's death shows as exit code 137."""
    cap = int((await _baseline_rss_mb(tmp_path) + 100) / 0.95)  # RSS after growing ~= 95 % of cap
    argv = simulated_repl_command(write_scenario(tmp_path, faults={"slow_on": {"SLOW": 60}, "grow_mb_per_request": grow_mb}))
    if wrapped:
        argv = ["/bin/sh", "-c", shlex.join(argv) + "; exit $?"]
    worker = ReplWorker(1, ReplLauncher(argv=argv), lean_config(memory_limit_mb=None, rss_kill_mb=cap), "")
    await worker.start()
    try:
        request = asyncio.create_task(worker.run(CommandRequest(cmd=FOO + "SLOW"), timeout=20))
        deadline = time.monotonic() + 5
        while worker.last_rss_mb < 0.9 * cap * bool(grow_mb) + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        while worker_module._unread_bytes(worker._stdin_probe) and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.05)  # wait until the REPL has read the request (a loaded machine starts it slowly)
        await asyncio.sleep(0.3)  # the REPL has read the request and is working on it
        root = psutil.Process(worker._proc.pid)
        repl = root.children()[0] if wrapped else root
        repl.kill()  # SIGKILL from outside, like the kernel OOM killer (only the REPL, not a wrapper)
        out = await request
        assert out.kind is kind, out.detail
    finally:
        await worker.close()


async def test_reply_larger_than_the_read_limit_is_a_clear_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(worker_module, "READ_LIMIT", 300)  # above the fence reply (~210 bytes), below a sorry reply
    worker = make_worker(write_scenario(tmp_path))
    await worker.start()
    try:
        out = await worker.run(CommandRequest(cmd=FOO + "sorry", env=worker.header_env), timeout=5)
        assert out.kind is OutcomeKind.CRASH and "larger than" in out.detail and out.seconds < 1.0, out
        again = await worker.run(CommandRequest(cmd=FOO + "simp", env=worker.header_env), timeout=5)
        assert again.kind is OutcomeKind.OK
    finally:
        await worker.close()


async def test_close_while_starting_leaves_no_process(tmp_path):
    scenario = write_scenario(tmp_path)
    worker = make_worker(scenario, header="")
    starting = asyncio.create_task(worker.start())
    await asyncio.sleep(0)  # the process is being spawned
    await worker.close()
    with pytest.raises(PoolClosed):
        await starting
    deadline = time.monotonic() + 3
    while processes_running(str(scenario)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not worker.alive and not processes_running(str(scenario))


_AT = {"line": 1, "column": 0}


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ({"env": 1}, OutcomeKind.OK),
        ({"env": 1, "messages": [{"severity": "warning", "pos": _AT, "data": "declaration uses 'sorry'"}]}, OutcomeKind.INCOMPLETE),
        ({"env": 1, "messages": [{"severity": "error", "pos": _AT, "data": "unsolved goals"}]}, OutcomeKind.LEAN_ERROR),
        ({"proofState": 2, "goals": ["⊢ p"], "proofStatus": "Incomplete: open goals remain"}, OutcomeKind.OK),
        ({"proofState": 2, "goals": [], "proofStatus": "Completed"}, OutcomeKind.OK),
        ({"proofState": 2, "goals": [], "proofStatus": "Incomplete: contains metavariable(s)"}, OutcomeKind.INCOMPLETE),
        ({"proofState": 2, "goals": [], "proofStatus": "Error: kernel type check failed: (kernel) x"}, OutcomeKind.LEAN_ERROR),
        (  # a logged tactic error (error recovery): rejected even though no goals remain
            {"proofState": 2, "goals": [], "proofStatus": "Incomplete: contains sorry",
             "messages": [{"severity": "error", "pos": {"line": 0, "column": 0}, "data": "Unknown identifier"}]},
            OutcomeKind.LEAN_ERROR,
        ),
        ({"message": "Lean error:\n<input>:1:1: unknown tactic"}, OutcomeKind.LEAN_ERROR),
    ],
)
def test_classify_every_reply_shape(reply: dict, kind: OutcomeKind):
    assert worker_module.classify(parse_reply(reply))[0] is kind
