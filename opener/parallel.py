"""Run a chunk function over a list on all cores (a process pool), in order, with progress per chunk.

RDKit's per-molecule work (parsing, standardisation, fingerprints) holds the GIL, so threads would not help;
processes do. Small inputs run inline: a pool costs more than it saves below a few chunks.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_chunks(fn: Callable[[Any], Any], items: Sequence, extra: tuple, chunk_size: int, workers: int,
               advance: Callable[[int], None] | None = None) -> list:
    """[fn((chunk, *extra)) for each consecutive chunk of items], in a pool of `workers` processes when it pays."""
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    results = []
    if workers <= 1 or len(chunks) < 3:
        for c in chunks:
            results.append(fn((c, *extra)))
            if advance:
                advance(len(c))
        return results
    # fork is quick and needs no re-import; elsewhere use spawn (macOS/Windows)
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
        for c, r in zip(chunks, pool.map(fn, [(c, *extra) for c in chunks])):
            results.append(r)
            if advance:
                advance(len(c))
    return results
