"""One REPL process and everything that can go wrong with it.

A `ReplWorker` starts the REPL in its own session (so a timeout can SIGKILL the whole process
group, `lake env` wrapper included), caps its address space (RLIMIT_AS) and watches its RSS,
drains stderr continuously (a full pipe would wedge the REPL) keeping a bounded tail for
diagnostics, writes validated requests and reads blank-line-framed replies. Every request ends
as an `Outcome` with an `OutcomeKind`: REPL failures are classified here, in one place, and the
process is restarted (new generation, header re-elaborated) so the caller never sees a wedged
worker. Exceptions are reserved for misuse and for failures to start at all.

A REPL that dies without answering is blamed on the request only if it read it: the worker
keeps a duplicate of its end of the REPL's stdin pipe, and request bytes still unread in that
pipe at EOF mean the process died first (INFRASTRUCTURE, safe to retry), not a crash.

Model code runs inside the REPL and can write to its stdout, so a reply counts only if it answers
the request's type and the next block answers a fence with a fresh nonce (`protocol.fence_request`):
anything else on stdout is a protocol error (CRASH, process killed), never a reply.

Each process generation gets a private scratch dir from the launcher (the only writable place in
its sandbox), removed when the process is gone. Pickle and file paths in requests are host paths:
the worker copies inputs into the scratch dir and moves pickles out of it, so the REPL never sees
(or can swap) a file outside its own scratch dir.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import secrets
import shutil
import signal
import stat
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from prover.config import LeanConfig
from prover.errors import LeanError, PoolClosed, ReplCrashed, ReplError, ReplMemoryExceeded, ReplProtocolError, ReplTimeout
from prover.lean_env.launcher import ReplLauncher, limit_memory
from prover.lean_env.processes import kill_group
from prover.lean_env.protocol import (
    CommandRequest,
    CommandResponse,
    FileRequest,
    PickleEnvRequest,
    PickleProofStateRequest,
    ProofStepResponse,
    Reply,
    ReplErrorResponse,
    Request,
    UnpickleEnvRequest,
    UnpickleProofStateRequest,
    check_reply,
    decode_reply,
    encode_request,
    fence_request,
    is_fence_reply,
)
from prover.lean_env.results import OutcomeKind, WorkerRef

READ_LIMIT = 1 << 26  # bytes buffered per reply; infotrees can be large
FENCE_TIMEOUT = 30.0  # seconds the fence may take at least (Lean answers it at once)
STDERR_TAIL = 16 * 1024
RSS_INTERVAL = 0.2
RSS_RECENT = 3  # samples (~0.6 s) remembered to judge a SIGKILL: the last one may be of a dying process
OOM_MARKERS = (b"out of memory", b"std::bad_alloc", b"memoryerror", b"cannot allocate memory", b"rlimit")
FAILURE_ERRORS: dict[OutcomeKind, type[ReplError]] = {
    OutcomeKind.TIMEOUT: ReplTimeout,
    OutcomeKind.OUT_OF_MEMORY: ReplMemoryExceeded,
    OutcomeKind.CRASH: ReplCrashed,
    OutcomeKind.INFRASTRUCTURE: ReplCrashed,
}


@dataclass(frozen=True)
class Outcome:
    """A request's end as the worker saw it (the lease turns it into a ReplResult)."""

    kind: OutcomeKind
    response: Reply | None
    seconds: float
    detail: str = ""
    generation: int = 0


def classify(reply: Reply) -> tuple[OutcomeKind, str]:
    """Lean's answer -> kind. Tactic replies with open goals are OK (a good step)."""
    if isinstance(reply, ReplErrorResponse):
        return OutcomeKind.LEAN_ERROR, reply.message
    if reply.has_errors():
        return OutcomeKind.LEAN_ERROR, reply.errors()[0].data
    if isinstance(reply, ProofStepResponse):
        status = reply.proof_status or ""
        if status.startswith("Error"):
            return OutcomeKind.LEAN_ERROR, status
        if reply.sorries or status.startswith("Incomplete: contains"):
            return OutcomeKind.INCOMPLETE, status or "contains sorry"
        return OutcomeKind.OK, ""
    if reply.has_sorry():
        return OutcomeKind.INCOMPLETE, "declaration uses sorry"
    return OutcomeKind.OK, ""


