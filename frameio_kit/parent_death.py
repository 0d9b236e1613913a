"""Child processes that die with their parent: Linux's parent-death signal, in one place.

A parent that is SIGKILLed or crashes runs no clean-up, so its children are re-parented and keep running,
holding their ports (`frameio-kit dev` then fails with "address already in use"). `prctl(PR_SET_PDEATHSIG)`
asks the kernel to signal the child instead. Other systems have no such call: there children outlive a
killed parent, and only an orderly stop (Ctrl-C, SIGTERM, SIGHUP) ends them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl(platform: str) -> Callable[..., int] | None:
    """libc's `prctl`, resolved once in the parent: the child, between fork and exec, only calls it."""
    if not platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # a libc without prctl (unusual builds): fall back as elsewhere
        return None
    return prctl


_prctl = _load_prctl(sys.platform)


def dies_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that sends the child `sig` when its parent dies; None where
    the system cannot (Popen then runs the child as usual).

    Choose `sig` so that the child takes its own children down with it (e.g. SIGTERM for uvicorn, which
    stops its worker processes on it). The kernel tracks the *thread* that forked: start the child from a
    thread that lives as long as the process, such as the main thread. The setting survives exec, except
    into set-uid programs.
    """
    if _prctl is None:
        return None
    prctl = _prctl
    parent = os.getpid()
    number = int(sig)

    def arm() -> None:
        # Runs in the forked child, so it only makes two system calls: no imports, no locks, no logging.
        if prctl(_PR_SET_PDEATHSIG, number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl: nobody would send the signal, so leave now.
        if os.getppid() != parent:
            os._exit(1)

    return arm
