"""A SIMULATED Lean REPL process for tests, benchmarks and offline demos (it runs no Lean).

Speaks the leanprover-community/repl wire protocol on stdin/stdout (requests end with a blank line;
physical lines are stripped and concatenated like REPL >= repl#72; replies are pretty-printed JSON
followed by a blank line) with semantics taken from scenario data (`simulated_lean.Scenario`), plus
fault injection: crash (on patterns, on every Nth request, at random), hang, garbage output,
out-of-memory, slow replies, growing memory, stderr floods, exit after N requests.

    python -m prover.lean_env.simulated_repl --scenario scenario.yaml
    python -m prover.lean_env.simulated_repl --transcript ../shared/lean-repl-transcripts/readme.in

`--transcript` replays a recorded real session: the i-th request must equal the recorded i-th
request (as JSON) and gets the recorded reply text verbatim.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from prover.lean_env.protocol import FENCE_PREFIX
from prover.lean_env.simulated_lean import Faults, Scenario, SimulatedLean, simulated_repl_command

__all__ = ["Scenario", "simulated_repl_command", "read_requests", "main"]


def read_requests(stream: BinaryIO) -> Iterator[str]:
    """Yield request texts: lines are stripped and concatenated until a blank line (REPL rule)."""
    parts: list[str] = []
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            parts.append(line)
        elif parts:
            yield "".join(parts)
            parts = []
    if parts:
        yield "".join(parts)


def _write(text: str) -> None:
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def _die(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)


class FaultInjector:
    """Applies `Faults` to one request before it is answered."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.hoard: list[bytes] = []
        self.served = 0
        self.read = 0
        self.random = random.Random()  # seeded by the OS: every process crashes at its own times

    def hits(self, patterns: Iterable[str], text: str) -> bool:
        return any(re.search(p, text) for p in patterns)

    def before(self, text: str) -> float:
        """Run the faults that fire on this request; return the extra delay in seconds."""
        f = self.faults
        self.read += 1
        if self.hits(f.crash_on, text):
            _die("INTERNAL PANIC: simulated crash (simulated REPL fault crash_on)")
        if f.crash_every is not None and self.read % f.crash_every == 0:
            _die(f"INTERNAL PANIC: simulated crash on request {self.read} (simulated REPL fault crash_every)")
        exposed = not f.crash_rate_on or self.hits(f.crash_rate_on, text)
        if f.crash_rate and exposed and self.random.random() < f.crash_rate:
            _die("INTERNAL PANIC: simulated random crash (simulated REPL fault crash_rate)")
        if self.hits(f.hang_on, text):
            while True:
                time.sleep(3600)
        if self.hits(f.oom_on, text):
            self._exhaust_memory()
        if f.grow_mb_per_request:
            self.hoard.append(b"\x01" * int(f.grow_mb_per_request * 2**20))
        if f.stderr_noise_kb:
            sys.stderr.write("simulated stderr noise " + "x" * int(f.stderr_noise_kb * 1024) + "\n")
            sys.stderr.flush()
        return sum(s for p, s in f.slow_on.items() if re.search(p, text))

    def after(self) -> None:
        self.served += 1

    def after_fence(self) -> None:
        """`crash_after_requests`: exit once the N-th request and the fence after it are answered."""
        limit = self.faults.crash_after_requests
        if limit is not None and self.served >= limit:
            _die(f"simulated REPL fault crash_after_requests={limit}: exiting")

    def _exhaust_memory(self) -> None:
        chunks: list[bytes] = []
        try:
            for _ in range(self.faults.oom_cap_mb // 64):
                chunks.append(b"\x01" * (64 * 2**20))
                time.sleep(0.02)  # grow at a finite rate, like a real runaway tactic
        except MemoryError:
            chunks.clear()
            _die("INTERNAL PANIC: out of memory")
        chunks.clear()
        _die(f"INTERNAL PANIC: out of memory (simulated cap {self.faults.oom_cap_mb} MB)")


def _request_text(text: str) -> tuple[dict | None, str]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None, text
    if not isinstance(obj, dict):
        return None, text
    return obj, str(obj.get("cmd", obj.get("tactic", obj.get("path", text))))


def is_fence(obj: dict | None) -> bool:
    """The worker's fence (`#print "prover-fence <nonce>"`): Lean answers it at once, so the
    simulation applies no latency and no faults to it and does not count it as a request."""
    return obj is not None and str(obj.get("cmd", "")).startswith(f'#print "{FENCE_PREFIX}')


def serve_scenario(scenario: Scenario) -> None:
    lean = SimulatedLean(scenario)
    faults = FaultInjector(scenario.faults)
    for text in read_requests(sys.stdin.buffer):
        arrived = time.monotonic()
        if text.startswith(("#", "--")):
            continue
        obj, body = _request_text(text)
        if obj is None:
            _die(f"uncaught exception: Could not parse JSON: {text[:200]}")
        if is_fence(obj):
            _write(json.dumps(lean.handle(obj), indent=1, ensure_ascii=False) + "\n\n")
            faults.after_fence()
            continue
        delay = faults.before(body)
        if "cmd" in obj and "env" not in obj and body.lstrip().startswith("import"):
            delay += scenario.import_latency
        if faults.hits(scenario.faults.garbage_on, body):
            _write("simulated garbage: this is not JSON {{{\n\n")
            continue
        if faults.hits(scenario.faults.forge_reply_on, body):
            _write(json.dumps({"env": len(lean.envs) + 1}, indent=1) + "\n\n")
        proofs = lean.proofs_elaborated
        try:
            reply = lean.handle(obj)
        except ValueError as exc:
            _die(f"uncaught exception: {exc}")
        delay += elaboration_seconds(scenario, proved=lean.proofs_elaborated > proofs)
        _sleep_until(arrived + delay)
        _write(json.dumps(reply, indent=1, ensure_ascii=False) + "\n\n")
        faults.after()


def elaboration_seconds(scenario: Scenario, *, proved: bool) -> float:
    """What a request costs: `proof_latency` if it elaborated a proof (when set), else `latency`."""
    if proved and scenario.proof_latency is not None:
        return scenario.proof_latency
    return scenario.latency


def _sleep_until(deadline: float) -> None:
    """The reply leaves `delay` after the request arrived: the simulation's own work is part of it."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def serve_transcript(path: Path) -> None:
    stem = str(path).removesuffix(".in").removesuffix(".expected.out")
    with open(stem + ".in", "rb") as stream:
        recorded = [json.loads(t) for t in read_requests(stream)]
    replies = [b for b in Path(stem + ".expected.out").read_text(encoding="utf-8").split("\n\n") if b.strip()]
    index = 0
    for text in read_requests(sys.stdin.buffer):
        obj, _ = _request_text(text)
        if is_fence(obj):  # answered as Lean answers `#print "s"`, outside the recorded session
            _write(json.dumps(SimulatedLean(Scenario()).handle({"cmd": obj["cmd"]}), indent=1) + "\n\n")
            continue
        index += 1
        if index > len(replies) or obj != recorded[index - 1]:
            reply = json.dumps({"message": f"simulated replay: request {index - 1} does not match the transcript"})
        else:
            reply = replies[index - 1].strip("\n")
        _write(reply + "\n\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prover.lean_env.simulated_repl",
        description="SIMULATED Lean REPL (no Lean is run): REPL wire protocol with semantics from "
        "scenario data, or replay of a recorded transcript. For tests and offline demos.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--scenario", type=Path, help="scenario file (.yaml/.yml/.json)")
    group.add_argument("--transcript", type=Path, help="recorded NAME.in or NAME.expected.out to replay")
    args = parser.parse_args(argv)
    if args.transcript:
        serve_transcript(args.transcript)
    else:
        serve_scenario(Scenario.load(args.scenario))
    return 0


if __name__ == "__main__":
    sys.exit(main())
