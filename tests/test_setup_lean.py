"""`prover setup lean`: the workspace files, the config it records, and clear failures.

No test reaches the network or a real Lean: builds run fake `elan`/`lake` scripts that log argv.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from prover.config import ProverConfig
from prover.errors import WorkspaceError
from prover.lean_env import setup
from prover.lean_env.setup import (
    WorkspaceSpec,
    build_commands,
    setup_lean,
    to_toml,
    workspace_files,
    write_workspace,
)


def test_workspace_files_pin_matching_versions(tmp_path: Path) -> None:
    files = workspace_files(WorkspaceSpec(dir=tmp_path))
    assert files["lean-toolchain"] == "leanprover/lean4:v4.15.0\n"
    lakefile = files["lakefile.lean"]
    assert 'require mathlib from git\n  "https://github.com/leanprover-community/mathlib4" @ "v4.15.0"' in lakefile
    assert 'require REPL from git\n  "https://github.com/leanprover-community/repl" @ "v4.15.0"' in lakefile
    assert "lean_lib ProverWorkspace" in lakefile
    assert 'require lean4checker from git\n  "https://github.com/leanprover/lean4checker" @ "v4.15.0"' in lakefile
    assert files["ProverWorkspace.lean"].startswith("import Mathlib\n") and "theorem" in files["ProverWorkspace.lean"]


def test_leangeo_workspace_requires_leangeo_at_its_pins(tmp_path: Path) -> None:
    from prover.leangeo import settings as leangeo

    spec = WorkspaceSpec(dir=tmp_path, project="leangeo")
    files = workspace_files(spec)
    assert files["lean-toolchain"] == leangeo.LEAN_TOOLCHAIN + "\n"
    lakefile = files["lakefile.lean"]
    assert f'"{leangeo.LEANGEO_GIT}" @ "{leangeo.LEANGEO_REV}"' in lakefile
    assert "require mathlib" not in lakefile  # LeanGeo brings the Mathlib it was written for
    assert 'require REPL from git\n  "https://github.com/leanprover-community/repl" @ "v4.15.0"' in lakefile
    assert ["lake", "run", "cvc5/downloadRelease"] in build_commands(spec)
    # the REPL only loads compiled modules: the libraries LeanGeo headers import must be built
    assert ["lake", "build", "cvc5", "SystemE", "LeanGeo"] in build_commands(spec)
    assert ["lake", "run", "cvc5/downloadRelease"] not in build_commands(WorkspaceSpec(dir=tmp_path))
    with pytest.raises(ValueError, match="LeanGeo needs leanprover/lean4:v4.15.0"):
        WorkspaceSpec(dir=tmp_path, project="leangeo", lean_version="v4.24.0")
    with pytest.raises(ValueError, match="own Mathlib"):
        WorkspaceSpec(dir=tmp_path, project="leangeo", mathlib_rev="abc")


def test_custom_revisions_and_version_normalised(tmp_path: Path) -> None:
    spec = WorkspaceSpec(dir=tmp_path, lean_version="4.9.0", mathlib_rev="2f65ba7f", repl_rev="adbbfcb9")
    files = workspace_files(spec)
    assert files["lean-toolchain"] == "leanprover/lean4:v4.9.0\n"
    assert '@ "2f65ba7f"' in files["lakefile.lean"] and '@ "adbbfcb9"' in files["lakefile.lean"]
    with pytest.raises(ValueError, match="v4.15.0"):
        WorkspaceSpec(dir=tmp_path, lean_version="latest")


def test_write_is_idempotent_and_refuses_clobbering(tmp_path: Path) -> None:
    spec = WorkspaceSpec(dir=tmp_path / "ws")
    written = write_workspace(spec)
    assert sorted(p.name for p in written) == sorted(workspace_files(spec))
    write_workspace(spec)  # same content: fine
    (tmp_path / "ws" / "lakefile.lean").write_text("-- my own project\n")
    with pytest.raises(WorkspaceError, match="lakefile.lean.*--force"):
        write_workspace(spec)
    write_workspace(spec, force=True)
    assert "require mathlib" in (tmp_path / "ws" / "lakefile.lean").read_text()


def test_skip_build_records_config_and_keeps_other_settings(tmp_path: Path) -> None:
    config_path = tmp_path / "config" / "config.toml"
    config_path.parent.mkdir()
    config_path.write_text('[sampler]\nmodel = "my/model"\n\n[lean]\nworkers = 3\n')
    spec = WorkspaceSpec(dir=tmp_path / "ws", lean_version="v4.15.0")
    assert setup_lean(spec, skip_build=True, config_path=config_path) == config_path
    loaded = ProverConfig.load(config_path, user_defaults=False)
    assert loaded.lean.workspace == (tmp_path / "ws").resolve()
    assert loaded.lean.lean_version == "v4.15.0"
    assert loaded.lean.repl_cmd is not None and loaded.lean.repl_cmd[-2:] == [
        "env", str((tmp_path / "ws").resolve() / ".lake/packages/REPL/.lake/build/bin/repl")
    ]
    assert loaded.lean.workers == 3 and loaded.sampler.model == "my/model"
    assert (tmp_path / "ws" / "lean-toolchain").exists()


def test_to_toml_roundtrip() -> None:
    data = {"a": 1, "lean": {"workspace": 'C:\\x "q"', "repl_cmd": ["lake", "env"], "ok": True, "t": 2.5},
            "sampler": {"vllm_kwargs": {"max-x": 3, "größe": 1}}, "empty": {}}
    assert tomllib.loads(to_toml(data)) == data


def _fake_tools(bin_dir: Path, log: Path, fail_on: str = "") -> None:
    bin_dir.mkdir()
    for tool in ("elan", "lake"):
        script = bin_dir / tool
        script.write_text(
            f"#!/bin/sh\necho \"{tool} $*\" >> {log}\n"
            + (f'case "$*" in *{fail_on}*) exit 3;; esac\n' if fail_on else "")
            + "exit 0\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_build_runs_the_steps_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    _fake_tools(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    spec = WorkspaceSpec(dir=tmp_path / "ws")
    config_path = tmp_path / "config.toml"
    setup_lean(spec, config_path=config_path, network_probe=lambda: True)
    calls = log.read_text().splitlines()
    assert calls == [" ".join(c) for c in build_commands(spec)]
    assert calls[0] == "elan toolchain install leanprover/lean4:v4.15.0"
    assert calls[2:] == ["lake exe cache get", "lake build", "lake build repl", "lake build lean4checker"]
    recorded = tomllib.loads(config_path.read_text())["lean"]
    assert recorded["repl_cmd"][0] == str(tmp_path / "bin" / "lake")


def test_tools_only_in_elan_home_are_run_from_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after elan's installer, ~/.elan/bin is not on PATH yet: the build still runs."""
    log = tmp_path / "calls.log"
    (tmp_path / ".elan").mkdir()
    _fake_tools(tmp_path / ".elan" / "bin", log)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    spec = WorkspaceSpec(dir=tmp_path / "ws")
    setup_lean(spec, config_path=tmp_path / "config.toml", network_probe=lambda: True)
    assert log.read_text().splitlines() == [" ".join(c) for c in build_commands(spec)]


