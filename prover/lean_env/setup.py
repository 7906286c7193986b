"""`prover setup lean`: create a Lean workspace with Mathlib and the REPL, record it in the config.

Steps: write a Lake workspace (lean-toolchain, lakefile.lean requiring Mathlib,
leanprover-community/repl and leanprover/lean4checker at tags matching the toolchain, a tiny test
file), then `elan toolchain install`, `lake update`, `lake exe cache get` (Mathlib's prebuilt
.oleans), `lake build` (compiles the test file against Mathlib), `lake build repl` and
`lake build lean4checker` (the checker's kernel replay tool; toolchains from v4.28 ship it as
`leanchecker`, so nothing is added there); finally the workspace,
REPL command and Lean version go into the user config file (`prover.config.user_config_path()`),
which every later command reads.

`--project leangeo` builds the workspace the `leangeo` benchmark needs instead: the LeanGeo
library (pinned to Lean v4.15.0 with its own Mathlib and lean-smt) plus the REPL, fetches the
cvc5 release lean-smt uses and compiles the libraries benchmark headers import (the REPL only
loads compiled modules).

Nothing here reaches the network before checking that the tools exist; without elan/lake or
without network it stops with a message saying what is missing and how to get it.
`--skip-build` writes files and config only; `--dry-run` only prints the plan.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from prover.config import read_config_file, user_config_path
from prover.errors import WorkspaceError
from prover.lean_env.launcher import REPL_BINARY
from prover.leangeo import settings as leangeo

DEFAULT_LEAN_VERSION = "v4.15.0"
"""Kimina-Prover's and LeanGeo's toolchain; Mathlib and the REPL both have this tag."""

MATHLIB_GIT = "https://github.com/leanprover-community/mathlib4"
REPL_GIT = "https://github.com/leanprover-community/repl"
LEAN4CHECKER_GIT = "https://github.com/leanprover/lean4checker"
BUILTIN_LEANCHECKER = (4, 28)
"""From this Lean version on, the toolchain ships `leanchecker` (lean4checker is deprecated)."""
ELAN_INSTALL = (
    "curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh -s -- -y "
    "--default-toolchain none && source ~/.elan/env   (or run scripts/setup_lean.sh)"
)
LEANGEO_BUILD_TARGETS = ("cvc5", "SystemE", "LeanGeo")
"""What LeanGeo's own build compiles (`lake build cvc5 SystemE mathlib LeanGeo`, Mathlib coming from
its cache): the REPL cannot `import SystemE` / `import LeanGeo` until they are compiled."""
TEST_MODULE = "ProverWorkspace"
TEST_FILE = (
    "import Mathlib\n\n"
    "/-- Smoke test: compiling this checks that Mathlib's cache and the toolchain work. -/\n"
    "theorem prover_workspace_smoke (a b : ℕ) : a + b = b + a := by\n"
    "  omega\n"
)


class WorkspaceSpec(BaseModel):
    """What `prover setup lean` creates."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dir: Path
    project: Literal["mathlib", "leangeo"] = "mathlib"
    """`mathlib`: Mathlib + REPL. `leangeo`: the LeanGeo library (which pins Lean v4.15.0, its own
    Mathlib and lean-smt) + REPL, for the `leangeo` benchmark."""
    lean_version: str = DEFAULT_LEAN_VERSION
    mathlib_rev: str | None = None
    """Mathlib git revision; default: the tag equal to `lean_version`."""
    repl_rev: str | None = None
    """leanprover-community/repl revision; default: the tag equal to `lean_version`."""

    @field_validator("lean_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("v"):
            value = "v" + value
        if not value[1:2].isdigit():
            raise ValueError(f"Lean version should look like v4.15.0, got {value!r}")
        return value

    @model_validator(mode="after")
    def _leangeo_pins(self) -> WorkspaceSpec:
        if self.project == "leangeo" and self.toolchain != leangeo.LEAN_TOOLCHAIN:
            raise ValueError(f"LeanGeo needs {leangeo.LEAN_TOOLCHAIN}; drop --lean-version or use v4.15.0")
        if self.project == "leangeo" and self.mathlib_rev is not None:
            raise ValueError("LeanGeo pins its own Mathlib; drop --mathlib-rev")
        return self

    @property
    def toolchain(self) -> str:
        return f"leanprover/lean4:{self.lean_version}"

    @property
    def mathlib(self) -> str:
        return self.mathlib_rev or self.lean_version

    @property
    def repl(self) -> str:
        return self.repl_rev or self.lean_version

    @property
    def repl_binary(self) -> Path:
        return self.dir.resolve() / REPL_BINARY

    @property
    def builds_lean4checker(self) -> bool:
        """The kernel replay tool comes from lean4checker (before v4.28) rather than the toolchain."""
        numbers = re.findall(r"\d+", self.lean_version.split("-")[0])
        return tuple(int(n) for n in numbers[:2]) < BUILTIN_LEANCHECKER


def default_workspace_dir(lean_version: str, project: str = "mathlib") -> Path:
    root = os.environ.get("PROVER_DATA_HOME") or Path(
        os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")
    ) / "prover"
    name = f"lean-{lean_version}" if project == "mathlib" else f"{project}-{lean_version}"
    return Path(root) / name


def workspace_files(spec: WorkspaceSpec) -> dict[str, str]:
    """Relative path -> content of every file the workspace needs."""
    if spec.project == "leangeo":
        # LeanGeo requires Mathlib itself (at the revision it was written for)
        requires = f'require «{leangeo.LEANGEO_PACKAGE}» from git\n  "{leangeo.LEANGEO_GIT}" @ "{leangeo.LEANGEO_REV}"\n\n'
    else:
        requires = f'require mathlib from git\n  "{MATHLIB_GIT}" @ "{spec.mathlib}"\n\n'
    lakefile = (
        "import Lake\nopen Lake DSL\n\n"
        "package prover_workspace\n\n"
        f"{requires}"
        f'require REPL from git\n  "{REPL_GIT}" @ "{spec.repl}"\n\n'
        + (f'require lean4checker from git\n  "{LEAN4CHECKER_GIT}" @ "{spec.lean_version}"\n\n'
           if spec.builds_lean4checker else "")
        + f"@[default_target]\nlean_lib {TEST_MODULE}\n"
    )
    return {
        "lean-toolchain": spec.toolchain + "\n",
        "lakefile.lean": lakefile,
        f"{TEST_MODULE}.lean": TEST_FILE,
        ".gitignore": ".lake/\n",
    }


def write_workspace(spec: WorkspaceSpec, *, force: bool = False) -> list[Path]:
    """Write the workspace files; refuses to overwrite different files unless `force`."""
    spec.dir.mkdir(parents=True, exist_ok=True)
    written = []
    files = workspace_files(spec)
    clashes = [
        rel for rel, text in files.items()
        if (spec.dir / rel).exists() and (spec.dir / rel).read_text(encoding="utf-8") != text
    ]
    if clashes and not force:
        raise WorkspaceError(
            f"{spec.dir} already has different {', '.join(clashes)}; pass --force to overwrite or choose --dir"
        )
    for rel, text in files.items():
        path = spec.dir / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def build_commands(spec: WorkspaceSpec) -> list[list[str]]:
    """The commands that fetch and build everything, run inside the workspace."""
    is_leangeo = spec.project == "leangeo"
    return [
        ["elan", "toolchain", "install", spec.toolchain],
        ["lake", "update"],
        *([["lake", "run", "cvc5/downloadRelease"]] if is_leangeo else []),
        ["lake", "exe", "cache", "get"],
        ["lake", "build"],
        *([["lake", "build", *LEANGEO_BUILD_TARGETS]] if is_leangeo else []),
        ["lake", "build", "repl"],
        *([["lake", "build", "lean4checker"]] if spec.builds_lean4checker else []),
    ]


def tool_path(name: str) -> str | None:
    """`name` on PATH, else in ~/.elan/bin (where elan puts it before the shell is re-sourced)."""
    installed = Path.home() / ".elan" / "bin" / name
    return shutil.which(name) or (str(installed) if installed.is_file() else None)


def missing_tools(tools: Sequence[str] = ("elan", "lake")) -> list[str]:
    """Tools found neither on PATH nor in ~/.elan/bin."""
    return [t for t in tools if tool_path(t) is None]


def network_available(host: str = "github.com", port: int = 443, timeout: float = 5.0) -> bool:
    """Can we open a TCP connection to GitHub (where Mathlib, the REPL and elan live), or to the
    HTTPS proxy when one is set (behind a proxy, GitHub itself is not reachable directly)?"""
    proxy = next((os.environ[v] for v in _PROXY_VARIABLES if os.environ.get(v)), None)
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        host, port = parts.hostname or host, parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
"""The variables git and curl read for an HTTPS proxy, in their order of precedence."""


def repl_command(spec: WorkspaceSpec) -> list[str]:
    """argv recorded in the config: `lake env <REPL binary>` (run with cwd = workspace)."""
    lake = tool_path("lake") or str(Path.home() / ".elan" / "bin" / "lake")
    return [lake, "env", str(spec.repl_binary)]


def record_config(spec: WorkspaceSpec, repl_cmd: list[str], path: Path | None = None) -> Path:
    """Merge lean.workspace / repl_cmd / lean_version into the user TOML config file."""
    path = path or user_config_path()
    data = read_config_file(path, missing_ok=True)
    lean = dict(data.get("lean", {}))
    lean.update(workspace=str(spec.dir.resolve()), repl_cmd=list(repl_cmd), lean_version=spec.lean_version)
    data["lean"] = lean
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def to_toml(data: dict[str, Any]) -> str:
    """Small TOML writer for config dicts (tables, strings, numbers, booleans, lists)."""
    lines: list[str] = []

    def table(prefix: str, node: dict[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict) and v is not None}
        if prefix and (scalars or not any(isinstance(v, dict) for v in node.values())):
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        if prefix and scalars:
            lines.append("")
        for key, value in node.items():
            if isinstance(value, dict):
                table(f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key), value)

    table("", data)
    return "\n".join(lines).rstrip() + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


