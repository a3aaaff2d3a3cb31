"""One worker thread kept for the whole process, started on first use and forgotten in a forked child.

The project's machines have two cores, and two of its hot loops run half their work on a second Python thread
while the calling thread does the other half: the input layer's training step (algo.adam) and masking
(algo.secagg.masking). Starting a thread per call costs more than small calls take (0.2-0.7 ms of a 3 ms mask),
so each keeps one. A forked child (the warm task server's children) has no copy of its parent's threads: it
starts its own instead of waiting forever on one that does not exist there. Standard library only: the
aggregator's masking path imports no torch.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


class KeptWorker:
    """A one-thread executor named `name`, made when first asked for and again after a fork."""

    def __init__(self, name: str):
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.name)
            return self._executor

    def is_current(self) -> bool:
        """True on the worker thread itself (a caller there must not wait on it: it would wait on itself)."""
        return threading.current_thread().name.startswith(f"{self.name}_")

    def _forget(self) -> None:
        self._executor = None
        self._lock = threading.Lock()  # a lock held by another thread at the fork stays held in the child
