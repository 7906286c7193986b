"""The exception tree of prover.

    ProverError                      base of every error this package raises on purpose
    ├── ConfigError                  bad settings or config file
    ├── DataError                    unknown benchmark, malformed problem file, download failure
    ├── LeanError                    anything about talking to Lean
    │   ├── WorkspaceError           no usable Lean workspace / REPL command
    │   ├── ReplError                one REPL process failed a request
    │   │   ├── ReplTimeout          wall-clock timeout; the process group was killed
    │   │   ├── ReplCrashed          process exited / EOF / garbage output
    │   │   ├── ReplMemoryExceeded   memory cap hit (RLIMIT_AS or RSS watch)
    │   │   └── ReplProtocolError    reply that does not parse as a REPL reply
    │   ├── StaleHandleError         env / proof-state handle from an earlier process generation
    │   └── PoolClosed / PoolOverloaded
    ├── SamplerError                 anything about generating text
    │   ├── SamplerRequestError      the request is bad (4xx, invalid params): not retried
    │   └── SamplerUnavailable       backend dead or unreachable after retries
    └── RunError                     a run directory cannot be created / resumed

Lean's own verdicts (errors in a proof, sorry, ...) are data on replies and `Verdict`s, never
exceptions. The CLI catches `ProverError`, prints it and exits non-zero.
"""

from __future__ import annotations


class ProverError(Exception):
    """Base class of every error raised on purpose by prover."""


class ConfigError(ProverError):
    """Settings are invalid or a config file cannot be read."""


class DataError(ProverError):
    """A benchmark is unknown, cannot be downloaded, or a problem file is malformed."""


class LeanError(ProverError):
    """Base for failures talking to Lean (not Lean rejecting a proof)."""


class WorkspaceError(LeanError):
    """There is no usable Lean workspace or REPL command."""


class ReplError(LeanError):
    """A REPL process failed to answer a request."""


class ReplTimeout(ReplError):
    """The request exceeded its wall-clock timeout; the process group was killed."""


class ReplCrashed(ReplError):
    """The REPL process exited, closed stdout, or wrote something that is not a reply."""


class ReplMemoryExceeded(ReplError):
    """The REPL process hit its memory cap."""


class ReplProtocolError(ReplError):
    """A reply did not match the REPL protocol."""


class StaleHandleError(LeanError):
    """A handle refers to an env or proof state of a REPL process that has since restarted."""


class PoolClosed(LeanError):
    """The pool was closed while a request was waiting or running."""


class PoolOverloaded(LeanError):
    """The pool's queue is full; the caller should back off."""


class SamplerError(ProverError):
    """Base for failures generating text."""


class SamplerRequestError(SamplerError):
    """The backend refused the request as invalid (not retried)."""


class SamplerUnavailable(SamplerError):
    """The backend is dead or unreachable (after retries)."""


class RunError(ProverError):
    """A run directory cannot be created, read or resumed."""
