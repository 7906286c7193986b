"""Settings for every component, in one tree.

One root `ProverConfig` is passed down; each component reads only its own section
(`config.lean`, `config.sampler`, ...), the way vLLM threads `VllmConfig` through its engine.
Configs load from YAML or TOML; CLI flags override individual fields afterwards.

The user-level file written by `prover setup lean` (default `~/.config/prover/config.toml`,
or `$PROVER_CONFIG_HOME/config.toml`) supplies defaults such as the Lean workspace.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prover.errors import ConfigError

SECTION = ConfigDict(extra="forbid", validate_assignment=True)

DEFAULT_ALLOWED_AXIOMS: tuple[str, ...] = ("propext", "Classical.choice", "Quot.sound")

WORKSPACE_BOUND: tuple[str, ...] = ("repl_cmd", "lean_version")
"""`lean` settings that `prover setup lean` records for one workspace. A layer (config file or
flags) that names another workspace without them does not inherit them from a lower layer:
the REPL binary and Lean version of one workspace are wrong for another."""


class LeanConfig(BaseModel):
    """Where Lean lives and how REPL workers are run and pooled."""

    model_config = SECTION

    workspace: Path | None = None
    """Lake project whose REPL and imports are used (created by `prover setup lean`)."""
    repl_cmd: list[str] | None = None
    """argv that starts one REPL process; default `lake env <workspace>/.lake/.../repl`."""
    repl_env: dict[str, str] = Field(default_factory=dict)
    lean_version: str = ""
    """Recorded in pool env keys and run metadata (`run.json` falls back to the workspace's
    lean-toolchain file when this is empty)."""
    workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1)
    timeout: float = Field(default=300.0, gt=0)
    """Wall-clock seconds per REPL request; the worker's process group is killed past it."""
    header_timeout: float = Field(default=600.0, gt=0)
    """Wall-clock seconds for elaborating a header (importing Mathlib is slow on a cold disk)."""
    memory_limit_mb: int | None = 16384
    """RLIMIT_AS per REPL process (virtual memory: mmapped Mathlib needs ~9-12 GB)."""
    rss_limit_mb: int | None = 8192
    """Recycle a worker whose resident memory exceeds this after a request."""
    rss_kill_mb: int | None = None
    """Kill a REPL (as out of memory) whose resident memory exceeds this mid-request
    (default: memory_limit_mb; useful where RLIMIT_AS cannot be set or is set very high)."""
    max_uses: int | None = 2000
    """Recycle a worker after this many requests (REPL state arrays never shrink)."""
    max_idle_workers: int | None = None
    """Evict least-recently-used idle workers above this count (default: `workers`)."""
    queue_limit: int = Field(default=10_000, ge=1)
    """Requests waiting for a worker before callers are refused (back-pressure)."""
    infra_retries: int = Field(default=2, ge=0)
    """Retries of infrastructure failures (crash on a request that never reached Lean, EOF on
    start). Lean errors, timeouts and OOM are deterministic and never retried."""
    sandbox: Literal["auto", "required", "off"] = "auto"
    """Run every REPL process (and the kernel replay) under bubblewrap: toolchain and workspace
    read-only, a private writable scratch dir, no network, no home directory, a clean
    environment. `auto`: when `bwrap` is installed (else warn once and run unsandboxed);
    `required`: refuse to start without it; `off`: never."""
    sandbox_bwrap: str = "bwrap"
    """The bubblewrap executable (a name on PATH or a path)."""
    sandbox_scratch: Path | None = None
    """Folder in which each process's private scratch dir is created (default: the system temp dir)."""
    sandbox_ro_paths: list[Path] = Field(default_factory=list)
    """Extra paths bound read-only into the sandbox (what a custom `repl_cmd` needs)."""


