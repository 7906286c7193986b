"""The strategy registry: every proving strategy is a `StrategySpec`, looked up by name.

Everything that needs to know which strategies exist — config validation (`eval.strategy`, one
config section per strategy), the CLI's `--strategy` choices, the services a run opens, Ray,
collect and resume — loops over `strategy_specs()`; nothing tests a strategy's name as a string.
A new strategy is a new module that defines a spec (vLLM's scheduler plug-in shape: one interface,
one place that maps a name to a class):

    SPEC = StrategySpec(
        name="my_search",
        config_model=MySearchConfig,          # its config section `my_search:`
        factory=MySearchStrategy,             # () -> Strategy
        roles=("prover",),                    # the models it samples from
        description="what `--strategy my_search` does",
    )

Built-in specs are listed in `BUILTIN_SPECS`; a strategy outside the package registers itself
with an entry point in the group `prover.strategies` (`name = "module:SPEC"`), or at run time
with `register_strategy(SPEC)`. Specs are loaded on first lookup, so importing this module is
cheap and it depends on nothing else in `prover` but the errors: the strategy modules depend on
it, never the reverse.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from prover.errors import ConfigError

__all__ = [
    "BUILTIN_SPECS",
    "ENTRY_POINT_GROUP",
    "CliFlag",
    "StrategySpec",
    "get_strategy_spec",
    "register_strategy",
    "registered",
    "section_fields",
    "strategy_names",
    "strategy_specs",
    "unregister_strategy",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "prover.strategies"

BUILTIN_SPECS: tuple[str, ...] = (
    "prover.search.whole_proof:SPEC",
    "prover.search.bfs:SPEC",
    "prover.planner.settings:SPEC",
)
"""`module:attribute` of every strategy shipped with prover."""

RESERVED_NAMES = frozenset({"lean", "checker", "cache", "sampler", "samplers", "eval", "ray"})
"""Core config sections: a strategy's section cannot take one of these names."""

_NAME = re.compile(r"[a-z][a-z0-9_]*")

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class CliFlag:
    """A command-line flag of `prover eval` that sets one field of a strategy's section.

    `kind` "flag" is a switch that sets the field to true; "int", "float" and "str" take a value;
    `choices` restrict a "str" value.
    """

    flag: str
    field: str
    help: str
    kind: str = "int"
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StrategySpec(Generic[C]):
    """Everything the framework needs to know about one strategy.

    Attributes:
        name: `--strategy` value and the name of its config section.
        config_model: pydantic model of the section (every field needs a default).
        factory: builds the strategy object, a `prover.search.base.Strategy` (called once per run
            and per Ray agent; typed loosely here because strategies depend on this module).
        roles: model roles it samples from; each role's sampler is `sampler` overridden by
            `samplers.<role>` (`prover eval --<role>-model ...` for roles other than "prover").
        description: one line for `--help`.
        uses_proof_cache: the run opens a shared proof cache (goal state -> proof).
        resume_settings: fields of its section that change results; resuming a run with other
            values is refused.
        cli_flags: `prover eval` flags that set fields of its section (`--rounds`, ...).
    """

    name: str
    config_model: type[C]
    factory: Callable[[], Any]
    roles: tuple[str, ...] = ("prover",)
    description: str = ""
    uses_proof_cache: bool = False
    resume_settings: tuple[str, ...] = ()
    cli_flags: tuple[CliFlag, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name in RESERVED_NAMES:
            raise ConfigError(
                f"strategy name {self.name!r} must be lower-case letters, digits and `_`, and not one of "
                f"the core config sections ({', '.join(sorted(RESERVED_NAMES))})"
            )
        if not self.roles:
            raise ConfigError(f"strategy {self.name!r} must name at least one model role")
        fields = set(self.config_model.model_fields)
        unknown = (set(self.resume_settings) | {f.field for f in self.cli_flags}) - fields
        if unknown:
            raise ConfigError(f"strategy {self.name!r}: {sorted(unknown)} are not fields of its config")


class _Registry:
    """Specs by name: built-ins and entry points loaded once, then run-time registrations."""

    def __init__(self) -> None:
        self._specs: dict[str, StrategySpec[Any]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def specs(self) -> Mapping[str, StrategySpec[Any]]:
        with self._lock:
            if not self._loaded:
                self._loaded = True  # before loading: a spec module may look the registry up
                self._load()
            return dict(self._specs)

    def add(self, spec: StrategySpec[Any]) -> None:
        with self._lock:
            existing = self._specs.get(spec.name)
            if existing is not None and existing != spec:
                raise ConfigError(
                    f"strategy {spec.name!r} is registered twice (by {existing.factory!r} and {spec.factory!r})"
                )
            self._specs[spec.name] = spec

    def remove(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)

    def _load(self) -> None:
        for ref in BUILTIN_SPECS:
            self.add(_load_ref(ref, "built-in strategy"))
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                spec = entry.load()
            except Exception as exc:  # noqa: BLE001 - one broken plug-in must not hide the others
                log.error("cannot load strategy plug-in %s = %s: %s", entry.name, entry.value, exc)
                continue
            if not isinstance(spec, StrategySpec):
                log.error("strategy plug-in %s = %s is not a StrategySpec", entry.name, entry.value)
                continue
            self.add(spec)


def _load_ref(ref: str, what: str) -> StrategySpec[Any]:
    module_name, _, attribute = ref.partition(":")
    spec = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(spec, StrategySpec):
        raise ConfigError(f"{what} {ref} is not a StrategySpec")
    return spec


_REGISTRY = _Registry()
"""The process's strategy registry (entry points are process-wide by nature)."""


def strategy_specs() -> Mapping[str, StrategySpec[Any]]:
    """Every registered strategy, by name."""
    return _REGISTRY.specs()


def strategy_names() -> tuple[str, ...]:
    return tuple(strategy_specs())


def get_strategy_spec(name: str) -> StrategySpec[Any]:
    """The spec named `name`; ConfigError listing the known names otherwise."""
    specs = strategy_specs()
    spec = specs.get(name)
    if spec is None:
        raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(specs)}")
    return spec


def section_fields(field: str) -> list[str]:
    """`<strategy>.<field>` for every strategy whose section has a field of that name (flags such
    as `--temperature` set the sampler's and each strategy's own)."""
    return [f"{name}.{field}" for name, spec in strategy_specs().items() if field in spec.config_model.model_fields]


def register_strategy(spec: StrategySpec[Any]) -> StrategySpec[Any]:
    """Make `spec` usable by name from config, the CLI and the API (returns it)."""
    strategy_specs()  # built-ins first, so a clash with one is reported
    _REGISTRY.add(spec)
    return spec


def unregister_strategy(name: str) -> None:
    _REGISTRY.remove(name)


@contextlib.contextmanager
def registered(spec: StrategySpec[Any]) -> Iterator[StrategySpec[Any]]:
    """`register_strategy` for the duration of a `with` block (tests, notebooks)."""
    register_strategy(spec)
    try:
        yield spec
    finally:
        unregister_strategy(spec.name)
