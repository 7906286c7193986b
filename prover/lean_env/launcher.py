"""How to start one REPL process: argv, working directory, environment, and its sandbox.

Kept separate from the worker so tests, benchmarks and `prover check --repl-cmd` can point a pool
at any REPL-speaking executable (the simulated REPL included) without touching process code.

Model code runs inside the REPL while it elaborates (elaborators, `#eval`-like tricks the ban list
missed), so every process is started in a bubblewrap sandbox (`lean.sandbox`): its own user, pid,
ipc, uts and network namespaces (no network: only the sandbox's own loopback), all capabilities
dropped, a clean environment (`HOME` and `TMPDIR` point at the scratch dir), the system
directories, the toolchain, the workspace and whatever the command itself names bound read-only,
a fresh private scratch directory as the only writable place (the sandbox's own root and `/tmp`
are remounted read-only), and `--die-with-parent`. The real
home directory is not there, only the parts named above (the toolchain lives in `~/.elan`).
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

import prover
from prover.config import LeanConfig
from prover.errors import WorkspaceError

REPL_BINARY = Path(".lake/packages/REPL/.lake/build/bin/repl")
"""Where `lake build` puts the REPL when the workspace requires it as a package."""

SYSTEM_PATHS: tuple[str, ...] = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
)
"""Read-only system paths every program needs (binaries, libraries, loader configuration)."""
BWRAP_INSTALL = "apt-get install bubblewrap (Debian/Ubuntu) or dnf install bubblewrap"


class Sandbox(BaseModel):
    """A bubblewrap policy: what is visible read-only; the writable scratch dir comes per process."""

    model_config = ConfigDict(frozen=True)
    bwrap: str
    """Absolute path of the bwrap executable."""
    ro_paths: tuple[Path, ...] = ()
    home: Path

    def wrap(self, argv: list[str], *, scratch: Path, cwd: Path | None, env: dict[str, str]) -> list[str]:
        """bwrap argv that runs `argv` in the sandbox with `scratch` writable and `env` only."""
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--clearenv",
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in self._visible(argv, scratch):
            if path.is_symlink() and str(path) in SYSTEM_PATHS:
                args += ["--symlink", os.readlink(path), str(path)]
            else:
                args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(scratch), str(scratch), "--remount-ro", "/tmp", "--remount-ro", "/",
                 "--chdir", str(cwd or scratch)]
        for key, value in {**env, "HOME": str(scratch), "TMPDIR": str(scratch)}.items():
            args += ["--setenv", key, value]
        return [*args, "--", *argv]

    def _visible(self, argv: list[str], scratch: Path) -> list[Path]:
        """Existing read-only paths, outermost first, none inside another (never the home dir
        itself, a parent of it, or a parent of the scratch dir)."""
        candidates = [Path(p) for p in SYSTEM_PATHS] + list(self.ro_paths)
        candidates += [Path(a) for a in argv if os.path.isabs(a)]
        kept: list[Path] = []
        for path in sorted(candidates, key=lambda p: len(p.parts)):
            if not path.exists() and not path.is_symlink():
                continue
            if scratch.is_relative_to(path) or self.home.is_relative_to(path):
                continue
            if any(path.is_relative_to(outer) for outer in kept):
                continue
            kept.append(path)
        return kept


class ReplLauncher(BaseModel):
    """argv + cwd + extra environment variables for one REPL process, and its sandbox."""

    model_config = ConfigDict(frozen=True)

    argv: list[str] = Field(min_length=1)
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    sandbox: Sandbox | None = None
    """None: run unsandboxed (`lean.sandbox = off`, or `auto` without bubblewrap)."""
    scratch_root: Path | None = None
    """Where private scratch dirs are created (default: the system temp dir)."""

    @classmethod
    def from_config(cls, config: LeanConfig) -> ReplLauncher:
        """`repl_cmd` if set, else `lake env <workspace>/<REPL binary>` run in the workspace.

        Raises:
            WorkspaceError: no REPL configured, or `lean.sandbox = required` without bubblewrap.
        """
        sandbox = sandbox_from_config(config)
        if config.repl_cmd:
            return cls(argv=list(config.repl_cmd), cwd=config.workspace, env=dict(config.repl_env), sandbox=sandbox,
                       scratch_root=config.sandbox_scratch)
        if config.workspace is None:
            raise WorkspaceError(
                "no Lean REPL configured: run `prover setup lean`, or set lean.workspace / lean.repl_cmd"
            )
        workspace = Path(config.workspace)
        if not workspace.is_dir():
            raise WorkspaceError(f"Lean workspace {workspace} does not exist (run `prover setup lean`)")
        lake = shutil.which("lake") or str(Path.home() / ".elan/bin/lake")
        binary = workspace / REPL_BINARY
        argv = [lake, "env", str(binary)] if binary.exists() else [lake, "exe", "repl"]
        return cls(argv=argv, cwd=workspace, env=dict(config.repl_env), sandbox=sandbox,
                   scratch_root=config.sandbox_scratch)

    @classmethod
    def require(cls, config: LeanConfig) -> ReplLauncher:
        """The launcher for `config`, failing fast (before any sampling or run directory) with a
        remedy when no REPL can be started.

        Raises:
            WorkspaceError: no workspace / REPL command configured, the workspace is missing, the
                program that would start the REPL does not exist, or the sandbox is required and
                bubblewrap is missing.
        """
        launcher = cls.from_config(config)
        if launcher.cwd is not None and not Path(launcher.cwd).is_dir():
            raise WorkspaceError(f"Lean workspace {launcher.cwd} does not exist (run `prover setup lean`)")
        program = launcher.argv[0]
        if shutil.which(program) is None and not Path(program).is_file():
            raise WorkspaceError(
                f"cannot start the Lean REPL: `{program}` not found (command: {shlex.join(launcher.argv)}); "
                "run `prover setup lean` or pass --repl-cmd"
            )
        return launcher

    # -- one process --------------------------------------------------------------------------
    def new_scratch(self) -> Path:
        """A fresh private scratch dir for one process (the caller removes it)."""
        root = self.scratch_root or Path(tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="prover-repl-", dir=root)).resolve()

    def command(
        self, scratch: Path, argv: list[str] | None = None, *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> list[str]:
        """The argv to execute: `argv` (default: the REPL's), wrapped in the sandbox if any; `env`
        adds variables inside the sandbox (unsandboxed, pass them to `process_env`)."""
        argv = list(argv or self.argv)
        if self.sandbox is None:
            return argv
        return self.sandbox.wrap(argv, scratch=scratch, cwd=cwd or self.cwd, env={**self._sandbox_env(), **(env or {})})

    def spawn_cwd(self, scratch: Path, cwd: Path | None = None) -> Path | None:
        """Working directory of the spawned process (bwrap itself runs in the scratch dir)."""
        return scratch if self.sandbox is not None else (cwd or self.cwd)

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ours plus the launcher's additions and `extra` (unsandboxed);
        the sandbox starts from an empty environment instead (`Sandbox.wrap`)."""
        if self.sandbox is not None:
            return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return {**os.environ, **self.env, **(extra or {})}

    def _sandbox_env(self) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "ELAN_HOME", "LEAN_PATH", "PYTHONPATH")
                if k in os.environ}
        keep.setdefault("ELAN_HOME", str(_elan_home()))
        return {**keep, **self.env}