class CheckerConfig(BaseModel):
    """The soundness pipeline's rules."""

    model_config = SECTION

    allowed_axioms: tuple[str, ...] = DEFAULT_ALLOWED_AXIOMS
    extra_allowed_axioms: tuple[str, ...] = ()
    """Added to `allowed_axioms` (e.g. LeanGeo's `SMT_VERIF`, or `--allow-axiom`)."""
    banned: tuple[str, ...] | None = None
    """Override the preflight ban-list item names (None = the default list)."""
    allow_native_decide: bool = False
    allow_header_axioms: bool = False
    """Also accept axioms that the benchmark's header environment already declares (libraries
    that axiomatise their domain, e.g. LeanGeo's SystemE geometry). Axioms the proof itself
    declares are still refused: they do not exist in the header environment."""
    replay: Literal["auto", "kernel", "off"] = "auto"
    """Kernel replay of accepted proofs: compile the checked file to an .olean and re-check every
    declaration in the kernel with the workspace's replay tool (lean4checker, or the toolchain's
    leanchecker). `auto`: when the workspace has the tool; `kernel`: required (a missing tool is
    an error verdict, never `proved`); `off`: the audit alone decides."""
    replay_timeout: float = Field(default=600.0, gt=0)
    """Wall-clock seconds for compiling and for replaying one proof (each)."""
    replay_cmd: list[str] | None = None
    """argv of the replay tool (the module name is appended); default: found in the workspace."""
    replay_compile_cmd: list[str] | None = None
    """argv that compiles the scratch module (`-o <olean> <file>` is appended); default `lake env lean`."""


class CacheConfig(BaseModel):
    """Content-addressed caches (verdicts, tactic results, proved goals)."""

    model_config = SECTION

    enabled: bool = True
    path: Path | None = None
    """SQLite file; default `<cache dir>/prover-cache.sqlite`."""


SamplerBackend = Literal["vllm", "openai", "scripted"]


class SamplerConfig(BaseModel):
    """Which model generates, through which backend, with which prompt format."""

    model_config = SECTION

    backend: SamplerBackend = "vllm"
    model: str = "deepseek-ai/DeepSeek-Prover-V2-7B"
    prompt_format: str | None = None
    """Prompt format name; None infers it from the model id."""
    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    """Generation budget per sample; None takes the prompt format's own (2048 DeepSeek-V1.5,
    16384 DeepSeek-V2 and Kimina, 32768 Goedel-V2, 8192 generic chat)."""
    seed: int = 0
    # vLLM in-process
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.0, le=1.0)
    kv_cache_memory_bytes: int | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    dtype: str = "auto"
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    vllm_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Passed through to vLLM's engine arguments."""
    # OpenAI-compatible
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    use_chat: bool | None = None
    """Force chat or completions endpoints; None follows the prompt format."""
    max_concurrency: int = Field(default=64, ge=1)
    max_retries: int = Field(default=5, ge=0)
    retry_backoff: float = Field(default=1.0, ge=0.0)
    """Seconds before the first retry; doubles per retry (with jitter, capped at 60 s)."""
    request_timeout: float = Field(default=600.0, gt=0)
    # scripted
    script: Path | None = None


class WholeProofConfig(BaseModel):
    """Sample whole proofs, check them, optionally self-correct."""

    model_config = SECTION

    passes: int = Field(default=32, ge=1)
    """Samples per problem (the k of pass@k)."""
    chunk: int = Field(default=8, ge=1)
    """Samples per sampler request (n); k is requested in ceil(k/chunk) requests."""
    rounds: int = Field(default=0, ge=0)
    """Rounds of self-correction after the first sample of each chain."""
    early_stop: bool = False
    """Stop sampling a problem once one proof is accepted (breaks unbiased pass@k)."""
    max_errors_in_feedback: int | None = Field(default=None, ge=1)
    """Lean errors shown per correction turn; None takes the model family's own (8 for
    Goedel-V2 and DeepSeek-V2, 3 for Kimina)."""


class BfsConfig(BaseModel):
    """Step-level best-first search."""

    model_config = SECTION

    width: int = Field(default=8, ge=1)
    """Tactics sampled per expansion (one request with n=width)."""
    temperature: float = Field(default=1.0, ge=0.0)
    max_tokens: int = Field(default=256, ge=1)
    depth_alpha: float = Field(default=0.5, ge=0.0)
    """Priority = cumulative logprob / depth**alpha (BFS-Prover's length normalisation)."""
    max_expansions: int = Field(default=600, ge=1)
    time_budget: float = Field(default=600.0, gt=0)
    lean_time_budget: float | None = None
    max_depth: int = Field(default=64, ge=1)
    stop_on_first: bool = True
    """Cancel a problem's remaining attempts once one proves it. Attempts of one problem share
    the proof cache, so they are not independent samples: report BFS results as "solved within
    K attempts" (as BFS-Prover does), not as an unbiased pass@k."""
    banned_tactics: tuple[str, ...] = ("apply?", "exact?", "rw?", "hint", "aesop?", "simp?")