class ReplWorker:
    """Owns one REPL process at a time; `generation` increments at every (re)start."""

    def __init__(
        self,
        worker_id: int,
        launcher: ReplLauncher,
        config: LeanConfig,
        header: str,
        counters: collections.Counter[str] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.launcher = launcher
        self.config = config
        self.header = header
        self.counters = counters if counters is not None else collections.Counter()
        self.generation = 0
        self.header_env: int | None = None
        self.uses = 0
        """Requests answered by the current process (the header excluded)."""
        self.last_rss_mb = 0.0
        self.closed = False
        self._proc: asyncio.subprocess.Process | None = None
        self._stdin_probe: int | None = None  # our duplicate of the REPL's stdin pipe (FIONREAD)
        self._tasks: list[asyncio.Task] = []
        self._stderr_tail = bytearray()
        self._kill_reason = ""
        self._children: list[psutil.Process] = []
        self._ps_root: psutil.Process | None = None
        self._recent_rss: collections.deque[float] = collections.deque(maxlen=RSS_RECENT)
        self._scratch: Path | None = None
        self._fence_env: int | None = None

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def ref(self) -> WorkerRef:
        return WorkerRef(worker_id=self.worker_id, generation=self.generation)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self._kill_reason

    @property
    def kill_reason(self) -> str:
        """Why the current process was killed ("" while it runs), e.g. "cancelled mid-request"."""
        return self._kill_reason

    @property
    def stderr_tail(self) -> str:
        return self._stderr_tail.decode("utf-8", errors="replace")

    async def start(self) -> None:
        """Spawn a new process generation and elaborate the header once (its env is reused)."""
        if self.closed:
            raise PoolClosed(f"worker {self.worker_id} is closed")
        await self.kill()
        self.generation += 1
        self.header_env = None
        self.last_rss_mb = 0.0
        self._recent_rss.clear()
        self._kill_reason = ""
        self._stderr_tail.clear()
        self._fence_env = None
        self.counters["starts"] += 1
        self._scratch = scratch = self.launcher.new_scratch()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.launcher.command(scratch),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.launcher.spawn_cwd(scratch),
                env=self.launcher.process_env(),
                start_new_session=True,
                preexec_fn=limit_memory(self.config.memory_limit_mb),
                limit=READ_LIMIT,
            )
        except OSError as exc:
            self._remove_scratch()
            raise ReplCrashed(f"cannot start REPL {self.launcher.argv!r}: {exc}") from exc
        self._proc, self._stdin_probe = proc, _dup_stdin(proc)
        self._tasks = [asyncio.create_task(self._drain_stderr(proc)), asyncio.create_task(self._watch_rss(proc))]
        if self.closed:  # close() ran while the process was being spawned
            await self.kill("closed")
            raise PoolClosed(f"worker {self.worker_id} was closed while starting")
        if self.header.strip():
            await self._elaborate_header()
        self.uses = 0

    async def _elaborate_header(self) -> None:
        out = await self.run(CommandRequest(cmd=self.header), timeout=self.config.header_timeout, recover=False,
                             fence_on_reply=True)
        if out.kind in FAILURE_ERRORS:
            await self.kill()
            raise FAILURE_ERRORS[out.kind](f"worker {self.worker_id}: header failed ({out.kind.value}): {out.detail}")
        if not isinstance(out.response, CommandResponse) or out.response.has_errors():
            await self.kill()
            detail = out.detail or (out.response.message if isinstance(out.response, ReplErrorResponse) else "")
            raise LeanError(f"the header does not elaborate: {detail}\n--- header ---\n{self.header}")
        self.header_env = out.response.env

    async def restart(self) -> None:
        self.counters["restarts"] += 1
        await self.start()

    async def kill(self, reason: str = "") -> None:
        """SIGKILL the whole process group and reap it."""
        proc = self._proc
        if proc is None:
            self._remove_scratch()
            return
        self.kill_now(reason or "killed")
        if self._stdin_probe is not None:
            os.close(self._stdin_probe)
            self._stdin_probe = None
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            pass
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def kill_now(self, reason: str) -> None:
        """SIGKILL the process group without waiting (usable while being cancelled)."""
        proc = self._proc
        if proc is None:
            return
        self._kill_reason = self._kill_reason or reason
        kill_group(proc)
        if proc.stdin is not None:
            proc.stdin.close()

    async def close(self) -> None:
        self.closed = True
        await self.kill("closed")
        self._proc = None

    # -- requests ---------------------------------------------------------------------------
    async def run(self, req: Request, *, timeout: float, recover: bool = True, fence_on_reply: bool = False) -> Outcome:
        """Send one request; classify how it ended; restart the process after a failure.

        `fence_on_reply`: the request is trusted and its reply env is clean (the header), so the
        fence may run there."""
        if self.closed:
            raise PoolClosed(f"worker {self.worker_id} is closed")
        generation, start = self.generation, time.monotonic()
        if isinstance(req, CommandRequest) and req.env is None and req.cmd.lstrip().startswith("import"):
            self.counters["imports"] += 1
        try:
            sent, deliver = self._into_scratch(req)
            kind, reply, detail = await self._exchange(sent, timeout, fence_on_reply)
            if deliver is not None and kind not in FAILURE_ERRORS and not isinstance(reply, ReplErrorResponse):
                problem = deliver()
                if problem:
                    await self.kill("bad pickle")
                    kind, reply, detail = OutcomeKind.CRASH, None, problem
        except asyncio.CancelledError:
            self.kill_now("cancelled mid-request")
            raise
        if self.closed:
            raise PoolClosed(f"worker {self.worker_id} was closed during the request")
        self.uses += 1
        out = Outcome(kind, reply, time.monotonic() - start, detail, generation)
        if kind in FAILURE_ERRORS and recover:
            await self._recover()
        return out

    def _into_scratch(self, req: Request) -> tuple[Request, Callable[[], str] | None]:
        """`req` with its file paths inside the scratch dir, and what moves a pickle out after."""
        scratch = self._scratch
        if scratch is None:
            return req, None
        if isinstance(req, (PickleEnvRequest, PickleProofStateRequest)):
            target = Path(req.pickle_to)
            inside = scratch / f"out-{secrets.token_hex(6)}-{target.name}"
            return req.model_copy(update={"pickle_to": str(inside)}), lambda: _deliver(inside, target)
        field = {UnpickleEnvRequest: "unpickle_env_from", UnpickleProofStateRequest: "unpickle_proof_state_from",
                 FileRequest: "path"}.get(type(req))
        if field is None:
            return req, None
        source = Path(getattr(req, field))
        if not source.is_absolute() and self.launcher.cwd is not None:
            source = Path(self.launcher.cwd) / source
        if source.is_relative_to(scratch) or not source.is_file():
            return req, None  # the REPL reports a missing file the way Lean does
        inside = scratch / f"in-{secrets.token_hex(6)}-{source.name}"
        shutil.copyfile(source, inside)
        return req.model_copy(update={field: str(inside)}), None

    async def _exchange(self, req: Request, timeout: float, fence_on_reply: bool) -> tuple[OutcomeKind, Reply | None, str]:
        proc = self._proc
        if proc is None or not self.alive:
            return OutcomeKind.INFRASTRUCTURE, None, "REPL process was not running"
        deadline = time.monotonic() + timeout
        request = encode_request(req).encode("utf-8")
        try:
            assert proc.stdin is not None
            proc.stdin.write(request)
            await proc.stdin.drain()
            if proc.stdin.is_closing():  # EPIPE is swallowed by the transport: the REPL was gone
                raise BrokenPipeError("REPL stdin closed before the request was written")
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            await self.kill("stdin closed")
            return OutcomeKind.INFRASTRUCTURE, None, f"request not delivered: {exc!r}"
        try:
            text = await self._read_reply(proc, timeout)
        except TimeoutError:
            await self.kill("timeout")
            return OutcomeKind.TIMEOUT, None, f"no reply within {timeout:g} s; process group killed"
        except asyncio.LimitOverrunError:
            await self.kill("reply too large")
            return OutcomeKind.CRASH, None, f"reply larger than {READ_LIMIT} bytes; process group killed"
        except asyncio.IncompleteReadError:
            return await self._died(proc, len(request))
        try:
            reply = decode_reply(text)
            check_reply(req, reply)
        except ReplProtocolError as exc:
            await self.kill("garbage")
            return OutcomeKind.CRASH, None, f"garbage output, process killed: {exc}"
        fence_env = reply.env if fence_on_reply and isinstance(reply, CommandResponse) else None
        failed = await self._fence(proc, deadline, fence_env)
        if failed is not None:
            return failed
        kind, detail = classify(reply)
        return kind, reply, detail

    async def _fence(self, proc: asyncio.subprocess.Process, deadline: float, env: int | None) -> tuple[OutcomeKind, None, str] | None:
        """Confirm that the block just read was the REPL's reply: the next one must answer a fence."""
        nonce = secrets.token_hex(8)
        env = env if env is not None else self.header_env if self.header_env is not None else self._fence_env
        fence = encode_request(fence_request(nonce, env)).encode("utf-8")
        try:
            assert proc.stdin is not None
            proc.stdin.write(fence)
            await proc.stdin.drain()
            if proc.stdin.is_closing():
                raise BrokenPipeError("REPL stdin closed after its reply")
            text = await self._read_reply(proc, max(deadline - time.monotonic(), FENCE_TIMEOUT))
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            await self.kill("stdin closed")
            return OutcomeKind.INFRASTRUCTURE, None, f"reply not confirmed, the REPL went away: {exc!r}"
        except TimeoutError:
            await self.kill("fence timeout")
            return OutcomeKind.CRASH, None, "reply not confirmed: the REPL did not answer the fence after it"
        except asyncio.LimitOverrunError:
            await self.kill("reply too large")
            return OutcomeKind.CRASH, None, f"output larger than {READ_LIMIT} bytes after the reply; process group killed"
        except asyncio.IncompleteReadError:
            kind, _, detail = await self._died(proc, len(fence))  # fence never read: INFRASTRUCTURE (retried)
            return kind, None, f"reply not confirmed: {detail}"
        try:
            answer = decode_reply(text)
        except ReplProtocolError:
            answer = None
        if answer is None or not is_fence_reply(answer, nonce):
            await self.kill("protocol")
            return OutcomeKind.CRASH, None, (
                f"protocol error, process killed: output that is not a reply to our request: {text[:200]!r}"
            )
        if env is None and isinstance(answer, CommandResponse):
            self._fence_env = answer.env
        return None

    async def _read_reply(self, proc: asyncio.subprocess.Process, timeout: float) -> str:
        """The next non-empty framed reply; TimeoutError after `timeout` seconds. (`asyncio.timeout`
        rather than `wait_for`: no task per request, so a reply reaches the caller one event-loop
        turn sooner.)"""
        assert proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                chunk = await proc.stdout.readuntil(b"\n\n")
                text = chunk.decode("utf-8", errors="replace").strip()
                if text:
                    return text

    async def _died(self, proc: asyncio.subprocess.Process, request_bytes: int) -> tuple[OutcomeKind, None, str]:
        """EOF on stdout: wait for exit and stderr, then tell a request never read, OOM and crash apart."""
        reason = self._kill_reason
        never_read = _unread_bytes(self._stdin_probe) >= request_bytes
        try:
            await asyncio.wait_for(proc.wait(), 2.0)
        except TimeoutError:
            await self.kill("EOF without exit")
        if self._tasks:
            await asyncio.wait(self._tasks[:1], timeout=1.0)
        await self.kill(reason or "exited")
        ended = f"exit code {proc.returncode}; stderr: {self.stderr_tail[-600:].strip()}"
        if never_read:
            return OutcomeKind.INFRASTRUCTURE, None, f"REPL died before reading the request ({reason or ended})"
        if reason.startswith("oom") or any(m in self._stderr_tail.lower() for m in OOM_MARKERS):
            return OutcomeKind.OUT_OF_MEMORY, None, f"out of memory ({reason or 'REPL reported it'}); {ended}"
        cap = self.config.rss_kill_mb or self.config.memory_limit_mb
        rss = max(self._recent_rss, default=0.0)
        if _sigkilled(proc.returncode) and cap and rss > 0.9 * cap:
            return OutcomeKind.OUT_OF_MEMORY, None, f"SIGKILL at RSS {rss:.0f} MB near the {cap} MB cap (OOM killer?); {ended}"
        return OutcomeKind.CRASH, None, f"REPL exited: {ended}"

    async def _recover(self) -> None:
        """Transparent restart after a failure; a failed restart leaves the worker dead."""
        try:
            await self.restart()
        except (ReplError, LeanError):
            await self.kill("restart failed")

    # -- background tasks -------------------------------------------------------------------
    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            self.counters["stderr_bytes"] += len(chunk)
            if proc is self._proc:
                self._stderr_tail += chunk
                del self._stderr_tail[:-STDERR_TAIL]

    async def _watch_rss(self, proc: asyncio.subprocess.Process) -> None:
        """Sample the process group's RSS; past rss_kill_mb (default memory_limit_mb) kill it as OOM."""
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        cap, samples = self.config.rss_kill_mb or self.config.memory_limit_mb, 0
        while proc.returncode is None:
            if samples % 10 == 0:
                self._children = _children(root)
            self._sample_rss(root)
            if cap and self.last_rss_mb > cap and proc is self._proc:
                self.kill_now(f"oom: RSS {self.last_rss_mb:.0f} MB above {cap} MB")
                return
            samples += 1
            await asyncio.sleep(RSS_INTERVAL)

    def rss_mb(self) -> float:
        """Fresh RSS sample of the process group (MB). Asked after every request (recycling), so
        the psutil handle is made once per process: making one reads /proc to identify it."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return 0.0
        try:
            if self._ps_root is None or self._ps_root.pid != proc.pid:  # not reaped: the pid is ours
                self._ps_root = psutil.Process(proc.pid)
            return self._sample_rss(self._ps_root)
        except psutil.Error:
            return 0.0

    def _sample_rss(self, root: psutil.Process) -> float:
        self.last_rss_mb = _rss_mb([root, *self._children])
        self._recent_rss.append(self.last_rss_mb)
        return self.last_rss_mb


def _deliver(inside: Path, target: Path) -> str:
    """Move a pickle the REPL wrote in its scratch dir to `target`; "" or what is wrong."""
    try:
        info = inside.lstat()
    except FileNotFoundError:
        return f"the REPL reported a pickle but wrote no file {inside.name}"
    if not stat.S_ISREG(info.st_mode):
        return f"the REPL's pickle {inside.name} is not a regular file (symlink?): refused"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(inside, target, follow_symlinks=False)
    inside.unlink()
    return ""


def _dup_stdin(proc: asyncio.subprocess.Process) -> int | None:
    """A private duplicate of our end of the child's stdin pipe: it keeps the pipe's buffer
    readable by FIONREAD after asyncio closes its own end (which it does when the child exits)."""
    try:
        return os.dup(proc.stdin.get_extra_info("pipe").fileno())  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):  # ValueError: the child is already gone
        return None


def _unread_bytes(fd: int | None) -> int:
    """Bytes written into a pipe and not yet read by the other side (Linux FIONREAD); 0 if unknown."""
    if fd is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _sigkilled(returncode: int | None) -> bool:
    """Killed by SIGKILL: our child directly (-9), or the REPL under a wrapper (`lake env`, sh: 137)."""
    return returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)


def _children(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.Error:
        return []


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20
