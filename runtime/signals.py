"""Holding interrupts back while a unit of output is written (one result's rows in every output file, one
checkpoint), so Ctrl-C or SIGTERM never leaves outputs that disagree with each other."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back until the block ends; a signal that came meanwhile is raised right after it.

    Python runs signal handlers in the main thread only, so the block swaps in a handler that records the signal
    and re-raises it on exit. (Masking with ``pthread_sigmask`` is not enough: it masks the calling thread only,
    and the kernel hands a process-wide signal to any other thread, e.g. one of torch's or a data loader's, whose
    C handler then wakes the Python handler inside the block.) Outside the main thread the block runs
    unprotected; a signal whose handler was not installed from Python is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        pending.append(signum)

    old = {s: signal.getsignal(s) for s in HELD}
    swapped = {s: h for s, h in old.items() if h is not None}
    for s in swapped:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, h in swapped.items():
            signal.signal(s, h)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)
