"""A small progress bar on stderr (tqdm when installed), silent when stderr is not a terminal unless forced."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None, desc: str, enabled: bool = True) -> Iterator[T]:
    """Wrap an iterable with a progress bar."""
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        yield from tqdm(items, total=total, desc=desc, unit="frame", file=sys.stderr, leave=False)
        return
    start, last = time.perf_counter(), 0.0
    n = 0
    for n, item in enumerate(items, 1):
        now = time.perf_counter()
        if now - last > 0.5:
            last = now
            rate = n / max(now - start, 1e-9)
            of = f"/{total}" if total else ""
            print(f"\r{desc}: {n}{of} frames, {rate:.1f} fps", end="", file=sys.stderr, flush=True)
        yield item
    print(f"\r{desc}: {n} frames done{' ' * 20}", file=sys.stderr)
