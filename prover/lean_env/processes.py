"""Killing child process groups and reaping them before the event loop ends.

A child that is killed but never waited for outlives its transport's event loop: the transport is
collected after the loop closed and Python prints "Event loop is closed" at exit. Whoever kills a
REPL or a replay tool waits for it with `reap`, even while being cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's process group (children start with `start_new_session=True`), without waiting."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the group and wait until the child is reaped and its pipes are closed."""
    kill_group(proc)
    if proc.stdin is not None:
        proc.stdin.close()
    await proc.wait()