class EvalConfig(BaseModel):
    """What to evaluate and where results go."""

    model_config = SECTION

    benchmark: str = "minif2f"
    split: str | None = None
    limit: int | None = None
    names: tuple[str, ...] = ()
    data_dir: Path | None = None
    out: Path | None = None
    resume: bool = False
    strategy: Literal["whole_proof", "bfs"] = "whole_proof"
    max_problems_in_flight: int = Field(default=16, ge=1)
    """Problems sampled/checked concurrently; bounds memory of the pipeline."""
    max_checks_in_flight: int | None = None
    """Pending checks before sampling pauses (default max(4 x lean.workers, problems in flight x
    chunk): every open problem can have a chunk waiting for Lean while its next one generates)."""


class RayConfig(BaseModel):
    """Running the same strategies on a Ray cluster."""

    model_config = SECTION

    enabled: bool = False
    address: str | None = None
    """`ray.init` address; None starts a local cluster on 127.0.0.1."""
    num_agents: int = Field(default=4, ge=1)
    num_llm_actors: int = Field(default=1, ge=1)
    gpus_per_llm_actor: float = Field(default=1.0, ge=0.0)
    lean_pools_per_node: int = Field(default=1, ge=1)
    object_store_memory: int | None = None
    max_restarts: int = 3
    max_task_retries: int = 3


class ProverConfig(BaseModel):
    """Root of every setting; components read their own section."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    lean: LeanConfig = Field(default_factory=LeanConfig)
    checker: CheckerConfig = Field(default_factory=CheckerConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    whole_proof: WholeProofConfig = Field(default_factory=WholeProofConfig)
    bfs: BfsConfig = Field(default_factory=BfsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @classmethod
    def load(cls, path: Path | str | None = None, *, user_defaults: bool = True) -> ProverConfig:
        """Load a YAML/TOML file over the user-level defaults (`prover setup lean` output)."""
        data: dict[str, Any] = {}
        sources: list[str] = []
        if user_defaults:
            user_file = user_config_path()
            user_data = read_config_file(user_file, missing_ok=True)
            if user_data:
                data, sources = _deep_merge(data, user_data), [str(user_file)]
        if path is not None:
            data = merge_config_layer(data, read_config_file(Path(path)))
            sources.append(str(path))
        return cls.from_dict(data, source=" + ".join(sources) or "defaults")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> ProverConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid settings in {source}:\n{exc}") from exc

    def with_overrides(self, overrides: dict[str, Any]) -> ProverConfig:
        """Return a copy with dotted-path overrides applied, e.g. {"lean.workers": 4}.

        None values are skipped (a flag that was not given). A new `lean.workspace` drops the
        inherited `WORKSPACE_BOUND` settings unless they are overridden too.
        """
        given = {dotted: value for dotted, value in overrides.items() if value is not None}
        data = self.model_dump(mode="python")
        if "lean.workspace" in given:
            data["lean"] = _leave_workspace(data["lean"], given["lean.workspace"])
        for dotted, value in given.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return self.from_dict(data, source="command-line overrides")


def user_config_dir() -> Path:
    root = os.environ.get("PROVER_CONFIG_HOME")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "prover"


def user_config_path() -> Path:
    return user_config_dir() / "config.toml"


def user_cache_dir() -> Path:
    root = os.environ.get("PROVER_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prover"


def read_config_file(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) settings file into a dict."""
    if not path.exists():
        if missing_ok:
            return {}
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path}: use a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return data


def merge_config_layer(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base` (a config file over the user config)."""
    lean = extra.get("lean")
    if isinstance(lean, dict) and lean.get("workspace") is not None and isinstance(base.get("lean"), dict):
        base = {**base, "lean": _leave_workspace(base["lean"], lean["workspace"])}
    return _deep_merge(base, extra)


def _leave_workspace(lean: dict[str, Any], workspace: Path | str) -> dict[str, Any]:
    """`lean` settings without the `WORKSPACE_BOUND` ones if `workspace` is another workspace."""
    current = lean.get("workspace")
    if current is not None and Path(current).expanduser() == Path(workspace).expanduser():
        return lean
    return {key: value for key, value in lean.items() if key not in WORKSPACE_BOUND}


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
