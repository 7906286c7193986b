"""Settings for every component, in one tree.

One root `ProverConfig` is passed down; each component reads only its own section
(`config.lean`, `config.sampler`, ...), the way vLLM threads `VllmConfig` through its engine.
Strategies bring their own sections (`prover.registry`): the config validates one per registered
strategy, so a new strategy needs no edit here.
Configs load from YAML or TOML; CLI flags override individual fields afterwards.

The user-level file written by `prover setup lean` (default `~/.config/prover/config.toml`,
or `$PROVER_CONFIG_HOME/config.toml`) supplies defaults such as the Lean workspace.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prover.errors import ConfigError
from prover.registry import StrategySpec, strategy_names, strategy_specs

C = TypeVar("C", bound=BaseModel)

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
    backend: Literal["repl", "dojo"] = "repl"
    """Where tactic states come from: the REPL pool, or LeanDojo's `Dojo` (`pip install
    prover[dojo]`; theorems of a traced repository, e.g. a `leandojo:` benchmark; the REPL pool
    still runs every command and the checker)."""
    retries: int = Field(default=2, ge=0)
    """Times a check (the checker's whole pipeline, on a fresh lease) or a tactic step is run again
    after a failure the proof may not have caused: the REPL crashed, was killed as out of memory,
    or the request hit an infrastructure failure. Only when every try fails does the failure
    become the answer (`Verdict.tries` records how many ran), so a proof that crashes Lean every
    time still ends as `crash`. Lean's own verdicts are never retried; timeouts only with
    `retry_timeouts`."""
    retry_timeouts: bool = False
    """Also retry timeouts (`retries` times). Off: a proof too slow for `timeout` is a verdict (a
    slow proof fails); on: for overloaded machines, where a timeout can be bad luck."""
    infra_retries: int = Field(default=2, ge=0)
    """Re-deliveries of one request that never reached Lean (the process was dead before it read
    the request) and of failed worker starts. They happen inside one try of `retries` (the
    request never ran, so no try is spent on it); a try that still fails after them counts as
    one failed try."""
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
    strategy: str = Field(default_factory=lambda: strategy_names()[0])
    """A registered strategy (`prover.registry`); its config is the section of the same name."""
    passes: int = Field(default=32, ge=1)
    """Top-level attempts per problem (the k of pass@k): samples, searches or planning episodes."""
    max_problems_in_flight: int = Field(default=16, ge=1)
    """Problems sampled/checked concurrently; bounds memory of the pipeline."""
    retry_errors: bool = True
    """On resume, re-check attempts that ended in an infrastructure error (crash, out of memory, lost
    worker) from their recorded proof, and redo searches that failed that way before finding one;
    the new record supersedes the error (`Attempt.revision`). `--no-retry-errors` keeps them."""
    max_checks_in_flight: int | None = None
    """Pending checks before sampling pauses (default max(4 x lean.workers, problems in flight x
    the strategy's checks per batch): every open problem can have a batch waiting for Lean while
    its next one generates)."""


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
    """Root of every setting; components read their own section.

    Besides the core sections below, every registered strategy has a section named after it
    (`whole_proof:`, `bfs:`, ... with the strategy's own `config_model`), read with
    `config.section(SPEC)`. `sampler` is the default model; `samplers.<role>` overrides any of
    its fields for one model role (`config.sampler_for(role)`), e.g. another backend, server or
    model for a planner.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    lean: LeanConfig = Field(default_factory=LeanConfig)
    checker: CheckerConfig = Field(default_factory=CheckerConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    samplers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-role overrides of `sampler` fields, e.g. {"planner": {"backend": "openai", ...}}."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _strategy_sections(self) -> ProverConfig:
        """Validate one section per registered strategy and the per-role sampler overrides."""
        specs = strategy_specs()
        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        unknown = sorted(set(extra) - set(specs))
        if unknown:
            core = ", ".join(type(self).model_fields)
            raise ValueError(
                f"unknown config section(s) {', '.join(unknown)}; known: {core}, and the strategies' "
                f"{', '.join(specs)}"
            )
        for name, spec in specs.items():
            value = extra.get(name)
            if not isinstance(value, spec.config_model):
                try:
                    extra[name] = spec.config_model.model_validate(value if value is not None else {})
                except ValidationError as exc:
                    raise ValueError(f"section {name!r}: {_field_errors(exc)}") from None
        if self.eval.strategy not in specs:
            raise ValueError(f"eval.strategy {self.eval.strategy!r} is not a registered strategy; known: {', '.join(specs)}")
        roles = {role for spec in specs.values() for role in spec.roles}
        for role in self.samplers:
            if role not in roles:
                raise ValueError(f"samplers.{role}: no strategy uses a model role {role!r}; roles: {', '.join(sorted(roles))}")
            self.sampler_for(role)
        return self

    def section(self, spec: StrategySpec[C]) -> C:
        """The config section of a strategy (validated with its `config_model`)."""
        value = (self.__pydantic_extra__ or {}).get(spec.name)
        if not isinstance(value, spec.config_model):
            raise ConfigError(f"strategy {spec.name!r} was registered after this config was built; reload it")
        return value

    def sampler_for(self, role: str) -> SamplerConfig:
        """`sampler` with the overrides of `samplers.<role>` applied."""
        overrides = self.samplers.get(role)
        if not overrides:
            return self.sampler
        try:
            return SamplerConfig.model_validate({**self.sampler.model_dump(), **overrides})
        except ValidationError as exc:
            raise ValueError(f"samplers.{role}: {_field_errors(exc)}") from None

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
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"cannot set {dotted!r}: {part!r} is not a section")
            node[leaf] = value
        return self.from_dict(data, source="command-line overrides")


def _field_errors(exc: ValidationError) -> str:
    """A nested model's validation errors on one line: `field: message; ...`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


def workspace_lean_version(workspace: Path | None) -> str | None:
    """`v4.15.0` from the workspace's `lean-toolchain` (`leanprover/lean4:v4.15.0`), if readable."""
    if workspace is None:
        return None
    try:
        toolchain = (Path(workspace) / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return toolchain.rpartition(":")[2] or None


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