def test_network_probe_goes_through_the_https_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        for variable in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert setup.network_available(host="unreachable.invalid", timeout=2)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
        assert not setup.network_available(timeout=2)


def test_failed_step_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path / "bin", tmp_path / "calls.log", fail_on="cache")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    config_path = tmp_path / "config.toml"
    with pytest.raises(WorkspaceError, match="lake exe cache get.*exit code 3"):
        setup_lean(WorkspaceSpec(dir=tmp_path / "ws"), config_path=config_path, network_probe=lambda: True)
    assert not config_path.exists()  # nothing recorded for a broken workspace


def test_missing_tools_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    probed = []
    with pytest.raises(WorkspaceError) as info:
        setup_lean(WorkspaceSpec(dir=tmp_path / "ws"), config_path=tmp_path / "c.toml",
                   network_probe=lambda: probed.append(1) or True)
    message = str(info.value)
    assert "elan and lake not found" in message and "elan-init.sh" in message and "--skip-build" in message
    assert not probed and not (tmp_path / "ws").exists()  # checked tools before anything else


def test_no_network_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path / "bin", tmp_path / "calls.log")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(WorkspaceError, match="cannot reach github.com"):
        setup_lean(WorkspaceSpec(dir=tmp_path / "ws"), config_path=tmp_path / "c.toml", network_probe=lambda: False)
    assert not (tmp_path / "calls.log").exists()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(check=False, args=[sys.executable, "-m", "prover.cli", "setup", "lean", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


def test_cli_skip_build_dry_run_and_missing_tools(tmp_path: Path) -> None:
    env = {"PROVER_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": str(tmp_path / "nobin"), "HOME": str(tmp_path)}
    dry = _cli(["--dir", str(tmp_path / "dry"), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "would run: lake exe cache get" in dry.stdout and not (tmp_path / "dry").exists()
    built = _cli(["--dir", str(tmp_path / "ws"), "--lean-version", "v4.9.0", "--skip-build"], env)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "ws" / "lean-toolchain").read_text() == "leanprover/lean4:v4.9.0\n"
    recorded = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())["lean"]
    assert recorded["lean_version"] == "v4.9.0" and recorded["workspace"] == str((tmp_path / "ws").resolve())
    missing = _cli(["--dir", str(tmp_path / "ws2")], env)
    assert missing.returncode == 2 and "elan" in missing.stderr and "not found" in missing.stderr


def test_default_dir_uses_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVER_DATA_HOME", str(tmp_path))
    assert setup.default_workspace_dir("v4.15.0") == tmp_path / "lean-v4.15.0"


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "setup_lean.sh"


def test_setup_script_hands_over_to_prover_setup_lean(tmp_path: Path) -> None:
    _fake_tools(tmp_path / "bin", tmp_path / "calls.log")  # elan present: nothing to install
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHON": sys.executable, "PROVER_CONFIG_HOME": str(tmp_path / "cfg")}
    proc = subprocess.run(check=False, args=["bash", str(SCRIPT), "--dir", str(tmp_path / "ws"), "--dry-run"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "would run: lake exe cache get" in proc.stdout and not (tmp_path / "ws").exists()


def test_setup_script_without_elan_or_curl_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    env = {**os.environ, "PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}
    proc = subprocess.run(check=False, args=["/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1 and "curl is needed" in proc.stderr


def test_replay_tool_comes_from_lean4checker_before_v4_28_and_the_toolchain_after(tmp_path: Path) -> None:
    old, new = WorkspaceSpec(dir=tmp_path, lean_version="v4.27.0"), WorkspaceSpec(dir=tmp_path, lean_version="v4.28.0-rc1")
    assert old.builds_lean4checker and ["lake", "build", "lean4checker"] in build_commands(old)
    assert not new.builds_lean4checker and ["lake", "build", "lean4checker"] not in build_commands(new)
    assert "lean4checker" not in workspace_files(new)["lakefile.lean"]
