"""Kernel replay of an accepted proof: compile it to an .olean, re-check every declaration.

The REPL elaborated the proof in a process that ran the model's code. The replay takes the exact
checked file (`AssembledProof.code`) into a scratch module, compiles it in a fresh, sandboxed
`lean` process and hands the .olean to a replay tool built for the workspace's toolchain, which
re-adds each of the module's declarations to the kernel starting from its imports (this is what
defeats environment hacking: `debug.skipKernelTC`, `addDeclWithoutChecking`, forged
declarations). The axiom and statement audit stays the checker's (in a clean REPL environment).

Command lines, as the tools document them (run in the workspace, sandboxed like the REPL):

    lake env lean -o <scratch>/<M>.olean <scratch>/<M>.lean     (SafeVerify README, compile step)
    lake exe lean4checker <M>                                   (lean4checker README; `prover setup lean` builds it)
    lake env leanchecker <M>                                    (toolchains >= v4.28 ship it)

with the scratch dir on `LEAN_PATH`, so `<M>` resolves to the scratch .olean. `checker.replay_cmd`
/ `checker.replay_compile_cmd` replace the two commands (tests use a stand-in tool this way).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
import warnings
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prover.config import CheckerConfig, LeanConfig
from prover.lean_env.launcher import ReplLauncher, limit_memory
from prover.lean_env.processes import reap
from prover.types import CheckStatus, content_hash

LEAN4CHECKER_BINARY = Path(".lake/packages/lean4checker/.lake/build/bin/lean4checker")
"""Where `lake build lean4checker` puts the tool when the workspace requires it as a package."""
OUTPUT_TAIL = 16 * 1024
ReplayRule = Literal["accepted", "replay:rejected", "replay:compile_error", "replay:timeout", "replay:error",
                     "replay:missing_tool"]
STATUS: dict[str, CheckStatus] = {
    "accepted": CheckStatus.PROVED,
    "replay:rejected": CheckStatus.REJECTED,
    "replay:compile_error": CheckStatus.REJECTED,
    "replay:timeout": CheckStatus.TIMEOUT,
    "replay:error": CheckStatus.ERROR,
    "replay:missing_tool": CheckStatus.ERROR,
}


class ReplayTool(BaseModel):
    """How to compile a module and how to replay it (the module name is appended to `check`)."""

    model_config = ConfigDict(frozen=True)
    name: str
    compile: list[str]
    """argv prefix; `-o <olean> <file>` is appended."""
    check: list[str]
    cwd: Path | None = None

    @property
    def fingerprint(self) -> str:
        return content_hash(self.name, *self.compile, "|", *self.check)


class ReplayOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)
    rule: ReplayRule
    detail: str = ""
    seconds: float = 0.0

    @property
    def status(self) -> CheckStatus:
        return STATUS[self.rule]


def find_tool(lean: LeanConfig, checker: CheckerConfig) -> ReplayTool | None:
    """The replay tool configured (`checker.replay_cmd`) or built in the workspace, else None."""
    workspace = Path(lean.workspace) if lean.workspace else None
    lake = _lake()
    compile_cmd = list(checker.replay_compile_cmd or [lake, "env", "lean"])
    if checker.replay_cmd:
        return ReplayTool(name="configured", compile=compile_cmd, check=list(checker.replay_cmd), cwd=workspace)
    if workspace is None:
        return None
    if (workspace / LEAN4CHECKER_BINARY).is_file():
        return ReplayTool(name="lean4checker", compile=compile_cmd, check=[lake, "exe", "lean4checker"], cwd=workspace)
    toolchain = _toolchain_bin(workspace)
    if toolchain is not None and (toolchain / "leanchecker").is_file():
        return ReplayTool(name="leanchecker", compile=compile_cmd, check=[lake, "env", "leanchecker"], cwd=workspace)
    return None


class KernelReplay:
    """Runs the replay stage for one checker (bounded concurrency: compiling imports Mathlib).

    Args:
        tool: the replay tool; None means it is required but missing (`replay:missing_tool`).
        launcher: the pool's launcher (its sandbox wraps the compile and replay processes).
        timeout: seconds for each of the two commands.
        memory_limit_mb: RLIMIT_AS for each process.
        concurrency: replays at the same time.
    """

    def __init__(
        self,
        tool: ReplayTool | None,
        launcher: ReplLauncher,
        *,
        timeout: float,
        memory_limit_mb: int | None = None,
        concurrency: int = 1,
    ) -> None:
        self.tool = tool
        self.launcher = launcher
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self._gate = asyncio.Semaphore(max(1, concurrency))

    @classmethod
    def from_config(cls, lean: LeanConfig, checker: CheckerConfig, launcher: ReplLauncher) -> KernelReplay | None:
        """The replay stage `checker.replay` asks for; None when it is off (or `auto` without a tool)."""
        if checker.replay == "off":
            return None
        tool = find_tool(lean, checker)
        if tool is None and checker.replay == "auto":
            if lean.workspace is not None:
                warnings.warn(
                    f"kernel replay is off: the workspace {lean.workspace} has no replay tool (re-run `prover "
                    "setup lean` to build lean4checker, or set checker.replay = \"off\" to silence this)",
                    RuntimeWarning, stacklevel=3,
                )
            return None
        return cls(tool, launcher, timeout=checker.replay_timeout, memory_limit_mb=lean.memory_limit_mb,
                   concurrency=max(1, lean.workers // 2))

    @property
    def fingerprint(self) -> str:
        """Part of verdict cache keys: a verdict of another replay tool is not this one's."""
        return self.tool.fingerprint if self.tool is not None else "missing"

    async def check(self, code: str) -> ReplayOutcome:
        """Compile `code` (a whole file) as a scratch module and replay it in the kernel."""
        if self.tool is None:
            return ReplayOutcome(rule="replay:missing_tool", detail=(
                "checker.replay = \"kernel\" but the workspace has no replay tool: re-run `prover setup lean` "
                "(it builds lean4checker) or set checker.replay_cmd"))
        async with self._gate:
            started = time.monotonic()
            scratch = self.launcher.new_scratch()
            try:
                outcome = await self._check(code, scratch, self.tool)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return outcome.model_copy(update={"seconds": time.monotonic() - started})

    async def _check(self, code: str, scratch: Path, tool: ReplayTool) -> ReplayOutcome:
        missing = [argv[0] for argv in (tool.compile, tool.check) if not _startable(argv[0])]
        if missing:
            return ReplayOutcome(rule="replay:error", detail=f"cannot start the replay: {missing} not found")
        module = f"ProverReplay{secrets.token_hex(6)}"
        source, olean = scratch / f"{module}.lean", scratch / f"{module}.olean"
        source.write_text(code, encoding="utf-8")
        rc, output, timed_out = await self._run([*tool.compile, "-o", str(olean), str(source)], scratch, tool.cwd)
        if timed_out:
            return ReplayOutcome(rule="replay:timeout", detail=f"compiling took over {self.timeout:g} s")
        if rc != 0:
            rule: ReplayRule = "replay:error" if _killed(rc) else "replay:compile_error"
            return ReplayOutcome(rule=rule, detail=f"compiling the checked file failed (exit {rc}): {output}")
        if not olean.is_file():
            return ReplayOutcome(rule="replay:error", detail=f"the compiler wrote no {olean.name}: {output}")
        rc, output, timed_out = await self._run([*tool.check, module], scratch, tool.cwd)
        if timed_out:
            return ReplayOutcome(rule="replay:timeout", detail=f"{tool.name} took over {self.timeout:g} s")
        if rc != 0:
            rule = "replay:error" if _killed(rc) else "replay:rejected"
            return ReplayOutcome(rule=rule, detail=f"{tool.name} refused the compiled proof (exit {rc}): {output}")
        return ReplayOutcome(rule="accepted", detail=f"{tool.name}: every declaration replayed in the kernel")

    async def _run(self, argv: list[str], scratch: Path, cwd: Path | None) -> tuple[int, str, bool]:
        """(exit code, output tail, timed out) of one sandboxed process, its group killed on timeout."""
        extra = {"LEAN_PATH": os.pathsep.join(filter(None, [str(scratch), os.environ.get("LEAN_PATH")]))}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.launcher.command(scratch, argv, cwd=cwd, env=extra),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.launcher.spawn_cwd(scratch, cwd),
                env=self.launcher.process_env(extra),
                start_new_session=True,
                preexec_fn=limit_memory(self.memory_limit_mb),
            )
        except OSError as exc:
            return 127, f"cannot start {argv[0]}: {exc}", False
        tail = bytearray()

        async def drain() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                tail.extend(chunk)
                del tail[:-OUTPUT_TAIL]
            await proc.wait()

        try:
            await asyncio.wait_for(drain(), self.timeout)
        except TimeoutError:
            await reap(proc)
            return -signal.SIGKILL, tail.decode("utf-8", "replace"), True
        except asyncio.CancelledError:
            await reap(proc)  # a killed child exits at once; reaped, it cannot outlive the loop
            raise
        return proc.returncode or 0, tail.decode("utf-8", "replace").strip()[-2000:], False


def _startable(program: str) -> bool:
    return shutil.which(program) is not None or Path(program).is_file()


def _killed(returncode: int) -> bool:
    """Killed by a signal (directly, or under a wrapper such as `lake env` / bwrap: 128+n)."""
    return returncode < 0 or returncode >= 128


def _lake() -> str:
    return shutil.which("lake") or str(Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan") / "bin" / "lake")


def _toolchain_bin(workspace: Path) -> Path | None:
    """`<elan home>/toolchains/<toolchain>/bin` of the workspace's lean-toolchain file."""
    try:
        toolchain = (workspace / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = toolchain.replace("/", "--").replace(":", "---")
    return Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan") / "toolchains" / folder / "bin"
