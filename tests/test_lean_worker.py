"""ReplWorker + WorkerLease against the SIMULATED REPL: framing, faults, classification, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from prover.errors import LeanError, StaleHandleError
from prover.lean_env import OutcomeKind, ReplLauncher, ReplWorker, simulated_repl_command
from prover.lean_env.protocol import CommandRequest, parse_request, split_replies
from prover.lean_env.simulated_repl import read_requests
from lean_pool_helpers import FOO, HEADER, lean_config, make_pool, make_worker, transcripts_dir, write_scenario

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
        out = await worker.run(CommandRequest(cmd=FOO + body, env=worker.header_env), timeout=1.0)
        assert out.kind is kind, out.detail
        failed = kind in (OutcomeKind.CRASH, OutcomeKind.TIMEOUT, OutcomeKind.OUT_OF_MEMORY)
        assert worker.generation == gen + failed and worker.alive
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
