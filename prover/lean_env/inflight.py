"""One computation per key at a time, for results that are expensive to compute and identical for
every caller (a verdict, a statement's reference): a caller that finds its key being computed
waits for that result; if the computation fails or is cancelled, the waiter computes it itself
(the failure belongs to the caller that ran it, who raises it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class InFlight(Generic[K, V]):
    """Computations in progress by key; nothing is kept once one finishes (callers cache)."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """(value, whether another caller's computation gave it)."""
        while (pending := self._pending.get(key)) is not None:
            # `wait` raises only if this caller is cancelled: when the computation and this caller
            # are cancelled together, the caller must not mistake its own cancellation for the
            # computation's and go on computing.
            await asyncio.wait((pending,))
            if not pending.cancelled() and pending.exception() is None:
                return pending.result(), True
            # it failed (its caller raises that) or was cancelled: compute it here
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: its caller raises it
        self._pending[key] = future
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            del self._pending[key]
        future.set_result(value)
        return value, False
