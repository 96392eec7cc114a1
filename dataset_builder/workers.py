"""The build's process pool: forked workers that never outlive the build.

A build killed with SIGKILL runs no cleanup code, so each worker asks the kernel for SIGKILL when its
parent dies (Linux prctl PR_SET_PDEATHSIG; elsewhere a thread polls for being orphaned). When the block
using the pool fails — a repo raised, Ctrl-C, SIGTERM turned into an exception by the CLI — the workers
are killed at once instead of being waited for.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _worker_init(parent: int) -> None:
    """First thing in every pool worker: it must not outlive the build that forked it (a killed build's
    workers otherwise run on for minutes, hundreds of MB each)."""
    # Forked workers inherit the CLI's SIGTERM handler; a worker should just die. Ctrl-C reaches the whole
    # process group: the parent handles it (it kills the workers), so no worker prints a traceback of its own.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:  # no parent-death signal: poll for being orphaned instead
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died between the fork and prctl
        os._exit(1)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (running work is lost) and shut it down."""
    # ProcessPoolExecutor has no public way to stop running workers before Python 3.14 (terminate_workers).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.kill()
    for process in processes:
        process.join(5)
    pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process, and are killed at once when the block fails
    (a failing repo, Ctrl-C, SIGTERM) instead of being waited for."""
    # fork: workers inherit the imported modules (tree-sitter grammars, detect-secrets) for free.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    except BaseException:
        kill_workers(pool)
        raise
    pool.shutdown(wait=True)