Runner = Callable[[list[str], Path], int]


def _run(cmd: list[str], cwd: Path) -> int:
    print(f"prover setup lean: $ {' '.join(cmd)}", file=sys.stderr, flush=True)
    return subprocess.run([tool_path(cmd[0]) or cmd[0], *cmd[1:]], cwd=cwd, check=False).returncode


def setup_lean(
    spec: WorkspaceSpec,
    *,
    skip_build: bool = False,
    dry_run: bool = False,
    force: bool = False,
    config_path: Path | None = None,
    run: Runner = _run,
    network_probe: Callable[[], bool] = network_available,
) -> Path | None:
    """Create, build and record a workspace (see the module docstring); returns the config path.

    Raises:
        WorkspaceError: tools or network missing (with how to fix it), existing different files,
            or a failed build step.
    """
    if dry_run:
        print(f"would write in {spec.dir}: {', '.join(workspace_files(spec))}")
        for cmd in [] if skip_build else build_commands(spec):
            print(f"would run: {' '.join(cmd)}")
        print(f"would record lean.workspace/repl_cmd/lean_version in {config_path or user_config_path()}")
        return None
    if not skip_build:
        missing = missing_tools()
        if missing:
            raise WorkspaceError(
                f"cannot build the Lean workspace: {' and '.join(missing)} not found on PATH. Install elan "
                f"(it provides lean and lake): {ELAN_INSTALL}; then re-run `prover setup lean`. "
                "(`--skip-build` writes the workspace files only.)"
            )
        if not network_probe():
            raise WorkspaceError(
                "cannot reach github.com: the first build downloads the Lean toolchain, Mathlib (and its "
                "~5 GB .olean cache) and the REPL. Connect to the internet (or set HTTPS_PROXY) and re-run; "
                "`--skip-build` writes the workspace files only."
            )
    write_workspace(spec, force=force)
    if not skip_build:
        for cmd in build_commands(spec):
            code = run(cmd, spec.dir)
            if code != 0:
                raise WorkspaceError(f"`{' '.join(cmd)}` failed with exit code {code} in {spec.dir}")
    return record_config(spec, repl_command(spec), config_path)


