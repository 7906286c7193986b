"""Class 6: every REPL process runs under bubblewrap (`lean.sandbox`).

A probe REPL (a stand-in speaking the REPL protocol, not Lean) does what model code could try
during elaboration: write outside its scratch dir, read the home directory, connect to a TCP
listener on 127.0.0.1, read the caller's environment. Under `sandbox = "required"` each fails;
with `sandbox = "off"` (the control) each succeeds. A missing bubblewrap is a clear error under
`required` and a warning under `auto`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from prover.config import LeanConfig
from prover.errors import WorkspaceError
from prover.lean_env import LeanPool, OutcomeKind
from prover.lean_env.launcher import ReplLauncher

PROBE = r'''
import json, os, socket, sys
env = 0
def request():
    lines = []
    while (line := sys.stdin.readline()).strip():
        lines.append(line)
    return json.loads("".join(lines)) if lines else None
def attempt(action, arg):
    try:
        if action == "write":
            with open(arg, "w") as f:
                f.write("escaped")
        elif action == "read":
            return "ok " + open(arg).read().strip()
        elif action == "connect":
            socket.create_connection(("127.0.0.1", int(arg)), timeout=2).close()
        elif action == "getenv":
            return "ok " + os.environ.get(arg, "<unset>")
        return "ok"
    except OSError as exc:
        return f"error {exc.__class__.__name__}: {exc}"
while (req := request()) is not None:
    cmd = req.get("cmd", "")
    if cmd.startswith('#print "'):
        data = cmd.split('"')[1]
    else:
        action, _, arg = cmd.partition(" ")
        data = attempt(action, arg)
    sys.stdout.write(json.dumps({"messages": [{"severity": "info", "pos": {"line": 1, "column": 0}, "data": data}],
                                 "env": env}) + "\n\n")
    sys.stdout.flush()
    env += 1
'''


def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = subprocess.run([bwrap, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_bwrap = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap missing or unusable (scripts/run_tests.sh installs it)")


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text("the user's secret", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PROVER_TEST_SECRET", "hunter2")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    probe = tmp_path / "probe_repl.py"
    probe.write_text(PROBE, encoding="utf-8")
    listener = Listener()
    yield {"home": home, "workspace": workspace, "probe": probe, "listener": listener, "tmp": tmp_path}
    listener.close()


async def _probe(world: dict, sandbox: str, commands: list[str]) -> list[str]:
    config = LeanConfig(repl_cmd=[sys.executable, str(world["probe"])], workspace=world["workspace"], sandbox=sandbox,
                        workers=1, timeout=10, header_timeout=10, memory_limit_mb=None, rss_limit_mb=None,
                        infra_retries=0)
    answers = []
    async with LeanPool(config) as pool:
        async with pool.lease(pool.env_key("")) as lease:
            for cmd in commands:
                result = await lease.command(cmd, env=None)
                assert result.kind is OutcomeKind.OK, result.detail
                answers.append(result.response.messages[0].data)
    return answers


def _attempts(world: dict) -> list[str]:
    return [
        f"write {world['tmp'] / 'outside.txt'}",
        f"write {world['workspace'] / 'planted.lean'}",
        f"read {world['home'] / 'secret.txt'}",
        f"connect {world['listener'].port}",
        "getenv PROVER_TEST_SECRET",
    ]


@needs_bwrap
async def test_required_sandbox_blocks_writes_home_network_and_environment(world: dict) -> None:
    write_outside, write_workspace, read_home, connect, getenv = await _probe(world, "required", _attempts(world))
    assert write_outside.startswith("error") and not (world["tmp"] / "outside.txt").exists()
    assert write_workspace.startswith("error") and "Read-only" in write_workspace
    assert read_home.startswith("error") and "the user's secret" not in read_home
    assert connect.startswith("error") and world["listener"].connections == 0
    assert getenv == "ok <unset>"


async def test_without_the_sandbox_the_same_probe_succeeds(world: dict) -> None:
    """The control: the probe really does what the sandbox stops."""
    write_outside, write_workspace, read_home, connect, getenv = await _probe(world, "off", _attempts(world))
    assert write_outside == "ok" and (world["tmp"] / "outside.txt").read_text() == "escaped"
    assert write_workspace == "ok"
    assert read_home == "ok the user's secret"
    assert connect == "ok" and world["listener"].connections == 1
    assert getenv == "ok hunter2"


@needs_bwrap
async def test_the_scratch_dir_is_writable_private_and_removed(world: dict) -> None:
    config = LeanConfig(repl_cmd=[sys.executable, str(world["probe"])], sandbox="required", workers=2,
                        memory_limit_mb=None, rss_limit_mb=None)
    async with LeanPool(config) as pool:
        async with pool.lease(pool.env_key("")) as one, pool.lease(pool.env_key("a")) as two:
            mine = (await one.command("getenv HOME", env=None)).response.messages[0].data.removeprefix("ok ")
            theirs = (await two.command("getenv HOME", env=None)).response.messages[0].data.removeprefix("ok ")
            assert mine != theirs and Path(mine).is_dir()
            assert (await one.command(f"write {mine}/note.txt", env=None)).response.messages[0].data == "ok"
            assert (await two.command(f"read {mine}/note.txt", env=None)).response.messages[0].data.startswith("error")
    assert not Path(mine).exists() and not Path(theirs).exists()


def test_missing_bubblewrap_is_a_clear_error_when_required() -> None:
    config = LeanConfig(repl_cmd=["repl"], sandbox="required", sandbox_bwrap="/nonexistent/bwrap")
    with pytest.raises(WorkspaceError, match=r"bubblewrap .*not found.*apt-get install bubblewrap.*required"):
        LeanPool(config)


def test_missing_bubblewrap_warns_and_runs_unsandboxed_under_auto() -> None:
    config = LeanConfig(repl_cmd=["repl"], sandbox="auto", sandbox_bwrap="/nonexistent/bwrap")
    with pytest.warns(RuntimeWarning, match="running unsandboxed"):
        launcher = ReplLauncher.from_config(config)
    assert launcher.sandbox is None and launcher.command(Path("/tmp")) == ["repl"]


@needs_bwrap
def test_sandbox_wraps_any_command_with_the_documented_flags(tmp_path: Path) -> None:
    launcher = ReplLauncher.from_config(LeanConfig(repl_cmd=["/bin/echo", "hi"], sandbox="required"))
    argv = launcher.command(tmp_path, cwd=tmp_path)
    assert argv[0].endswith("bwrap") and argv[-3:] == ["--", "/bin/echo", "hi"]
    for flag in ("--unshare-all", "--die-with-parent", "--clearenv", "--cap-drop"):
        assert flag in argv
    assert ["--bind", str(tmp_path), str(tmp_path)] == argv[argv.index("--bind") : argv.index("--bind") + 3]
    assert str(Path.home()) not in [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"]


def test_a_bubblewrap_that_cannot_create_namespaces_is_detected(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(WorkspaceError, match="cannot create a sandbox here.*No permissions"):
        ReplLauncher.from_config(LeanConfig(repl_cmd=["repl"], sandbox="required", sandbox_bwrap=str(fake)))
    with pytest.warns(RuntimeWarning, match="running unsandboxed"):
        assert ReplLauncher.from_config(LeanConfig(repl_cmd=["repl"], sandbox_bwrap=str(fake))).sandbox is None
