"""Dropout's random masks drawn one training step ahead, on the optimiser's worker thread.

torch's CPU dropout is `noise = empty_like(x).bernoulli_(1 - p); noise.div_(1 - p); x * noise`, and the
Bernoulli draws are most of its cost (about 0.8 ms for a batch of 121 x 1000, one generator, one thread: they
cannot be split without changing the bits). `MaskStream` makes the same noise, in the same order, from a generator
seeded as `torch.manual_seed(seed)` seeds the global one, while the main thread runs the step before: the
training's weights stay the same bit for bit (tests/algo/test_training_fast_paths.py), and the draws leave the
step's critical path when a second core is free.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable

import torch


class MaskStream:
    """The noise tensors of each dropout layer for each step, in the order a run of steps consumes them.

    `step_rows` is the number of compounds of each step (BatchSource.batch_sizes), `widths` the width of each
    dropout layer in forward order. `next_step()` returns one step's list of masks and queues the next step's."""

    def __init__(self, seed: int, p: float, widths: Iterable[int], step_rows: Iterable[int],
                 pool: ThreadPoolExecutor):
        if not 0.0 < p < 1.0:
            raise ValueError(f"a mask stream needs 0 < p < 1 (dropout {p} draws nothing)")
        self._gen = torch.Generator().manual_seed(int(seed) % (1 << 63))
        self._keep = 1.0 - p
        self._widths = tuple(int(w) for w in widths)
        self._rows = iter(step_rows)
        self._pool = pool
        self._queued: Future | None = self._queue()

    def _draw(self, n_rows: int) -> list[torch.Tensor]:
        return [torch.empty(n_rows, w).bernoulli_(self._keep, generator=self._gen).div_(self._keep)
                for w in self._widths]

    def _queue(self) -> Future | None:
        n = next(self._rows, None)
        return None if n is None else self._pool.submit(self._draw, n)

    def next_step(self) -> list[torch.Tensor]:
        """This step's masks (waiting for them if they are not drawn yet); the next step's are queued."""
        if self._queued is None:
            raise RuntimeError("the mask stream has no more steps: more forward passes than batches planned")
        masks = self._queued.result()
        self._queued = self._queue()
        return masks

    def close(self) -> None:
        """Wait for a queued draw (the generator is this stream's alone; nothing else is left running)."""
        if self._queued is not None:
            self._queued.result()
            self._queued = None