def sandbox_from_config(config: LeanConfig) -> Sandbox | None:
    """The sandbox `lean.sandbox` asks for (None: unsandboxed).

    Raises:
        WorkspaceError: `required` and bubblewrap is not installed.
    """
    if config.sandbox == "off":
        return None
    bwrap = shutil.which(config.sandbox_bwrap)
    problem = "not found" if bwrap is None else _unusable(bwrap)
    if problem:
        message = (
            f"bubblewrap (`{config.sandbox_bwrap}`) {problem}: REPL processes cannot be sandboxed. "
            f"Install it ({BWRAP_INSTALL}) or set lean.sandbox = \"off\""
        )
        if config.sandbox == "required":
            raise WorkspaceError(message + " (lean.sandbox = \"required\")")
        warnings.warn(message + "; running unsandboxed (lean.sandbox = \"auto\")", RuntimeWarning, stacklevel=3)
        return None
    assert bwrap is not None
    ro = [_elan_home(), *( [Path(config.workspace)] if config.workspace else []), *runtime_paths(),
          *config.sandbox_ro_paths]
    return Sandbox(bwrap=bwrap, ro_paths=tuple(Path(p).resolve() for p in ro), home=Path.home().resolve())


def _unusable(bwrap: str) -> str:
    """Why `bwrap` cannot create a sandbox here ("" if it can): e.g. user namespaces disabled."""
    try:
        probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                               capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run ({exc})"
    if probe.returncode != 0:
        return f"cannot create a sandbox here ({probe.stderr.decode(errors='replace').strip()[:200]})"
    return ""


def limit_memory(limit_mb: int | None) -> Callable[[], None] | None:
    """A preexec function capping the child's address space (RLIMIT_AS), or None for no cap."""
    if not limit_mb:
        return None
    size = limit_mb * 2**20

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def runtime_paths() -> list[Path]:
    """What a Python REPL stand-in (the simulated REPL) needs: the interpreter and this package."""
    package_root = Path(prover.__file__).resolve().parents[1]
    return [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), package_root]


def _elan_home() -> Path:
    return Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan")
