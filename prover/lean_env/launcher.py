"""How to start one REPL process: argv, working directory, environment variables.

Kept separate from the worker so tests, benchmarks and `prover check --repl-cmd` can point a pool
at any REPL-speaking executable (the simulated REPL included) without touching process code.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prover.config import LeanConfig
from prover.errors import WorkspaceError

REPL_BINARY = Path(".lake/packages/REPL/.lake/build/bin/repl")
"""Where `lake build` puts the REPL when the workspace requires it as a package."""


class ReplLauncher(BaseModel):
    """argv + cwd + extra environment variables for one REPL process."""

    model_config = ConfigDict(frozen=True)

    argv: list[str] = Field(min_length=1)
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_config(cls, config: LeanConfig) -> ReplLauncher:
        """`repl_cmd` if set, else `lake env <workspace>/<REPL binary>` run in the workspace."""
        if config.repl_cmd:
            return cls(argv=list(config.repl_cmd), cwd=config.workspace, env=dict(config.repl_env))
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
        return cls(argv=argv, cwd=workspace, env=dict(config.repl_env))

    @classmethod
    def require(cls, config: LeanConfig) -> ReplLauncher:
        """The launcher for `config`, failing fast (before any sampling or run directory) with a
        remedy when no REPL can be started.

        Raises:
            WorkspaceError: no workspace / REPL command configured, the workspace is missing, or
                the program that would start the REPL does not exist.
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

    def process_env(self) -> dict[str, str]:
        """The child's environment: ours plus the launcher's additions."""
        return {**os.environ, **self.env}
