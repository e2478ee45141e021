"""Holding interrupts back while a unit of output is written (one result's rows in every output file, one
checkpoint), so Ctrl-C or SIGTERM never leaves outputs that disagree with each other."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (main thread, POSIX) until the block ends; the signal is delivered right after.
    Elsewhere (another thread, no ``pthread_sigmask``) the block runs unprotected."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