def add_setup_lean_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path,
                        help="workspace folder (default: ~/.local/share/prover/lean-<version>, or leangeo-<version>)")
    parser.add_argument("--project", choices=("mathlib", "leangeo"), default="mathlib",
                        help="mathlib (default) or leangeo (LeanGeo + SMT solvers, Lean v4.15.0; needs clang, "
                        "z3, cvc5 and `pip install smt-portfolio`)")
    parser.add_argument("--lean-version", default=DEFAULT_LEAN_VERSION, help=f"toolchain tag (default {DEFAULT_LEAN_VERSION})")
    parser.add_argument("--mathlib-rev", help="Mathlib revision (default: the tag of --lean-version)")
    parser.add_argument("--repl-rev", help="leanprover-community/repl revision (default: the tag of --lean-version)")
    parser.add_argument("--skip-build", action="store_true", help="write files and config, run nothing")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done")
    parser.add_argument("--force", action="store_true", help="overwrite different existing workspace files")


def run_setup_lean(args: argparse.Namespace) -> int:
    try:
        spec = WorkspaceSpec(
            dir=args.dir or default_workspace_dir(args.lean_version, args.project),
            project=args.project,
            lean_version=args.lean_version,
            mathlib_rev=args.mathlib_rev,
            repl_rev=args.repl_rev,
        )
    except ValueError as exc:
        raise WorkspaceError(str(exc)) from exc
    path = setup_lean(spec, skip_build=args.skip_build, dry_run=args.dry_run, force=args.force)
    if path is not None:
        state = "written (not built)" if args.skip_build else "ready"
        print(f"Lean workspace {spec.dir} {state}; recorded in {path}")
    return 0
